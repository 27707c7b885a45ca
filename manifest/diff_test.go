package manifest

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

type fakeArtifact struct {
	kind   ArtifactKind
	name   string
	repo   string
	tag    string
	layers []string
}

// month1 and month2 are a small day-2 scenario: month 1 carries a chart and
// its images; month 2 moves the chart to a new version, whose new app image
// shares the base layer, moves the web image's "stable" tag, keeps the
// database and cache images, and drops a tool image.
var (
	month1 = []fakeArtifact{
		{KindChart, "chart-app", "charts/app/app", "1.0.0", []string{"chart-app-1.0.0.tgz"}},
		{KindImage, "app", "images/app", "1.0", []string{"base", "app-1.0"}},
		{KindImage, "web", "images/web", "stable", []string{"base", "web-a"}},
		{KindImage, "db", "images/db", "5", []string{"base", "db-5"}},
		{KindImage, "cache", "images/cache", "7", []string{"cache-7"}},
		{KindImage, "tool", "images/tool", "1", []string{"tool-1"}},
	}
	month2 = []fakeArtifact{
		{KindChart, "chart-app", "charts/app/app", "1.1.0", []string{"chart-app-1.1.0.tgz"}},
		{KindImage, "app", "images/app", "1.1", []string{"base", "app-1.1"}},
		{KindImage, "web", "images/web", "stable", []string{"base", "web-b"}},
		{KindImage, "db", "images/db", "5", []string{"base", "db-5"}},
		{KindImage, "cache", "images/cache", "7", []string{"cache-7"}},
	}
)

// sizeOf gives every fake blob a distinct size that depends only on its name.
func sizeOf(name string) int64 {
	var n int64 = 100
	for _, c := range name {
		n = n*31 + int64(c)
	}
	if n < 0 {
		n = -n
	}
	return 1000 + n%100000
}

// manifestOf is the fake manifest of an artifact: its digest depends on its
// layers, so the same layers give the same manifest.
func manifestOf(f fakeArtifact) string {
	name := "manifest"
	for _, l := range f.layers {
		name += "+" + l
	}
	return name
}

func fakeBOM(t *testing.T, id string, fs []fakeArtifact) *BOM {
	t.Helper()
	b := NewBOM(id, time.Unix(0, 0))
	seen := map[string]bool{}
	addBlob := func(name string) string {
		d := dg(name)
		if !seen[d] {
			seen[d] = true
			b.Blobs = append(b.Blobs, Blob{Digest: d, Size: sizeOf(name)})
		}
		return d
	}
	for _, f := range fs {
		a := Artifact{Kind: f.kind, Name: f.name, Dest: Destination{Repository: f.repo, Tag: f.tag}}
		for _, l := range f.layers {
			a.Blobs = append(a.Blobs, addBlob(l))
		}
		a.Digest = addBlob(manifestOf(f))
		a.Blobs = append(a.Blobs, a.Digest)
		b.Artifacts = append(b.Artifacts, a)
	}
	if err := b.Validate(); err != nil {
		t.Fatal(err)
	}
	return b
}

func fakeReceipt(t *testing.T, months ...[]fakeArtifact) *Receipt {
	t.Helper()
	var hs []Holding
	for _, fs := range months {
		for _, f := range fs {
			h := Holding{Repository: f.repo, Tag: f.tag, Manifest: Blob{Digest: dg(manifestOf(f)), Size: sizeOf(manifestOf(f))}}
			for _, l := range f.layers {
				h.Blobs = append(h.Blobs, Blob{Digest: dg(l), Size: sizeOf(l)})
			}
			hs = append(hs, h)
		}
	}
	r, err := NewReceipt("zot.local:30003/spectro-content", time.Unix(0, 0), nil, hs)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDiffGolden(t *testing.T) {
	bom1, bom2 := fakeBOM(t, "month-1", month1), fakeBOM(t, "month-2", month2)
	// After month 2 the registry holds both months; "stable" points at
	// month 2's web image.
	var kept []fakeArtifact
	for _, f := range month1 {
		if f.name != "web" {
			kept = append(kept, f)
		}
	}
	after1, after2 := fakeReceipt(t, month1), fakeReceipt(t, kept, month2)
	for _, c := range []struct {
		name string
		a, b Inventory
	}{
		{"bom-month1-month2", BOMInventory(bom1), BOMInventory(bom2)},
		{"receipt-month1-bom-month2", ReceiptInventory(after1), BOMInventory(bom2)},
		{"bom-month2-receipt-after", BOMInventory(bom2), ReceiptInventory(after2)},
		{"same", BOMInventory(bom2), BOMInventory(bom2)},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := json.MarshalIndent(Diff(c.a, c.b), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden(t, filepath.Join("testdata", "diff", c.name+".json"), got)
		})
	}
}

// The engine's facts, independent of the golden files.
func TestDiffDayTwo(t *testing.T) {
	bom1, bom2 := fakeBOM(t, "month-1", month1), fakeBOM(t, "month-2", month2)
	rep := Diff(BOMInventory(bom1), BOMInventory(bom2))
	dests := func(list []ArtifactDiff) []string {
		var out []string
		for _, d := range list {
			out = append(out, d.Destination)
		}
		return out
	}
	check := func(what string, got []string, want ...string) {
		t.Helper()
		if len(got) != len(want) {
			t.Errorf("%s: %v, want %v", what, got, want)
			return
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s: %v, want %v", what, got, want)
				return
			}
		}
	}
	check("added", dests(rep.Added), "charts/app/app:1.1.0", "images/app:1.1")
	check("removed", dests(rep.Removed), "charts/app/app:1.0.0", "images/app:1.0", "images/tool:1")
	check("changed", dests(rep.Changed), "images/web:stable")
	if rep.Unchanged != 2 {
		t.Errorf("unchanged %d, want 2", rep.Unchanged)
	}
	// What travels: the new chart, the new app layer, the new web layer and
	// the three new manifests; never the shared base layer.
	var want Transfer
	for _, name := range []string{"chart-app-1.1.0.tgz", "app-1.1", "web-b",
		manifestOf(month2[0]), manifestOf(month2[1]), manifestOf(month2[2])} {
		want.add(sizeOf(name))
	}
	if rep.Travel != want {
		t.Errorf("travel %+v, want %+v", rep.Travel, want)
	}
	if full := bom2.Stats().StoredBytes; rep.Full.Bytes != full {
		t.Errorf("full %d bytes, want the bill of materials' %d", rep.Full.Bytes, full)
	}
	// A receipt of month 1 gives the same delta as month 1's bill of
	// materials: the destination holds exactly what was carried.
	fromReceipt := Diff(ReceiptInventory(fakeReceipt(t, month1)), BOMInventory(bom2))
	if fromReceipt.Travel != rep.Travel {
		t.Errorf("travel from a receipt %+v, from the bill of materials %+v", fromReceipt.Travel, rep.Travel)
	}
	same := Diff(BOMInventory(bom2), BOMInventory(bom2))
	if len(same.Added)+len(same.Removed)+len(same.Changed) != 0 || same.Travel != (Transfer{}) {
		t.Errorf("a bill of materials differs from itself: %+v", same)
	}
}

// golden compares got with the file at path, or rewrites the file with -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test -update to accept):\n got:\n%s\nwant:\n%s", path, got, want)
	}
}
