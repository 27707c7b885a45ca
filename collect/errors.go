package collect

import "errors"

var (
	// ErrNotFound is returned when a reference, chart or pack does not exist
	// at its source.
	ErrNotFound = errors.New("not found at the source")
	// ErrSource is returned when a source cannot be reached or refuses us.
	ErrSource = errors.New("source unavailable")
	// ErrConflict is returned when two sources map to one destination.
	ErrConflict = errors.New("two sources map to one destination")
	// ErrNothing is returned when there is nothing to collect.
	ErrNothing = errors.New("nothing to collect")
)
