package digestio

import (
	"errors"
	"io"
	"sync"
)

// errClosed is returned by a ReadAhead read after Close.
var errClosed = errors.New("read ahead: closed")

// ReadAhead reads its source on a goroutine of its own, a few buffers ahead
// of the consumer. Reading a blob from a volume (a system call, decoding,
// hashing) then overlaps with what the consumer does with the bytes
// (encrypting and sending them), instead of taking turns on one goroutine
// while the socket's buffer drains. Memory is bounded by bufs × size.
//
// Bytes and the source's final error arrive in order: a verifying source's
// mismatch still comes after every byte and instead of io.EOF.
type ReadAhead struct {
	free chan []byte
	full chan chunk
	stop chan struct{}
	done chan struct{}
	once sync.Once

	cur  chunk
	off  int
	err  error
	have bool
}

type chunk struct {
	buf []byte
	n   int
	err error
}

// NewReadAhead starts reading r into bufs buffers of size bytes each. Close
// stops the goroutine; it does not close r.
func NewReadAhead(r io.Reader, bufs, size int) *ReadAhead {
	bufs, size = max(bufs, 2), max(size, 4<<10)
	a := &ReadAhead{
		free: make(chan []byte, bufs),
		full: make(chan chunk, bufs),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	for range bufs {
		a.free <- make([]byte, size)
	}
	go a.fill(r)
	return a
}

// fill reads whole buffers, so the consumer gets few large chunks.
func (a *ReadAhead) fill(r io.Reader) {
	defer close(a.done)
	for {
		var buf []byte
		select {
		case buf = <-a.free:
		case <-a.stop:
			return
		}
		n, err := fillBuffer(r, buf)
		select {
		case a.full <- chunk{buf: buf, n: n, err: err}:
		case <-a.stop:
			return
		}
		if err != nil {
			return
		}
	}
}

// fillBuffer reads until buf is full or the source returns an error, which
// it passes on exactly as returned (io.ReadFull would turn a source's own
// io.ErrUnexpectedEOF into a short read, and drop an error that came with
// the bytes that filled the buffer).
func fillBuffer(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (a *ReadAhead) Read(p []byte) (int, error) {
	if a.err != nil {
		return 0, a.err
	}
	select {
	case <-a.stop:
		a.err = errClosed
		return 0, a.err
	default:
	}
	if len(p) == 0 {
		return 0, nil
	}
	for !a.have || a.off == a.cur.n {
		if a.have {
			if a.cur.err != nil {
				a.err = a.cur.err
				return 0, a.err
			}
			a.free <- a.cur.buf
			a.have = false
		}
		select {
		case a.cur = <-a.full:
		case <-a.stop:
			a.err = errClosed
			return 0, a.err
		}
		a.have, a.off = true, 0
	}
	n := copy(p, a.cur.buf[a.off:a.cur.n])
	a.off += n
	if a.off == a.cur.n && a.cur.err != nil {
		a.err = a.cur.err
		return n, a.err
	}
	return n, nil
}

// Close stops reading ahead and waits until the goroutine no longer touches
// the source, so the caller may close the source next.
func (a *ReadAhead) Close() error {
	a.once.Do(func() {
		close(a.stop)
		<-a.done
	})
	return nil
}
