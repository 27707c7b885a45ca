package digestio

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
)

// asyncChunk is the size of the buffers handed to the hashing goroutine.
const asyncChunk = 256 << 10

// writeToBufs is how many buffers WriteTo keeps in flight: one being read
// into, the others being hashed while they are written.
const writeToBufs = 4

var chunkPool = sync.Pool{New: func() any { b := make([]byte, asyncChunk); return &b }}

// AsyncReader verifies like Reader, but hashes on a goroutine of its own so
// that hashing overlaps with whatever the consumer does with the bytes
// (compressing, writing, uploading). It still never returns io.EOF for
// content that does not match. Close it when abandoning a read early.
//
// Read copies what it returns for the hashing goroutine, since the caller
// reuses its buffer; WriteTo, which io.Copy prefers, reads into buffers of
// its own and hashes them where they are while the writer takes them.
type AsyncReader struct {
	r      io.Reader
	digest string
	size   int64
	n      int64
	err    error
	jobs   chan hashJob
	cur    *[]byte
	used   int
	sum    chan string
	closed bool
}

// hashJob is a buffer for the hashing goroutine. Once hashed, it goes back
// on back, or to the pool when back is nil.
type hashJob struct {
	buf  *[]byte
	back chan<- *[]byte
}

// NewAsyncReader returns an AsyncReader of r expecting size bytes of digest.
func NewAsyncReader(r io.Reader, digest string, size int64) *AsyncReader {
	a := &AsyncReader{r: r, digest: digest, size: size, jobs: make(chan hashJob, 16), sum: make(chan string, 1)}
	go func() {
		h := sha256.New()
		for j := range a.jobs {
			h.Write(*j.buf)
			*j.buf = (*j.buf)[:cap(*j.buf)]
			if j.back != nil {
				j.back <- j.buf
			} else {
				chunkPool.Put(j.buf)
			}
		}
		a.sum <- "sha256:" + hex.EncodeToString(h.Sum(nil))
	}()
	return a
}

// errClosedReader is a read after Close.
var errClosedReader = errors.New("digestio: read after Close")

func (a *AsyncReader) Read(p []byte) (int, error) {
	if a.err == nil && a.closed {
		a.err = errClosedReader
	}
	if a.err != nil {
		return 0, a.err
	}
	if rest := a.size - a.n; int64(len(p)) > rest+1 {
		p = p[:rest+1]
	}
	n, err := a.r.Read(p)
	if !a.count(n) {
		return 0, a.err
	}
	a.hash(p[:n])
	switch {
	case err == io.EOF:
		a.finish()
		return n, a.err
	case err != nil:
		a.fail(err)
	}
	return n, err
}

// WriteTo writes the content to w and returns nil once all of it was
// written and matched. Each buffer is hashed while w takes it, and is read
// into again only once both are done with it.
func (a *AsyncReader) WriteTo(w io.Writer) (int64, error) {
	if a.err == nil && a.closed {
		a.err = errClosedReader
	}
	if a.err != nil {
		if a.err == io.EOF {
			return 0, nil
		}
		return 0, a.err
	}
	a.send() // what earlier Reads left
	free := make(chan *[]byte, writeToBufs)
	for range writeToBufs {
		free <- chunkPool.Get().(*[]byte)
	}
	// Once the hashing goroutine has stopped, every buffer it was given is
	// back. Close stops it on a panic of the source or the writer too.
	defer func() {
		a.Close()
		for len(free) > 0 {
			chunkPool.Put(<-free)
		}
	}()
	var written int64
	for {
		buf := <-free
		p := *buf
		if rest := a.size - a.n; int64(len(p)) > rest+1 {
			p = p[:rest+1]
		}
		n, rerr := a.r.Read(p)
		if !a.count(n) {
			free <- buf
			return written, a.err
		}
		if n > 0 {
			*buf = p[:n]
			a.jobs <- hashJob{buf: buf, back: free}
			m, werr := w.Write(p[:n])
			written += int64(m)
			if werr == nil && m < n {
				werr = io.ErrShortWrite
			}
			if werr != nil {
				a.fail(werr)
				return written, werr
			}
		} else {
			free <- buf
		}
		switch {
		case rerr == io.EOF:
			if a.finish(); a.err != io.EOF {
				return written, a.err
			}
			return written, nil
		case rerr != nil:
			a.fail(rerr)
			return written, rerr
		}
	}
}

// count adds n bytes read; false (with the reader failed) past the size.
func (a *AsyncReader) count(n int) bool {
	a.n += int64(n)
	if a.n > a.size {
		a.fail(fmt.Errorf("%w: %s: more than the declared %d bytes", ErrMismatch, a.digest, a.size))
		return false
	}
	return true
}

// hash copies p into chunks for the hashing goroutine.
func (a *AsyncReader) hash(p []byte) {
	for len(p) > 0 {
		if a.cur == nil {
			a.cur = chunkPool.Get().(*[]byte)
			a.used = 0
		}
		c := copy((*a.cur)[a.used:], p)
		a.used += c
		p = p[c:]
		if a.used == len(*a.cur) {
			a.send()
		}
	}
}

func (a *AsyncReader) send() {
	if a.cur == nil {
		return
	}
	*a.cur = (*a.cur)[:a.used]
	a.jobs <- hashJob{buf: a.cur}
	a.cur = nil
}

func (a *AsyncReader) finish() {
	a.send()
	close(a.jobs)
	a.closed = true
	got := <-a.sum
	switch {
	case a.n != a.size:
		a.err = fmt.Errorf("%w: %s: got %d bytes, declared %d", ErrMismatch, a.digest, a.n, a.size)
	case got != a.digest:
		a.err = fmt.Errorf("%w: expected %s, got %s", ErrMismatch, a.digest, got)
	default:
		a.err = io.EOF
	}
}

func (a *AsyncReader) fail(err error) {
	a.err = err
	a.Close()
}

// Verified reports whether the whole content was read and matched.
func (a *AsyncReader) Verified() bool { return a.err == io.EOF }

// Close stops the hashing goroutine of a reader not read to the end.
func (a *AsyncReader) Close() error {
	if !a.closed {
		a.closed = true
		if a.cur != nil {
			chunkPool.Put(a.cur)
			a.cur = nil
		}
		close(a.jobs)
		<-a.sum
	}
	return nil
}
