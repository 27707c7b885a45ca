package ingest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/store"
)

func digestN(n int) string { return fmt.Sprintf("sha256:%064x", n) }

func TestPlanArtifacts(t *testing.T) {
	bom := &manifest.BOM{Blobs: []manifest.Blob{
		{Digest: digestN(1), Size: 10, MediaType: "application/vnd.oci.image.layer.v1.tar+gzip"},
		{Digest: digestN(2), Size: 5, MediaType: "application/vnd.oci.image.config.v1+json"},
		{Digest: digestN(3), Size: 7, MediaType: manifest.MediaTypeOCIManifest},
		{Digest: digestN(4), Size: 9, MediaType: manifest.MediaTypeOCIIndex},
	}, Artifacts: []manifest.Artifact{
		{Name: "a", Kind: manifest.KindImage, Digest: digestN(4), MediaType: manifest.MediaTypeOCIIndex,
			Dest:  manifest.Destination{Repository: "images/docker.io/library/redis", Tag: "7"},
			Blobs: []string{digestN(4), digestN(3), digestN(2), digestN(1)}},
		{Name: "b", Kind: manifest.KindImage, Digest: digestN(3), Dest: manifest.Destination{Repository: "images/x"},
			Blobs: []string{digestN(1), digestN(2), digestN(3)}},
	}}
	dest := destination{host: "zot:30003", base: "spectro-content"}
	plans, err := planArtifacts(bom, dest, []Mapping{{From: "images/docker.io", To: "images"}})
	if err != nil {
		t.Fatal(err)
	}
	a := plans[0]
	if a.repo != "spectro-content/images/library/redis" || a.ref != "7" {
		t.Errorf("mapped destination %s:%s", a.repo, a.ref)
	}
	if len(a.layers) != 2 || len(a.manifests) != 2 || a.manifests[0].Digest != digestN(3) || a.manifests[1].Digest != digestN(4) {
		t.Errorf("children first, root last: layers %v manifests %v", a.layers, a.manifests)
	}
	if b := plans[1]; b.ref != digestN(3) || !strings.HasSuffix(b.res.Destination, "@"+digestN(3)) {
		t.Errorf("untagged artifact goes by digest: %s %s", b.ref, b.res.Destination)
	}
	// Two artifacts mapped to one destination are refused before anything.
	bom.Artifacts[1].Dest = manifest.Destination{Repository: "images/library/redis", Tag: "7"}
	if _, err := planArtifacts(bom, dest, []Mapping{{From: "images/docker.io", To: "images"}}); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "a and b") {
		t.Errorf("conflict: %v", err)
	}
}

func TestLocator(t *testing.T) {
	var blobs []manifest.Blob
	for i := range 10 {
		blobs = append(blobs, manifest.Blob{Digest: digestN(i)})
	}
	bom := &manifest.BOM{Blobs: blobs}
	// Volume 2 holds blobs 3-5 and the start of 6; volume 4 (the last) 8-9.
	vols := map[int]store.VolumeRecord{
		2: {Blobs: []string{digestN(3), digestN(4), digestN(5)}, Parts: []string{digestN(6)}},
		4: {Blobs: []string{digestN(8), digestN(9)}, Final: true},
	}
	l := newLocator(bom, vols)
	for _, c := range []struct {
		blob int
		want string
	}{
		{0, "volume 1"}, // before volume 2's first blob
		{2, "volume 1"},
		{4, "volume 2"}, // seen there
		{6, "volume 3"}, // split: the rest is in the volume next door
		{7, "volume 3"}, // between volumes 2 and 4
		{9, "volume 4"}, // seen
	} {
		if got := describeVolumes(l.where(digestN(c.blob))); got != c.want {
			t.Errorf("blob %d: %q, want %q", c.blob, got, c.want)
		}
	}
	// Without the last volume seen, what follows the last seen is open.
	l = newLocator(bom, map[int]store.VolumeRecord{2: vols[2]})
	if got := describeVolumes(l.where(digestN(9))); got != "volume 3 or a later one" {
		t.Errorf("open end: %q", got)
	}
	if got := describeVolumes(append(l.where(digestN(0)), l.where(digestN(9))...)); got != "volume 1, volume 3 or a later one" {
		t.Errorf("several: %q", got)
	}
}

func TestParseMappingAndDestination(t *testing.T) {
	if m, err := ParseMapping("images/docker.io=images"); err != nil || m.From != "images/docker.io" || m.To != "images" {
		t.Errorf("%+v %v", m, err)
	}
	for _, bad := range []string{"images", "=x", "x="} {
		if _, err := ParseMapping(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	d, err := parseDestination("10.10.233.0:30003/spectro-content/")
	if err != nil || d.host != "10.10.233.0:30003" || d.base != "spectro-content" || d.key() != "10.10.233.0:30003/spectro-content" {
		t.Errorf("%+v %v", d, err)
	}
	if _, err := parseDestination("https://zot:30003/x"); err == nil {
		t.Error("a scheme was accepted")
	}
}

func testNow() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
