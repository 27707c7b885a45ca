package ingest

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/ferrytool/ferry/internal/digestio"
	"github.com/ferrytool/ferry/internal/testbed"
	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/registry"
)

// ociIndexOverDocker is a bill of materials of one artifact: an OCI index
// whose only child is a Docker schema 2 manifest, as some upstream
// registries serve them.
func ociIndexOverDocker(t *testing.T) (*manifest.BOM, mapSource, string) {
	t.Helper()
	src := mapSource{}
	bom := manifest.NewBOM("mixed-test", testNow())
	add := func(mediaType string, data []byte) manifest.Descriptor {
		d := digestio.FromBytes(data)
		src[d] = data
		bom.Blobs = append(bom.Blobs, manifest.Blob{Digest: d, Size: int64(len(data)), MediaType: mediaType})
		return manifest.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}
	}
	cfg := add(manifest.MediaTypeDockerConfig, []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`))
	layer := add(manifest.MediaTypeDockerLayer, []byte(strings.Repeat("mixed layer bytes ", 2000)))
	child, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": manifest.MediaTypeDockerManifest, "config": cfg, "layers": []manifest.Descriptor{layer}})
	cd := add(manifest.MediaTypeDockerManifest, child)
	index, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": manifest.MediaTypeOCIIndex, "manifests": []map[string]any{{
		"mediaType": cd.MediaType, "digest": cd.Digest, "size": cd.Size, "platform": map[string]string{"os": "linux", "architecture": "amd64"},
	}}})
	root := add(manifest.MediaTypeOCIIndex, index)
	bom.Artifacts = append(bom.Artifacts, manifest.Artifact{Kind: manifest.KindImage, Name: "mixed", Digest: root.Digest, Size: root.Size,
		MediaType: root.MediaType, Dest: manifest.Destination{Repository: "images/mixed", Tag: "1"},
		Blobs: []string{cfg.Digest, layer.Digest, cd.Digest, root.Digest}})
	return bom, src, cd.Digest
}

// ConvertOCI must leave an OCI index over Docker manifests as it is, as
// collect does: converting the children would push them under digests the
// index does not name.
func TestConvertOCILeavesOCIIndexOverDockerAlone(t *testing.T) {
	reg := testbed.StartRegistry(t, testbed.RegistryOptions{})
	bom, src, child := ociIndexOverDocker(t)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	opts := CopyOptions{Client: registry.Options{PlainHTTP: true, Transport: tr}, Validate: true, ConvertOCI: true}
	rep, err := push(t, bom, src, reg.Host+"/base", opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); err != nil {
		t.Fatalf("push: %v", err)
	}
	a := rep.Artifacts[0]
	if a.State != StatePushed || len(a.Converted) != 0 || a.PushedDigest != "" {
		t.Errorf("artifact: %s, converted %+v, pushed as %q", a.State, a.Converted, a.PushedDigest)
	}
	if len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "OCI index "+bom.Artifacts[0].Digest) || !strings.Contains(rep.Warnings[0], child) ||
		strings.Contains(rep.Warnings[0], "--") {
		t.Errorf("warnings: %q", rep.Warnings)
	}
	if len(rep.DigestMap()) != 0 {
		t.Errorf("digest map %v, want nothing changed", rep.DigestMap())
	}
	if rep.DockerProbe == nil || rep.DockerProbe.Result != ProbeAccepts || rep.DockerProbe.DockerArtifacts != 1 {
		t.Errorf("the index pushes a Docker manifest as it is, so the run probes first: %+v", rep.DockerProbe)
	}
	// The index and the child it names, both as the archive holds them.
	for ref, want := range map[string]string{"1": bom.Artifacts[0].Digest, child: child} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodHead, "http://"+reg.Host+"/v2/base/images/mixed/manifests/"+ref, nil)
		req.Header.Set("Accept", manifest.MediaTypeOCIIndex+","+manifest.MediaTypeDockerManifest)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Docker-Content-Digest"); resp.StatusCode != http.StatusOK || got != want {
			t.Errorf("manifests/%s: %d %s, want %s", ref, resp.StatusCode, got, want)
		}
	}
}

// Conversions signed by collect feed the stale references and the digest
// map like those of ingest --convert-oci.
func TestCollectConversionsSeedStaleReferences(t *testing.T) {
	from, to := "sha256:"+strings.Repeat("d", 64), "sha256:"+strings.Repeat("e", 64)
	bom := manifest.NewBOM("collected", testNow())
	bom.Blobs = []manifest.Blob{{Digest: to, Size: 10, MediaType: manifest.MediaTypeOCIManifest}}
	bom.Artifacts = []manifest.Artifact{{Kind: manifest.KindImage, Name: "app", Source: "docker.io/app@" + from, Digest: to, Size: 10,
		MediaType: manifest.MediaTypeOCIManifest, Dest: manifest.Destination{Repository: "images/app"}, Blobs: []string{to},
		Reasons:   []manifest.Reason{{From: "bundle", Detail: "WorkloadProfile app"}},
		Converted: []manifest.Conversion{{From: from, FromMediaType: manifest.MediaTypeDockerManifest, To: to, MediaType: manifest.MediaTypeOCIManifest}}}}
	plans, err := planArtifacts(bom, destination{host: "reg"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	stale := staleReferences(plans)
	if len(stale) != 1 || stale[0].From != from || stale[0].To != to || strings.Join(stale[0].Where, ";") != "bundle: WorkloadProfile app" {
		t.Errorf("stale references: %+v", stale)
	}
	rep := &Report{Artifacts: []ArtifactResult{plans[0].res}}
	if m := rep.DigestMap(); len(m) != 1 || m[from] != to {
		t.Errorf("digest map: %v", m)
	}
	if c := plans[0].res.ConvertedByCollect; len(c) != 1 || !c[0].Root {
		t.Errorf("converted by collect: %+v", c)
	}
}

// A refusal for the Docker media type says what converts in the package's
// own terms unless the caller names its way (ConvertAdvice); an atomic push
// says why the others wait. None of it names a flag.
func TestRefusalReasonsNameNoFlags(t *testing.T) {
	zot := testbed.StartZotRules(t, testbed.StartRegistry(t, testbed.RegistryOptions{}))
	bom, src, _ := ociIndexOverDocker(t)
	other, osrc := twoImages(t)
	for _, b := range other.Blobs {
		if _, ok := src[b.Digest]; !ok { // the config both share
			bom.Blobs = append(bom.Blobs, b)
			src[b.Digest] = osrc[b.Digest]
		}
	}
	bom.Artifacts = append(bom.Artifacts, other.Artifacts[0])
	for _, c := range []struct {
		advice, want string
	}{
		{"", "convert them to OCI when collecting"},
		{"run the caller's conversion", "run the caller's conversion"},
	} {
		opts := CopyOptions{Client: registry.Options{PlainHTTP: true}, Atomic: true, ConvertAdvice: c.advice}
		rep, err := push(t, bom, src, zot.Host+"/base", opts)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]ArtifactResult{}
		for _, a := range rep.Artifacts {
			got[a.Name] = a
			t.Logf("%s: %s: %s", a.Name, a.State, a.Reason)
			if strings.Contains(a.Reason+a.WaitingFor, "--") {
				t.Errorf("%s: reason names a flag: %s", a.Name, a.Reason)
			}
		}
		if m := got["mixed"]; m.State != StateRefused || !strings.Contains(m.Reason, "MANIFEST_INVALID") || !strings.Contains(m.Reason, c.want) {
			t.Errorf("advice %q: the Docker artifact: %s: %s", c.advice, m.State, m.Reason)
		}
		if o := got["one"]; o.State != StateRefused || o.Cause != CauseAtomic || o.Reason != "atomic: nothing is pushed because mixed was refused" {
			t.Errorf("the OCI artifact: %s (%s): %s", o.State, o.Cause, o.Reason)
		}
	}
}
