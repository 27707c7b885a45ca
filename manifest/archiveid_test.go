package manifest

import (
	"testing"
	"time"
)

func TestContentArchiveID(t *testing.T) {
	id, err := ContentArchiveID(fakeBOM(t, "random-1", month2))
	if err != nil {
		t.Fatal(err)
	}
	// The id a bill of materials already has does not matter.
	again, err := ContentArchiveID(fakeBOM(t, "random-2", month2))
	if err != nil {
		t.Fatal(err)
	}
	if id != again || len(id) != 32 {
		t.Errorf("ids %q and %q for the same content", id, again)
	}
	other := fakeBOM(t, "random-1", month2)
	other.Created = other.Created.Add(time.Second)
	for name, b := range map[string]*BOM{"content": fakeBOM(t, "random-1", month1), "created": other} {
		d, err := ContentArchiveID(b)
		if err != nil {
			t.Fatal(err)
		}
		if d == id {
			t.Errorf("another %s gives the same id %s", name, d)
		}
	}
}
