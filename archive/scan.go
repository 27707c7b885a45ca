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
	"github.com/ferrytool/ferry/store"
)

// ScanOptions configure Scan.
type ScanOptions struct {
	// Name identifies the volume in messages, usually its path.
	Name string
	// Verifier checks the bill of materials' signature before any blob is
	// handed out. Required unless SkipSignature is set.
	Verifier Verifier
	// SkipSignature reads without checking the signature; for tools that
	// only look, never for anything that pushes.
	SkipSignature bool
	// TmpDir holds the index database while it is read; empty means the
	// system default.
	TmpDir string
	// OnBOM is called once the bill of materials is read and its signature
	// verified, before any blob.
	OnBOM func(bom *manifest.BOM, raw []byte) error
	// OnBlob is called for each whole blob with a reader that fails at EOF
	// (with ErrDigest) unless the content matches. Nil means the blob is only
	// verified. The handler must not keep r after returning.
	OnBlob func(ctx context.Context, b manifest.Blob, r io.Reader) error
	// OnPart is called for each part of a split blob, with a reader of the
	// part's bytes; the part's own digest is checked against the index at the
	// end of the volume, the whole blob's by whoever joins the parts.
	OnPart func(ctx context.Context, b manifest.Blob, offset, size int64, r io.Reader) error
}

// ScanResult is what one pass over a volume found.
type ScanResult struct {
	BOM       *manifest.BOM
	BOMRaw    []byte
	BOMDigest string
	Index     *store.VolumeIndex
	// Blobs lists the whole blobs that verified.
	Blobs []string
	// Parts lists the parts seen, each checked against the index.
	Parts []store.Entry
	// Bad lists blobs whose content did not match, with the reason; the scan
	// goes on past them so one report names them all.
	Bad []BadBlob
}

// BadBlob is a blob that failed verification.
type BadBlob struct {
	Digest string
	Err    error
}

// Scan reads a volume in one pass from r, which may be a pipe: the signed bill
// of materials first, then every blob, verified as it streams, then the index.
// Entries that are not regular files, that could escape an extraction folder,
// or that ferry does not write are refused.
func Scan(ctx context.Context, r io.Reader, opts ScanOptions) (*ScanResult, error) {
	if opts.Verifier == nil && !opts.SkipSignature {
		return nil, fmt.Errorf("%s: %w: no key given to verify it", opts.Name, ErrSignature)
	}
	tail := &tailKeeper{r: r}
	dec, err := zstd.NewReader(tail, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	s := &scanner{opts: opts, tr: tar.NewReader(dec), res: &ScanResult{}, seen: map[string]bool{}}
	if err := s.run(ctx); err != nil {
		return s.res, fmt.Errorf("%s: %w", opts.Name, err)
	}
	// Past the tar end marker only the trailer may follow, and decoders skip
	// it: any decoded byte here is smuggled content.
	if n, err := io.Copy(io.Discard, dec); err != nil || n > 0 {
		return s.res, fmt.Errorf("%s: %w: data after the end of the tar stream (%d bytes, %v)", opts.Name, ErrFormat, n, err)
	}
	if !tail.hasTrailer() {
		return s.res, fmt.Errorf("%s: %w: the ferry trailer is missing", opts.Name, ErrTruncated)
	}
	return s.res, nil
}

type scanner struct {
	opts  ScanOptions
	tr    *tar.Reader
	res   *ScanResult
	bom   *manifest.BOM
	blobs map[string]manifest.Blob
	seen  map[string]bool
	cur   string // entry being read, for messages
}

func (s *scanner) next() (*tar.Header, parsedName, error) {
	hdr, err := s.tr.Next()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, parsedName{}, io.EOF
		}
		return nil, parsedName{}, s.streamErr(err)
	}
	p, err := checkEntry(hdr)
	if err != nil {
		return nil, parsedName{}, err
	}
	s.cur = hdr.Name
	return hdr, p, nil
}

// streamErr names the entry that was being read when the stream broke.
func (s *scanner) streamErr(err error) error {
	where := "at the start"
	if s.cur != "" {
		where = "in or after " + s.cur
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, ErrTruncated) {
		return fmt.Errorf("%w: stream ends %s", ErrTruncated, where)
	}
	return fmt.Errorf("%w: corrupt compressed data %s: %v", ErrDigest, where, err)
}

