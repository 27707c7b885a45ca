package collect

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"golang.org/x/sync/errgroup"

	"github.com/ferrytool/ferry/archive"
	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/registry"
)

const defaultVolumeSize = archive.DefaultVolumeSize

// DefaultJobs is how many resolutions and downloads run at once by
// default. A download of a small blob mostly waits for the source's first
// byte, so more run at once than a machine has cores: with eight instead
// of four, collecting 60 small images (make bench's W2) took about a fifth
// less time on two cores.
const DefaultJobs = 8

// Options configure MakePlan and Collect. Zero values are documented per
// field.
type Options struct {
	// Spec lists what to collect. Required; entries whose Origin is
	// manifest.OriginFlag are reported as coming from the command line.
	Spec *manifest.TransferSpec
	// PackVerifier checks Artifact Studio pack signatures. Required when
	// the spec has a .zst pack.
	PackVerifier PackVerifier
	// ChartKeyring verifies the provenance file of every chart fetched from
	// a repository, and refuses a chart without one; nil carries whatever
	// provenance a repository has, unchecked.
	ChartKeyring *ChartKeyring
	// PlainHTTP lets image references and oci:// charts use plain HTTP
	// registries.
	PlainHTTP bool
	// Keychain gives source registry credentials; nil means anonymous.
	Keychain authn.Keychain
	// Transport carries every request to registries and chart
	// repositories; nil means http.DefaultTransport.
	Transport http.RoundTripper
	// SourceCheckTimeout bounds asking the source registry of an image
	// pulled through a registry mirror which digest its tag has; zero means
	// 10 s. A source that does not answer in time is not asked again in the
	// same collect, and the mirror's content is taken with a warning.
	SourceCheckTimeout time.Duration
	// Jobs bounds parallel resolutions, and parallel downloads: as
	// downloads start while images are still resolved, up to Jobs of each
	// run at once. Zero means DefaultJobs.
	Jobs int
	// CacheDir is the content-addressed cache. Required.
	CacheDir string
	// Dir and Name place the archive; see archive.WriteOptions.
	Dir, Name string
	// VolumeSize caps each volume; zero means archive.DefaultVolumeSize.
	VolumeSize int64
	// Signer signs the bill of materials. Required for Collect.
	Signer archive.Signer
	// Tool names the ferry build in the archive and in user agents.
	Tool string
	// Now is the clock of the cache's records, and stamps the archive when
	// Created is zero; nil means time.Now.
	Now func() time.Time
	// Created is the archive's creation time, recorded in the bill of
	// materials and every tar header. With the same Created, resolved
	// content, key and ferry build, two collects write the same volumes,
	// whatever their Jobs or machine; zero means Now().
	Created time.Time
	// Renderer renders charts for image discovery; nil means InProcess,
	// which has no time or memory bound.
	Renderer Renderer
	// Strict makes every gap an error (ErrGap): an image only chart
	// annotations name that the source does not have.
	Strict bool
	// AllowBrokenCharts records a chart that does not load or render, and
	// a bundle document that does not parse, as a gap instead of failing.
	AllowBrokenCharts bool
	// Referrers selects what attached to each image is carried: the
	// signatures, attestations, SBOMs and other referrers found through the
	// referrers API, the referrers tag schema or cosign's tags; "" means
	// ReferrersAll.
	Referrers ReferrerMode
	// ImageVerifier, when set, checks each image's signatures and the bill
	// of materials records the outcome. It needs the signatures, so
	// Referrers must not be ReferrersNone.
	ImageVerifier ImageVerifier
	// RequireSigned refuses, with ErrImageSignature, any image the
	// ImageVerifier does not verify. It needs an ImageVerifier.
	RequireSigned bool
	// Since are receipts of the destination, their signatures checked by
	// the caller: what they list stays out of the archive, which then
	// records it as expected at the destination. Empty means a full
	// archive.
	Since []*manifest.Receipt
	// Logger receives debug records and warnings; nil discards.
	Logger *slog.Logger
	// Progress receives progress events; nil fields are not called.
	Progress Progress
}

// Progress callbacks. They may be called from several goroutines at once.
type Progress struct {
	// OnResolved is called once per artifact after its manifests are read.
	OnResolved func(a manifest.Artifact)
	// OnFetchTotal is called once before downloads start, with what is
	// not in the cache yet.
	OnFetchTotal func(bytes int64, blobs int)
	// OnFetchStart is called before a blob download starts.
	OnFetchStart func(b manifest.Blob)
	// OnFetchBytes reports downloaded bytes of a blob.
	OnFetchBytes func(b manifest.Blob, n int64)
	// OnFetchDone is called when a blob is in the cache (cached is set when
	// no download was needed).
	OnFetchDone func(b manifest.Blob, cached bool)
	// OnWriteBytes reports bytes written into the archive.
	OnWriteBytes func(n int64)
	// OnVolume is called as each volume is completed.
	OnVolume func(v archive.VolumeInfo)
	// OnWarning is called with each warning as it is found, once per
	// distinct text. The same texts end up in Plan.Warnings and
	// Result.Warnings; this is how a caller sees them when the run fails
	// and there is no plan or result to read them from.
	OnWarning func(msg string)
}

