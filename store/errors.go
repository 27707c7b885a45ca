package store

import "errors"

var (
	// ErrLocked is returned when another process holds a database past the
	// lock timeout.
	ErrLocked = errors.New("database is locked by another process")
	// ErrCorrupt is returned for a database whose content does not decode.
	ErrCorrupt = errors.New("database content is invalid")
)
