package ingest

import (
	"context"
	"io"

	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/registry"
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
	// Validate checks the registry at the end (catalog and tags).
	Validate bool
	// ConvertAdvice names the caller's way to convert Docker manifests
	// before the copy, in a refusal; "" means collect's --convert-oci.
	ConvertAdvice string
	// PackVerifier checks Artifact Studio pack signatures again; nil skips.
	PackVerifier PackVerifier
	// Progress receives progress events; nil fields are not called.
	Progress Progress
}

// Copy pushes a graph of artifacts from src into the registry at dst,
// children first: every blob once per repository that needs it (mounted
// where a sibling repository has it), then each artifact's manifests, its
// own last under its tag (DigestTag for one collected by digest only).
// Every blob is verified on its way against the graph's digest. The graph
// is taken as given: no signature is checked and no journal is kept.
func Copy(ctx context.Context, src Source, dst registry.Destination, opts CopyOptions) (*Report, error) {
	bom := src.Graph()
	if err := bom.Validate(); err != nil {
		return nil, err
	}
	c := opts.Client
	o := Options{
		Registry: dst.String(), Auth: c.Auth, Keychain: c.Keychain, Transport: c.Transport,
		PlainHTTP: c.PlainHTTP, Retry: c.Retry, ChunkSize: c.ChunkSize, Logger: c.Logger, Jobs: opts.Jobs,
		Mappings: opts.Mappings, Atomic: opts.Atomic, Validate: opts.Validate, ConvertAdvice: opts.ConvertAdvice,
		PackVerifier: opts.PackVerifier, Progress: opts.Progress,
	}
	o.defaults()
	return run(ctx, sourceSet(src), o)
}

// bomSource is a bill of materials with a blob source, as Push takes them.
type bomSource struct {
	bom *manifest.BOM
	src interface {
		OpenBlob(ctx context.Context, b manifest.Blob) (io.ReadCloser, error)
	}
}

func (s bomSource) Graph() *manifest.BOM { return s.bom }
func (s bomSource) OpenBlob(ctx context.Context, b manifest.Blob) (io.ReadCloser, error) {
	return s.src.OpenBlob(ctx, b)
}
