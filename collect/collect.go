package collect

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sync/errgroup"

	"github.com/ferrytool/ferry/archive"
	"github.com/ferrytool/ferry/manifest"
)

// Options configure Plan and Collect. Zero values are documented per field.
type Options struct {
	// Images are image references as a user types them.
	Images []string
	// PlainHTTP lets image references use plain HTTP registries.
	PlainHTTP bool
	// Remote are go-containerregistry options for every source registry
	// request: credentials, transport. Nil means anonymous over the default
	// transport.
	Remote []remote.Option
	// Jobs bounds parallel downloads; zero means 4.
	Jobs int
	// CacheDir is the content-addressed cache. Required for Collect.
	CacheDir string
	// Dir and Name place the archive; see archive.WriteOptions.
	Dir, Name string
	// VolumeSize caps each volume; zero means archive.DefaultVolumeSize.
	VolumeSize int64
	// Signer signs the bill of materials. Required for Collect.
	Signer archive.Signer
	// Tool names the ferry build in the archive.
	Tool string
	// Now stamps the archive; nil means time.Now.
	Now func() time.Time
	// Logger receives debug records; nil discards.
	Logger *slog.Logger
	// Progress receives progress events; nil fields are not called.
	Progress Progress
}

// Progress callbacks. They may be called from several goroutines at once.
type Progress struct {
	// OnResolved is called once per artifact after its manifests are read.
	OnResolved func(a manifest.Artifact)
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
}

// Plan is what a collect would put into the archive.
type Plan struct {
	BOM      *manifest.BOM
	resolved []*resolved
}

// Stats sums the plan.
func (p *Plan) Stats() manifest.Stats { return p.BOM.Stats() }

// EstimateVolumes is how many volumes the archive will need at most, assuming
// nothing compresses.
func (p *Plan) EstimateVolumes(volumeSize int64) int {
	if volumeSize <= 0 {
		volumeSize = archive.DefaultVolumeSize
	}
	s := p.Stats().StoredBytes
	n := int((s + volumeSize - 1) / volumeSize)
	return max(n, 1)
}

