package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/ferrytool/ferry/archive"
	"github.com/ferrytool/ferry/internal/digestio"
	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/store"
)

// BlobReader is what a push needs of its source: a verifying reader of a
// blob by digest, and where a blob it cannot read is. archive.Set
// satisfies it.
type BlobReader interface {
	Open(ctx context.Context, digest string) (io.ReadCloser, error)
	Where(digest string) []archive.VolumeRange
}

// volume is one volume of the run that verified.
type volume struct {
	path   string
	number int
	final  bool
	set    *archive.Set
}

// runSource is what a run reads blobs from: the archive's volumes
// (setSource) or any Copy source (graphSource).
type runSource interface {
	Source
	// available reports whether this run can read the whole blob, and the
	// volume it comes from ("" when it is joined from parts or the source
	// has no volumes).
	available(b manifest.Blob) (bool, string)
}

// setSource is the archive's volumes, read through archive.Set, as a Copy
// source: the signed bill of materials as the graph, blobs verified by the
// set (split blobs joined from their staged parts).
type setSource struct{ set *archive.Set }

func (s setSource) Graph() *manifest.BOM { return s.set.BOM() }

func (s setSource) OpenBlob(ctx context.Context, b manifest.Blob) (io.ReadCloser, error) {
	return s.set.Open(ctx, b.Digest)
}

func (s setSource) available(b manifest.Blob) (bool, string) { return s.set.Has(b.Digest) }

// graphSource is any Copy source: every blob of the graph is readable, and
// verified against its digest and size on the way.
type graphSource struct{ src Source }

func (s graphSource) Graph() *manifest.BOM { return s.src.Graph() }

func (s graphSource) OpenBlob(ctx context.Context, b manifest.Blob) (io.ReadCloser, error) {
	rc, err := s.src.OpenBlob(ctx, b)
	if err != nil {
		return nil, err
	}
	return digestio.NewReadCloser(rc, b.Digest, b.Size, archive.ErrDigest), nil
}

func (graphSource) available(manifest.Blob) (bool, string) { return true, "" }

// volumeSet is the blobs of one run and, when they come from the
// archive's volumes, what the run keeps of those volumes.
type volumeSet struct {
	src runSource
	// set and what follows are zero for a source without volumes.
	set       *archive.Set
	vols      []*volume
	bom       *manifest.BOM
	bomRaw    []byte
	sig       []byte
	bomDigest string
	// whole and parts say which blobs the volumes given hold in one piece
	// or in part.
	whole   map[string]*volume
	parts   map[string][]int
	workDir string
	// problems are what the volumes given hold that the signed archive
	// does not account for, one message per volume; their blobs are not
	// read.
	problems []string
}

// openVolumes opens the volumes through archive.Set, which checks the
// signature of the bill of materials before anything else and every
// volume's sealed index before it is used; nothing touches the network
// before. A volume that fails its checks is reported (problems) and not
// read; when none verifies, the first failure is the error.
func openVolumes(ctx context.Context, paths []string, verifier archive.Verifier, workDir string) (*volumeSet, error) {
	if verifier == nil {
		return nil, fmt.Errorf("%w: no public key given to verify the archive", archive.ErrSignature)
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("%w: no volume given", ErrVolumes)
	}
	set, err := archive.OpenSet(ctx, paths, archive.SetOptions{Verifier: verifier, StageDir: workDir})
	if err != nil {
		return nil, err
	}
	raw, sig := set.SignedBOM()
	vs := &volumeSet{src: setSource{set}, set: set, bom: set.BOM(), bomRaw: raw, sig: sig, bomDigest: set.BOMDigest(),
		whole: map[string]*volume{}, parts: map[string][]int{}, workDir: set.StageFolder()}
	var firstErr error
	for _, v := range set.Volumes() {
		if v.Err != nil {
			vs.problems = append(vs.problems, v.Err.Error())
			if firstErr == nil {
				firstErr = v.Err
			}
			continue
		}
		if v.Tampered != nil {
			vs.problems = append(vs.problems, v.Tampered.Error())
		}
		vol := &volume{path: v.Path, number: v.Number, final: v.Final, set: set}
		vs.vols = append(vs.vols, vol)
		for _, e := range set.Entries(v.Number) {
			if e.Part == nil {
				if vs.whole[e.Digest] == nil {
					vs.whole[e.Digest] = vol
				}
			} else {
				vs.parts[e.Digest] = append(vs.parts[e.Digest], v.Number)
			}
		}
	}
	if len(vs.vols) == 0 {
		set.Close()
		if errors.Is(firstErr, archive.ErrForeign) {
			return nil, fmt.Errorf("%w: %w", ErrVolumes, firstErr)
		}
		return nil, firstErr
	}
	return vs, nil
}

// sourceSet serves a Copy source's graph: no volumes, no parts.
func sourceSet(src Source) *volumeSet {
	return &volumeSet{src: graphSource{src}, bom: src.Graph(), whole: map[string]*volume{}, parts: map[string][]int{}}
}

func (vs *volumeSet) close() {
	if vs.set != nil {
		vs.set.Close()
	}
}

// available reports whether this run can read the whole blob, and the
// volume it comes from ("" when it is joined from parts).
func (vs *volumeSet) available(b manifest.Blob) (bool, string) { return vs.src.available(b) }

// opener returns a verifying opener of a blob this run can read.
func (vs *volumeSet) opener(b manifest.Blob) opener {
	return func(ctx context.Context) (io.ReadCloser, error) { return vs.src.OpenBlob(ctx, b) }
}

// stage keeps the parts of a split blob this run holds, each checked
// against the sealed index, so a later run with the other volumes can join
// them. It reports whether anything new was staged.
func (vs *volumeSet) stage(ctx context.Context, b manifest.Blob) (bool, error) {
	if vs.set == nil {
		return false, nil
	}
	return vs.set.Stage(ctx, b.Digest)
}

// unstage removes a split blob's staged parts once it is pushed everywhere.
func (vs *volumeSet) unstage(digest string) {
	if vs.set != nil {
		vs.set.Unstage(digest)
	}
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
	if _, err := io.Copy(&buf, io.LimitReader(rc, manifest.MaxManifestSize+1)); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// volumeRecord is what the journal keeps of a volume.
func volumeRecord(v *volume) store.VolumeRecord {
	rec := store.VolumeRecord{Path: v.path, Final: v.final}
	for _, e := range v.set.Entries(v.number) {
		if e.Part == nil {
			rec.Blobs = append(rec.Blobs, e.Digest)
		} else {
			rec.Parts = append(rec.Parts, e.Digest)
		}
	}
	return rec
}
