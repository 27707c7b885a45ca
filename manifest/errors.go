package manifest

import "errors"

// ErrInvalidBOM is returned for a bill of materials that does not parse or is
// inconsistent.
var ErrInvalidBOM = errors.New("invalid bill of materials")
