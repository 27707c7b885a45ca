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
//
// Downloads start before the plan is done: an image's blobs are queued as
// soon as the image is resolved (prefetch), and the rest of the plan's,
// in the order the writer needs them, once it is (planned). At most
// Options.Jobs run at once.
type fetcher struct {
	cache *Cache
	opts  Options
	get   *registry.Reader
	ctx   context.Context
	stop  context.CancelFunc
	g     *errgroup.Group
	gctx  context.Context

	mu     sync.Mutex
	cond   *sync.Cond
	queue  []blobRef
	closed bool                 // no more blobs are queued
	ready  map[string]*inflight // queued or downloading, by digest
	files  map[string]string    // digest -> local file holding it
	temps  map[string]string    // digest -> downloaded file not yet promoted
	// early holds progress of downloads that started before the plan
	// announced the total (OnFetchTotal comes first).
	early     map[string]*earlyProgress
	announced bool
	// replaying is held by announce while it replays early; progress
	// reported after the announcement waits for it (RLock), so that no
	// download's end overtakes its replayed start.
	replaying sync.RWMutex
	cacheErr  error

	dispatched chan struct{} // closed when the dispatcher is done
	downloaded atomic.Int64
}

type earlyProgress struct {
	blob    manifest.Blob
	started bool
	bytes   int64
	done    bool
}

// newFetcher starts a fetcher with nothing queued yet. Stop it with close
// (which removes what the writer never verified) whatever happens.
func newFetcher(ctx context.Context, cache *Cache, get *registry.Reader, opts Options) *fetcher {
	fctx, stop := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(fctx)
	g.SetLimit(opts.Jobs)
	f := &fetcher{
		cache: cache, opts: opts, get: get, ctx: fctx, stop: stop, g: g, gctx: gctx,
		ready: map[string]*inflight{}, files: map[string]string{}, temps: map[string]string{},
		early: map[string]*earlyProgress{}, dispatched: make(chan struct{}),
	}
	f.cond = sync.NewCond(&f.mu)
	go f.dispatch()
	return f
}

// prefetch queues the blobs of a resolved image that the cache lacks. It
// is the planner's hook, called from its resolving goroutines.
func (f *fetcher) prefetch(r *resolved) {
	for _, br := range r.blobs {
		if br.file == "" && br.repo != nil && !f.cache.Has(br.blob) {
			f.enqueue(br)
		}
	}
}

// enqueue queues a download unless the blob is queued already; it says
// whether it was new.
func (f *fetcher) enqueue(br blobRef) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed || f.ready[br.blob.Digest] != nil {
		return false
	}
	f.ready[br.blob.Digest] = newInflight()
	f.queue = append(f.queue, br)
	f.cond.Signal()
	return true
}

// planned queues the rest of the plan's downloads, in bill-of-materials
// order, and announces the total; nothing is queued after it.
func (f *fetcher) planned(plan *Plan) {
	refs := map[string]blobRef{}
	for _, r := range plan.resolved {
		for _, b := range r.blobs {
			if _, ok := refs[b.blob.Digest]; !ok || b.file != "" {
				refs[b.blob.Digest] = b
			}
		}
	}
	var total int64
	var count int
	for _, b := range plan.BOM.Blobs {
		br := refs[b.Digest]
		f.mu.Lock()
		in := f.ready[b.Digest]
		f.mu.Unlock()
		switch {
		case br.file != "":
			f.mu.Lock()
			f.files[b.Digest] = br.file
			f.mu.Unlock()
		case in != nil || (br.repo != nil && !f.cache.Has(b) && f.enqueue(br)):
			total += b.Size
			count++
		case f.cache.Has(b):
			if f.opts.Progress.OnFetchDone != nil {
				f.opts.Progress.OnFetchDone(b, true)
			}
		}
	}
	f.mu.Lock()
	f.closed = true
	f.cond.Broadcast()
	f.mu.Unlock()
	f.announce(total, count)
}

