package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ferrytool/ferry/archive"
	"github.com/ferrytool/ferry/manifest"
)

// ArchiveOptions configure Archive.
type ArchiveOptions struct {
	// OnVolume is called when a volume starts being read.
	OnVolume func(path string)
	// OnProgress is called with the number of compressed bytes just read.
	OnProgress func(n int64)
	// Images, when set, checks every image's signatures from the archive
	// (see CheckImage) and reports each image; an image the policy refuses
	// is a problem. Nil checks none.
	Images *ImagePolicy
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
	// Images is the check of each image's signatures, when asked for
	// (ArchiveOptions.Images).
	Images []manifest.ImageVerification `json:"images,omitempty"`
	// ImagesAtDestination names the images of a delta archive whose
	// signatures the destination holds already (expected there, not
	// carried): ingest checks them from the registry.
	ImagesAtDestination []string `json:"imagesAtDestination,omitempty"`
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

// Archive verifies every volume given, through the same archive.Set that
// ingest reads from, so a set that verifies is one ingest takes: the
// signature of the bill of materials, each volume's sealed index, that the
// volume holds nothing its index does not account for, every blob's and
// part's digest and size, split blobs joined across volumes, that every
// manifest's references are listed, and that no volume is missing. It reads
// each volume once, plus the parts of split blobs once more.
func Archive(ctx context.Context, paths []string, v archive.Verifier, opts ArchiveOptions) (*ArchiveReport, error) {
	if v == nil {
		return nil, fmt.Errorf("%w: no public key given", ErrNoSignature)
	}
	a := &archiveCheck{opts: opts, report: &ArchiveReport{Problems: []Problem{}}, present: map[string]bool{}, manifests: map[string][]manifest.Descriptor{}}
	set, err := archive.OpenSet(ctx, paths, archive.SetOptions{Verifier: v, OnRead: func(path string, n int64) {
		if path == a.current && opts.OnProgress != nil {
			opts.OnProgress(n)
		}
	}})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		for _, p := range paths {
			a.report.Volumes = append(a.report.Volumes, VolumeReport{Path: p, Error: err.Error()})
		}
		a.problem(kindOf(err), "", "", "%v", err)
		return a.report, nil
	}
	defer set.Close()
	a.set = set
	bom := set.BOM()
	a.report.ArchiveID, a.report.BOMDigest, a.report.Stats = bom.ArchiveID, set.BOMDigest(), bom.Stats()
	for _, vol := range set.Volumes() {
		if err := a.volume(ctx, vol); err != nil {
			return nil, err
		}
	}
	if err := a.joinParts(ctx); err != nil {
		return nil, err
	}
	a.crossCheck()
	if opts.Images != nil {
		if err := a.images(ctx, *opts.Images); err != nil {
			return nil, err
		}
	}
	return a.report, nil
}

// kindOf says whether an error is about something missing or invalid.
func kindOf(err error) string {
	if errors.Is(err, archive.ErrNotFound) {
		return problemMissing
	}
	return problemInvalid
}

type archiveCheck struct {
	opts      ArchiveOptions
	set       *archive.Set
	report    *ArchiveReport
	current   string
	present   map[string]bool
	manifests map[string][]manifest.Descriptor
	split     []string
	failed    int
}

func (a *archiveCheck) problem(kind, volume, digest, format string, args ...any) {
	a.report.Problems = append(a.report.Problems, Problem{Kind: kind, Volume: volume, Digest: digest, Message: fmt.Sprintf(format, args...)})
}

// volume reads every entry of one volume through its index; the index has
// already been checked to account for every byte of the volume.
func (a *archiveCheck) volume(ctx context.Context, vol archive.SetVolume) error {
	vr := VolumeReport{Path: vol.Path, Number: vol.Number, Final: vol.Final, Blobs: vol.Blobs, Parts: vol.Parts}
	defer func() { a.report.Volumes = append(a.report.Volumes, vr) }()
	if vol.Err != nil {
		vr.Error = vol.Err.Error()
		a.failed++
		a.problem(kindOf(vol.Err), vol.Path, "", "%v", vol.Err)
		return nil
	}
	if vol.Tampered != nil {
		vr.Error = vol.Tampered.Error()
		a.problem(problemInvalid, vol.Path, "", "%v", vol.Tampered)
	}
	if a.opts.OnVolume != nil {
		a.opts.OnVolume(vol.Path)
	}
	a.current = vol.Path
	defer func() { a.current = "" }()
	for _, e := range a.set.Entries(vol.Number) {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := a.entry(ctx, vol, e)
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		vr.Error = err.Error()
		a.problem(problemInvalid, vol.Path, e.Digest, "%v", err)
	}
	return nil
}

