package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/zstd"

	"github.com/ferrytool/ferry/internal/digestio"
	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/store"
)

// Volume gives random access to one volume through its index: opening it
// reads only the trailer and the index entry, and each blob read decodes only
// that blob's frame.
type Volume struct {
	name  string
	r     io.ReaderAt
	size  int64
	index *store.VolumeIndex
	byKey map[string]store.Entry
}

// OpenVolume reads the index of a volume of the given size. name is used in
// messages (usually the file path). tmpDir holds the index database while it
// is read; empty means the system default.
func OpenVolume(ctx context.Context, r io.ReaderAt, size int64, name, tmpDir string) (*Volume, error) {
	t, err := readTrailer(r, size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	rc, hdr, err := openFrame(io.NewSectionReader(r, t.indexOffset, t.indexLength))
	if err != nil {
		return nil, fmt.Errorf("%s: index entry: %w", name, err)
	}
	defer rc.Close()
	if hdr.Name != NameIndexDB {
		return nil, fmt.Errorf("%w: %s: trailer points at %q, not %s", ErrFormat, name, hdr.Name, NameIndexDB)
	}
	if hdr.Size > maxIndexDBSize {
		return nil, fmt.Errorf("%w: %s: index of %d bytes exceeds the limit", ErrFormat, name, hdr.Size)
	}
	ix, err := readIndexDB(ctx, rc, hdr.Size, tmpDir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	v := &Volume{name: name, r: r, size: size, index: ix, byKey: make(map[string]store.Entry, len(ix.Entries))}
	for _, e := range ix.Entries {
		if e.Offset < 0 || e.Length <= 0 || e.Offset+e.Length > t.indexOffset {
			return nil, fmt.Errorf("%w: %s: index entry %s points outside the volume", ErrFormat, name, e.Path)
		}
		v.byKey[e.Key()] = e
	}
	return v, nil
}

// OpenVolumeFile opens a volume file; Close the returned file when done.
func OpenVolumeFile(ctx context.Context, path, tmpDir string) (*Volume, *os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	v, err := OpenVolume(ctx, f, st.Size(), path, tmpDir)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return v, f, nil
}

// readIndexDB copies the index database to a temporary file, which bbolt
// needs, and reads it whole into memory.
func readIndexDB(ctx context.Context, r io.Reader, size int64, tmpDir string) (*store.VolumeIndex, error) {
	f, err := os.CreateTemp(tmpDir, "ferry-index-*.db")
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	path := f.Name()
	defer os.Remove(path)
	n, err := io.Copy(f, io.LimitReader(r, size))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	if n != size {
		return nil, fmt.Errorf("%w: index entry holds %d of %d bytes", ErrTruncated, n, size)
	}
	ix, err := store.ReadVolumeIndex(path)
	if err != nil {
		return nil, fmt.Errorf("%w: index: %v", ErrFormat, err)
	}
	return ix, nil
}

// openFrame starts decoding at a frame boundary and reads the tar header of
// the entry there.
func openFrame(r io.Reader) (io.ReadCloser, *tar.Header, error) {
	dec, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
	if err != nil {
		return nil, nil, err
	}
	tr := tar.NewReader(dec)
	hdr, err := tr.Next()
	if err != nil {
		dec.Close()
		return nil, nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	if _, err := checkEntry(hdr); err != nil {
		dec.Close()
		return nil, nil, err
	}
	return &frameReader{Reader: tr, dec: dec}, hdr, nil
}

type frameReader struct {
	io.Reader
	dec *zstd.Decoder
}

func (f *frameReader) Close() error {
	f.dec.Close()
	return nil
}

// Name is the name the volume was opened with.
func (v *Volume) Name() string { return v.name }

// Index returns the volume's index.
func (v *Volume) Index() *store.VolumeIndex { return v.index }

// Meta returns the volume's identity.
func (v *Volume) Meta() store.VolumeMeta { return v.index.Meta }

// Has reports whether the volume holds the whole blob.
func (v *Volume) Has(digest string) bool {
	_, ok := v.byKey[digest]
	return ok
}

// Parts returns the parts of a split blob this volume holds.
func (v *Volume) Parts(digest string) []store.Entry {
	var out []store.Entry
	for _, e := range v.index.Entries {
		if e.Digest == digest && e.Part != nil {
			out = append(out, e)
		}
	}
	return out
}

// OpenBlob returns a reader of a whole blob that fails at EOF unless the
// content matches the digest and size listed in the bill of materials.
func (v *Volume) OpenBlob(ctx context.Context, b manifest.Blob) (io.ReadCloser, error) {
	e, ok := v.byKey[b.Digest]
	if !ok {
		return nil, fmt.Errorf("%w: blob %s, volume %s", ErrNotFound, b.Digest, v.name)
	}
	return v.openEntry(ctx, e, b.Digest, b.Size)
}

// OpenPart returns a verifying reader of one part of a split blob.
func (v *Volume) OpenPart(ctx context.Context, e store.Entry) (io.ReadCloser, error) {
	if e.Part == nil {
		return nil, fmt.Errorf("entry %s is not a part", e.Path)
	}
	return v.openEntry(ctx, e, e.Part.Digest, e.Size)
}

func (v *Volume) openEntry(_ context.Context, e store.Entry, digest string, size int64) (io.ReadCloser, error) {
	rc, hdr, err := openFrame(io.NewSectionReader(v.r, e.Offset, e.Length))
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", v.name, e.Path, err)
	}
	if hdr.Name != e.Path || hdr.Size != size {
		rc.Close()
		return nil, fmt.Errorf("%w: %s: index says %s (%d bytes) at offset %d, found %s (%d bytes)", ErrFormat, v.name, e.Path, size, e.Offset, hdr.Name, hdr.Size)
	}
	return &verifiedEntry{r: digestio.NewReader(rc, digest, size), c: rc, where: v.name + ": " + e.Path}, nil
}

// verifiedEntry turns a digest mismatch into ErrDigest naming the entry.
type verifiedEntry struct {
	r     io.Reader
	c     io.Closer
	where string
}

func (e *verifiedEntry) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		if errors.Is(err, digestio.ErrMismatch) {
			return n, fmt.Errorf("%w: %s: %v", ErrDigest, e.where, err)
		}
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, zstd.ErrMagicMismatch) {
			return n, fmt.Errorf("%w: %s: %v", ErrTruncated, e.where, err)
		}
		return n, fmt.Errorf("%s: %w", e.where, err)
	}
	return n, err
}

