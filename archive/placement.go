package archive

import (
	"fmt"

	"github.com/ferrytool/ferry/manifest"
)

// Placement: which volume each blob (or part of one) goes into. The writer
// and CountVolumes decide it with the same code, from sizes alone: every
// entry counts as its bound (entryBound), never as what it compressed to,
// and the lengths of the bill of materials, its signature and index.json
// are rounded up, so a plan made before the collect (with another creation
// time, without the signature) counts the volumes the collect writes.

const (
	// lengthStep rounds the bill of materials' and index.json's lengths.
	lengthStep = 4 << 10
	// sigReserve is the room kept for the signature file; a longer one
	// counts as it is.
	sigReserve = 2 << 10
)

func roundUp(n, step int64) int64 { return (n + step - 1) / step * step }

// layout is what placement depends on besides the blobs.
type layout struct {
	volumeSize int64
	bomLen     int64 // rounded
	indexLen   int64 // rounded
	sigLen     int64
}

func newLayout(volumeSize int64, bomLen, sigLen, indexLen int) layout {
	return layout{
		volumeSize: volumeSize,
		bomLen:     roundUp(int64(bomLen), lengthStep),
		indexLen:   roundUp(int64(indexLen), lengthStep),
		sigLen:     max(int64(sigLen), sigReserve),
	}
}

// header is the most the entries at the head of every volume take.
func (l layout) header() int64 {
	return entryBound(l.bomLen) + entryBound(l.sigLen) + entryBound(int64(len(ociLayoutContent)))
}

// tail is what must stay free for the entries that close a volume holding
// n content entries: index.json, the index database and its seal, the tar
// end marker and the trailer. The database bound is generous on purpose: its pages
// are mostly zeros and its records JSON, both of which compress well, and
// finishVolume checks the real size anyway.
func (l layout) tail(n int) int64 {
	db := int64(64<<10) + l.bomLen + int64(n)*512
	return entryBound(l.indexLen) + entryBound(db) + entryBound(l.sealBound()) + entryBound(1024) + trailerSize
}

// sealBound is the most the index seal takes: the statement, a signature
// as long as the bill of materials', and the JSON around them.
func (l layout) sealBound() int64 { return l.sigLen + 2048 }

// room is how many bytes the next content entry may take in a volume whose
// content entries so far take used bytes (by their bounds) in n entries.
func (l layout) room(used int64, n int) int64 {
	return l.volumeSize - l.header() - used - l.tail(n+1)
}

// freshRoom is the room of an empty volume.
func (l layout) freshRoom() int64 { return l.room(0, 0) }

// fits reports whether a volume holds the head, the tail and a minimal part.
func (l layout) fits() error {
	need := l.header() + l.tail(1) + entryBound(minPart)
	if l.volumeSize < need {
		return fmt.Errorf("%w: %d bytes; this archive's bill of materials and index alone need %d", ErrVolumeSize, l.volumeSize, need)
	}
	return nil
}

// Where a whole blob goes.
const (
	placeHere  = iota // in the current volume
	placeNext         // whole, in a new volume
	placeSplit        // in parts over several volumes
)

func (l layout) placeWhole(size, room int64) int {
	switch {
	case entryBound(size) <= room:
		return placeHere
	case entryBound(size) <= l.freshRoom():
		return placeNext
	}
	return placeSplit
}

// nextPart is the size of the next part of a split blob with remaining
// bytes to go, or 0 when the current volume (holding content entries
// already) has too little room left and the part starts a new volume.
func nextPart(room, remaining int64, content int) int64 {
	n := largestContentWithin(room)
	if n < minPart && content > 0 {
		return 0
	}
	return min(n, remaining)
}

// CountVolumes is how many volumes Write makes of bom with volumes of
// volumeSize (zero: DefaultVolumeSize), by the writer's own placement.
func CountVolumes(bom *manifest.BOM, volumeSize int64) (int, error) {
	if volumeSize == 0 {
		volumeSize = DefaultVolumeSize
	}
	bomBytes, err := bom.Marshal()
	if err != nil {
		return 0, err
	}
	indexJSON, err := ociIndex(bom)
	if err != nil {
		return 0, err
	}
	l := newLayout(volumeSize, len(bomBytes), 0, len(indexJSON))
	if err := l.fits(); err != nil {
		return 0, err
	}
	vols, used, n := 1, int64(0), 0
	add := func(size int64) { used += entryBound(size); n++ }
	next := func() { vols, used, n = vols+1, 0, 0 }
	for _, b := range bom.Blobs {
		switch l.placeWhole(b.Size, l.room(used, n)) {
		case placeNext:
			next()
			fallthrough
		case placeHere:
			add(b.Size)
		case placeSplit:
			for off := int64(0); off < b.Size; {
				part := nextPart(l.room(used, n), b.Size-off, n)
				if part == 0 {
					next()
					continue
				}
				add(part)
				if off += part; off < b.Size {
					next()
				}
			}
		}
	}
	return vols, nil
}