func (a *archiveCheck) entry(ctx context.Context, vol archive.SetVolume, e archive.Entry) error {
	rc, err := a.set.OpenEntry(ctx, vol.Number, e)
	if err != nil {
		return err
	}
	defer rc.Close()
	b, _ := a.set.Blob(e.Digest)
	if e.Part != nil {
		if !contains(a.split, e.Digest) {
			a.split = append(a.split, e.Digest)
		}
		_, err := io.Copy(io.Discard, rc)
		return err
	}
	if !manifest.IsManifest(b.MediaType) || b.Size > manifest.MaxManifestSize {
		if _, err := io.Copy(io.Discard, rc); err != nil {
			return err
		}
		a.present[e.Digest] = true
		return nil
	}
	data, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	a.present[e.Digest] = true
	children, err := manifest.Children(b.MediaType, data)
	if err != nil {
		return fmt.Errorf("%w: %s: manifest %s does not parse: %v", archive.ErrFormat, vol.Path, e.Digest, err)
	}
	a.manifests[e.Digest] = children
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// joinParts reads each split blob whose parts are all here, joined, against
// its signed digest.
func (a *archiveCheck) joinParts(ctx context.Context) error {
	for _, d := range a.split {
		if a.hasProblem(d) {
			continue
		}
		if ok, _ := a.set.Has(d); !ok {
			a.problem(problemMissing, "", d, "blob %s is split across volumes and some of its parts are in %s, which was not given", d, archive.DescribeVolumes(a.set.Where(d)))
			continue
		}
		rc, err := a.set.Open(ctx, d)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			a.problem(problemInvalid, "", d, "split blob %s: %v", d, err)
			continue
		}
		a.present[d] = true
	}
	return nil
}

// crossCheck looks across volumes: numbering, coverage of every blob,
// manifest references.
func (a *archiveCheck) crossCheck() {
	bom := a.set.BOM()
	missing, lastSeen := a.set.Missing()
	a.report.Complete = lastSeen && len(missing) == 0
	for _, n := range missing {
		a.problem(problemMissing, "", "", "volume %d is missing", n)
	}
	if !lastSeen {
		last := 0
		for _, v := range a.set.Volumes() {
			last = max(last, v.Number)
		}
		a.problem(problemMissing, "", "", "volume %d is missing: volume %d is not the last one", last+1, last)
	}
	a.reportMissingBlobs()
	for d, children := range a.manifests {
		for _, c := range children {
			if _, expected := bom.ExpectedBlob(c.Digest); expected {
				continue // a delta leaves it out: the destination holds it
			}
			if _, listed := bom.Blob(c.Digest); !listed {
				a.problem(problemInvalid, "", d, "manifest %s references %s, which the bill of materials does not list", d, c.Digest)
			}
		}
	}
	var lost []string
	for _, art := range bom.Artifacts {
		for _, d := range art.Blobs {
			if _, expected := bom.ExpectedBlob(d); !a.present[d] && !expected {
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
	for _, b := range a.set.BOM().Blobs {
		if a.present[b.Digest] || a.hasProblem(b.Digest) || contains(a.split, b.Digest) {
			continue
		}
		where := archive.DescribeVolumes(a.set.Where(b.Digest))
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
		kind, why := problemMissing, "which was not given"
		if a.failed > 0 {
			kind, why = problemInvalid, "or in a volume that failed verification"
		}
		a.problem(kind, "", g.first, "%d blob(s), %d bytes, are not in the volumes given (first %s); they belong in %s, %s", g.count, g.bytes, g.first, where, why)
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

// images checks the signatures of every image of the archive under policy,
// reading the signature artifacts through the set. An image whose
// signatures are in a volume not given is missing, not failed.
func (a *archiveCheck) images(ctx context.Context, policy ImagePolicy) error {
	bom := a.set.BOM()
	sigs := ImageSignatures(bom)
	blobs := BlobFunc(a.set.Open)
	for _, img := range bom.Artifacts {
		if img.Kind != manifest.KindImage {
			continue
		}
		if expectedAtDestination(bom, sigs[img.Digest]) {
			a.report.ImagesAtDestination = append(a.report.ImagesAtDestination, img.Name)
			continue
		}
		rec, err := CheckImage(ctx, img, sigs[img.Digest], blobs, policy.Keys)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			a.problem(kindOf(err), "", img.Digest, "image %s: its signatures cannot be checked: %v", img.Name, err)
			continue
		}
		if rec.Status == manifest.SignatureFailed && unavailable(sigs[img.Digest], a.set.Has) {
			a.problem(problemMissing, "", img.Digest, "image %s: its signatures cannot be checked: some of their blobs are in volumes not given", img.Name)
			continue
		}
		a.report.Images = append(a.report.Images, rec)
		if policy.Refuses(rec.Status) {
			a.problem(problemInvalid, "", img.Digest, "image %s: %s", img.Name, Refusal(rec))
		}
	}
	return nil
}

// unavailable reports whether a blob of the signature artifacts is not
// readable from the volumes given.
// expectedAtDestination reports whether a blob of the signature artifacts
// is one a delta archive leaves at the destination.
func expectedAtDestination(bom *manifest.BOM, sigs []manifest.Artifact) bool {
	for _, s := range sigs {
		for _, d := range s.Blobs {
			if _, ok := bom.ExpectedBlob(d); ok {
				return true
			}
		}
	}
	return false
}

func unavailable(sigs []manifest.Artifact, has func(string) (bool, string)) bool {
	for _, s := range sigs {
		for _, d := range s.Blobs {
			if ok, _ := has(d); !ok {
				return true
			}
		}
	}
	return false
}
