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