func (s *scanner) run(ctx context.Context) error {
	if err := s.readHead(ctx); err != nil {
		return err
	}
	var indexJSONSeen bool
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, p, err := s.next()
		if err == io.EOF {
			return fmt.Errorf("%w: the tar stream ends before the index (%s)", ErrTruncated, NameIndexDB)
		}
		if err != nil {
			return err
		}
		switch p.kind {
		case entryBlob:
			if indexJSONSeen {
				return fmt.Errorf("%w: blob %s after %s", ErrFormat, hdr.Name, NameIndexJSON)
			}
			if err := s.blob(ctx, hdr, p); err != nil {
				return err
			}
		case entryPart:
			if indexJSONSeen {
				return fmt.Errorf("%w: part %s after %s", ErrFormat, hdr.Name, NameIndexJSON)
			}
			if err := s.part(ctx, hdr, p); err != nil {
				return err
			}
		case entryIndexJSON:
			if indexJSONSeen {
				return fmt.Errorf("%w: %s twice", ErrFormat, NameIndexJSON)
			}
			indexJSONSeen = true
			if hdr.Size > maxIndexJSONSize {
				return fmt.Errorf("%w: %s is %d bytes", ErrFormat, NameIndexJSON, hdr.Size)
			}
			if err := s.drain(hdr.Size); err != nil {
				return err
			}
		case entryIndexDB:
			if !indexJSONSeen {
				return fmt.Errorf("%w: %s before %s", ErrFormat, NameIndexDB, NameIndexJSON)
			}
			return s.index(ctx, hdr)
		default:
			return fmt.Errorf("%w: %s out of place", ErrFormat, hdr.Name)
		}
	}
}

func (s *scanner) drain(n int64) error {
	if _, err := io.CopyN(io.Discard, s.tr, n); err != nil {
		return s.streamErr(err)
	}
	return nil
}

// readHead reads and checks the bill of materials, its signature and the
// oci-layout marker.
func (s *scanner) readHead(ctx context.Context) error {
	raw, err := readSmallEntry(s.tr, NameBOM, manifest.MaxBOMSize)
	if err != nil {
		return err
	}
	s.cur = NameBOM
	sig, err := readSmallEntry(s.tr, NameSignature, maxSignatureSize)
	if err != nil {
		return err
	}
	s.cur = NameSignature
	if !s.opts.SkipSignature {
		if err := s.opts.Verifier.VerifyBOM(ctx, raw, sig); err != nil {
			return fmt.Errorf("%w: %v", ErrSignature, err)
		}
	}
	bom, err := manifest.ParseBOM(raw)
	if err != nil {
		return err
	}
	s.bom = bom
	s.blobs = make(map[string]manifest.Blob, len(bom.Blobs))
	for _, b := range bom.Blobs {
		s.blobs[b.Digest] = b
	}
	s.res.BOM, s.res.BOMRaw, s.res.BOMDigest = bom, raw, digestio.FromBytes(raw)
	layout, err := readSmallEntry(s.tr, NameOCILayout, 4096)
	if err != nil {
		return err
	}
	s.cur = NameOCILayout
	if !bytes.Equal(layout, []byte(ociLayoutContent)) {
		return fmt.Errorf("%w: unexpected %s content", ErrFormat, NameOCILayout)
	}
	if s.opts.OnBOM != nil {
		return s.opts.OnBOM(bom, raw)
	}
	return nil
}

func (s *scanner) blob(ctx context.Context, hdr *tar.Header, p parsedName) error {
	b, ok := s.blobs[p.digest]
	if !ok {
		return fmt.Errorf("%w: %s is not in the bill of materials", ErrFormat, hdr.Name)
	}
	if s.seen[hdr.Name] {
		return fmt.Errorf("%w: %s appears twice", ErrFormat, hdr.Name)
	}
	s.seen[hdr.Name] = true
	if hdr.Size != b.Size {
		// The content is still read so the stream stays in step.
		s.res.Bad = append(s.res.Bad, BadBlob{Digest: b.Digest, Err: fmt.Errorf("%w: %s holds %d bytes, the bill of materials says %d", ErrDigest, hdr.Name, hdr.Size, b.Size)})
		return s.drain(hdr.Size)
	}
	vr := &verifiedEntry{r: digestio.NewReader(s.tr, b.Digest, b.Size), c: io.NopCloser(nil), where: s.opts.Name + ": " + hdr.Name}
	var herr error
	if s.opts.OnBlob != nil {
		herr = s.opts.OnBlob(ctx, b, vr)
	}
	_, derr := io.Copy(io.Discard, vr)
	switch {
	case errors.Is(derr, ErrDigest):
		// The bytes decoded but do not match: the stream is intact, so the
		// scan goes on and reports every bad blob.
		s.res.Bad = append(s.res.Bad, BadBlob{Digest: b.Digest, Err: derr})
		return nil
	case derr != nil:
		return s.streamErr(derr)
	case herr != nil:
		return fmt.Errorf("blob %s: %w", b.Digest, herr)
	}
	s.res.Blobs = append(s.res.Blobs, b.Digest)
	return nil
}

