package verify

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/ferrytool/ferry/archive"
	"github.com/ferrytool/ferry/internal/digestio"
	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/store"
)

// ArchiveOptions configure Archive.
type ArchiveOptions struct {
	// TmpDir holds index databases while they are read; empty means the
	// system default.
	TmpDir string
	// OnVolume is called when a volume starts being read.
	OnVolume func(path string)
	// OnProgress is called with the number of compressed bytes just read.
	OnProgress func(n int64)
}

// ArchiveReport is the outcome of verifying a set of volumes.
type ArchiveReport struct {
	ArchiveID string         `json:"archiveID,omitempty"`
	BOMDigest string         `json:"bomDigest,omitempty"`
	Volumes   []VolumeReport `json:"volumes"`
	Problems  []Problem      `json:"problems"`
	Stats     manifest.Stats `json:"stats"`
	// Complete is set when the volumes given include the last one and no
	// number is missing.
	Complete bool `json:"complete"`
}

// VolumeReport is what one volume held.
type VolumeReport struct {
	Path   string `json:"path"`
	Number int    `json:"number,omitempty"`
	Final  bool   `json:"final,omitempty"`
	Blobs  int    `json:"blobs"`
	Parts  int    `json:"parts"`
	Error  string `json:"error,omitempty"`
}

// Problem is one thing wrong with the archive.
type Problem struct {
	// Kind is "invalid" (tampered, malformed, signature) or "missing".
	Kind    string `json:"kind"`
	Volume  string `json:"volume,omitempty"`
	Digest  string `json:"digest,omitempty"`
	Message string `json:"message"`
}

const (
	problemInvalid = "invalid"
	problemMissing = "missing"
)

// OK reports whether the archive verified completely.
func (r *ArchiveReport) OK() bool { return len(r.Problems) == 0 && r.Complete }

// Err summarises the report as an error that callers can test with
// errors.Is against ErrArchiveInvalid or ErrArchiveIncomplete.
func (r *ArchiveReport) Err() error {
	if r.OK() {
		return nil
	}
	sentinel := ErrArchiveIncomplete
	var first string
	for _, p := range r.Problems {
		if p.Kind == problemInvalid {
			sentinel = ErrArchiveInvalid
			first = p.Message
			break
		}
		if first == "" {
			first = p.Message
		}
	}
	more := ""
	if len(r.Problems) > 1 {
		more = fmt.Sprintf(" (and %d more problems)", len(r.Problems)-1)
	}
	return fmt.Errorf("%w: %s%s", sentinel, first, more)
}

// Archive verifies every volume given: the signature of the bill of
// materials, the structure of each volume, every blob's digest and size, the
// parts of split blobs joined across volumes, that every manifest's
// references are present, and that no volume is missing. It reads each
// volume once from start to end, plus the parts of split blobs once more.
func Archive(ctx context.Context, paths []string, v archive.Verifier, opts ArchiveOptions) (*ArchiveReport, error) {
	if v == nil {
		return nil, fmt.Errorf("%w: no public key given", ErrNoSignature)
	}
	a := &archiveCheck{ctx: ctx, opts: opts, verifier: v, report: &ArchiveReport{Problems: []Problem{}},
		present: map[string]bool{}, manifests: map[string][]manifest.Descriptor{}, parts: map[string][]partAt{}, byVolume: map[int]string{}}
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		a.volume(p)
	}
	a.crossCheck()
	return a.report, nil
}

type partAt struct {
	path  string
	entry store.Entry
}

type archiveCheck struct {
	ctx       context.Context
	opts      ArchiveOptions
	verifier  archive.Verifier
	report    *ArchiveReport
	bom       *manifest.BOM
	present   map[string]bool
	manifests map[string][]manifest.Descriptor
	parts     map[string][]partAt
	byVolume  map[int]string
	// firstBlob and lastBlob are the positions in the bill of materials of
	// the first and last blob each volume holds; blobs go into volumes in
	// that order, so a missing blob can be placed in its missing volume.
	span   map[int][2]int
	final  int
	failed int
}

func (a *archiveCheck) problem(kind, volume, digest, format string, args ...any) {
	a.report.Problems = append(a.report.Problems, Problem{Kind: kind, Volume: volume, Digest: digest, Message: fmt.Sprintf(format, args...)})
}

