package cluster

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Sentinel errors. Callers branch with errors.Is; an [*APIError] matches the
// sentinel that fits the API server's answer as well as the status error
// itself.
var (
	// ErrInvalidOptions: the Options cannot work (a missing namespace, a
	// registry without a port when the pull-secret name must be derived, a
	// malformed registry map, an unreadable kubeconfig or unknown context).
	ErrInvalidOptions = errors.New("invalid cluster options")
	// ErrForbidden: RBAC refused a request; the error names verb and resource.
	ErrForbidden = errors.New("forbidden")
	// ErrNotFound: an object ferry must change is not there (the Project, or
	// the VariableSet when creating it was not asked for), or the hub serves
	// no such kind.
	ErrNotFound = errors.New("not found")
	// ErrVariableSetMissing: the project VariableSet does not exist and
	// creating it was not asked for. It matches ErrNotFound as well.
	ErrVariableSetMissing = fmt.Errorf("VariableSet %w", ErrNotFound)
	// ErrConflict: the object kept changing under us; retries ran out.
	ErrConflict = errors.New("conflict")
	// ErrRejected: validation or admission refused a write.
	ErrRejected = errors.New("rejected")
	// ErrUnavailable: the API server could not be reached or did not answer
	// in time.
	ErrUnavailable = errors.New("API server unavailable")
	// ErrTimeout: the bounded wait for the CA Secret on the spoke ran out.
	// Nothing was created on the spoke.
	ErrTimeout = errors.New("timed out")
	// ErrUnusableCA: the CA Secret found on the spoke holds no PEM
	// certificate under ca.crt, or holds a private key there.
	ErrUnusableCA = errors.New("unusable CA secret")
)

// APIError is a failed request to the hub or the spoke, naming the verb and
// resource so an operator can fix RBAC or the object.
type APIError struct {
	Cluster   string // "hub" or "spoke"
	Verb      string // get, list, create, update, patch, apply, delete
	Resource  string // e.g. "projects.spectrocloud.com", "secrets"
	Namespace string
	Name      string
	Err       error
}

func (e *APIError) Error() string {
	obj := e.Name
	if e.Namespace != "" {
		obj = e.Namespace + "/" + e.Name
	}
	return fmt.Sprintf("%s: %s %s %s: %v", e.Cluster, e.Verb, e.Resource, obj, e.Err)
}

// Unwrap gives the matching sentinel and the API server's error.
func (e *APIError) Unwrap() []error {
	if s := classify(e.Err); s != nil {
		return []error{s, e.Err}
	}
	return []error{e.Err}
}

func classify(err error) error {
	switch {
	case errors.Is(err, context.Canceled):
		return nil // the caller stopped us; not the server's doing
	case apierrors.IsForbidden(err), apierrors.IsUnauthorized(err):
		return ErrForbidden
	case apierrors.IsNotFound(err):
		return ErrNotFound
	case apierrors.IsConflict(err):
		return ErrConflict
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err):
		return ErrRejected
	case apierrors.IsServerTimeout(err), apierrors.IsTimeout(err), apierrors.IsServiceUnavailable(err),
		apierrors.IsTooManyRequests(err), apierrors.IsInternalError(err):
		return ErrUnavailable
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return ErrUnavailable // no answer from the server at all: dial, TLS, EOF
	}
	if status.Status().Code == 422 {
		return ErrRejected
	}
	return nil
}
