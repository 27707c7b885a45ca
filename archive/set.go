package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/ferrytool/ferry/internal/digestio"
	"github.com/ferrytool/ferry/manifest"
)

// SetOptions configure OpenSet.
type SetOptions struct {
	// Verifier checks the bill of materials' signature and every volume
	// index's seal. Required.
	Verifier Verifier
	// StageDir is where parts of split blobs wait for the volumes that hold
	// the other parts (Stage); a folder per archive is made inside. Empty
	// means parts are joined only from the volumes given.
	StageDir string
	// OnRead is called with the number of compressed bytes just read from
	// a volume.
	OnRead func(path string, n int64)
}

// Set is the one way into a set of volumes. OpenSet checks the bill of
// materials' signature before it reads anything else, then each volume's
// index seal before the index, then every index entry against the signed
// bill of materials and that the volume holds nothing the index does not
// account for. From then on it hands out verified reads.
//
// A volume that fails a check is kept in Volumes with its error and serves
// nothing; the callers decide what that means for them.
type Set struct {
	opts      SetOptions
	bom       *manifest.BOM
	bomRaw    []byte
	sig       []byte
	bomDigest string
	blobs     map[string]manifest.Blob
	vols      []*setVolume      // sorted by number, failed ones last
	whole     map[string]partAt // whole blobs: the first volume given that holds each
	parts     map[string][]partAt
}

// SetVolume is one volume given to OpenSet.
type SetVolume struct {
	Path string `json:"path"`
	// Number is 0 when the volume's index could not be trusted.
	Number int   `json:"number,omitempty"`
	Final  bool  `json:"final,omitempty"`
	Size   int64 `json:"size"`
	Blobs  int   `json:"blobs"`
	Parts  int   `json:"parts"`
	// Err says why the volume serves nothing; nil when it verified.
	Err error `json:"-"`
	// Tampered says what the volume holds besides what its sealed index
	// accounts for (stray entries, data between frames or after the end).
	// The entries the index names still verify one by one and are served.
	Tampered error `json:"-"`
}

type setVolume struct {
	SetVolume
	f       *os.File
	r       io.ReaderAt
	meta    VolumeMeta
	entries []Entry
}

// partAt is an entry in a volume of the set: a whole blob or a part.
type partAt struct {
	vol   *setVolume
	entry Entry
}

// OpenSet opens the volumes at paths. It fails only when no bill of
// materials can be trusted: no volume readable, or the signature does not
// verify; every other problem is the failing volume's Err.
func OpenSet(ctx context.Context, paths []string, opts SetOptions) (*Set, error) {
	if opts.Verifier == nil {
		return nil, fmt.Errorf("%w: no public key given to verify the archive", ErrSignature)
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("%w: no volume given", ErrNotFound)
	}
	s := &Set{opts: opts, whole: map[string]partAt{}, parts: map[string][]partAt{}}
	var firstErr error
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			s.Close()
			return nil, err
		}
		v := s.openFile(p)
		s.vols = append(s.vols, v)
		if v.Err != nil {
			firstErr = cmpErr(firstErr, v.Err)
			continue
		}
		if err := s.adoptBOM(ctx, v); err != nil {
			if ctx.Err() != nil {
				s.Close()
				return nil, ctx.Err()
			}
			v.Err = err
			firstErr = cmpErr(firstErr, err)
		}
	}
	if s.bom == nil {
		s.Close()
		return nil, firstErr
	}
	byNumber := map[int]*setVolume{}
	for _, v := range s.vols {
		if v.Err != nil {
			continue
		}
		if err := s.openIndex(ctx, v); err != nil {
			if ctx.Err() != nil {
				s.Close()
				return nil, ctx.Err()
			}
			v.Err = fmt.Errorf("%s: %w", v.Path, err)
			continue
		}
		if other, dup := byNumber[v.Number]; dup {
			v.Err = fmt.Errorf("%w: %s and %s are both volume %d", ErrFormat, other.Path, v.Path, v.Number)
			continue
		}
		byNumber[v.Number] = v
	}
	sort.SliceStable(s.vols, func(i, j int) bool {
		a, b := s.vols[i], s.vols[j]
		if (a.Err == nil) != (b.Err == nil) {
			return a.Err == nil
		}
		return a.Number < b.Number
	})
	for _, v := range s.vols {
		if v.Err != nil {
			continue
		}
		for _, e := range v.entries {
			if e.Part == nil {
				if _, ok := s.whole[e.Digest]; !ok {
					s.whole[e.Digest] = partAt{vol: v, entry: e}
				}
				continue
			}
			s.parts[e.Digest] = append(s.parts[e.Digest], partAt{vol: v, entry: e})
		}
	}
	return s, nil
}

