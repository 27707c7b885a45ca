package ingest

import (
	"errors"

	"github.com/ferrytool/ferry/registry"
)

var (
	// ErrAuth is returned when the registry refuses the credentials (HTTP
	// 401) or the account lacks a permission (HTTP 403).
	ErrAuth = registry.ErrAuth
	// ErrTLS is returned when the registry's certificate does not verify.
	ErrTLS = registry.ErrTLS
	// ErrUnreachable is returned when the registry cannot be reached.
	ErrUnreachable = registry.ErrUnreachable
	// ErrRegistry is returned when the registry refuses a request for
	// another reason, or keeps failing after every retry.
	ErrRegistry = registry.ErrRegistry
	// ErrDestination is returned for a destination that is not a valid
	// HOST[:PORT][/BASE] (registry.ErrDestination).
	ErrDestination = registry.ErrDestination
	// ErrConflict is returned when two artifacts go to one destination.
	ErrConflict = errors.New("two artifacts map to one destination")
	// ErrVolumes is returned for volumes that cannot be ingested together:
	// another archive, the same volume twice.
	ErrVolumes = errors.New("volumes do not belong together")
	// ErrRefused is returned (through Report.Err) when artifacts were
	// refused: a blob failed verification, a pack signature did not verify,
	// or the registry refused a manifest.
	ErrRefused = errors.New("artifacts refused")
	// ErrIncomplete is returned (through Report.Err) when artifacts wait for
	// volumes not given yet.
	ErrIncomplete = errors.New("artifacts wait for volumes not given")
	// ErrValidation is returned when a destination repository is missing
	// from the catalog or a tag does not resolve to the digest in the bill
	// of materials.
	ErrValidation = errors.New("registry content does not match the bill of materials")
	// ErrWrongDigest is returned, wrapped with ErrValidation, when a tag
	// resolves to another digest than the bill of materials names: other
	// content than the signed one, not merely content still missing.
	ErrWrongDigest = errors.New("a tag resolves to another digest than the bill of materials")
	// ErrDockerMediaType is returned when the registry refuses a Docker
	// schema 2 manifest or manifest list, as Zot does by default.
	ErrDockerMediaType = errors.New("registry refuses Docker manifest media types")
	// ErrWrongDestination is returned before anything is sent when a
	// delta archive was collected against receipts of another destination
	// than the one given: what it leaves out is not known to be there.
	ErrWrongDestination = errors.New("delta archive is for another destination")
	// ErrNoJournal is returned by operations that need a journal when none
	// is given.
	ErrNoJournal = errors.New("no journal")
)
