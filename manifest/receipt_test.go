package manifest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// dg makes a distinct, valid digest from a name.
func dg(name string) string {
	return fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(name)))
}

func blob(name string, size int64) Blob { return Blob{Digest: dg(name), Size: size} }

func sampleHoldings() []Holding {
	return []Holding{
		{Repository: "images/app", Tag: "2.0", Manifest: blob("app-2.0", 500),
			Blobs: []Blob{blob("base", 3000), blob("app-layer-2", 700), blob("app-cfg-2", 40)}},
		{Repository: "images/app", Tag: "1.0", Manifest: blob("app-1.0", 500),
			Blobs: []Blob{blob("base", 3000), blob("app-layer-1", 600), blob("app-cfg-1", 40)}},
		// A multi-platform index: the child manifests are manifests too.
		{Repository: "images/tool", Tag: "1", Manifest: blob("tool-index", 300),
			Manifests: []Blob{blob("tool-amd64", 400), blob("tool-arm64", 400)},
			Blobs:     []Blob{blob("base", 3000), blob("tool-cfg", 30)}},
		{Repository: "images/tool", Manifest: blob("tool-amd64", 400),
			Blobs: []Blob{blob("base", 3000), blob("tool-cfg", 30)}},
	}
}

func sampleReceipt(t *testing.T) *Receipt {
	t.Helper()
	archives := []ReceivedArchive{{ArchiveID: "month-2", BOMDigest: dg("bom-2")}, {ArchiveID: "month-1", BOMDigest: dg("bom-1")}}
	r, err := NewReceipt("zot.local:30003/spectro-content", time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC), archives, sampleHoldings())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestReceiptRoundTrip(t *testing.T) {
	r := sampleReceipt(t)
	r.SignedBy = dg("key")
	data, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseReceipt(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r, back) {
		t.Errorf("round trip changed the receipt:\n got %+v\nwant %+v", back, r)
	}
	if n := len(r.Blobs); n != 11 {
		t.Errorf("%d blobs, want 11 (each digest once)", n)
	}
	if n := len(r.Artifacts); n != 4 {
		t.Errorf("%d artifacts, want 4", n)
	}
	for _, b := range r.Blobs {
		want := (b.Digest == dg("tool-index") || b.Digest == dg("tool-amd64") ||
			b.Digest == dg("tool-arm64") || b.Digest == dg("app-1.0") || b.Digest == dg("app-2.0"))
		if b.Manifest != want {
			t.Errorf("blob %s: manifest %v, want %v", b.Digest, b.Manifest, want)
		}
	}
	if got := r.Repositories(dg("base")); !reflect.DeepEqual(got, []string{"images/app", "images/tool"}) {
		t.Errorf("repositories holding the base layer: %v", got)
	}
	if got := r.Repositories(dg("nowhere")); got != nil {
		t.Errorf("repositories holding an absent blob: %v", got)
	}
	s := r.Stats()
	if s.StoredBytes != 3000+700+40+600+40+500+500+300+400+400+30 || s.Artifacts != 4 {
		t.Errorf("stats %+v", s)
	}
}

// The signed bytes depend only on what is held, never on the order the
// caller found it in.
func TestReceiptCanonical(t *testing.T) {
	want, err := sampleReceipt(t).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	hs := sampleHoldings()
	for i, j := 0, len(hs)-1; i < j; i, j = i+1, j-1 {
		hs[i], hs[j] = hs[j], hs[i]
	}
	for i := range hs {
		b := hs[i].Blobs
		for x, y := 0, len(b)-1; x < y; x, y = x+1, y-1 {
			b[x], b[y] = b[y], b[x]
		}
	}
	// The same tag found twice merges.
	hs = append(hs, hs[0])
	archives := []ReceivedArchive{{ArchiveID: "month-1", BOMDigest: dg("bom-1")}, {ArchiveID: "month-2", BOMDigest: dg("bom-2")}}
	r, err := NewReceipt("zot.local:30003/spectro-content", time.Date(2026, 11, 1, 13, 0, 0, 0, time.FixedZone("x", 3600)), archives, hs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("same holdings in another order encode differently:\n%s\n%s", got, want)
	}
}

func TestNewReceiptRejects(t *testing.T) {
	for name, mutate := range map[string]func([]Holding) []Holding{
		"two sizes": func(hs []Holding) []Holding {
			hs[1].Blobs[0].Size++
			return hs
		},
		"manifest and blob": func(hs []Holding) []Holding {
			hs[0].Blobs = append(hs[0].Blobs, hs[1].Manifest)
			return hs
		},
		"tag on two manifests": func(hs []Holding) []Holding {
			h := hs[0]
			h.Manifest = blob("other", 1)
			return append(hs, h)
		},
		"bad digest": func(hs []Holding) []Holding {
			hs[0].Blobs[0].Digest = "sha256:abc"
			return hs
		},
		"no repository": func(hs []Holding) []Holding {
			hs[0].Repository = ""
			return hs
		},
	} {
		_, err := NewReceipt("reg/base", time.Unix(0, 0), nil, mutate(sampleHoldings()))
		if !errors.Is(err, ErrInvalidReceipt) {
			t.Errorf("%s: err = %v, want ErrInvalidReceipt", name, err)
		}
	}
}

