package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/ferrytool/ferry/archive"
	"github.com/ferrytool/ferry/internal/digestio"
	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/store"
)

// volume is one open volume file.
type volume struct {
	path   string
	v      *archive.Volume
	f      *os.File
	number int
	final  bool
}

// volumeSet is the volumes of one run: their signed bill of materials and
// where each blob, or each part of a split blob, can be read.
type volumeSet struct {
	// generic, when set, serves every blob (Push): no volumes, no parts.
	generic   archive.BlobSource
	vols      []*volume
	bom       *manifest.BOM
	bomRaw    []byte
	sig       []byte
	bomDigest string
	blobs     map[string]manifest.Blob
	whole     map[string]*volume
	parts     map[string][]partRef
	workDir   string
}

// partRef is a part of a split blob, in a volume of this run or staged in
// the work folder by an earlier one.
type partRef struct {
	offset, size int64
	vol          *volume     // nil for a staged part
	entry        store.Entry // the volume's index entry
	staged       string      // path of a staged part
}

// openVolumes opens every volume and checks the signature of the bill of
// materials each one carries, before anything touches the network. All
// volumes must carry the same bill of materials.
func openVolumes(ctx context.Context, paths []string, verifier archive.Verifier, tmpDir, workDir string) (*volumeSet, error) {
	if verifier == nil {
		return nil, fmt.Errorf("%w: no public key given to verify the archive", archive.ErrSignature)
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("%w: no volume given", ErrVolumes)
	}
	vs := &volumeSet{whole: map[string]*volume{}, parts: map[string][]partRef{}}
	ok := false
	defer func() {
		if !ok {
			vs.close()
		}
	}()
	byNumber := map[int]string{}
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		v, f, err := archive.OpenVolumeFile(ctx, p, tmpDir)
		if err != nil {
			return nil, err
		}
		vol := &volume{path: p, v: v, f: f, number: v.Meta().Volume, final: v.Meta().Final}
		vs.vols = append(vs.vols, vol)
		raw, sig, err := v.ReadBOM(ctx)
		if err != nil {
			return nil, err
		}
		d := digestio.FromBytes(raw)
		if vs.bom == nil {
			if err := verifier.VerifyBOM(ctx, raw, sig); err != nil {
				return nil, fmt.Errorf("%s: %w: %v", p, archive.ErrSignature, err)
			}
			bom, err := manifest.ParseBOM(raw)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			vs.bom, vs.bomRaw, vs.sig, vs.bomDigest = bom, raw, sig, d
		} else if d != vs.bomDigest {
			return nil, fmt.Errorf("%w: %s belongs to another archive than %s (bill of materials %s, not %s)", ErrVolumes, p, vs.vols[0].path, d, vs.bomDigest)
		}
		if v.Meta().BOMDigest != d {
			return nil, fmt.Errorf("%w: %s: the volume index belongs to bill of materials %s, the volume carries %s", archive.ErrFormat, p, v.Meta().BOMDigest, d)
		}
		if other, dup := byNumber[vol.number]; dup {
			return nil, fmt.Errorf("%w: %s and %s are both volume %d", ErrVolumes, other, p, vol.number)
		}
		byNumber[vol.number] = p
	}
	vs.blobs = make(map[string]manifest.Blob, len(vs.bom.Blobs))
	for _, b := range vs.bom.Blobs {
		vs.blobs[b.Digest] = b
	}
	sort.Slice(vs.vols, func(i, j int) bool { return vs.vols[i].number < vs.vols[j].number })
	for _, vol := range vs.vols {
		for _, e := range vol.v.Index().Entries {
			if _, listed := vs.blobs[e.Digest]; !listed {
				return nil, fmt.Errorf("%w: %s holds %s, which the bill of materials does not list", archive.ErrFormat, vol.path, e.Digest)
			}
			if e.Part == nil {
				if vs.whole[e.Digest] == nil {
					vs.whole[e.Digest] = vol
				}
				continue
			}
			vs.parts[e.Digest] = append(vs.parts[e.Digest], partRef{offset: e.Part.Offset, size: e.Size, vol: vol, entry: e})
		}
	}
	vs.workDir = filepath.Join(workDir, vs.bom.ArchiveID)
	ok = true
	return vs, nil
}

// newSourceSet serves a bill of materials from a blob source.
func newSourceSet(bom *manifest.BOM, src archive.BlobSource) *volumeSet {
	vs := &volumeSet{generic: src, bom: bom, whole: map[string]*volume{}, parts: map[string][]partRef{}, blobs: map[string]manifest.Blob{}}
	for _, b := range bom.Blobs {
		vs.blobs[b.Digest] = b
	}
	return vs
}

func (vs *volumeSet) close() {
	for _, v := range vs.vols {
		v.f.Close()
	}
}

// stagedDir is where the parts of one split blob wait for the others.
func (vs *volumeSet) stagedDir(digest string) string {
	return filepath.Join(vs.workDir, strings.TrimPrefix(digest, "sha256:"))
}