func (s *scanner) part(ctx context.Context, hdr *tar.Header, p parsedName) error {
	b, ok := s.blobs[p.digest]
	if !ok {
		return fmt.Errorf("%w: %s is a part of a blob not in the bill of materials", ErrFormat, hdr.Name)
	}
	if p.offset+hdr.Size > b.Size {
		return fmt.Errorf("%w: %s runs past the end of blob %s", ErrFormat, hdr.Name, b.Digest)
	}
	d := digestio.NewDigester()
	r := io.TeeReader(io.LimitReader(s.tr, hdr.Size), d)
	var herr error
	if s.opts.OnPart != nil {
		herr = s.opts.OnPart(ctx, b, p.offset, hdr.Size, r)
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return s.streamErr(err)
	}
	if d.Size() != hdr.Size {
		return s.streamErr(io.ErrUnexpectedEOF)
	}
	if herr != nil {
		return fmt.Errorf("%s: %w", hdr.Name, herr)
	}
	s.res.Parts = append(s.res.Parts, store.Entry{Digest: b.Digest, Path: hdr.Name, Size: hdr.Size, Part: &store.Part{Offset: p.offset, Digest: d.Digest()}})
	return nil
}

// index reads the volume index and checks that it belongs to this bill of
// materials and agrees with the parts seen.
func (s *scanner) index(ctx context.Context, hdr *tar.Header) error {
	if hdr.Size > maxIndexDBSize {
		return fmt.Errorf("%w: %s is %d bytes", ErrFormat, NameIndexDB, hdr.Size)
	}
	ix, err := readIndexDB(ctx, s.tr, hdr.Size, s.opts.TmpDir)
	if err != nil {
		return err
	}
	if ix.Meta.BOMDigest != s.res.BOMDigest || ix.Meta.ArchiveID != s.bom.ArchiveID {
		return fmt.Errorf("%w: the index belongs to another archive (bill of materials %s, index says %s)", ErrFormat, s.res.BOMDigest, ix.Meta.BOMDigest)
	}
	s.res.Index = ix
	want := map[string]string{}
	for _, e := range ix.Entries {
		if e.Part != nil {
			want[e.Path] = e.Part.Digest
		}
	}
	for _, p := range s.res.Parts {
		if want[p.Path] != p.Part.Digest {
			s.res.Bad = append(s.res.Bad, BadBlob{Digest: p.Digest, Err: fmt.Errorf("%w: %s: part digest %s, index says %q", ErrDigest, p.Path, p.Part.Digest, want[p.Path])})
		}
	}
	if hdr, err := s.tr.Next(); err != io.EOF {
		if err == nil {
			return fmt.Errorf("%w: entry %q after the index", ErrFormat, hdr.Name)
		}
		return s.streamErr(err)
	}
	return nil
}

// tailKeeper remembers the last bytes that passed, to find the trailer
// without a second read.
type tailKeeper struct {
	r   io.Reader
	buf [trailerSize]byte
	n   int
}

func (t *tailKeeper) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n >= trailerSize {
		copy(t.buf[:], p[n-trailerSize:n])
		t.n = trailerSize
	} else if n > 0 {
		keep := min(t.n, trailerSize-n)
		copy(t.buf[:], t.buf[t.n-keep:t.n])
		copy(t.buf[keep:], p[:n])
		t.n = keep + n
	}
	return n, err
}

func (t *tailKeeper) hasTrailer() bool {
	if t.n < trailerSize {
		return false
	}
	_, err := readTrailerBytes(t.buf[:])
	return err == nil
}
