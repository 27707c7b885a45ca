package collect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"github.com/ferrytool/ferry/internal/digestio"
	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/registry"
)

// Direct is collect's half of the direct mode (`ferry sync`), where one host
// reaches both the sources and the destination and no archive is written: a
// resolved plan, and a blob source (archive.BlobSource) for its bill of
// materials that the pusher reads from.
//
// A blob is fetched from its source the first time it is opened, not
// before: the pusher asks the destination first, so what the destination
// already holds is never downloaded. Each blob is fetched once, through the
// cache (a second open follows the download in flight or reads the cache),
// with at most Options.Jobs downloads at a time. The reader follows the
// download as it grows, so a large layer goes up while it comes down.
type Direct struct {
	// Plan is the resolved plan; its BOM lists what the source serves.
	Plan *Plan

	opts   Options
	cache  *Cache
	get    *registry.Reader
	files  map[string]string  // digest -> local file holding it
	remote map[string]blobRef // digest -> where to download it
	slots  chan struct{}      // bounds downloads in flight
	ctx    context.Context    // downloads run until Close, whoever opened them
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	fetching map[string]*inflight // started downloads; a failed one is dropped so a retry can start over
	failed   map[string]error     // digest -> its last download's failure, dropped once a later one succeeds
	order    []string             // digests as they first failed, so Err is the first still failing

	closeOnce sync.Once
	closeErr  error

	downloaded atomic.Int64
}

// OpenDirect resolves opts.Spec the way MakePlan does and returns the plan
// with its blob source. The cache stays open (and locked) until Close.
// Options.Dir, Name, VolumeSize and Signer are not used.
func OpenDirect(ctx context.Context, opts Options) (*Direct, error) {
	opts.defaults()
	cache, err := OpenCache(opts.CacheDir)
	if err != nil {
		return nil, err
	}
	plan, err := makePlan(ctx, opts, cache, nil, nil)
	if err != nil {
		cache.Close()
		return nil, err
	}
	// Downloads outlive the request that started them (a retried upload
	// opens the blob again and follows the same download), so they hang off
	// the caller's context only for cancellation, not off the opener's.
	dctx, cancel := context.WithCancel(ctx)
	d := &Direct{
		Plan: plan, opts: opts, cache: cache,
		get:    plan.get,
		files:  map[string]string{},
		remote: map[string]blobRef{},
		slots:  make(chan struct{}, opts.Jobs),
		ctx:    dctx, cancel: cancel,
		fetching: map[string]*inflight{},
		failed:   map[string]error{},
	}
	for _, r := range plan.resolved {
		for _, b := range r.blobs {
			switch {
			case b.file != "":
				d.files[b.blob.Digest] = b.file
			case b.repo != nil:
				if _, ok := d.remote[b.blob.Digest]; !ok {
					d.remote[b.blob.Digest] = b
				}
			}
		}
	}
	return d, nil
}

// OpenBlob implements archive.BlobSource. The content is not verified here
// beyond what the download checks (a blob enters the cache only once its
// digest matched): the caller verifies what it reads, as with any source.
func (d *Direct) OpenBlob(ctx context.Context, b manifest.Blob) (io.ReadCloser, error) {
	if path, ok := d.files[b.Digest]; ok {
		return os.Open(path)
	}
	br, remote := d.remote[b.Digest]
	if !remote || d.cache.Has(b) {
		return d.cache.OpenBlob(ctx, b)
	}
	in, ok := d.start(br)
	if !ok {
		return d.cache.OpenBlob(ctx, b)
	}
	return in.follow(ctx, func() (io.ReadCloser, error) { return d.cache.OpenBlob(ctx, b) })
}

