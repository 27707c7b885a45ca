// Package collect is the connected side of ferry: it resolves what the
// operator asked for into artifacts and blobs, fetches every blob once into a
// content-addressed cache, and writes the signed archive from that cache.
// It never imports ingest; the two meet only in the archive format.
package collect