// cmpErr keeps the first error, preferring a signature failure, which says
// the most about what is wrong.
func cmpErr(first, err error) error {
	if first == nil || (errors.Is(err, ErrSignature) && !errors.Is(first, ErrSignature)) {
		return err
	}
	return first
}

// unreadableError is a volume file that cannot be opened or read: it counts
// as a missing volume, and its text is the file system's own.
type unreadableError struct {
	path string
	err  error
}

func (e *unreadableError) Error() string        { return e.err.Error() }
func (e *unreadableError) Unwrap() error        { return e.err }
func (e *unreadableError) Is(target error) bool { return target == ErrNotFound }

func (s *Set) openFile(path string) *setVolume {
	v := &setVolume{SetVolume: SetVolume{Path: path}}
	f, err := os.Open(path)
	if err != nil {
		v.Err = &unreadableError{path: path, err: err}
		return v
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		v.Err = &unreadableError{path: path, err: fmt.Errorf("%s: %w", path, err)}
		return v
	}
	if !st.Mode().IsRegular() {
		f.Close()
		v.Err = fmt.Errorf("%w: %s is not a regular file", ErrFormat, path)
		return v
	}
	v.f, v.Size, v.r = f, st.Size(), f
	if s.opts.OnRead != nil {
		v.r = countingReaderAt{r: f, fn: func(n int64) { s.opts.OnRead(path, n) }}
	}
	return v
}

type countingReaderAt struct {
	r  io.ReaderAt
	fn func(int64)
}

func (c countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.fn(int64(n))
	return n, err
}

// adoptBOM reads a volume's bill of materials; the first one that verifies
// becomes the set's, and every other volume must carry the same bytes.
func (s *Set) adoptBOM(ctx context.Context, v *setVolume) error {
	raw, sig, err := readHead(ctx, io.NewSectionReader(v.r, 0, v.Size))
	if err != nil {
		return fmt.Errorf("%s: %w", v.Path, err)
	}
	if s.bom != nil {
		if bytes.Equal(raw, s.bomRaw) {
			if !bytes.Equal(sig, s.sig) {
				if err := s.opts.Verifier.VerifyBOM(ctx, raw, sig); err != nil {
					return fmt.Errorf("%w: %s: %v", ErrSignature, v.Path, err)
				}
			}
			return nil
		}
		other := "an unsigned archive"
		if s.opts.Verifier.VerifyBOM(ctx, raw, sig) == nil {
			if b, err := manifest.ParseBOM(raw); err == nil {
				other = "archive " + b.ArchiveID
			}
		}
		return fmt.Errorf("%w: %s belongs to %s, not archive %s (bill of materials %s)", ErrForeign, v.Path, other, s.bom.ArchiveID, s.bomDigest)
	}
	if err := s.opts.Verifier.VerifyBOM(ctx, raw, sig); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrSignature, v.Path, err)
	}
	bom, err := manifest.ParseBOM(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", v.Path, err)
	}
	s.bom, s.bomRaw, s.sig, s.bomDigest = bom, raw, sig, digestio.FromBytes(raw)
	s.blobs = make(map[string]manifest.Blob, len(bom.Blobs))
	for _, b := range bom.Blobs {
		s.blobs[b.Digest] = b
	}
	return nil
}

// Close closes every volume file.
func (s *Set) Close() error {
	for _, v := range s.vols {
		if v.f != nil {
			v.f.Close()
		}
	}
	return nil
}

