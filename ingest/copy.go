package ingest

import (
	"context"
	"io"
	"time"

	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/registry"
	"github.com/ferrytool/ferry/store"
)

// Source is what Copy reads: a graph of artifacts and their blobs by
// digest. Collect's resolver for `ferry sync` is one; the archive's
// volumes are another (setSource).
type Source interface {
	// Graph is the bill of materials: every artifact with its closure and
	// every blob with its digest, size and media type.
	Graph() *manifest.BOM
	// OpenBlob opens a blob's content from its first byte. Copy verifies
	// what it reads against the blob's digest and size.
	OpenBlob(ctx context.Context, b manifest.Blob) (io.ReadCloser, error)
}

// CopyOptions configure Copy. Zero values are documented per field.
type CopyOptions struct {
	// Client is how the registry is reached: credentials, transport,
	// retries, chunk size, logger.
	Client registry.Options
	// Jobs bounds parallel uploads; zero means 4.
	Jobs int
	// Mappings rewrite destination repositories before the base path is
	// added.
	Mappings []Mapping
	// Atomic is all-or-nothing: no tag is set unless every artifact can go
	// in. Every manifest is first stored by digest alone, since a registry
	// may refuse one only when it is PUT; a refusal then leaves manifests
	// stored by digest, but no tag, and every artifact refused.
	Atomic bool
	// DryRun reports what would go where and what the registry already has.
	// It uploads no artifact's blob or manifest, records nothing in the
	// journal and stages nothing. It does write to the registry once: the
	// Docker media type probe stores a two-byte config blob and a tiny
	// manifest by digest (never a tag) in one of the destination
	// repositories and deletes them again (a registry that refuses deletion
	// keeps them, see DockerProbe.Cleanup).
	DryRun bool
	// ConvertOCI pushes Docker schema 2 manifests and manifest lists in
	// their OCI form, for a registry that refuses Docker media types (a
	// default Zot): media types change, so do the manifests' digests (the
	// report lists every change), layer and config bytes do not. A last
	// resort: `collect --convert-oci` signs the converted form instead.
	// Off pushes exactly what the source holds.
	ConvertOCI bool
	// ConvertAdvice names the caller's ways to convert Docker manifests, in
	// a refusal for their media type; "" names them in the package's terms
	// (converting when collecting, or ConvertOCI).
	ConvertAdvice string
	// Validate checks the registry at the end (catalog and tags).
	Validate bool
	// Journal records what is in; nil means none.
	Journal *store.Journal
	// AllowRollback lets tags move back to what an older archive set.
	AllowRollback bool
	// PackVerifier checks Artifact Studio pack signatures again; nil skips.
	PackVerifier PackVerifier
	// PacksDir, when set, receives each verified Artifact Studio pack.
	PacksDir string
	// Images checks every image's signatures again, from the signature
	// artifacts attached to it, before anything is sent; an image it
	// refuses goes in with nothing of it or attached to it. Nil checks
	// none (the archive signature still covers the images).
	Images ImageVerifier
	// Now stamps journal records; nil means time.Now.
	Now func() time.Time
	// Progress receives progress events; nil fields are not called.
	Progress Progress
}

// Copy pushes a graph of artifacts from src into the registry at dst,
// children first: every blob once per repository that needs it (mounted
// where a sibling repository has it), then each artifact's manifests, its
// own last under its tag (DigestTag for one collected by digest only).
// Every blob is verified on its way against the graph's digest. The graph
// is taken as given: no signature is checked, and a journal records only
// what went in, no archive.
func Copy(ctx context.Context, src Source, dst registry.Destination, opts CopyOptions) (*Report, error) {
	if err := src.Graph().Validate(); err != nil {
		return nil, err
	}
	return copyFrom(ctx, sourceSet(src), dst, opts)
}

// copyFrom is Copy from a run's source: a Copy source or the archive's
// volumes (Ingest).
func copyFrom(ctx context.Context, vs *volumeSet, dst registry.Destination, opts CopyOptions) (*Report, error) {
	c := opts.Client
	o := config{
		Registry: dst.String(), Auth: c.Auth, Keychain: c.Keychain, Transport: c.Transport,
		PlainHTTP: c.PlainHTTP, Retry: c.Retry, ChunkSize: c.ChunkSize, Logger: c.Logger, Jobs: opts.Jobs,
		Mappings: opts.Mappings, Atomic: opts.Atomic, DryRun: opts.DryRun, ConvertOCI: opts.ConvertOCI,
		ConvertAdvice: opts.ConvertAdvice, Validate: opts.Validate, Journal: opts.Journal,
		AllowRollback: opts.AllowRollback, PackVerifier: opts.PackVerifier, PacksDir: opts.PacksDir, Images: opts.Images,
		Now: opts.Now, Progress: opts.Progress,
	}
	o.defaults()
	return run(ctx, vs, o)
}
