package collect

import "errors"

var (
	// ErrNotFound is returned when a reference, chart, chart version or
	// image does not exist at its source.
	ErrNotFound = errors.New("not found at the source")
	// ErrSource is returned when a source cannot be reached or refuses us.
	ErrSource = errors.New("source unavailable")
	// ErrConflict is returned when two sources map to one destination.
	ErrConflict = errors.New("two sources map to one destination")
	// ErrNothing is returned when there is nothing to collect.
	ErrNothing = errors.New("nothing to collect")
	// ErrUsage is returned for a spec that asks for something impossible:
	// a missing file, a chart whose upstream repository is unknown.
	ErrUsage = errors.New("invalid request")
	// ErrMissingPack is returned when a bundle needs a pack the spec does
	// not provide, or a pack file is missing.
	ErrMissingPack = errors.New("pack missing")
	// ErrNoPackKey is returned, with ErrUsage, for an Artifact Studio pack
	// when no PackVerifier was given to check its signature.
	ErrNoPackKey = errors.New("no vendor public key to check its signature")
	// ErrBadPackSignature is returned when a pack's vendor signature is
	// missing or does not verify; the pack is not collected.
	ErrBadPackSignature = errors.New("pack signature check failed")
	// ErrChartProvenance is returned when a chart's provenance file does
	// not verify against the chart keyring, or a keyring is given and the
	// chart has none; the chart is not collected.
	ErrChartProvenance = errors.New("chart provenance check failed")
	// ErrPack is returned for a pack tarball that cannot be read.
	ErrPack = errors.New("invalid pack")
	// ErrChart is returned for a chart that does not load or render.
	ErrChart = errors.New("chart cannot be rendered")
	// ErrRenderLimit is returned, with ErrChart, for a chart whose
	// rendering ran past its time or memory limit.
	ErrRenderLimit = errors.New("chart rendering hit its limit")
	// ErrBundleDocument is returned for a bundle document that does not
	// parse.
	ErrBundleDocument = errors.New("bundle document does not parse")
	// ErrGap is returned by a strict collect that found gaps.
	ErrGap = errors.New("content named but not available")
	// ErrImageSignature is returned when signed images are required and no
	// given key verifies an image.
	ErrImageSignature = errors.New("image signature check failed")
)

// ErrMirrorMismatch is returned when a registry mirror serves other content
// for a reference than its source (or the pinned digest) says; nothing
// from that mirror is collected for it.
var ErrMirrorMismatch = errors.New("registry mirror serves different content")

// errForbidden marks, beside ErrSource, a chart repository's 403: object
// stores answer it for a file that is not there, as for a missing .prov.
var errForbidden = errors.New("forbidden")
