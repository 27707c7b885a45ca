package manifest

import (
	"fmt"
	"sort"
)

// DeltaPlan says what of a bill of materials a destination already holds,
// by its receipts, and so what an archive for it must carry. It is pure: the
// receipts are trusted because the caller checked their signatures.
type DeltaPlan struct {
	// Present names the artifacts the destination holds already, at the
	// same repository and tag with the same manifest: nothing of them
	// travels.
	Present []string `json:"present"`
	// Expected lists, sorted by digest, every blob and manifest of the bill
	// of materials that stays out of the archive because a receipt lists it.
	Expected []ExpectedBlob `json:"expected"`
	// Carry lists the blobs the archive must carry, in the bill of
	// materials' order, so children still come before their parents.
	Carry []Blob `json:"carry"`
	// Full is every blob of the bill of materials; Delta is what Carry
	// holds.
	Full  Transfer `json:"full"`
	Delta Transfer `json:"delta"`
	// SavedPresent is what artifacts already present would have carried;
	// SavedShared is what other artifacts share with what the destination
	// holds (base layers, unchanged child manifests).
	SavedPresent Transfer `json:"savedPresent"`
	SavedShared  Transfer `json:"savedShared"`
}

// ExpectedBlob is one blob left out of a delta archive.
type ExpectedBlob struct {
	Digest   string `json:"digest"`
	Size     int64  `json:"size"`
	Manifest bool   `json:"manifest,omitempty"`
	// Repositories are where the destination holds it, sorted: where the
	// air-gapped side checks for it or mounts it from. A manifest cannot
	// be mounted; it is copied within the destination instead.
	Repositories []string `json:"repositories"`
	// Receipt is the position, in the list given to PlanDelta, of the first
	// receipt that lists it, so a refusal can name the receipt.
	Receipt int `json:"receipt"`
}

// PlanDelta compares a bill of materials with what receipts of one
// destination say it holds. Receipts of different destinations are an
// error: what one registry holds says nothing of another.
func PlanDelta(b *BOM, receipts ...*Receipt) (*DeltaPlan, error) {
	for i, r := range receipts {
		if r.Destination != receipts[0].Destination {
			return nil, fmt.Errorf("%w: receipt %d is of %s, receipt 1 of %s", ErrInvalidReceipt, i+1, r.Destination, receipts[0].Destination)
		}
	}
	p := &DeltaPlan{Present: []string{}, Expected: []ExpectedBlob{}, Carry: []Blob{}}
	held := map[string]string{} // destination key -> manifest digest
	for _, r := range receipts {
		for _, a := range r.Artifacts {
			held[a.Key()] = a.Digest
		}
	}
	// onlyPresent is set for blobs that no absent artifact needs.
	onlyPresent := map[string]bool{}
	needed := map[string]bool{}
	for _, a := range b.Artifacts {
		key := a.Dest.Key(a.Digest)
		present := a.Dest.Repository != "" && held[key] == a.Digest
		if present {
			p.Present = append(p.Present, a.Name)
		}
		for _, d := range a.Blobs {
			if present && !needed[d] {
				onlyPresent[d] = true
			}
			if !present {
				needed[d] = true
				delete(onlyPresent, d)
			}
		}
	}
	sort.Strings(p.Present)
	for _, bl := range b.Blobs {
		p.Full.add(bl.Size)
		exp, ok := expected(bl, receipts)
		if !ok {
			p.Carry = append(p.Carry, bl)
			p.Delta.add(bl.Size)
			continue
		}
		p.Expected = append(p.Expected, exp)
		if onlyPresent[bl.Digest] {
			p.SavedPresent.add(bl.Size)
		} else {
			p.SavedShared.add(bl.Size)
		}
	}
	sort.Slice(p.Expected, func(i, j int) bool { return p.Expected[i].Digest < p.Expected[j].Digest })
	return p, nil
}

// expected finds a blob in the receipts, with every repository that holds
// it.
func expected(bl Blob, receipts []*Receipt) (ExpectedBlob, bool) {
	exp := ExpectedBlob{Digest: bl.Digest, Size: bl.Size, Receipt: -1}
	repos := map[string]bool{}
	for i, r := range receipts {
		hb, ok := r.Blob(bl.Digest)
		if !ok || hb.Size != bl.Size {
			// A size that disagrees with the digest's is a broken record;
			// carrying the blob is the safe answer.
			continue
		}
		if exp.Receipt < 0 {
			exp.Receipt = i
		}
		exp.Manifest = exp.Manifest || hb.Manifest
		for _, repo := range r.Repositories(bl.Digest) {
			repos[repo] = true
		}
	}
	if exp.Receipt < 0 {
		return ExpectedBlob{}, false
	}
	exp.Repositories = sortedSet(repos)
	return exp, true
}