func (o *Options) defaults() {
	if o.Jobs <= 0 {
		o.Jobs = 4
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// MakePlan resolves every requested artifact without downloading layers.
func MakePlan(ctx context.Context, opts Options) (*Plan, error) {
	opts.defaults()
	if len(opts.Images) == 0 {
		return nil, ErrNothing
	}
	refs := make([]string, 0, len(opts.Images))
	seen := map[string]bool{}
	for _, s := range opts.Images {
		ref, err := ParseImageRef(s, opts.PlainHTTP)
		if err != nil {
			return nil, err
		}
		if !seen[ref.Name()] {
			seen[ref.Name()] = true
			refs = append(refs, s)
		}
	}
	results := make([]*resolved, len(refs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.Jobs)
	for i, s := range refs {
		g.Go(func() error {
			ref, _ := ParseImageRef(s, opts.PlainHTTP)
			r, err := resolveImage(gctx, ref, opts.Remote)
			if err != nil {
				return err
			}
			r.artifact.Reasons = []manifest.Reason{{From: "flag", Detail: "--image " + s}}
			results[i] = r
			if opts.Progress.OnResolved != nil {
				opts.Progress.OnResolved(r.artifact)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return buildPlan(opts, results)
}

func buildPlan(opts Options, results []*resolved) (*Plan, error) {
	bom := manifest.NewBOM(newArchiveID(), opts.Now())
	bom.Tool = opts.Tool
	inBOM := map[string]bool{}
	dests := map[string]string{}
	for _, r := range results {
		d := r.artifact.Dest.String()
		if other, ok := dests[d]; ok {
			return nil, fmt.Errorf("%w: %s and %s both go to %s", ErrConflict, other, r.artifact.Source, d)
		}
		dests[d] = r.artifact.Source
		for _, b := range r.blobs {
			if !inBOM[b.blob.Digest] {
				inBOM[b.blob.Digest] = true
				bom.Blobs = append(bom.Blobs, b.blob)
			}
		}
		bom.Artifacts = append(bom.Artifacts, r.artifact)
	}
	if err := bom.Validate(); err != nil {
		return nil, err
	}
	return &Plan{BOM: bom, resolved: results}, nil
}

// Result describes a finished collect.
type Result struct {
	BOM     *manifest.BOM
	Volumes []archive.VolumeInfo
	// Downloaded counts the bytes fetched from sources; zero on a warm cache.
	Downloaded int64
}

// Collect resolves, fetches and writes the archive.
func Collect(ctx context.Context, opts Options) (*Result, error) {
	opts.defaults()
	if opts.Signer == nil {
		return nil, fmt.Errorf("collect: no signing key given")
	}
	cache, err := OpenCache(opts.CacheDir)
	if err != nil {
		return nil, err
	}
	plan, err := MakePlan(ctx, opts)
	if err != nil {
		return nil, err
	}
	downloaded, err := fetchAll(ctx, plan, cache, opts)
	if err != nil {
		return nil, err
	}
	res, err := archive.Write(ctx, plan.BOM, cache, archive.WriteOptions{
		Dir: opts.Dir, Name: opts.Name, VolumeSize: opts.VolumeSize, Signer: opts.Signer,
		Tool: opts.Tool, Logger: opts.Logger, OnProgress: opts.Progress.OnWriteBytes, OnVolume: opts.Progress.OnVolume,
	})
	if err != nil {
		return nil, err
	}
	return &Result{BOM: plan.BOM, Volumes: res.Volumes, Downloaded: downloaded}, nil
}

// fetchAll downloads every blob not yet in the cache, each once, with
// bounded parallelism.
func fetchAll(ctx context.Context, plan *Plan, cache *Cache, opts Options) (int64, error) {
	todo := map[string]blobRef{}
	var order []string
	for _, r := range plan.resolved {
		for _, b := range r.blobs {
			if _, ok := todo[b.blob.Digest]; !ok {
				todo[b.blob.Digest] = b
				order = append(order, b.blob.Digest)
			}
		}
	}
	var downloaded int64
	var count = make(chan int64, len(order))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.Jobs)
	for _, d := range order {
		br := todo[d]
		if cache.Has(br.blob) {
			if opts.Progress.OnFetchDone != nil {
				opts.Progress.OnFetchDone(br.blob, true)
			}
			continue
		}
		g.Go(func() error {
			n, err := fetchBlob(gctx, br, cache, opts)
			count <- n
			return err
		})
	}
	err := g.Wait()
	close(count)
	for n := range count {
		downloaded += n
	}
	return downloaded, err
}

func fetchBlob(ctx context.Context, br blobRef, cache *Cache, opts Options) (int64, error) {
	if opts.Progress.OnFetchStart != nil {
		opts.Progress.OnFetchStart(br.blob)
	}
	var src io.Reader
	if br.data != nil {
		src = bytes.NewReader(br.data)
	} else {
		ropts := append(opts.Remote[:len(opts.Remote):len(opts.Remote)], remote.WithContext(ctx))
		layer, err := remote.Layer(br.repo.Digest(br.blob.Digest), ropts...)
		if err != nil {
			return 0, sourceErr(br.repo.Name()+"@"+br.blob.Digest, err)
		}
		rc, err := layer.Compressed()
		if err != nil {
			return 0, sourceErr(br.repo.Name()+"@"+br.blob.Digest, err)
		}
		defer rc.Close()
		src = rc
	}
	cr := &countReader{r: src, fn: func(n int64) {
		if opts.Progress.OnFetchBytes != nil {
			opts.Progress.OnFetchBytes(br.blob, n)
		}
	}}
	if err := cache.Put(ctx, br.blob, cr); err != nil {
		return cr.n, fmt.Errorf("fetch %s@%s: %w", br.repo.Name(), br.blob.Digest, err)
	}
	if opts.Progress.OnFetchDone != nil {
		opts.Progress.OnFetchDone(br.blob, false)
	}
	if br.data != nil {
		return 0, nil
	}
	return cr.n, nil
}

type countReader struct {
	r  io.Reader
	n  int64
	fn func(int64)
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if n > 0 {
		c.fn(int64(n))
	}
	return n, err
}

func newArchiveID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}
