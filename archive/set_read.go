package archive

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ferrytool/ferry/internal/digestio"
)

// chunk is one stretch of a split blob: a part in a volume of the set, or
// one staged by an earlier run.
type chunk struct {
	offset, size int64
	at           *partAt // nil for a staged part
	staged       string
}

// HoldsWhole reports whether a volume given holds the blob in one piece.
func (s *Set) HoldsWhole(digest string) bool {
	_, ok := s.whole[digest]
	return ok
}

// HoldsParts reports whether a volume given holds a part of the blob.
func (s *Set) HoldsParts(digest string) bool { return len(s.parts[digest]) > 0 }

// Has reports whether Open can read the whole blob now, and the path of
// the volume it comes from ("" when it is joined from parts).
func (s *Set) Has(digest string) (bool, string) {
	if w, ok := s.whole[digest]; ok {
		return true, w.vol.Path
	}
	b, ok := s.blobs[digest]
	if !ok || (len(s.parts[digest]) == 0 && len(s.staged(digest)) == 0) {
		return false, ""
	}
	return s.chain(b.Digest, b.Size) != nil, ""
}

// Open returns a reader of a blob that fails, at the latest at EOF, unless
// the content matches the digest and size the bill of materials lists. A
// blob split across volumes is joined behind it, each part checked against
// the signed index on the way.
func (s *Set) Open(ctx context.Context, digest string) (io.ReadCloser, error) {
	b, ok := s.blobs[digest]
	if !ok {
		return nil, fmt.Errorf("%w: blob %s is not in the bill of materials", ErrNotFound, digest)
	}
	if w, ok := s.whole[digest]; ok {
		return s.openEntry(ctx, w.vol, w.entry)
	}
	parts := s.chain(digest, b.Size)
	if parts == nil {
		return nil, fmt.Errorf("%w: blob %s is in %s", ErrNotFound, digest, DescribeVolumes(s.Where(digest)))
	}
	pr := &partsReader{ctx: ctx, s: s, parts: parts}
	return digestio.NewReadCloser(pr, digest, b.Size, ErrDigest), nil
}

// stageDir is where the parts of one split blob wait for the others.
func (s *Set) stageDir(digest string) string {
	if s.opts.StageDir == "" {
		return ""
	}
	return filepath.Join(s.opts.StageDir, s.bom.ArchiveID, strings.TrimPrefix(digest, "sha256:"))
}

// staged lists parts staged by earlier runs.
func (s *Set) staged(digest string) []chunk {
	dir := s.stageDir(digest)
	if dir == "" {
		return nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []chunk
	for _, e := range ents {
		off, err := strconv.ParseInt(e.Name(), 10, 64)
		if err != nil || len(e.Name()) != 16 {
			continue // a temporary file of an interrupted copy
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		out = append(out, chunk{offset: off, size: info.Size(), staged: filepath.Join(dir, e.Name())})
	}
	return out
}

// chain returns the parts that cover a blob from byte 0 to its end, the
// volumes given preferred over staged parts, or nil when some are missing.
func (s *Set) chain(digest string, size int64) []chunk {
	byOffset := map[int64]chunk{}
	for _, c := range s.staged(digest) {
		byOffset[c.offset] = c
	}
	for i := range s.parts[digest] {
		p := &s.parts[digest][i]
		byOffset[p.entry.Part.Offset] = chunk{offset: p.entry.Part.Offset, size: p.entry.Size, at: p}
	}
	var out []chunk
	for next := int64(0); next < size; {
		c, ok := byOffset[next]
		if !ok || c.size <= 0 {
			return nil
		}
		out = append(out, c)
		next += c.size
	}
	return out
}

// Stage copies the parts of a split blob that the volumes given hold into
// the stage folder, each checked against its sealed digest, so that a later
// set with the other volumes can join them. It reports whether anything new
// was staged.
func (s *Set) Stage(ctx context.Context, digest string) (bool, error) {
	parts := s.parts[digest]
	dir := s.stageDir(digest)
	if len(parts) == 0 || dir == "" {
		return false, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("stage folder: %w", err)
	}
	staged := false
	for i := range parts {
		p := &parts[i]
		dst := filepath.Join(dir, fmt.Sprintf("%016d", p.entry.Part.Offset))
		if st, err := os.Stat(dst); err == nil && st.Size() == p.entry.Size {
			continue
		}
		if err := s.copyPart(ctx, p, dst); err != nil {
			return staged, err
		}
		staged = true
	}
	return staged, nil
}

// StageFolder is the folder Stage uses for this archive; empty without one.
func (s *Set) StageFolder() string {
	if s.opts.StageDir == "" {
		return ""
	}
	return filepath.Join(s.opts.StageDir, s.bom.ArchiveID)
}

// copyPart writes one part atomically: temporary file, verified, renamed.
func (s *Set) copyPart(ctx context.Context, p *partAt, dst string) (err error) {
	rc, err := s.openEntry(ctx, p.vol, p.entry)
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.CreateTemp(filepath.Dir(dst), ".part-*")
	if err != nil {
		return fmt.Errorf("stage folder: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := io.Copy(f, rc); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), dst)
}

// Unstage removes a split blob's staged parts once nothing needs them.
func (s *Set) Unstage(digest string) {
	dir := s.stageDir(digest)
	if dir == "" {
		return
	}
	os.RemoveAll(dir)
	os.Remove(filepath.Dir(dir)) // only when empty
}

// partsReader reads the chunks of a split blob one after the other.
type partsReader struct {
	ctx   context.Context
	s     *Set
	parts []chunk
	cur   io.ReadCloser
}

func (p *partsReader) Read(b []byte) (int, error) {
	for {
		if err := p.ctx.Err(); err != nil {
			return 0, err
		}
		if p.cur == nil {
			if len(p.parts) == 0 {
				return 0, io.EOF
			}
			next := p.parts[0]
			p.parts = p.parts[1:]
			var err error
			if next.at != nil {
				p.cur, err = p.s.openEntry(p.ctx, next.at.vol, next.at.entry)
			} else {
				var f *os.File
				f, err = os.Open(next.staged)
				p.cur = f
			}
			if err != nil {
				p.cur = nil
				return 0, err
			}
		}
		n, err := p.cur.Read(b)
		if err == io.EOF {
			p.cur.Close()
			p.cur = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

func (p *partsReader) Close() error {
	if p.cur != nil {
		return p.cur.Close()
	}
	return nil
}