func (e *verifiedEntry) Close() error { return e.c.Close() }

// ReadBOM reads the signed bill of materials and its signature from the head
// of the volume without touching anything else.
func (v *Volume) ReadBOM(ctx context.Context) (bom, sig []byte, err error) {
	sr := io.NewSectionReader(v.r, 0, v.size)
	dec, err := zstd.NewReader(sr, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
	if err != nil {
		return nil, nil, err
	}
	defer dec.Close()
	tr := tar.NewReader(dec)
	bom, err = readSmallEntry(tr, NameBOM, manifest.MaxBOMSize)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", v.name, err)
	}
	sig, err = readSmallEntry(tr, NameSignature, maxSignatureSize)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", v.name, err)
	}
	return bom, sig, nil
}

// readSmallEntry reads the next tar entry, which must be name, into memory.
func readSmallEntry(tr *tar.Reader, name string, limit int64) ([]byte, error) {
	hdr, err := tr.Next()
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %v", ErrFormat, name, err)
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
		return nil, fmt.Errorf("%w: %s is %d bytes, over the %d byte limit", ErrFormat, name, hdr.Size, limit)
	}
	data := make([]byte, hdr.Size)
	if _, err := io.ReadFull(tr, data); err != nil {
		return nil, fmt.Errorf("%w: reading %s: %v", ErrTruncated, name, err)
	}
	return data, nil
}