func (a *archiveCheck) volume(path string) {
	if a.opts.OnVolume != nil {
		a.opts.OnVolume(path)
	}
	vr := VolumeReport{Path: path}
	defer func() { a.report.Volumes = append(a.report.Volumes, vr) }()
	f, err := os.Open(path)
	if err != nil {
		vr.Error = err.Error()
		a.problem(problemMissing, path, "", "volume %s cannot be read: %v", path, err)
		return
	}
	defer f.Close()
	res, err := archive.Scan(a.ctx, progressReader{r: f, fn: a.opts.OnProgress}, archive.ScanOptions{
		Name: path, Verifier: a.verifier, TmpDir: a.opts.TmpDir,
		OnBOM: func(bom *manifest.BOM, raw []byte) error { return a.adoptBOM(path, bom, raw) },
		OnBlob: func(_ context.Context, b manifest.Blob, r io.Reader) error {
			if !manifest.IsManifest(b.MediaType) || b.Size > manifest.MaxManifestSize {
				return nil
			}
			data, err := io.ReadAll(r)
			if err != nil {
				return err // the scan records the mismatch
			}
			children, err := manifest.Children(b.MediaType, data)
			if err != nil {
				a.problem(problemInvalid, path, b.Digest, "%s: manifest %s does not parse: %v", path, b.Digest, err)
				return nil
			}
			a.manifests[b.Digest] = children
			return nil
		},
	})
	for _, bad := range resBad(res) {
		a.problem(problemInvalid, path, bad.Digest, "%v", bad.Err)
	}
	if err != nil {
		vr.Error = err.Error()
		a.failed++
		a.problem(problemInvalid, path, "", "%v", err)
		return
	}
	meta := res.Index.Meta
	vr.Number, vr.Final, vr.Blobs, vr.Parts = meta.Volume, meta.Final, len(res.Blobs), len(res.Parts)
	if other, dup := a.byVolume[meta.Volume]; dup {
		a.problem(problemInvalid, path, "", "%s and %s are both volume %d", other, path, meta.Volume)
		return
	}
	a.byVolume[meta.Volume] = path
	if meta.Final {
		a.final = meta.Volume
	}
	pos := map[string]int{}
	for i, b := range a.bom.Blobs {
		pos[b.Digest] = i
	}
	lo, hi := len(a.bom.Blobs), -1
	note := func(d string) {
		lo, hi = min(lo, pos[d]), max(hi, pos[d])
	}
	for _, d := range res.Blobs {
		a.present[d] = true
		note(d)
	}
	for _, p := range res.Parts {
		a.parts[p.Digest] = append(a.parts[p.Digest], partAt{path: path, entry: indexEntry(res.Index, p)})
		note(p.Digest)
	}
	if a.span == nil {
		a.span = map[int][2]int{}
	}
	a.span[meta.Volume] = [2]int{lo, hi}
}

func resBad(res *archive.ScanResult) []archive.BadBlob {
	if res == nil {
		return nil
	}
	return res.Bad
}

// indexEntry returns the index's record of a part seen in the stream, which
// carries its offset in the volume file for the join.
func indexEntry(ix *store.VolumeIndex, seen store.Entry) store.Entry {
	for _, e := range ix.Entries {
		if e.Path == seen.Path {
			return e
		}
	}
	return seen
}

func (a *archiveCheck) adoptBOM(path string, bom *manifest.BOM, raw []byte) error {
	d := digestio.FromBytes(raw)
	if a.bom == nil {
		a.bom = bom
		a.report.ArchiveID, a.report.BOMDigest, a.report.Stats = bom.ArchiveID, d, bom.Stats()
		return nil
	}
	if d != a.report.BOMDigest {
		return fmt.Errorf("%w: %s belongs to another archive (%s, not %s)", archive.ErrFormat, path, bom.ArchiveID, a.report.ArchiveID)
	}
	return nil
}