func (o *Options) defaults() {
	if o.Jobs <= 0 {
		o.Jobs = DefaultJobs
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Keychain == nil {
		o.Keychain = authn.NewMultiKeychain() // resolves everything to anonymous
	}
	if o.Transport == nil {
		o.Transport = http.DefaultTransport
	}
	if o.Renderer == nil {
		o.Renderer = InProcess
	}
	if o.Referrers == "" {
		o.Referrers = ReferrersAll
	}
}

// MakePlan resolves every requested artifact without downloading image
// layers: manifests, chart archives (to render them) and local files are
// read; everything read from a server goes into the cache.
func MakePlan(ctx context.Context, opts Options) (*Plan, error) {
	opts.defaults()
	cache, err := OpenCache(opts.CacheDir)
	if err != nil {
		return nil, err
	}
	defer cache.Close()
	return makePlan(ctx, opts, cache, nil, nil)
}

// makePlan plans with get as the source reader (nil makes one), telling
// prefetch (when set) about each image as it is resolved.
func makePlan(ctx context.Context, opts Options, cache *Cache, get *registry.Reader, prefetch func(*resolved)) (*Plan, error) {
	p, err := newPlanner(opts, cache, get)
	if err != nil {
		return nil, err
	}
	p.prefetch = prefetch
	plan, err := p.plan(ctx)
	if err != nil {
		return nil, err
	}
	if opts.Strict && len(plan.Gaps) > 0 {
		return nil, strictGapError(plan.Gaps)
	}
	if len(opts.Since) > 0 {
		if err := plan.applyDelta(opts.Since); err != nil {
			return nil, err
		}
	}
	return plan, nil
}

// Result describes a finished collect.
type Result struct {
	BOM     *manifest.BOM
	Volumes []archive.VolumeInfo
	// Packs and Warnings are the plan's.
	Packs    []PackNeed
	Warnings []string
	// Downloaded counts the bytes fetched from registries for the archive;
	// zero on a warm cache.
	Downloaded int64
	// Delta is the plan's: what receipts left out; nil for a full archive.
	Delta *manifest.DeltaPlan
}

// Collect resolves, fetches and writes the archive. Downloads and the
// archive writer run together: the writer takes each blob as soon as it is
// in the cache, in bill-of-materials order. On any error no archive is left
// behind.
func Collect(ctx context.Context, opts Options) (*Result, error) {
	opts.defaults()
	if opts.Signer == nil {
		return nil, fmt.Errorf("%w: collect: no signing key given", ErrUsage)
	}
	if err := refuseExisting(opts.Dir, opts.Name); err != nil {
		return nil, err
	}
	cache, err := OpenCache(opts.CacheDir)
	if err != nil {
		return nil, err
	}
	defer cache.Close()
	get := newSourceReader(opts)
	f := newFetcher(ctx, cache, get, opts)
	defer f.close()
	// Downloads start as images are resolved, unless receipts may still
	// take blobs out of the plan.
	var prefetch func(*resolved)
	if len(opts.Since) == 0 {
		prefetch = f.prefetch
	}
	plan, err := makePlan(ctx, opts, cache, get, prefetch)
	if err != nil {
		return nil, err
	}
	f.planned(plan)
	var res *archive.Result
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return f.wait(gctx) })
	g.Go(func() error {
		var err error
		res, err = archive.Write(gctx, plan.BOM, f, archive.WriteOptions{
			Dir: opts.Dir, Name: opts.Name, VolumeSize: opts.VolumeSize, Signer: opts.Signer,
			Tool: opts.Tool, Logger: opts.Logger, OnProgress: opts.Progress.OnWriteBytes, OnVolume: opts.Progress.OnVolume,
			OnBlob: f.verified,
		})
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := f.err(); err != nil {
		return nil, err
	}
	digests := make([]string, 0, len(plan.BOM.Blobs))
	for _, b := range plan.BOM.Blobs {
		digests = append(digests, b.Digest)
	}
	if err := cache.Index().Touch(digests, opts.Now()); err != nil {
		opts.Logger.Warn("cache index: recording use", "err", err)
	}
	return &Result{BOM: plan.BOM, Volumes: res.Volumes, Packs: plan.Packs, Warnings: plan.Warnings, Downloaded: f.downloaded.Load(), Delta: plan.Delta}, nil
}

// newSourceReader is the client of source registries for one collect.
func newSourceReader(opts Options) *registry.Reader {
	return registry.NewReader(opts.Keychain, opts.Transport, userAgent(opts.Tool))
}

// refuseExisting fails early, before anything is downloaded, when the
// archive is already there; archive.Write checks again.
func refuseExisting(dir, name string) error {
	if dir == "" {
		dir = "."
	}
	return archive.CheckOutput(dir, name)
}