// BOM is the signed bill of materials.
func (s *Set) BOM() *manifest.BOM { return s.bom }

// SignedBOM returns the bill of materials' exact bytes and its signature.
func (s *Set) SignedBOM() (raw, sig []byte) { return s.bomRaw, s.sig }

// BOMDigest is the sha256 of the bill of materials' bytes.
func (s *Set) BOMDigest() string { return s.bomDigest }

// Artifacts lists the signed bill of materials' artifacts.
func (s *Set) Artifacts() []manifest.Artifact { return s.bom.Artifacts }

// Blob returns the bill of materials' record of a digest.
func (s *Set) Blob(digest string) (manifest.Blob, bool) {
	b, ok := s.blobs[digest]
	return b, ok
}

// Volumes lists the volumes given: those that verified by number, then
// those that did not, each with its error.
func (s *Set) Volumes() []SetVolume {
	out := make([]SetVolume, len(s.vols))
	for i, v := range s.vols {
		out[i] = v.SetVolume
	}
	return out
}

// Missing lists the volume numbers below the highest one given that no
// volume given holds, and says whether the last volume was given.
func (s *Set) Missing() (missing []int, lastSeen bool) {
	seen := map[int]bool{}
	last := 0
	for _, v := range s.vols {
		if v.Err != nil {
			continue
		}
		seen[v.Number] = true
		last = max(last, v.Number)
		lastSeen = lastSeen || v.Final
	}
	for n := 1; n < last; n++ {
		if !seen[n] {
			missing = append(missing, n)
		}
	}
	return missing, lastSeen
}

// Contents says what each volume that verified holds, for a Locator.
func (s *Set) Contents() []VolumeContents {
	var out []VolumeContents
	for _, v := range s.vols {
		if v.Err != nil {
			continue
		}
		c := VolumeContents{Number: v.Number, Final: v.Final}
		for _, e := range v.entries {
			if e.Part == nil {
				c.Blobs = append(c.Blobs, e.Digest)
			} else {
				c.Parts = appendOnce(c.Parts, e.Digest)
			}
		}
		out = append(out, c)
	}
	return out
}

func appendOnce(list []string, s string) []string {
	if len(list) > 0 && list[len(list)-1] == s {
		return list
	}
	return append(list, s)
}

// Where names the volumes that hold a blob, or should: exactly for the
// volumes given, from the bill of materials' order for the others.
func (s *Set) Where(digest string) []VolumeRange {
	return NewLocator(s.bom, s.Contents()).Where(digest)
}

// Entries lists what a verified volume's index holds, in volume order.
func (s *Set) Entries(number int) []Entry {
	for _, v := range s.vols {
		if v.Err == nil && v.Number == number {
			return append([]Entry(nil), v.entries...)
		}
	}
	return nil
}

// OpenEntry reads one entry of a verified volume: a whole blob checked
// against the bill of materials, a part against the signed index.
func (s *Set) OpenEntry(ctx context.Context, number int, e Entry) (io.ReadCloser, error) {
	for _, v := range s.vols {
		if v.Err == nil && v.Number == number {
			return s.openEntry(ctx, v, e)
		}
	}
	return nil, fmt.Errorf("%w: volume %d", ErrNotFound, number)
}

func (s *Set) openEntry(ctx context.Context, v *setVolume, e Entry) (io.ReadCloser, error) {
	digest, size := e.Digest, e.Size
	if e.Part != nil {
		digest = e.Part.Digest
	}
	f, err := openFrame(ctx, io.NewSectionReader(v.r, e.Offset, e.Length))
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", v.Path, e.Path, err)
	}
	if f.hdr.Name != e.Path || f.hdr.Size != size {
		f.Close()
		return nil, fmt.Errorf("%w: %s: the index says %s (%d bytes) at offset %d, the frame holds %s (%d bytes)", ErrFormat, v.Path, e.Path, size, e.Offset, f.hdr.Name, f.hdr.Size)
	}
	return newVerifiedEntry(f, digest, size, v.Path+": "+e.Path), nil
}
