package collect

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"sync"
)

// inflight is a blob being downloaded into a temporary file of the cache.
// The archive writer follows the file as it grows, so a large layer is
// downloaded and archived at the same time instead of one after the other.
type inflight struct {
	mu   sync.Mutex
	cond *sync.Cond
	path string // the temporary file, once created
	n    int64  // bytes written so far
	done bool
	err  error
}

func newInflight() *inflight {
	f := &inflight{}
	f.cond = sync.NewCond(&f.mu)
	return f
}

func (f *inflight) started(path string) {
	f.mu.Lock()
	f.path = path
	f.mu.Unlock()
	f.cond.Broadcast()
}

// finish records the end of the download; err is nil when the blob is in
// the cache under its digest.
func (f *inflight) finish(err error) {
	f.mu.Lock()
	if !f.done {
		f.done, f.err = true, err
	}
	f.mu.Unlock()
	f.cond.Broadcast()
}

// writer counts what reaches the file and wakes the followers.
func (f *inflight) writer(w io.Writer) io.Writer { return inflightWriter{f: f, w: w} }

type inflightWriter struct {
	f *inflight
	w io.Writer
}

func (iw inflightWriter) Write(p []byte) (int, error) {
	n, err := iw.w.Write(p)
	iw.f.mu.Lock()
	iw.f.n += int64(n)
	iw.f.mu.Unlock()
	iw.f.cond.Broadcast()
	return n, err
}

// follow opens the file as soon as the download has created it and returns
// a reader that waits for more bytes until the download ends. A download
// that already ended was renamed to its digest: final opens that.
func (f *inflight) follow(ctx context.Context, final func() (io.ReadCloser, error)) (io.ReadCloser, error) {
	stop := context.AfterFunc(ctx, func() {
		f.mu.Lock()
		f.mu.Unlock()
		f.cond.Broadcast()
	})
	f.mu.Lock()
	for f.path == "" && !f.done && ctx.Err() == nil {
		f.cond.Wait()
	}
	path, err := f.path, f.err
	f.mu.Unlock()
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		stop()
		return nil, err
	}
	if path == "" {
		stop()
		return nil, errors.New("download ended before it started")
	}
	file, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		f.mu.Lock()
		for !f.done && ctx.Err() == nil {
			f.cond.Wait()
		}
		err = f.err
		f.mu.Unlock()
		stop()
		if err == nil {
			err = ctx.Err()
		}
		if err != nil {
			return nil, err
		}
		return final()
	}
	if err != nil {
		stop()
		return nil, err
	}
	return &follower{f: f, file: file, ctx: ctx, stop: stop}, nil
}

type follower struct {
	f    *inflight
	file *os.File
	ctx  context.Context
	stop func() bool
	off  int64
}

func (r *follower) Read(p []byte) (int, error) {
	for {
		r.f.mu.Lock()
		for r.off >= r.f.n && !r.f.done && r.ctx.Err() == nil {
			r.f.cond.Wait()
		}
		avail, done, err := r.f.n-r.off, r.f.done, r.f.err
		r.f.mu.Unlock()
		if err != nil {
			return 0, err
		}
		if err := r.ctx.Err(); err != nil {
			return 0, err
		}
		if avail <= 0 && done {
			return 0, io.EOF
		}
		if int64(len(p)) > avail {
			p = p[:avail]
		}
		n, err := r.file.Read(p)
		r.off += int64(n)
		if n > 0 || (err != nil && err != io.EOF) {
			return n, err
		}
	}
}

func (r *follower) Close() error {
	r.stop()
	return r.file.Close()
}
