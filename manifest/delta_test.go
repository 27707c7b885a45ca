package manifest

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestPlanDeltaDayTwo(t *testing.T) {
	bom1, bom2 := fakeBOM(t, "month-1", month1), fakeBOM(t, "month-2", month2)
	p, err := PlanDelta(bom2, fakeReceipt(t, month1))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"cache", "db"}; !reflect.DeepEqual(p.Present, want) {
		t.Errorf("present %v, want %v", p.Present, want)
	}
	// Independently: carry what month 1 did not bring, in month 2's order.
	var carry []Blob
	var delta Transfer
	for _, bl := range bom2.Blobs {
		if _, ok := bom1.Blob(bl.Digest); !ok {
			carry = append(carry, bl)
			delta.add(bl.Size)
		}
	}
	if !reflect.DeepEqual(p.Carry, carry) {
		t.Errorf("carry %v\nwant %v", p.Carry, carry)
	}
	if p.Delta != delta || p.Full.Bytes != bom2.Stats().StoredBytes {
		t.Errorf("delta %+v full %+v, want %+v of %d", p.Delta, p.Full, delta, bom2.Stats().StoredBytes)
	}
	if p.SavedPresent.Bytes+p.SavedShared.Bytes != p.Full.Bytes-p.Delta.Bytes {
		t.Errorf("saved %+v + %+v is not full %+v less delta %+v", p.SavedPresent, p.SavedShared, p.Full, p.Delta)
	}
	// The base layer is shared with new artifacts; the cache layer only
	// serves an artifact already present.
	for _, e := range p.Expected {
		switch e.Digest {
		case dg("base"):
			if want := []string{"images/app", "images/db", "images/web"}; !reflect.DeepEqual(e.Repositories, want) {
				t.Errorf("base layer held in %v, want %v", e.Repositories, want)
			}
		case dg(manifestOf(month2[3])):
			if !e.Manifest || e.Receipt != 0 {
				t.Errorf("db manifest expected as %+v", e)
			}
		}
	}
	if p.SavedPresent.Bytes < sizeOf("cache-7") || p.SavedShared.Bytes < sizeOf("base") {
		t.Errorf("saved present %+v shared %+v", p.SavedPresent, p.SavedShared)
	}

	// Two receipts of the same destination add up; the second names where
	// what only it lists came from.
	var app []fakeArtifact
	for _, f := range month1 {
		if f.name == "app" {
			app = append(app, f)
		}
	}
	onlyApp, rest := fakeReceipt(t, app), fakeReceipt(t, month1[2:])
	two, err := PlanDelta(bom2, onlyApp, rest)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(two.Carry, p.Carry) {
		t.Errorf("two receipts carry %v, one receipt %v", two.Carry, p.Carry)
	}
	for _, e := range two.Expected {
		if e.Digest == dg("db-5") && e.Receipt != 1 {
			t.Errorf("db layer expected from receipt %d, want 1", e.Receipt)
		}
	}

	// Nothing held: everything travels.
	none, err := PlanDelta(bom2)
	if err != nil {
		t.Fatal(err)
	}
	if none.Delta != none.Full || len(none.Expected) != 0 {
		t.Errorf("with no receipt: %+v", none)
	}

	other, err := NewReceipt("elsewhere:5000/base", time.Unix(0, 0), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := PlanDelta(bom2, fakeReceipt(t, month1), other); !errors.Is(err, ErrInvalidReceipt) {
		t.Errorf("receipts of two destinations: err = %v", err)
	}
}

func TestApplyDeltaKeepsEveryClosure(t *testing.T) {
	bom2 := fakeBOM(t, "month-2", month2)
	r := fakeReceipt(t, month1)
	p, err := PlanDelta(bom2, r)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := r.Ref()
	if err != nil {
		t.Fatal(err)
	}
	delta := *bom2
	if err := delta.ApplyDelta(p, []ReceiptRef{ref}); err != nil {
		t.Fatal(err)
	}
	// Every artifact's blob is carried or expected, once; the document
	// reads back as it was written.
	for _, a := range delta.Artifacts {
		for _, d := range a.Blobs {
			_, carried := delta.Blob(d)
			_, expected := delta.ExpectedBlob(d)
			if carried == expected {
				t.Errorf("%s: blob %s carried %v, expected %v", a.Name, d, carried, expected)
			}
		}
	}
	data, err := delta.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseBOM(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Expected, delta.Expected) || !reflect.DeepEqual(back.Since, delta.Since) || back.Destination() != r.Destination {
		t.Errorf("read back expected %v since %v", back.Expected, back.Since)
	}
	// The holdings of a delta, once it is in, name the expected manifests
	// as manifests, with their sizes.
	for _, h := range BOMHoldings(&delta) {
		for _, b := range h.Blobs {
			if e, ok := delta.ExpectedBlob(b.Digest); ok && (e.Manifest || e.Size != b.Size) {
				t.Errorf("%s: expected %+v held as blob %+v", h.Repository, e, b)
			}
		}
	}

	for name, edit := range map[string]func(b *BOM){
		"carried and expected": func(b *BOM) { b.Blobs = append(b.Blobs, Blob{Digest: b.Expected[0].Digest, Size: b.Expected[0].Size}) },
		"neither":              func(b *BOM) { b.Expected = b.Expected[1:] },
		"no receipt":           func(b *BOM) { b.Since = nil },
		"unknown receipt":      func(b *BOM) { b.Expected[0].Receipt = 3 },
		"two destinations": func(b *BOM) {
			b.Since = append(b.Since, ReceiptRef{Digest: ref.Digest, Destination: "elsewhere:5000"})
		},
	} {
		c := delta
		c.Blobs = append([]Blob(nil), delta.Blobs...)
		c.Expected = append([]ExpectedBlob(nil), delta.Expected...)
		c.Since = append([]ReceiptRef(nil), delta.Since...)
		edit(&c)
		if err := c.Validate(); !errors.Is(err, ErrInvalidBOM) {
			t.Errorf("%s: Validate = %v", name, err)
		}
	}
}
