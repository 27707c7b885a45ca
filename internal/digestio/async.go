package digestio

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"sync"
)

// asyncChunk is the size of the buffers handed to the hashing goroutine.
const asyncChunk = 256 << 10

var chunkPool = sync.Pool{New: func() any { b := make([]byte, asyncChunk); return &b }}

// AsyncReader verifies like Reader, but hashes on a goroutine of its own so
// that hashing overlaps with whatever the consumer does with the bytes
// (compressing, writing, uploading). It still never returns io.EOF for
// content that does not match. Close it when abandoning a read early.
type AsyncReader struct {
	r      io.Reader
	digest string
	size   int64
	n      int64
	err    error
	chunks chan *[]byte
	cur    *[]byte
	used   int
	sum    chan string
	closed bool
}

// NewAsyncReader returns an AsyncReader of r expecting size bytes of digest.
func NewAsyncReader(r io.Reader, digest string, size int64) *AsyncReader {
	a := &AsyncReader{r: r, digest: digest, size: size, chunks: make(chan *[]byte, 16), sum: make(chan string, 1)}
	go func() {
		h := sha256.New()
		for c := range a.chunks {
			h.Write(*c)
			*c = (*c)[:cap(*c)]
			chunkPool.Put(c)
		}
		a.sum <- "sha256:" + hex.EncodeToString(h.Sum(nil))
	}()
	return a
}

func (a *AsyncReader) Read(p []byte) (int, error) {
	if a.err != nil {
		return 0, a.err
	}
	if rest := a.size - a.n; int64(len(p)) > rest+1 {
		p = p[:rest+1]
	}
	n, err := a.r.Read(p)
	a.n += int64(n)
	if a.n > a.size {
		a.fail(fmt.Errorf("%w: %s: more than the declared %d bytes", ErrMismatch, a.digest, a.size))
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
	a.chunks <- a.cur
	a.cur = nil
}

func (a *AsyncReader) finish() {
	a.send()
	close(a.chunks)
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
		a.cur = nil
		close(a.chunks)
		<-a.sum
	}
	return nil
}
