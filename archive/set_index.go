package archive

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"

	"github.com/ferrytool/ferry/internal/digestio"
	"github.com/ferrytool/ferry/manifest"
)

// openIndex trusts a volume's index only once its bytes are: the seal's
// signature first, then the index bytes decoded into memory (never more
// than the seal says) and compared with the sealed digest, and only then
// opened. Every entry is then checked against the signed bill of materials,
// and the volume's regions against each other, so that nothing hides
// between the frames the index names.
func (s *Set) openIndex(ctx context.Context, v *setVolume) error {
	t, err := readTrailer(v.r, v.Size)
	if err != nil {
		return err
	}
	sealData, err := readSmallFrame(ctx, io.NewSectionReader(v.r, t.sealOffset, t.sealLength), NameIndexSeal, maxSealSize)
	if err != nil {
		return fmt.Errorf("index seal: %w", err)
	}
	st, err := openSeal(ctx, s.opts.Verifier, sealData)
	if err != nil {
		return err
	}
	if st.ArchiveID != s.bom.ArchiveID || st.BOMDigest != s.bomDigest {
		return fmt.Errorf("%w: the index is sealed for archive %s (bill of materials %s), not %s (%s)", ErrForeign, st.ArchiveID, st.BOMDigest, s.bom.ArchiveID, s.bomDigest)
	}
	if st.IndexSize > MaxIndexSize {
		return fmt.Errorf("%w: the index is %d bytes, over the %d byte limit (MaxIndexSize)", ErrLimit, st.IndexSize, MaxIndexSize)
	}
	data, err := readSmallFrame(ctx, io.NewSectionReader(v.r, t.indexOffset, t.indexLength), NameIndexDB, st.IndexSize)
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	if d := digestio.FromBytes(data); int64(len(data)) != st.IndexSize || d != st.IndexDigest {
		return fmt.Errorf("%w: the index (%s, %d bytes) is not the one sealed (%s, %d bytes)", ErrDigest, d, len(data), st.IndexDigest, st.IndexSize)
	}
	ix, err := readIndexDB(data)
	if err != nil {
		return err
	}
	m := ix.Meta
	if m.ArchiveID != st.ArchiveID || m.BOMDigest != st.BOMDigest || m.Volume != st.Volume || m.Final != st.Final {
		return fmt.Errorf("%w: the index says archive %s volume %d, its seal archive %s volume %d", ErrFormat, m.ArchiveID, m.Volume, st.ArchiveID, st.Volume)
	}
	if err := s.checkEntries(ix); err != nil {
		return err
	}
	if err := s.checkRegions(ctx, v, t, m, ix.Entries); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		v.Tampered = fmt.Errorf("%s: %w", v.Path, err)
	}
	v.meta, v.entries, v.Number, v.Final = m, ix.Entries, m.Volume, m.Final
	for _, e := range ix.Entries {
		if e.Part == nil {
			v.Blobs++
		} else {
			v.Parts++
		}
	}
	return nil
}

// checkEntries refuses any entry the signed bill of materials does not
// account for.
func (s *Set) checkEntries(ix *VolumeIndex) error {
	seen := make(map[string]bool, len(ix.Entries))
	for _, e := range ix.Entries {
		b, ok := s.blobs[e.Digest]
		if !ok {
			return fmt.Errorf("%w: the index lists %s, which the bill of materials does not", ErrFormat, e.Digest)
		}
		if seen[e.Path] {
			return fmt.Errorf("%w: the index lists %s twice", ErrFormat, e.Path)
		}
		seen[e.Path] = true
		if e.Part == nil {
			if e.Path != blobName(e.Digest) || e.Size != b.Size {
				return fmt.Errorf("%w: the index lists %s as %s of %d bytes; the bill of materials says %d", ErrFormat, e.Digest, e.Path, e.Size, b.Size)
			}
			continue
		}
		if e.Part.Offset < 0 || e.Size <= 0 || e.Part.Offset+e.Size > b.Size || e.Path != partName(e.Digest, e.Part.Offset) {
			return fmt.Errorf("%w: the index lists part %s of %d bytes, outside blob %s of %d bytes", ErrFormat, e.Path, e.Size, e.Digest, b.Size)
		}
		if manifest.CheckDigest(e.Part.Digest) != nil {
			return fmt.Errorf("%w: part %s has no valid digest", ErrFormat, e.Path)
		}
	}
	return nil
}

// checkRegions checks that the volume is exactly: the head, the frames the
// index names back to back, index.json, the index, its seal, the tar end
// marker and the trailer. Whatever else a volume holds was put there by
// someone other than the key holder, even when every blob verifies.
func (s *Set) checkRegions(ctx context.Context, v *setVolume, t trailer, m VolumeMeta, entries []Entry) error {
	if m.HeadBytes <= 0 || m.EntriesBytes < m.HeadBytes || m.EntriesBytes >= t.indexOffset {
		return fmt.Errorf("%w: the index places its regions outside the volume", ErrFormat)
	}
	for _, e := range entries {
		if e.Offset < m.HeadBytes || e.Length <= 0 || e.Offset+e.Length > m.EntriesBytes {
			return fmt.Errorf("%w: the index places %s outside the volume's blob region", ErrFormat, e.Path)
		}
	}
	sorted := append([]Entry(nil), entries...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Offset < sorted[j].Offset })
	next := m.HeadBytes
	for _, e := range sorted {
		if e.Offset != next || e.Length <= 0 {
			return fmt.Errorf("%w: %d bytes at offset %d that no index entry accounts for (before %s)", ErrFormat, e.Offset-next, next, e.Path)
		}
		next = e.Offset + e.Length
	}
	if next != m.EntriesBytes {
		return fmt.Errorf("%w: %d bytes at offset %d that no index entry accounts for", ErrFormat, m.EntriesBytes-next, next)
	}
	if err := checkHead(ctx, io.NewSectionReader(v.r, 0, m.HeadBytes), s.bomRaw, s.sig); err != nil {
		return fmt.Errorf("head: %w", err)
	}
	want, err := ociIndex(s.bom)
	if err != nil {
		return err
	}
	got, err := readSmallFrame(ctx, io.NewSectionReader(v.r, m.EntriesBytes, t.indexOffset-m.EntriesBytes), NameIndexJSON, int64(len(want)))
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("%w: %s does not match the bill of materials", ErrFormat, NameIndexJSON)
	}
	end := t.sealOffset + t.sealLength
	return checkEndMarker(ctx, io.NewSectionReader(v.r, end, v.Size-trailerSize-end))
}
