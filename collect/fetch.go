package collect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/registry"
)

// fetcher downloads every blob of a plan that is not in the cache yet, each
// once, and is the archive writer's blob source: it serves local files
// directly and lets the writer follow a blob while it downloads. A
// downloaded blob enters the cache only after the writer has verified it
// (verified is the writer's OnBlob callback).
type fetcher struct {
	plan  *Plan
	cache *Cache
	opts  Options
	get   *registry.Reader
	files map[string]string    // digest -> local file holding it
	todo  []blobRef            // to download, in archive order
	ready map[string]*inflight // the downloads, by digest

	mu       sync.Mutex
	temps    map[string]string // digest -> downloaded file not yet promoted
	cacheErr error

	downloaded atomic.Int64
}

func newFetcher(plan *Plan, cache *Cache, opts Options) *fetcher {
	f := &fetcher{
		plan: plan, cache: cache, opts: opts,
		get:   plan.get,
		files: map[string]string{}, ready: map[string]*inflight{}, temps: map[string]string{},
	}
	refs := map[string]blobRef{}
	for _, r := range plan.resolved {
		for _, b := range r.blobs {
			if _, ok := refs[b.blob.Digest]; !ok || b.file != "" {
				refs[b.blob.Digest] = b
			}
		}
	}
	for _, b := range plan.BOM.Blobs {
		br := refs[b.Digest]
		switch {
		case br.file != "":
			f.files[b.Digest] = br.file
		case cache.Has(b):
			if opts.Progress.OnFetchDone != nil {
				opts.Progress.OnFetchDone(b, true)
			}
		case br.repo != nil:
			f.todo = append(f.todo, br)
			f.ready[b.Digest] = newInflight()
		}
	}
	return f
}

// run downloads with bounded parallelism, in the order the writer needs.
func (f *fetcher) run(ctx context.Context) error {
	if f.opts.Progress.OnFetchTotal != nil {
		var total int64
		for _, b := range f.todo {
			total += b.blob.Size
		}
		f.opts.Progress.OnFetchTotal(total, len(f.todo))
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(f.opts.Jobs)
	for _, br := range f.todo {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			err := f.fetch(gctx, br)
			f.ready[br.blob.Digest].finish(err)
			return err
		})
	}
	err := g.Wait()
	// Downloads that never started must not keep the writer waiting.
	for _, in := range f.ready {
		if err != nil {
			in.finish(err)
		} else {
			in.finish(ctx.Err())
		}
	}
	return err
}

func (f *fetcher) fetch(ctx context.Context, br blobRef) error {
	what := br.repo.Name() + "@" + br.blob.Digest
	p := f.opts.Progress
	if p.OnFetchStart != nil {
		p.OnFetchStart(br.blob)
	}
	rc, err := f.get.Blob(ctx, *br.repo, br.blob.Digest)
	if err != nil {
		return sourceErr(what, err)
	}
	defer rc.Close()
	cr := &countReader{r: rc, fn: func(n int64) {
		f.downloaded.Add(n)
		if p.OnFetchBytes != nil {
			p.OnFetchBytes(br.blob, n)
		}
	}}
	path, err := f.cache.download(ctx, br.blob, cr, f.ready[br.blob.Digest])
	if err != nil {
		return fmt.Errorf("%w: fetch %s: %v", ErrSource, what, err)
	}
	f.mu.Lock()
	f.temps[br.blob.Digest] = path
	f.mu.Unlock()
	if p.OnFetchDone != nil {
		p.OnFetchDone(br.blob, false)
	}
	return nil
}

// verified is called by the archive writer once a blob's bytes matched its
// digest: a downloaded blob now enters the cache.
func (f *fetcher) verified(b manifest.Blob) {
	f.mu.Lock()
	path, ok := f.temps[b.Digest]
	delete(f.temps, b.Digest)
	f.mu.Unlock()
	if !ok {
		return
	}
	if err := f.cache.promote(path, b); err != nil {
		os.Remove(path)
		f.mu.Lock()
		f.cacheErr = errors.Join(f.cacheErr, err)
		f.mu.Unlock()
	}
}

// err reports a failure to file a verified blob in the cache.
func (f *fetcher) err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cacheErr
}

// cleanup removes downloads the writer never verified.
func (f *fetcher) cleanup() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for d, p := range f.temps {
		os.Remove(p)
		delete(f.temps, d)
	}
}

// OpenBlob implements archive.BlobSource.
func (f *fetcher) OpenBlob(ctx context.Context, b manifest.Blob) (io.ReadCloser, error) {
	if path, ok := f.files[b.Digest]; ok {
		return os.Open(path)
	}
	if in, ok := f.ready[b.Digest]; ok {
		return in.follow(ctx, func() (io.ReadCloser, error) { return f.cache.OpenBlob(ctx, b) })
	}
	return f.cache.OpenBlob(ctx, b)
}

type countReader struct {
	r  io.Reader
	fn func(int64)
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.fn(int64(n))
	}
	return n, err
}