// stagedParts lists parts staged by earlier runs.
func (vs *volumeSet) stagedParts(digest string) []partRef {
	if vs.workDir == "" {
		return nil
	}
	dir := vs.stagedDir(digest)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []partRef
	for _, e := range ents {
		off, err := strconv.ParseInt(e.Name(), 10, 64)
		if err != nil || len(e.Name()) != 16 {
			continue // a temporary file of an interrupted copy
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		out = append(out, partRef{offset: off, size: info.Size(), staged: filepath.Join(dir, e.Name())})
	}
	return out
}

// chain returns the parts that cover a blob from byte 0 to its end, this
// run's volumes preferred, or nil when some are missing.
func (vs *volumeSet) chain(b manifest.Blob) []partRef {
	byOffset := map[int64]partRef{}
	for _, p := range vs.stagedParts(b.Digest) {
		byOffset[p.offset] = p
	}
	for _, p := range vs.parts[b.Digest] {
		byOffset[p.offset] = p
	}
	var out []partRef
	for next := int64(0); next < b.Size; {
		p, ok := byOffset[next]
		if !ok || p.size <= 0 {
			return nil
		}
		out = append(out, p)
		next += p.size
	}
	return out
}

// available reports whether this run can read the whole blob, and the
// volume it comes from ("" when it is joined from parts).
func (vs *volumeSet) available(b manifest.Blob) (bool, string) {
	if vs.generic != nil {
		return true, ""
	}
	if v := vs.whole[b.Digest]; v != nil {
		return true, v.path
	}
	if len(vs.parts[b.Digest]) == 0 && len(vs.stagedParts(b.Digest)) == 0 {
		return false, ""
	}
	return vs.chain(b) != nil, ""
}

// opener returns a verifying opener of a blob this run can read.
func (vs *volumeSet) opener(b manifest.Blob) opener {
	if vs.generic != nil {
		return func(ctx context.Context) (io.ReadCloser, error) {
			rc, err := vs.generic.OpenBlob(ctx, b)
			if err != nil {
				return nil, err
			}
			return &joinedBlob{r: digestio.NewReader(rc, b.Digest, b.Size), c: rc, digest: b.Digest}, nil
		}
	}
	if v := vs.whole[b.Digest]; v != nil {
		return func(ctx context.Context) (io.ReadCloser, error) { return v.v.OpenBlob(ctx, b) }
	}
	return func(ctx context.Context) (io.ReadCloser, error) {
		parts := vs.chain(b)
		if parts == nil {
			return nil, fmt.Errorf("blob %s: parts missing", b.Digest)
		}
		pr := &partsReader{ctx: ctx, parts: parts}
		return &joinedBlob{r: digestio.NewReader(pr, b.Digest, b.Size), c: pr, digest: b.Digest}, nil
	}
}

// partsReader reads parts one after the other.
type partsReader struct {
	ctx   context.Context
	parts []partRef
	cur   io.ReadCloser
}

func (p *partsReader) Read(b []byte) (int, error) {
	for {
		if p.cur == nil {
			if len(p.parts) == 0 {
				return 0, io.EOF
			}
			next := p.parts[0]
			p.parts = p.parts[1:]
			var err error
			if next.vol != nil {
				p.cur, err = next.vol.v.OpenPart(p.ctx, next.entry)
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

// joinedBlob reports a mismatch as the archive's ErrDigest.
type joinedBlob struct {
	r      *digestio.Reader
	c      io.Closer
	digest string
}

func (j *joinedBlob) Read(b []byte) (int, error) {
	n, err := j.r.Read(b)
	if err != nil && errors.Is(err, digestio.ErrMismatch) {
		return n, fmt.Errorf("%w: blob %s: %v", archive.ErrDigest, j.digest, err)
	}
	return n, err
}

func (j *joinedBlob) Close() error { return j.c.Close() }

// stage copies the parts of a split blob this run holds into the work
// folder, each checked against its digest in the volume index, so a later
// run with the other volumes can join them. It reports whether anything new
// was staged.
func (vs *volumeSet) stage(ctx context.Context, b manifest.Blob) (bool, error) {
	parts := vs.parts[b.Digest]
	if len(parts) == 0 {
		return false, nil
	}
	dir := vs.stagedDir(b.Digest)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("work folder: %w", err)
	}
	staged := false
	for _, p := range parts {
		dst := filepath.Join(dir, fmt.Sprintf("%016d", p.offset))
		if st, err := os.Stat(dst); err == nil && st.Size() == p.size {
			continue
		}
		if err := copyPart(ctx, p, dst); err != nil {
			return staged, err
		}
		staged = true
	}
	return staged, nil
}

// copyPart writes one part atomically: temporary file, verified, renamed.
func copyPart(ctx context.Context, p partRef, dst string) (err error) {
	rc, err := p.vol.v.OpenPart(ctx, p.entry)
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.CreateTemp(filepath.Dir(dst), ".part-*")
	if err != nil {
		return fmt.Errorf("work folder: %w", err)
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

// unstage removes a split blob's staged parts once it is pushed everywhere.
func (vs *volumeSet) unstage(digest string) {
	if vs.workDir == "" {
		return
	}
	os.RemoveAll(vs.stagedDir(digest))
	os.Remove(vs.workDir) // only when empty
}

// readManifest reads a manifest blob this run holds, verified, into memory.
func (vs *volumeSet) readManifest(ctx context.Context, b manifest.Blob) ([]byte, error) {
	if b.Size > manifest.MaxManifestSize {
		return nil, fmt.Errorf("%w: manifest %s is %d bytes, over the %d byte limit", archive.ErrFormat, b.Digest, b.Size, manifest.MaxManifestSize)
	}
	rc, err := vs.opener(b)(ctx)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, rc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// volumeRecord is what the journal keeps of a volume.
func volumeRecord(v *volume) store.VolumeRecord {
	rec := store.VolumeRecord{Path: v.path, Final: v.final}
	for _, e := range v.v.Index().Entries {
		if e.Part == nil {
			rec.Blobs = append(rec.Blobs, e.Digest)
		} else {
			rec.Parts = append(rec.Parts, e.Digest)
		}
	}
	return rec
}
