package manifest

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func validBOM() *BOM {
	b := NewBOM("id", time.Unix(0, 0))
	layer := "sha256:" + strings.Repeat("a", 64)
	man := "sha256:" + strings.Repeat("b", 64)
	b.Blobs = []Blob{{Digest: layer, Size: 10}, {Digest: man, Size: 5, MediaType: MediaTypeOCIManifest}}
	b.Artifacts = []Artifact{{Kind: KindImage, Name: "x", Digest: man, Size: 5, Blobs: []string{layer, man}, Dest: Destination{Repository: "images/x", Tag: "1"}}}
	return b
}

func TestBOMRoundTrip(t *testing.T) {
	data, err := validBOM().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseBOM(data)
	if err != nil {
		t.Fatal(err)
	}
	if s := b.Stats(); s.StoredBytes != 15 || s.LogicalBytes != 15 {
		t.Errorf("stats %+v", s)
	}
}

func TestBOMRejects(t *testing.T) {
	for name, mutate := range map[string]func(*BOM){
		"bad digest":       func(b *BOM) { b.Blobs[0].Digest = "sha256:XYZ" },
		"unlisted blob":    func(b *BOM) { b.Artifacts[0].Blobs = append(b.Artifacts[0].Blobs, "sha256:"+strings.Repeat("c", 64)) },
		"duplicate name":   func(b *BOM) { b.Artifacts = append(b.Artifacts, b.Artifacts[0]) },
		"duplicate blob":   func(b *BOM) { b.Blobs = append(b.Blobs, b.Blobs[0]) },
		"own manifest":     func(b *BOM) { b.Artifacts[0].Blobs = b.Artifacts[0].Blobs[:1] },
		"same destination": func(b *BOM) { a := b.Artifacts[0]; a.Name = "y"; b.Artifacts = append(b.Artifacts, a) },
		"wrong kind":       func(b *BOM) { b.Kind = "Other" },
	} {
		t.Run(name, func(t *testing.T) {
			b := validBOM()
			mutate(b)
			data, _ := b.Marshal()
			if _, err := ParseBOM(data); !errors.Is(err, ErrInvalidBOM) {
				t.Fatalf("err = %v, want ErrInvalidBOM", err)
			}
		})
	}
	if _, err := ParseBOM([]byte(`{"apiVersion":"ferry.dev/v1alpha1","kind":"BillOfMaterials","extra":1}`)); !errors.Is(err, ErrInvalidBOM) {
		t.Fatalf("unknown field accepted: %v", err)
	}
}

// FuzzParseBOM: any input either parses into a bill of materials that
// validates and survives a round trip, or is refused with ErrInvalidBOM.
func FuzzParseBOM(f *testing.F) {
	data, _ := validBOM().Marshal()
	f.Add(data)
	f.Add([]byte(`{}`))
	conv := validBOM()
	conv.Artifacts[0].Mirror = "mirror.example/hub/x"
	conv.Artifacts[0].Converted = []Conversion{{From: "sha256:" + strings.Repeat("d", 64), FromMediaType: MediaTypeDockerManifest, To: conv.Artifacts[0].Digest, MediaType: MediaTypeOCIManifest}}
	data, _ = conv.Marshal()
	f.Add(data)
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBOM(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidBOM) {
				t.Fatalf("error without ErrInvalidBOM: %v", err)
			}
			return
		}
		again, err := b.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseBOM(again); err != nil {
			t.Fatalf("re-parse of a valid bill of materials failed: %v", err)
		}
	})
}

func TestParseBOMRefusesUnsealedVersion(t *testing.T) {
	b := NewBOM("old", time.Unix(1700000000, 0))
	b.APIVersion = "ferry.dev/v1alpha1"
	data, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	_, err = ParseBOM(data)
	if !errors.Is(err, ErrInvalidBOM) || !strings.Contains(err.Error(), "older ferry") {
		t.Fatalf("err = %v, want a refusal naming the older ferry", err)
	}
}