// start returns the download of a blob, starting it unless one is running
// or finished; false when the blob is in the cache already.
func (d *Direct) start(br blobRef) (*inflight, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if in, ok := d.fetching[br.blob.Digest]; ok {
		return in, true
	}
	if d.cache.Has(br.blob) {
		return nil, false // filed by a download that ended since OpenBlob looked
	}
	in := newInflight()
	d.fetching[br.blob.Digest] = in
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		err := d.fetch(br, in)
		// Booked before the readers hear of it, so one that opens the blob
		// again on the error starts a new download, and Err already knows.
		defer in.finish(err)
		dg := br.blob.Digest
		d.mu.Lock()
		defer d.mu.Unlock()
		switch {
		case err == nil:
			// A retry got it after all: the earlier failure explains nothing
			// that happens from now on.
			delete(d.failed, dg)
		case !errors.Is(err, context.Canceled) && d.ctx.Err() == nil: // not stopped by Close
			delete(d.fetching, dg)
			if _, seen := d.failed[dg]; !seen {
				d.order = append(d.order, dg)
			}
			d.failed[dg] = err
		default:
			delete(d.fetching, dg)
		}
	}()
	return in, true
}

// fetch downloads one blob into the cache, verifying it on the way: the
// cache never holds content that does not match its digest, whatever the
// reader does with it.
func (d *Direct) fetch(br blobRef, in *inflight) error {
	select {
	case d.slots <- struct{}{}:
	case <-d.ctx.Done():
		return d.ctx.Err()
	}
	defer func() { <-d.slots }()
	what := br.repo.Name() + "@" + br.blob.Digest
	p := d.opts.Progress
	if p.OnFetchStart != nil {
		p.OnFetchStart(br.blob)
	}
	rc, err := d.get.Blob(d.ctx, *br.repo, br.blob.Digest)
	if err != nil {
		return sourceErr(what, err)
	}
	defer rc.Close()
	cr := &countReader{r: rc, fn: func(n int64) {
		d.downloaded.Add(n)
		if p.OnFetchBytes != nil {
			p.OnFetchBytes(br.blob, n)
		}
	}}
	path, err := d.cache.download(d.ctx, br.blob, digestio.NewReader(cr, br.blob.Digest, br.blob.Size), in)
	if err != nil {
		// %w twice: a digest mismatch stays recognisable as bad content.
		return fmt.Errorf("%w: fetch %s: %w", ErrSource, what, err)
	}
	if err := d.cache.promote(path, br.blob); err != nil {
		os.Remove(path)
		return err
	}
	if p.OnFetchDone != nil {
		p.OnFetchDone(br.blob, false)
	}
	return nil
}

// Downloaded counts the bytes fetched from sources so far; zero when the
// cache or the destination had everything.
// Graph is the plan's bill of materials: what a copy from this source
// carries.
func (d *Direct) Graph() *manifest.BOM { return d.Plan.BOM }

// Downloaded counts bytes fetched from the sources.
func (d *Direct) Downloaded() int64 { return d.downloaded.Load() }

// Err is the first download that failed and was not made good by a later
// download of the same blob, nil when there is none. A reader of that blob
// sees the failure too, but through whatever wraps the source.
func (d *Direct) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, dg := range d.order {
		if err, ok := d.failed[dg]; ok {
			return err
		}
	}
	return nil
}

// Close stops downloads still running, waits for them and releases the
// cache, recording the plan's blobs as used. Only the first call does so:
// a caller may close early, on a failure, to stop downloads nobody reads
// any more, and still defer Close.
func (d *Direct) Close() error {
	d.closeOnce.Do(func() { d.closeErr = d.close() })
	return d.closeErr
}

func (d *Direct) close() error {
	d.cancel()
	d.wg.Wait()
	digests := make([]string, 0, len(d.Plan.BOM.Blobs))
	for _, b := range d.Plan.BOM.Blobs {
		digests = append(digests, b.Digest)
	}
	if err := d.cache.Index().Touch(digests, d.opts.Now()); err != nil {
		d.opts.Logger.Warn("cache index: recording use", "err", err)
	}
	return d.cache.Close()
}
