package archive

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"
)

// The trailer is a zstd skippable frame at the very end of a volume. Decoders
// skip it; ferry reads it to find the index without scanning the volume.
const (
	skippableMagic = 0x184D2A5E
	trailerMagic   = "FERRYIX2"
	// magic, then offset and length of the index frame and of the seal frame
	trailerPayload = 8 + 4*8
	trailerSize    = 8 + trailerPayload
)

type trailer struct {
	indexOffset int64
	indexLength int64
	sealOffset  int64
	sealLength  int64
}

func (t trailer) marshal() []byte {
	b := make([]byte, trailerSize)
	binary.LittleEndian.PutUint32(b[0:], skippableMagic)
	binary.LittleEndian.PutUint32(b[4:], trailerPayload)
	copy(b[8:], trailerMagic)
	binary.LittleEndian.PutUint64(b[16:], uint64(t.indexOffset))
	binary.LittleEndian.PutUint64(b[24:], uint64(t.indexLength))
	binary.LittleEndian.PutUint64(b[32:], uint64(t.sealOffset))
	binary.LittleEndian.PutUint64(b[40:], uint64(t.sealLength))
	return b
}

// readTrailer reads the trailer at the end of a volume of the given size.
func readTrailer(r io.ReaderAt, size int64) (trailer, error) {
	if size < trailerSize {
		return trailer{}, fmt.Errorf("%w: %d bytes is too short for a volume", ErrTruncated, size)
	}
	b := make([]byte, trailerSize)
	if _, err := r.ReadAt(b, size-trailerSize); err != nil {
		return trailer{}, fmt.Errorf("read trailer: %w", err)
	}
	t, err := readTrailerBytes(b)
	if err != nil {
		return trailer{}, err
	}
	if t.indexOffset+t.indexLength > size-trailerSize || t.sealOffset+t.sealLength > size-trailerSize {
		return trailer{}, fmt.Errorf("%w: trailer points outside the volume", ErrFormat)
	}
	if t.sealOffset != t.indexOffset+t.indexLength {
		return trailer{}, fmt.Errorf("%w: trailer: the index seal does not follow the index", ErrFormat)
	}
	// A compressed frame is never much larger than its content, so a
	// trailer claiming more is refused before anything is decoded.
	if t.indexLength > entryBound(MaxIndexSize) {
		return trailer{}, fmt.Errorf("%w: trailer: index frame of %d bytes is over the %d byte index limit (MaxIndexSize)", ErrLimit, t.indexLength, MaxIndexSize)
	}
	if t.sealLength > entryBound(maxSealSize) {
		return trailer{}, fmt.Errorf("%w: trailer: index seal frame of %d bytes is over the %d byte limit", ErrLimit, t.sealLength, maxSealSize)
	}
	return t, nil
}

// readTrailerBytes decodes a trailer.
func readTrailerBytes(b []byte) (trailer, error) {
	if binary.LittleEndian.Uint32(b[0:]) != skippableMagic || binary.LittleEndian.Uint32(b[4:]) != trailerPayload ||
		string(b[8:16]) != trailerMagic {
		if string(b[24:32]) == "FERRYIX1" {
			return trailer{}, fmt.Errorf("%w: written by an older ferry, whose volume indexes are not signed; collect the archive again", ErrFormat)
		}
		return trailer{}, fmt.Errorf("%w: no ferry trailer at the end (cut short, or not a ferry volume)", ErrTruncated)
	}
	t := trailer{
		indexOffset: int64(binary.LittleEndian.Uint64(b[16:])),
		indexLength: int64(binary.LittleEndian.Uint64(b[24:])),
		sealOffset:  int64(binary.LittleEndian.Uint64(b[32:])),
		sealLength:  int64(binary.LittleEndian.Uint64(b[40:])),
	}
	if t.indexOffset < 0 || t.indexLength <= 0 || t.sealOffset < 0 || t.sealLength <= 0 ||
		t.indexOffset > 1<<62 || t.indexLength > 1<<62 || t.sealOffset > 1<<62 || t.sealLength > 1<<62 {
		return trailer{}, fmt.Errorf("%w: trailer points outside the volume", ErrFormat)
	}
	return t, nil
}

// zstd stores a block that does not compress as a raw block with a 3 byte
// header; blocks are at most 128 KiB. So a frame never exceeds its input by
// more than this bound, whatever the data.
const (
	zstdBlock         = 128 << 10
	zstdFrameOverhead = 18 // frame header (at most 14) plus checksum (4)
)

// entryBound is the most bytes a tar entry of n content bytes can take once
// compressed into its own frame: header, content, padding, block headers.
func entryBound(n int64) int64 {
	raw := 512 + n + 511
	return raw + 3*(raw/zstdBlock+1) + zstdFrameOverhead
}

// largestContentWithin returns the largest content size whose entryBound is at
// most limit, or 0 when not even an empty entry fits.
func largestContentWithin(limit int64) int64 {
	if limit < entryBound(0) {
		return 0
	}
	n := (limit - entryBound(0)) * zstdBlock / (zstdBlock + 3)
	for n > 0 && entryBound(n) > limit {
		n--
	}
	return n
}

// countingWriter counts what reaches the volume file and, every flushEvery
// bytes, asks the flusher to push what is written so far to the device.
type countingWriter struct {
	w       io.Writer
	n       int64
	synced  int64
	flusher *flusher
}

// flushEvery is how much a volume may run ahead of its device. Flushing as
// it goes keeps the final sync, which the operator waits for before pulling
// the media, short.
const flushEvery = 64 << 20

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	if c.flusher != nil && c.n-c.synced >= flushEvery {
		c.synced = c.n
		c.flusher.kick()
	}
	return n, err
}

// flusher syncs a file from a goroutine of its own, so writing goes on while
// the device catches up.
type flusher struct {
	f    interface{ Sync() error }
	req  chan struct{}
	done chan error
	once sync.Once
	err  error
}

func newFlusher(f interface{ Sync() error }) *flusher {
	fl := &flusher{f: f, req: make(chan struct{}, 1), done: make(chan error, 1)}
	go func() {
		var first error
		for range fl.req {
			if err := fl.f.Sync(); err != nil && first == nil {
				first = err
			}
		}
		fl.done <- first
	}()
	return fl
}

// kick asks for a sync; a request already pending covers this one.
func (fl *flusher) kick() {
	select {
	case fl.req <- struct{}{}:
	default:
	}
}

// stop waits for the flusher and returns the first sync error.
func (fl *flusher) stop() error {
	fl.once.Do(func() {
		close(fl.req)
		fl.err = <-fl.done
	})
	return fl.err
}

// switchWriter forwards to whichever frame encoder is current, so one tar
// writer can span many frames.
type switchWriter struct{ w io.Writer }

func (s *switchWriter) Write(p []byte) (int, error) { return s.w.Write(p) }
