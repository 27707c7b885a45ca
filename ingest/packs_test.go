package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ferrytool/ferry/internal/digestio"
	"github.com/ferrytool/ferry/internal/testbed"
	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/registry"
)

// packBOM is a bill of materials of one Artifact Studio pack, x-1.0.zst
// with x-1.0.sig.bin, as collect lays it out, with the blobs to serve it.
func packBOM(t *testing.T, content, sig []byte) (*manifest.BOM, mapSource) {
	t.Helper()
	src := mapSource{}
	type desc struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Size        int64             `json:"size"`
		Annotations map[string]string `json:"annotations,omitempty"`
	}
	bom := manifest.NewBOM("pack-test", testNow())
	add := func(mediaType string, data []byte, title string) desc {
		d := desc{MediaType: mediaType, Digest: digestio.FromBytes(data), Size: int64(len(data))}
		if title != "" {
			d.Annotations = map[string]string{annotationTitle: title}
		}
		src[d.Digest] = data
		bom.Blobs = append(bom.Blobs, manifest.Blob{Digest: d.Digest, Size: d.Size, MediaType: mediaType})
		return d
	}
	cfg := add(manifest.MediaTypeFerryPackConfig, []byte(`{"name":"x","version":"1.0"}`), "")
	layers := []desc{
		add(manifest.MediaTypeFerryFile, content, "x-1.0"+packSuffix),
		add(manifest.MediaTypeFerryFile, sig, "x-1.0"+packSigSuffix),
	}
	raw, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": manifest.MediaTypeOCIManifest, "config": cfg, "layers": layers})
	if err != nil {
		t.Fatal(err)
	}
	m := add(manifest.MediaTypeOCIManifest, raw, "")
	bom.Artifacts = append(bom.Artifacts, manifest.Artifact{Kind: manifest.KindPack, Name: "pack x 1.0", Digest: m.Digest, Size: m.Size,
		MediaType: manifest.MediaTypeOCIManifest, Dest: manifest.Destination{Repository: "spectro-packs/archive/x", Tag: "1.0"},
		Blobs: []string{cfg.Digest, layers[0].Digest, layers[1].Digest, m.Digest}})
	return bom, src
}

func packOptions(t *testing.T, reg *testbed.Registry, packsDir string) CopyOptions {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	return CopyOptions{Client: registry.Options{PlainHTTP: true, Transport: tr}, PacksDir: packsDir}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

func TestPacksDirGetsVerifiedPack(t *testing.T) {
	reg := testbed.StartRegistry(t, testbed.RegistryOptions{})
	content, _ := randomBlob(t, 40<<10)
	sig, _ := randomBlob(t, 256)
	bom, src := packBOM(t, content, sig)
	dir := filepath.Join(t.TempDir(), "packs")
	rep, err := push(t, bom, src, reg.Host+"/base", packOptions(t, reg, dir))
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(dirNames(t, dir), " "), "x-1.0.sig.bin x-1.0.zst"; got != want {
		t.Fatalf("packs folder holds %q, want %q", got, want)
	}
	for name, want := range map[string][]byte{"x-1.0.zst": content, "x-1.0.sig.bin": sig} {
		if got, err := os.ReadFile(filepath.Join(dir, name)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes (%v), want the %d verified ones", name, len(got), err, len(want))
		}
	}
}

// A signature larger than any detached signature is refused without
// being read: reading only a capped prefix would never reach the end,
// where its digest is checked, and would write the prefix out as the
// pack's signature.
func TestPackWithOversizedSignatureIsRefused(t *testing.T) {
	reg := testbed.StartRegistry(t, testbed.RegistryOptions{})
	content, _ := randomBlob(t, 40<<10)
	sig, sigBlob := randomBlob(t, maxPackSig+4<<10)
	bom, src := packBOM(t, content, sig)
	dir := filepath.Join(t.TempDir(), "packs")
	rep, err := push(t, bom, src, reg.Host+"/base", packOptions(t, reg, dir))
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); !errors.Is(err, ErrRefused) {
		t.Fatalf("report error %v, want %v", err, ErrRefused)
	}
	a := rep.Artifacts[0]
	if a.State != StateRefused || !strings.Contains(a.Reason, sigBlob.Digest) || !strings.Contains(a.Reason, "x-1.0"+packSigSuffix) {
		t.Errorf("pack %s: %s, want refused naming %s and its digest", a.Name, a.Reason, "x-1.0"+packSigSuffix)
	}
	if names := dirNames(t, dir); len(names) != 0 {
		t.Errorf("packs folder holds %v after a refused pack", names)
	}
	r := testConnect(t, reg.Host, "base/spectro-packs/archive/x")
	if got, err := r.ManifestDigest(t.Context(), "base/spectro-packs/archive/x", "1.0"); err != nil || got != "" {
		t.Errorf("refused pack's manifest in the registry: %q %v", got, err)
	}
}

// When the second file cannot be put in place, neither is left: a .zst
// without its .sig.bin would be ready for upload through Palette.
func TestPacksDirLeavesNoHalfPack(t *testing.T) {
	reg := testbed.StartRegistry(t, testbed.RegistryOptions{})
	for _, blocked := range []string{"x-1.0" + packSigSuffix, "x-1.0" + packSuffix} {
		t.Run(blocked, func(t *testing.T) {
			content, _ := randomBlob(t, 40<<10)
			sig, _ := randomBlob(t, 256)
			bom, src := packBOM(t, content, sig)
			dir := filepath.Join(t.TempDir(), "packs")
			// A folder where the file should go: the rename onto it fails.
			if err := os.MkdirAll(filepath.Join(dir, blocked), 0o755); err != nil {
				t.Fatal(err)
			}
			_, err := push(t, bom, src, reg.Host+"/base", packOptions(t, reg, dir))
			if err == nil || !strings.Contains(err.Error(), dir) {
				t.Fatalf("err %v, want one naming the packs folder %s", err, dir)
			}
			if got := strings.Join(dirNames(t, dir), " "); got != blocked {
				t.Errorf("packs folder holds %q, want only the folder %q", got, blocked)
			}
		})
	}
}