func TestParseReceiptRejects(t *testing.T) {
	data, err := sampleReceipt(t).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	first := strings.TrimPrefix(sampleReceipt(t).Blobs[0].Digest, "sha256:")
	second := strings.TrimPrefix(sampleReceipt(t).Blobs[1].Digest, "sha256:")
	for name, text := range map[string]string{
		"unknown field":   strings.Replace(doc, `"kind"`, `"extra":1,"kind"`, 1),
		"other kind":      strings.Replace(doc, `"Receipt"`, `"BillOfMaterials"`, 1),
		"unsorted":        strings.Replace(strings.Replace(doc, first, "X", 1), second, first, 1),
		"position":        strings.Replace(doc, `"manifest":`, `"manifest":9`, 1),
		"trailing":        doc + "{}",
		"sizes":           strings.Replace(doc, `"sizes":[`, `"sizes":[1,`, 1),
		"no destination":  strings.Replace(doc, `"zot.local:30003/spectro-content"`, `""`, 1),
		"not json":        "\x28\xb5\x2f\xfd",
		"bad hex":         strings.Replace(doc, first, strings.ToUpper(first), 1),
		"negative size":   strings.Replace(doc, `"sizes":[`, `"sizes":[-`, 1),
		"root not a list": strings.Replace(doc, `"manifests":[`, `"manifests":[99,`, 1),
	} {
		if _, err := ParseReceipt([]byte(text)); !errors.Is(err, ErrInvalidReceipt) {
			t.Errorf("%s: err = %v, want ErrInvalidReceipt", name, err)
		}
	}
}

// A receipt must fit on small media: with zstd, a digest costs about what
// its 32 raw bytes do, not the 71 of its text.
func TestReceiptCompact(t *testing.T) {
	var hs []Holding
	for i := range 200 {
		h := Holding{Repository: fmt.Sprintf("images/app-%d", i%40), Tag: fmt.Sprint(i), Manifest: blob(fmt.Sprint("m", i), 1000)}
		for j := range 20 {
			// Half the layers are shared between images.
			name := fmt.Sprint("layer", i, "-", j)
			if j%2 == 0 {
				name = fmt.Sprint("shared", j, "-", i%10)
			}
			h.Blobs = append(h.Blobs, blob(name, int64(1000+j)))
		}
		hs = append(hs, h)
	}
	r, err := NewReceipt("reg/base", time.Unix(0, 0), nil, hs)
	if err != nil {
		t.Fatal(err)
	}
	data, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
	small := enc.EncodeAll(data, nil)
	perDigest := float64(len(small)) / float64(len(r.Blobs))
	t.Logf("%d blobs, %d artifacts: %d bytes, %d with zstd, %.1f per blob", len(r.Blobs), len(r.Artifacts), len(data), len(small), perDigest)
	if perDigest > 48 {
		t.Errorf("%.1f bytes per blob after zstd, want at most 48", perDigest)
	}
}

func FuzzParseReceipt(f *testing.F) {
	r, err := NewReceipt("reg/base", time.Unix(0, 0), nil, sampleHoldings())
	if err != nil {
		f.Fatal(err)
	}
	data, err := r.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte(`{"apiVersion":"ferry.dev/v1alpha1","kind":"Receipt"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseReceipt(data)
		if err != nil {
			return
		}
		// Whatever parses encodes again, and the encoding parses to the same.
		again, err := r.Marshal()
		if err != nil {
			t.Fatalf("parsed receipt does not encode: %v", err)
		}
		back, err := ParseReceipt(again)
		if err != nil {
			t.Fatalf("encoded receipt does not parse: %v", err)
		}
		if !reflect.DeepEqual(r, back) {
			t.Fatalf("round trip changed the receipt")
		}
	})
}

// What an archive puts at its destination, as a receipt, compares equal to
// the archive's own bill of materials; an index's child manifests are held
// as manifests.
func TestBOMHoldings(t *testing.T) {
	b := NewBOM("id", time.Unix(0, 0))
	layer, cfg := Blob{Digest: dg("layer"), Size: 10}, Blob{Digest: dg("cfg"), Size: 2}
	child := Blob{Digest: dg("child"), Size: 5, MediaType: MediaTypeOCIManifest}
	index := Blob{Digest: dg("index"), Size: 7, MediaType: MediaTypeOCIIndex}
	b.Blobs = []Blob{layer, cfg, child, index}
	b.Artifacts = []Artifact{
		{Kind: KindImage, Name: "x", Digest: index.Digest, Size: index.Size, MediaType: index.MediaType,
			Blobs: []string{layer.Digest, cfg.Digest, child.Digest, index.Digest}, Dest: Destination{Repository: "images/x", Tag: "1"}},
	}
	if err := b.Validate(); err != nil {
		t.Fatal(err)
	}
	r, err := NewReceipt("reg/base", time.Unix(0, 0), nil, BOMHoldings(b))
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := r.Blob(child.Digest); !ok || !got.Manifest {
		t.Errorf("child manifest held as %+v", got)
	}
	if got, _ := r.Blob(layer.Digest); got.Manifest {
		t.Errorf("layer held as a manifest")
	}
	d := Diff(BOMInventory(b), ReceiptInventory(r))
	if d.Unchanged != 1 || d.Travel != (Transfer{}) || len(d.Added)+len(d.Removed)+len(d.Changed) != 0 {
		t.Errorf("the receipt of an archive differs from it: %+v", d)
	}
}
