package store

import (
	"errors"
	"fmt"
)

var (
	// ErrLocked is returned when another process holds a database past the
	// lock timeout.
	ErrLocked = errors.New("database is locked by another process")
	// ErrCorrupt is returned for a database whose content does not decode.
	ErrCorrupt = errors.New("database content is invalid")
	// ErrDamaged is returned for a database file bbolt cannot read safely:
	// cut short, a page overwritten, not a bbolt file at all.
	ErrDamaged = errors.New("database file is damaged")
)

// DamagedError names a database file that cannot be read safely and what
// was found wrong with it. errors.Is(err, ErrDamaged) holds.
type DamagedError struct {
	Path   string
	Reason string
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("%s: %v (%s)", e.Path, ErrDamaged, e.Reason)
}

func (e *DamagedError) Unwrap() error { return ErrDamaged }
