package registry

import (
	"errors"
	"fmt"
)

var (
	// ErrDestination is returned for a destination that is not a valid
	// HOST[:PORT][/BASE]: a scheme, a bad port, a base path outside the
	// distribution spec's repository-name grammar.
	ErrDestination = errors.New("invalid registry destination")
	// ErrAuth is returned when the registry refuses the credentials (HTTP
	// 401) or the account lacks a permission (HTTP 403).
	ErrAuth = errors.New("registry refused the credentials")
	// ErrTLS is returned when the registry's certificate does not verify.
	ErrTLS = errors.New("registry certificate not trusted")
	// ErrUnreachable is returned when the registry cannot be reached.
	ErrUnreachable = errors.New("registry unreachable")
	// ErrRegistry is returned when the registry refuses a request for
	// another reason, or keeps failing after every retry.
	ErrRegistry = errors.New("registry error")
	// ErrWrongScheme is returned, wrapped in ErrUnreachable, when a request
	// would switch from the scheme the client was set up with (HTTPS to
	// plain HTTP, as go-containerregistry's ping tries for private hosts).
	ErrWrongScheme = errors.New("refusing to switch protocol")
)

// ContentError is a failure to read a blob's content from the caller's
// source (a digest mismatch at its end, a damaged volume, a disk error)
// rather than a failure of the registry or the network. The blob was not
// committed; the caller decides what the cause means.
type ContentError struct {
	Digest string
	Err    error
}

func (e *ContentError) Error() string { return fmt.Sprintf("blob %s: %v", e.Digest, e.Err) }
func (e *ContentError) Unwrap() error { return e.Err }
