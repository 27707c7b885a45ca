// Package store owns ferry's bbolt databases: the index each archive volume
// carries, the collect cache's index and the ingest journal. Each database
// gets typed helpers around View/Update; every value is copied out before its
// transaction ends, so no caller ever holds memory bbolt may unmap.
package store
