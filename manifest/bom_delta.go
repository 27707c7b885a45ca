package manifest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"time"
)

// ReceiptRef names a receipt a delta archive was collected against: what
// the air-gapped side said it held, and so what the archive leaves out.
type ReceiptRef struct {
	// Digest is the sha256 of the receipt document's canonical bytes (the
	// bytes its signature covers).
	Digest      string    `json:"digest"`
	Destination string    `json:"destination"`
	Created     time.Time `json:"created"`
	// SignedBy is the id of the key that signed the receipt.
	SignedBy string `json:"signedBy,omitempty"`
}

// Ref names the receipt as a delta archive records it.
func (r *Receipt) Ref() (ReceiptRef, error) {
	doc, err := r.Marshal()
	if err != nil {
		return ReceiptRef{}, err
	}
	sum := sha256.Sum256(doc)
	return ReceiptRef{Digest: "sha256:" + hex.EncodeToString(sum[:]), Destination: r.Destination, Created: r.Created.UTC(), SignedBy: r.SignedBy}, nil
}

// String names the receipt in a message: its digest, destination and date.
func (r ReceiptRef) String() string {
	return fmt.Sprintf("receipt %s of %s (written %s)", r.Digest, r.Destination, r.Created.UTC().Format(time.RFC3339))
}

// Delta reports whether the archive leaves out what a destination holds.
func (b *BOM) Delta() bool { return len(b.Since) > 0 }

// Destination returns the destination a delta archive was collected for;
// "" for a full archive, which fits any.
func (b *BOM) Destination() string {
	if len(b.Since) == 0 {
		return ""
	}
	return b.Since[0].Destination
}

// ExpectedBlob returns the record of a digest the archive leaves out.
func (b *BOM) ExpectedBlob(digest string) (ExpectedBlob, bool) {
	i := sort.Search(len(b.Expected), func(i int) bool { return b.Expected[i].Digest >= digest })
	if i < len(b.Expected) && b.Expected[i].Digest == digest {
		return b.Expected[i], true
	}
	return ExpectedBlob{}, false
}

// ExpectedFrom names the receipt an expected blob was listed in.
func (b *BOM) ExpectedFrom(e ExpectedBlob) ReceiptRef {
	if e.Receipt < 0 || e.Receipt >= len(b.Since) {
		return ReceiptRef{}
	}
	return b.Since[e.Receipt]
}

// ApplyDelta turns a full bill of materials into the delta the plan
// describes: the blobs to carry stay, the others become expected, and the
// receipts are recorded. The archive id, which derives from the content,
// is left to the caller to set again.
func (b *BOM) ApplyDelta(p *DeltaPlan, refs []ReceiptRef) error {
	if len(refs) == 0 {
		return fmt.Errorf("%w: a delta names no receipt", ErrInvalidBOM)
	}
	b.Blobs = append([]Blob{}, p.Carry...)
	b.Expected = append([]ExpectedBlob{}, p.Expected...)
	b.Since = append([]ReceiptRef{}, refs...)
	return b.Validate()
}

// validateDelta checks Since and Expected and adds the expected digests to
// blobs, the set an artifact's closure must be made of.
func (b *BOM) validateDelta(blobs map[string]bool) error {
	for i, r := range b.Since {
		if err := CheckDigest(r.Digest); err != nil {
			return fmt.Errorf("%w: receipt %d: %v", ErrInvalidBOM, i+1, err)
		}
		if r.Destination == "" || r.Destination != b.Since[0].Destination {
			return fmt.Errorf("%w: receipt %s is of destination %q, receipt %s of %q: a delta is for one destination",
				ErrInvalidBOM, r.Digest, r.Destination, b.Since[0].Digest, b.Since[0].Destination)
		}
	}
	if len(b.Expected) > 0 && len(b.Since) == 0 {
		return fmt.Errorf("%w: %d blobs expected at the destination but no receipt named", ErrInvalidBOM, len(b.Expected))
	}
	for i, e := range b.Expected {
		if err := CheckDigest(e.Digest); err != nil {
			return fmt.Errorf("%w: expected blob %d: %v", ErrInvalidBOM, i, err)
		}
		if e.Size < 0 {
			return fmt.Errorf("%w: expected blob %s has negative size %d", ErrInvalidBOM, e.Digest, e.Size)
		}
		if i > 0 && b.Expected[i-1].Digest >= e.Digest {
			return fmt.Errorf("%w: expected blob %s out of order or listed twice", ErrInvalidBOM, e.Digest)
		}
		if blobs[e.Digest] {
			return fmt.Errorf("%w: blob %s is both carried and expected at the destination", ErrInvalidBOM, e.Digest)
		}
		if e.Receipt < 0 || e.Receipt >= len(b.Since) {
			return fmt.Errorf("%w: expected blob %s names receipt %d of %d", ErrInvalidBOM, e.Digest, e.Receipt+1, len(b.Since))
		}
	}
	for _, e := range b.Expected {
		blobs[e.Digest] = true
	}
	return nil
}
