package manifest

import "sort"

// Inventory is one side of a diff: artifacts at their destinations with
// their closures, and what every blob it holds weighs. Bills of materials and
// receipts both reduce to one, so any two of them compare.
type Inventory struct {
	Artifacts []InventoryArtifact
	// Sizes holds the size of every blob the side holds or lists.
	Sizes map[string]int64
}

// InventoryArtifact is one artifact of an inventory.
type InventoryArtifact struct {
	// Kind and Name are known for a bill of materials, empty for a receipt.
	Kind   ArtifactKind
	Name   string
	Dest   Destination
	Digest string
	// Blobs is the artifact's closure, its own manifest included.
	Blobs []string
}

// BOMInventory is what a bill of materials carries.
func BOMInventory(b *BOM) Inventory {
	inv := Inventory{Sizes: make(map[string]int64, len(b.Blobs))}
	for _, bl := range b.Blobs {
		inv.Sizes[bl.Digest] = bl.Size
	}
	for _, e := range b.Expected {
		inv.Sizes[e.Digest] = e.Size
	}
	for _, a := range b.Artifacts {
		inv.Artifacts = append(inv.Artifacts, InventoryArtifact{Kind: a.Kind, Name: a.Name, Dest: a.Dest, Digest: a.Digest, Blobs: a.Blobs})
	}
	return inv
}

// ReceiptInventory is what a receipt says its destination holds.
func ReceiptInventory(r *Receipt) Inventory {
	inv := Inventory{Sizes: r.sizes()}
	for _, a := range r.Artifacts {
		inv.Artifacts = append(inv.Artifacts, InventoryArtifact{Dest: Destination{Repository: a.Repository, Tag: a.Tag}, Digest: a.Digest, Blobs: a.Blobs})
	}
	return inv
}

// DiffReport says how B differs from A.
type DiffReport struct {
	// Added are destinations only B fills; Removed only A; Changed both,
	// with another manifest.
	Added   []ArtifactDiff `json:"added"`
	Removed []ArtifactDiff `json:"removed"`
	Changed []ArtifactDiff `json:"changed"`
	// Unchanged counts destinations both fill with the same manifest.
	Unchanged int `json:"unchanged"`
	// Travel is what would cross to bring a holder of A to B: every blob
	// B's artifacts need that A lacks, each counted once.
	Travel Transfer `json:"travel"`
	// Full is everything B's artifacts need, each blob counted once.
	Full Transfer `json:"full"`
}

// ArtifactDiff is one destination that differs.
type ArtifactDiff struct {
	// Destination is repository:tag, or repository@digest for a manifest
	// held by digest only.
	Destination string       `json:"destination"`
	Kind        ArtifactKind `json:"kind,omitempty"`
	Name        string       `json:"name,omitempty"`
	// From is the manifest in A, To the one in B.
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// New is what of the artifact in B is not in A. Blobs shared between
	// artifacts count in each of them.
	New Transfer `json:"new,omitzero"`
}

// Transfer counts blobs and their bytes.
type Transfer struct {
	Blobs int   `json:"blobs"`
	Bytes int64 `json:"bytes"`
}

func (t *Transfer) add(size int64) {
	t.Blobs++
	t.Bytes += size
}

// Diff compares two inventories by destination. It is pure and its output
// is sorted by destination, so the same inputs always give the same report.
func Diff(a, b Inventory) *DiffReport {
	rep := &DiffReport{Added: []ArtifactDiff{}, Removed: []ArtifactDiff{}, Changed: []ArtifactDiff{}}
	inA := make(map[string]InventoryArtifact, len(a.Artifacts))
	for _, x := range a.Artifacts {
		inA[x.Dest.Key(x.Digest)] = x
	}
	inB := make(map[string]bool, len(b.Artifacts))
	newBlobs := func(x InventoryArtifact) Transfer {
		var t Transfer
		for _, d := range x.Blobs {
			if _, held := a.Sizes[d]; !held {
				t.add(b.Sizes[d])
			}
		}
		return t
	}
	counted := map[string]bool{}
	for _, y := range b.Artifacts {
		key := y.Dest.Key(y.Digest)
		inB[key] = true
		for _, d := range y.Blobs {
			if counted[d] {
				continue
			}
			counted[d] = true
			rep.Full.add(b.Sizes[d])
			if _, held := a.Sizes[d]; !held {
				rep.Travel.add(b.Sizes[d])
			}
		}
		x, ok := inA[key]
		switch {
		case !ok:
			rep.Added = append(rep.Added, ArtifactDiff{Destination: key, Kind: y.Kind, Name: y.Name, To: y.Digest, New: newBlobs(y)})
		case x.Digest != y.Digest:
			rep.Changed = append(rep.Changed, ArtifactDiff{Destination: key, Kind: kindOf(x, y), Name: nameOf(x, y), From: x.Digest, To: y.Digest, New: newBlobs(y)})
		default:
			rep.Unchanged++
		}
	}
	for _, x := range a.Artifacts {
		key := x.Dest.Key(x.Digest)
		if !inB[key] {
			rep.Removed = append(rep.Removed, ArtifactDiff{Destination: key, Kind: x.Kind, Name: x.Name, From: x.Digest})
		}
	}
	for _, list := range [][]ArtifactDiff{rep.Added, rep.Removed, rep.Changed} {
		sort.Slice(list, func(i, j int) bool { return list[i].Destination < list[j].Destination })
	}
	return rep
}

// kindOf and nameOf prefer B's description, falling back to A's when B is
// a receipt, which knows neither.
func kindOf(x, y InventoryArtifact) ArtifactKind {
	if y.Kind != "" {
		return y.Kind
	}
	return x.Kind
}

func nameOf(x, y InventoryArtifact) string {
	if y.Name != "" {
		return y.Name
	}
	return x.Name
}