// announce calls OnFetchTotal, then replays what downloads that started
// before it reported. Progress reported meanwhile waits for the replay:
// passed on at once, a download's end could come before its start, and
// the start would then open a bar nothing ends. Held again and replayed
// in rounds instead, a replay could go on as long as downloads report.
func (f *fetcher) announce(total int64, count int) {
	p := f.opts.Progress
	if p.OnFetchTotal != nil {
		p.OnFetchTotal(total, count)
	}
	f.replaying.Lock()
	defer f.replaying.Unlock()
	f.mu.Lock()
	early := f.early
	f.early, f.announced = nil, true
	f.mu.Unlock()
	for _, e := range early {
		if e.started && p.OnFetchStart != nil {
			p.OnFetchStart(e.blob)
		}
		if e.bytes > 0 && p.OnFetchBytes != nil {
			p.OnFetchBytes(e.blob, e.bytes)
		}
		if e.done && p.OnFetchDone != nil {
			p.OnFetchDone(e.blob, false)
		}
	}
}

// report passes a download's progress on, or holds it until announce.
func (f *fetcher) report(b manifest.Blob, started bool, n int64, done bool) {
	f.mu.Lock()
	if !f.announced {
		e := f.early[b.Digest]
		if e == nil {
			e = &earlyProgress{blob: b}
			f.early[b.Digest] = e
		}
		e.started = e.started || started
		e.bytes += n
		e.done = e.done || done
		f.mu.Unlock()
		return
	}
	f.mu.Unlock()
	f.replaying.RLock()
	defer f.replaying.RUnlock()
	p := f.opts.Progress
	switch {
	case started && p.OnFetchStart != nil:
		p.OnFetchStart(b)
	case n > 0 && p.OnFetchBytes != nil:
		p.OnFetchBytes(b, n)
	case done && p.OnFetchDone != nil:
		p.OnFetchDone(b, false)
	}
}

// dispatch hands queued downloads to the bounded group, in queue order.
func (f *fetcher) dispatch() {
	defer close(f.dispatched)
	for {
		f.mu.Lock()
		for len(f.queue) == 0 && !f.closed {
			f.cond.Wait()
		}
		if len(f.queue) == 0 {
			f.mu.Unlock()
			return
		}
		br := f.queue[0]
		f.queue = f.queue[1:]
		in := f.ready[br.blob.Digest]
		f.mu.Unlock()
		if err := f.gctx.Err(); err != nil {
			in.finish(err)
			continue
		}
		f.g.Go(func() error {
			err := f.fetch(f.gctx, br, in)
			in.finish(err)
			return err
		})
	}
}

// wait returns once every download ended, with the first failure; ctx
// ending stops the downloads.
func (f *fetcher) wait(ctx context.Context) error {
	defer context.AfterFunc(ctx, f.stop)()
	<-f.dispatched
	err := f.g.Wait()
	if err == nil {
		err = ctx.Err()
	}
	// Downloads that never started must not keep the writer waiting.
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, in := range f.ready {
		in.finish(err)
	}
	return err
}

func (f *fetcher) fetch(ctx context.Context, br blobRef, in *inflight) error {
	what := br.repo.Name() + "@" + br.blob.Digest
	f.report(br.blob, true, 0, false)
	rc, err := f.get.Blob(ctx, *br.repo, br.blob.Digest)
	if err != nil {
		return sourceErr(what, err)
	}
	defer rc.Close()
	cr := &countReader{r: rc, fn: func(n int64) {
		f.downloaded.Add(n)
		f.report(br.blob, false, n, false)
	}}
	path, err := f.cache.download(ctx, br.blob, cr, in)
	if err != nil {
		return fmt.Errorf("%w: fetch %s: %v", ErrSource, what, err)
	}
	f.mu.Lock()
	f.temps[br.blob.Digest] = path
	f.mu.Unlock()
	f.report(br.blob, false, 0, true)
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

// close stops what still runs, waits for it, and removes downloads the
// writer never verified.
func (f *fetcher) close() {
	f.stop()
	f.mu.Lock()
	f.closed = true
	f.cond.Broadcast()
	f.mu.Unlock()
	<-f.dispatched
	f.g.Wait() //nolint:errcheck // reported by wait, or the run failed before
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, in := range f.ready {
		in.finish(context.Canceled)
	}
	for d, p := range f.temps {
		os.Remove(p)
		delete(f.temps, d)
	}
}

// OpenBlob implements archive.BlobSource.
func (f *fetcher) OpenBlob(ctx context.Context, b manifest.Blob) (io.ReadCloser, error) {
	f.mu.Lock()
	path, isFile := f.files[b.Digest]
	in := f.ready[b.Digest]
	f.mu.Unlock()
	if isFile {
		return os.Open(path)
	}
	if in != nil {
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