// crossCheck looks across volumes: numbering, coverage of every blob, split
// blobs joined, manifest references.
func (a *archiveCheck) crossCheck() {
	if a.bom == nil {
		a.problem(problemInvalid, "", "", "no volume could be read")
		return
	}
	numbers := make([]int, 0, len(a.byVolume))
	for n := range a.byVolume {
		numbers = append(numbers, n)
	}
	sort.Ints(numbers)
	last := 0
	if len(numbers) > 0 {
		last = numbers[len(numbers)-1]
	}
	a.report.Complete = a.final > 0
	for n := 1; n <= last; n++ {
		if _, ok := a.byVolume[n]; !ok {
			a.report.Complete = false
			a.problem(problemMissing, "", "", "volume %d is missing", n)
		}
	}
	if a.final == 0 && last > 0 {
		a.problem(problemMissing, "", "", "volume %d is missing: volume %d (%s) is not the last one", last+1, last, a.byVolume[last])
	}
	a.joinParts()
	a.reportMissingBlobs()
	for d, children := range a.manifests {
		for _, c := range children {
			if _, listed := a.bom.Blob(c.Digest); !listed {
				a.problem(problemInvalid, "", d, "manifest %s references %s, which the bill of materials does not list", d, c.Digest)
			}
		}
	}
	var lost []string
	for _, art := range a.bom.Artifacts {
		for _, d := range art.Blobs {
			if !a.present[d] {
				lost = append(lost, art.Name)
				break
			}
		}
	}
	if len(lost) > 0 {
		a.problem(problemMissing, "", "", "%d artifact(s) cannot be restored from the volumes given: %s", len(lost), strings.Join(lost, ", "))
	}
}

// reportMissingBlobs names blobs that no volume given holds, grouped by the
// volume that should hold them, with one example digest per group.
func (a *archiveCheck) reportMissingBlobs() {
	type group struct {
		count int
		bytes int64
		first string
	}
	groups := map[string]*group{}
	var order []string
	for i, b := range a.bom.Blobs {
		if a.present[b.Digest] || a.hasProblem(b.Digest) {
			continue
		}
		where := a.whereMissing(i)
		g := groups[where]
		if g == nil {
			g = &group{first: b.Digest}
			groups[where] = g
			order = append(order, where)
		}
		g.count++
		g.bytes += b.Size
	}
	for _, where := range order {
		g := groups[where]
		kind := problemMissing
		if a.failed > 0 && strings.Contains(where, "failed") {
			kind = problemInvalid
		}
		a.problem(kind, "", g.first, "%d blob(s), %d bytes, are not in the volumes given (first %s); they belong in %s", g.count, g.bytes, g.first, where)
	}
}

func (a *archiveCheck) hasProblem(digest string) bool {
	for _, p := range a.report.Problems {
		if p.Digest == digest {
			return true
		}
	}
	return false
}

// whereMissing names the volume that should hold the blob at position i of
// the bill of materials.
func (a *archiveCheck) whereMissing(i int) string {
	best := 0
	for n, s := range a.span {
		if s[1] >= 0 && s[1] < i && n > best {
			best = n
		}
	}
	if _, ok := a.byVolume[best+1]; ok {
		return fmt.Sprintf("volume %d, which does not hold them", best+1)
	}
	if a.failed > 0 {
		return fmt.Sprintf("volume %d or a volume that failed verification", best+1)
	}
	return fmt.Sprintf("volume %d, which was not given", best+1)
}

// joinParts checks each split blob: parts contiguous from 0 to its size and,
// read back in order across volumes, matching the blob's digest.
func (a *archiveCheck) joinParts() {
	for digest, parts := range a.parts {
		b, _ := a.bom.Blob(digest)
		sort.Slice(parts, func(i, j int) bool { return parts[i].entry.Part.Offset < parts[j].entry.Part.Offset })
		var next int64
		complete := true
		for _, p := range parts {
			if p.entry.Part.Offset != next {
				complete = false
				break
			}
			next += p.entry.Size
		}
		if !complete || next != b.Size {
			a.problem(problemMissing, "", digest, "blob %s is split across volumes and only %d of %d bytes are in the volumes given", digest, next, b.Size)
			continue
		}
		if err := a.hashParts(b, parts); err != nil {
			a.problem(problemInvalid, "", digest, "split blob %s: %v", digest, err)
			continue
		}
		a.present[digest] = true
	}
}

func (a *archiveCheck) hashParts(b manifest.Blob, parts []partAt) error {
	pr, pw := io.Pipe()
	go func() {
		for _, p := range parts {
			if err := copyPart(a.ctx, pw, p, a.opts.TmpDir); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.Close()
	}()
	_, err := io.Copy(io.Discard, digestio.NewReader(pr, b.Digest, b.Size))
	pr.Close()
	return err
}

func copyPart(ctx context.Context, w io.Writer, p partAt, tmpDir string) error {
	v, f, err := archive.OpenVolumeFile(ctx, p.path, tmpDir)
	if err != nil {
		return err
	}
	defer f.Close()
	rc, err := v.OpenPart(ctx, p.entry)
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(w, rc)
	return err
}

type progressReader struct {
	r  io.Reader
	fn func(int64)
}

func (p progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 && p.fn != nil {
		p.fn(int64(n))
	}
	return n, err
}
