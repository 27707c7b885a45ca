package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"

	"github.com/ferrytool/ferry/internal/digestio"
	"github.com/ferrytool/ferry/manifest"
)

// newDecoder is the one way ferry decodes zstd: one goroutine, low memory,
// and no window larger than ferry's encoders use.
func newDecoder(r io.Reader) (*zstd.Decoder, error) {
	return zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(MaxDecoderWindow))
}

// decodeErr names what a broken frame looks like to an operator.
func decodeErr(err error) error {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, zstd.ErrWindowSizeExceeded), errors.Is(err, zstd.ErrDecoderSizeExceeded):
		return fmt.Errorf("%w: a frame asks for a zstd window over %d bytes (MaxDecoderWindow): %v", ErrLimit, MaxDecoderWindow, err)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fmt.Errorf("%w: %v", ErrTruncated, err)
	}
	return fmt.Errorf("%w: %v", ErrFormat, err)
}

// frame is one tar entry decoded from the zstd frame where it starts.
type frame struct {
	dec *zstd.Decoder
	tr  *tar.Reader
	hdr *tar.Header
}

// openFrame starts decoding at a frame boundary and reads the tar header of
// the entry there, which must be a name ferry writes.
func openFrame(ctx context.Context, r io.Reader) (*frame, error) {
	dec, err := newDecoder(digestio.ContextReader(ctx, r))
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(digestio.ContextReader(ctx, dec))
	hdr, err := tr.Next()
	if err != nil {
		dec.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, decodeErr(err)
	}
	if _, err := checkEntry(hdr); err != nil {
		dec.Close()
		return nil, err
	}
	return &frame{dec: dec, tr: tr, hdr: hdr}, nil
}

func (f *frame) Read(p []byte) (int, error) { return f.tr.Read(p) }

// end checks that nothing follows the entry in its section: a second entry
// hidden in a frame is tampering, whatever it holds.
func (f *frame) end() error {
	hdr, err := f.tr.Next()
	switch {
	case err == io.EOF:
		return nil
	case err == nil:
		return fmt.Errorf("%w: entry %q hidden after %s", ErrFormat, hdr.Name, f.hdr.Name)
	}
	return fmt.Errorf("%w: after %s: %v", ErrFormat, f.hdr.Name, decodeErr(err))
}

func (f *frame) Close() error {
	f.dec.Close()
	return nil
}

// readSmallFrame decodes the single entry of a section into memory: it must
// be called name, hold at most limit bytes, and be alone in the section.
func readSmallFrame(ctx context.Context, r io.Reader, name string, limit int64) ([]byte, error) {
	f, err := openFrame(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	defer f.Close()
	if f.hdr.Name != name {
		return nil, fmt.Errorf("%w: found %q where %s belongs", ErrFormat, f.hdr.Name, name)
	}
	if f.hdr.Size > limit {
		return nil, fmt.Errorf("%w: %s is %d bytes, over its %d byte limit", ErrLimit, name, f.hdr.Size, limit)
	}
	data := make([]byte, f.hdr.Size)
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, fmt.Errorf("%s: %w", name, decodeErr(err))
	}
	if err := f.end(); err != nil {
		return nil, err
	}
	return data, nil
}

// readHead reads the signed bill of materials and its signature from the
// head of a volume, touching nothing else.
func readHead(ctx context.Context, r io.Reader) (bom, sig []byte, err error) {
	dec, err := newDecoder(digestio.ContextReader(ctx, r))
	if err != nil {
		return nil, nil, err
	}
	defer dec.Close()
	tr := tar.NewReader(digestio.ContextReader(ctx, dec))
	if bom, err = readSmallEntry(tr, NameBOM, manifest.MaxBOMSize); err != nil {
		return nil, nil, err
	}
	if sig, err = readSmallEntry(tr, NameSignature, maxSignatureSize); err != nil {
		return nil, nil, err
	}
	return bom, sig, nil
}

