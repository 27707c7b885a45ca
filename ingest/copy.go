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
	// Atomic tags nothing unless every artifact can go in.
	Atomic bool
	// DryRun reports what would go where and uploads nothing (see
	// Options.DryRun).
	DryRun bool
	// ConvertOCI pushes Docker manifests in their OCI form (see
	// Options.ConvertOCI).
	ConvertOCI bool
	// ConvertAdvice names the caller's way to convert Docker manifests
	// before the copy, in a refusal; "" means collect's --convert-oci.
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
	o := Options{
		Registry: dst.String(), Auth: c.Auth, Keychain: c.Keychain, Transport: c.Transport,
		PlainHTTP: c.PlainHTTP, Retry: c.Retry, ChunkSize: c.ChunkSize, Logger: c.Logger, Jobs: opts.Jobs,
		Mappings: opts.Mappings, Atomic: opts.Atomic, DryRun: opts.DryRun, ConvertOCI: opts.ConvertOCI,
		ConvertAdvice: opts.ConvertAdvice, Validate: opts.Validate, Journal: opts.Journal,
		AllowRollback: opts.AllowRollback, PackVerifier: opts.PackVerifier, PacksDir: opts.PacksDir,
		Now: opts.Now, Progress: opts.Progress,
	}
	o.defaults()
	return run(ctx, vs, o)
}

// copyOptions are the options of the copy an ingest makes.
func (o Options) copyOptions() CopyOptions {
	return CopyOptions{
		Client: registry.Options{Auth: o.Auth, Keychain: o.Keychain, Transport: o.Transport, PlainHTTP: o.PlainHTTP,
			Retry: o.Retry, ChunkSize: o.ChunkSize, Logger: o.Logger},
		Jobs: o.Jobs, Mappings: o.Mappings, Atomic: o.Atomic, DryRun: o.DryRun, ConvertOCI: o.ConvertOCI,
		ConvertAdvice: o.ConvertAdvice, Validate: o.Validate, Journal: o.Journal, AllowRollback: o.AllowRollback,
		PackVerifier: o.PackVerifier, PacksDir: o.PacksDir, Now: o.Now, Progress: o.Progress,
	}
}
