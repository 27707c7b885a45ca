package archive

import (
	"errors"
	"fmt"
)

var (
	// ErrFormat is returned for a volume that is not a ferry archive volume
	// or whose structure is broken (bad entry names, entry types, order).
	ErrFormat = errors.New("malformed archive")
	// ErrUnsafeEntry is returned for a tar entry that could escape the
	// extraction folder or is not a regular file.
	ErrUnsafeEntry = errors.New("unsafe tar entry")
	// ErrSignature is returned when the bill of materials' signature is
	// missing or does not verify.
	ErrSignature = errors.New("bill of materials signature invalid")
	// ErrDigest is returned for content that does not match its digest or size.
	ErrDigest = errors.New("integrity check failed")
	// ErrNotFound is returned when a blob is not in a volume.
	ErrNotFound = errors.New("not in this volume")
	// ErrExists is returned when an output file is already there.
	ErrExists = errors.New("output already exists")
	// ErrVolumeSize is returned for a volume size too small to hold anything.
	ErrVolumeSize = errors.New("volume size too small")
	// ErrTruncated is returned for a volume that ends early.
	ErrTruncated = errors.New("volume is truncated")
	// ErrLimit (an ErrFormat) is returned when a volume asks for more than a documented
	// limit allows (index size, entry count, zstd window); the message
	// names the limit.
	ErrLimit = fmt.Errorf("%w: over a limit", ErrFormat)
	// ErrForeign (an ErrFormat) is returned for a volume of another archive than the
	// others given.
	ErrForeign = fmt.Errorf("%w: volume of another archive", ErrFormat)
)