// checkHead reads the head region the index names and checks that it holds
// exactly the bill of materials, its signature and oci-layout.
func checkHead(ctx context.Context, r io.Reader, bom, sig []byte) error {
	dec, err := newDecoder(digestio.ContextReader(ctx, r))
	if err != nil {
		return err
	}
	defer dec.Close()
	tr := tar.NewReader(digestio.ContextReader(ctx, dec))
	for _, want := range []struct {
		name string
		data []byte
	}{{NameBOM, bom}, {NameSignature, sig}, {NameOCILayout, []byte(ociLayoutContent)}} {
		got, err := readSmallEntry(tr, want.name, int64(len(want.data)))
		if err != nil {
			return err
		}
		if !bytes.Equal(got, want.data) {
			return fmt.Errorf("%w: %s at the head differs from the one read before", ErrFormat, want.name)
		}
	}
	if hdr, err := tr.Next(); err != io.EOF {
		if err == nil {
			return fmt.Errorf("%w: entry %q between the head and the first blob", ErrFormat, hdr.Name)
		}
		return fmt.Errorf("%w: data between the head and the first blob: %v", ErrFormat, decodeErr(err))
	}
	return nil
}

// checkEndMarker checks that the region between the index seal and the
// trailer decodes to the tar end marker and nothing else. A tar entry found
// there is named, with what is wrong with it.
func checkEndMarker(ctx context.Context, r io.Reader) error {
	dec, err := newDecoder(digestio.ContextReader(ctx, r))
	if err != nil {
		return err
	}
	defer dec.Close()
	const look = 64 << 10
	data, err := io.ReadAll(io.LimitReader(digestio.ContextReader(ctx, dec), look))
	if err != nil {
		return fmt.Errorf("tar end marker: %w", decodeErr(err))
	}
	if len(data) == 1024 && bytes.Equal(data, make([]byte, 1024)) {
		return nil
	}
	if hdr, err := tar.NewReader(bytes.NewReader(data)).Next(); err == nil {
		if _, err := checkEntry(hdr); err != nil {
			return fmt.Errorf("stray entry after the index: %w", err)
		}
		return fmt.Errorf("%w: stray entry %q after the index", ErrFormat, hdr.Name)
	}
	more := ""
	if len(data) == look {
		more = " or more"
	}
	return fmt.Errorf("%w: %d bytes%s where only the tar end marker belongs (data after the end of the archive)", ErrFormat, len(data), more)
}

// readSmallEntry reads the next tar entry, which must be name, into memory.
func readSmallEntry(tr *tar.Reader, name string, limit int64) ([]byte, error) {
	hdr, err := tr.Next()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, decodeErr(err))
	}
	if _, err := checkEntry(hdr); err != nil {
		return nil, err
	}
	if hdr.Name != name {
		if name == NameSignature {
			return nil, fmt.Errorf("%w: no signature: found %q where %s belongs", ErrSignature, hdr.Name, name)
		}
		return nil, fmt.Errorf("%w: expected %s, found %q", ErrFormat, name, hdr.Name)
	}
	if hdr.Size > limit {
		if name == NameBOM {
			return nil, fmt.Errorf("%w: %s is %d bytes, over the %d byte bill of materials limit (MaxBOMSize)", ErrLimit, name, hdr.Size, limit)
		}
		return nil, fmt.Errorf("%w: %s is %d bytes, over its %d byte limit", ErrLimit, name, hdr.Size, limit)
	}
	data := make([]byte, hdr.Size)
	if _, err := io.ReadFull(tr, data); err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, decodeErr(err))
	}
	return data, nil
}

// verifiedEntry reads one entry's content through a digest check and, at
// the end, checks that nothing else hides in the entry's frame. Errors name
// the volume and the entry.
type verifiedEntry struct {
	f     *frame
	r     io.Reader
	where string
	done  bool
}

func newVerifiedEntry(f *frame, digest string, size int64, where string) *verifiedEntry {
	return &verifiedEntry{f: f, r: digestio.NewReader(f, digest, size), where: where}
}

func (e *verifiedEntry) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF && !e.done {
		e.done = true
		if ferr := e.f.end(); ferr != nil {
			return n, fmt.Errorf("%s: %w", e.where, ferr)
		}
		return n, io.EOF
	}
	if err != nil && err != io.EOF {
		switch {
		case errors.Is(err, digestio.ErrMismatch):
			return n, fmt.Errorf("%w: %s: %v", ErrDigest, e.where, err)
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			return n, err
		}
		return n, fmt.Errorf("%s: %w", e.where, decodeErr(err))
	}
	return n, err
}

func (e *verifiedEntry) Close() error { return e.f.Close() }
