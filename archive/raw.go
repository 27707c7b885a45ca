package archive

import (
	"encoding/binary"
	"io"
)

// frameEncoder writes one zstd frame per Reset/Close pair.
type frameEncoder interface {
	Reset(w io.Writer)
	io.WriteCloser
}

// rawEncoder writes zstd frames made only of raw (stored) blocks. Content
// that is already compressed gains nothing from a second round, and the
// library has no store mode, so ferry writes such frames itself: a frame
// header, then blocks of at most 128 KiB each behind a 3 byte header. Every
// zstd decoder reads them; writing one costs a memory copy.
type rawEncoder struct {
	w   io.Writer
	buf []byte
	n   int
	err error
}

func newRawEncoder() *rawEncoder { return &rawEncoder{buf: make([]byte, 3+zstdBlock)} }

// rawFrameHeader: magic, a descriptor with no content size, no checksum and
// no dictionary, and a 128 KiB window (exponent 7: 2^(10+7)), the largest
// block a raw block may hold.
var rawFrameHeader = []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 7 << 3}

func (e *rawEncoder) Reset(w io.Writer) {
	e.w, e.n, e.err = w, 0, nil
	_, e.err = w.Write(rawFrameHeader)
}

func (e *rawEncoder) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 && e.err == nil {
		if e.n == zstdBlock {
			e.flush(false)
			continue
		}
		c := copy(e.buf[3+e.n:], p)
		e.n += c
		written += c
		p = p[c:]
	}
	return written, e.err
}

// flush writes the buffered block; last marks the frame's final block.
func (e *rawEncoder) flush(last bool) {
	if e.err != nil {
		return
	}
	hdr := uint32(e.n) << 3 // block type 0: raw
	if last {
		hdr |= 1
	}
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], hdr)
	copy(e.buf[:3], b[:3])
	_, e.err = e.w.Write(e.buf[:3+e.n])
	e.n = 0
}

// Close ends the frame with a last block, which may be empty.
func (e *rawEncoder) Close() error {
	e.flush(true)
	return e.err
}
