package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ferrytool/ferry/internal/testbed"
	"github.com/ferrytool/ferry/manifest"
)

// convertBed is a plain-HTTP source registry holding Docker schema 2 and
// OCI content, and a destination that behaves like a default Zot: the TLS,
// htpasswd Distribution registry behind the proxy that refuses Docker
// manifest media types.
type convertBed struct {
	dir      string
	key, pub string
	src      *testbed.Registry
	dest     *testbed.Registry
	zot      *testbed.ZotRules
	caFile   string
	// source digests, by repo:tag
	digests map[string]string
}

// The images every test collects: two Docker schema 2 artifacts and two
// OCI ones.
const (
	dockerImage = "docker/app:1.0"
	dockerList  = "docker/multi:2.0"
	ociImage    = "oci/app:1.0"
	ociIndex    = "oci/multi:3.0"
)

func newConvertBed(t *testing.T) *convertBed {
	t.Helper()
	b := &convertBed{dir: t.TempDir(), digests: map[string]string{}}
	b.src = testbed.StartSourceRegistry(t)
	testbed.PushDockerImage(t, b.src, dockerImage)
	pushDockerList(t, b.src, dockerList)
	testbed.PushRandomImage(t, b.src, ociImage, 1, 16<<10)
	testbed.PushIndex(t, b.src, ociIndex)
	for _, r := range []string{dockerImage, dockerList, ociImage, ociIndex} {
		b.digests[r] = destDigest(t, b.src, r)
	}
	b.dest = testbed.StartRegistry(t, testbed.RegistryOptions{TLS: true, Username: "zot-admin", Password: "s3cret-zot-rules"})
	b.zot = testbed.StartZotRules(t, b.dest)
	b.caFile = b.dest.CA.WriteCert(t, b.dir)
	t.Setenv(envRegistryPassword, b.dest.Password)
	mustFerry(t, "key", "generate", "--output", filepath.Join(b.dir, "ferry"))
	b.key, b.pub = filepath.Join(b.dir, "ferry.key"), filepath.Join(b.dir, "ferry.pub")
	return b
}

// pushDockerList pushes a Docker manifest list of two Docker schema 2
// images (go-containerregistry's random images carry Docker media types).
func pushDockerList(t *testing.T, reg *testbed.Registry, repoTag string) v1.ImageIndex {
	t.Helper()
	idx := mutate.IndexMediaType(empty.Index, types.DockerManifestList)
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := random.Image(8<<10, 2)
		if err != nil {
			t.Fatal(err)
		}
		if mt, _ := img.MediaType(); mt != types.DockerManifestSchema2 {
			t.Fatalf("random image has media type %s, want Docker schema 2", mt)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	if err := remote.WriteIndex(reg.Ref(t, repoTag), idx, append(reg.Options(), remote.WithContext(t.Context()))...); err != nil {
		t.Fatal(err)
	}
	return idx
}

// collect writes out/NAME from the source images with the given flags and
// returns its volumes.
func (b *convertBed) collect(t *testing.T, name string, extra ...string) []string {
	t.Helper()
	out := filepath.Join(b.dir, "out", name)
	os.MkdirAll(filepath.Dir(out), 0o755)
	args := []string{"collect", "--quiet", "--plain-http", "--key", b.key, "--output", out, "--cache-dir", filepath.Join(b.dir, "cache-"+name)}
	for _, r := range []string{dockerImage, dockerList, ociImage, ociIndex} {
		args = append(args, "--image", b.src.Host+"/"+r)
	}
	mustFerry(t, append(args, extra...)...)
	vols, _ := filepath.Glob(out + ".tar.zst*")
	if len(vols) == 0 {
		t.Fatal("collect wrote no volume")
	}
	return vols
}

// ingestArgs push into the Zot-rule registry under base.
func (b *convertBed) ingestArgs(base string, vols ...string) []string {
	return append([]string{"ingest", "--quiet", "--registry", b.zot.Host + "/" + base, "--key", b.pub, "--ca-file", b.caFile,
		"--username", b.dest.Username, "--journal", filepath.Join(b.dir, base+"-journal.db"), "--work-dir", filepath.Join(b.dir, base+"-work")}, vols...)
}

func (b *convertBed) artifact(t *testing.T, in inspected, repoTag string) manifest.Artifact {
	t.Helper()
	for _, a := range in.Artifacts {
		if a.Name == b.src.Host+"/"+repoTag {
			return a.Artifact
		}
	}
	t.Fatalf("archive has no artifact %s", repoTag)
	return manifest.Artifact{}
}

func TestCollectDockerIntoZotRulesRefusedWithoutConversion(t *testing.T) {
	b := newConvertBed(t)
	vols := b.collect(t, "plain")
	in := inspectJSON(t, b.pub, vols...)
	for _, r := range []string{dockerImage, dockerList} {
		if a := b.artifact(t, in, r); !manifest.IsDocker(a.MediaType) || len(a.Converted) > 0 || a.Digest != b.digests[r] {
			t.Errorf("%s without --convert-oci: media type %s, digest %s (source %s), conversions %v", r, a.MediaType, a.Digest, b.digests[r], a.Converted)
		}
	}
	wantFail(t, ExitPartial, []string{"docker2s2", "--convert-oci", "images/docker/app", "images/docker/multi"}, b.ingestArgs("plain", vols...)...)
	if b.zot.Refused.Load() == 0 {
		t.Error("the Zot-rule proxy refused nothing")
	}
	for _, r := range []string{ociImage, ociIndex} {
		if got := destDigest(t, b.dest, "plain/images/"+r); got != b.digests[r] {
			t.Errorf("%s: destination has %q, want %s: the OCI artifacts must go in beside the refused ones", r, got, b.digests[r])
		}
	}
	for _, r := range []string{dockerImage, dockerList} {
		if got := destDigest(t, b.dest, "plain/images/"+r); got != "" {
			t.Errorf("%s is at the destination (%s) although its manifest was refused", r, got)
		}
	}
}

func TestCollectConvertOCIIntoZotRules(t *testing.T) {
	b := newConvertBed(t)
	vols := b.collect(t, "oci", "--convert-oci")
	mustFerry(t, append([]string{"verify", "--quiet", "--key", b.pub}, vols...)...)
	in := inspectJSON(t, b.pub, vols...)

	img := b.artifact(t, in, dockerImage)
	if img.MediaType != manifest.MediaTypeOCIManifest || len(img.Converted) != 1 {
		t.Fatalf("converted image: media type %s, conversions %+v", img.MediaType, img.Converted)
	}
	if c := img.Converted[0]; c.From != b.digests[dockerImage] || c.To != img.Digest || c.FromMediaType != manifest.MediaTypeDockerManifest {
		t.Errorf("image conversion %+v: want from %s to %s", c, b.digests[dockerImage], img.Digest)
	}
	list := b.artifact(t, in, dockerList)
	if list.MediaType != manifest.MediaTypeOCIIndex || len(list.Converted) != 3 {
		t.Fatalf("converted list: media type %s, conversions %+v", list.MediaType, list.Converted)
	}
	if last := list.Converted[len(list.Converted)-1]; last.From != b.digests[dockerList] || last.To != list.Digest {
		t.Errorf("list conversion %+v: want from %s to %s", last, b.digests[dockerList], list.Digest)
	}
	for _, r := range []string{ociImage, ociIndex} {
		if a := b.artifact(t, in, r); len(a.Converted) > 0 || a.Digest != b.digests[r] {
			t.Errorf("%s is OCI already but was changed: %s, %v", r, a.Digest, a.Converted)
		}
	}
	// The conversion is part of the signed bill of materials.
	r := mustFerry(t, "inspect", "--key", b.pub, vols[0])
	for _, s := range []string{"converted from Docker schema 2 to OCI", b.digests[dockerImage], img.Digest, b.digests[dockerList], list.Digest} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("inspect does not show %q:\n%s", s, r.stdout)
		}
	}

	mustFerry(t, b.ingestArgs("conv", vols...)...)
	if n := b.zot.Refused.Load(); n != 0 {
		t.Errorf("the Zot-rule proxy refused %d manifests of a converted archive", n)
	}
	opts := append(b.zot.Options(), remote.WithContext(t.Context()))
	srcOpts := append(b.src.Options(), remote.WithContext(t.Context()))

	// The image: OCI media types, the same config and layer bytes.
	got, err := remote.Image(b.zot.Ref(t, "conv/images/"+dockerImage), opts...)
	if err != nil {
		t.Fatalf("pull converted image: %v", err)
	}
	src, err := remote.Image(b.src.Ref(t, dockerImage), srcOpts...)
	if err != nil {
		t.Fatal(err)
	}
	sameImage(t, dockerImage, src, got, img.Digest)

	// The list: an OCI index whose children are the converted manifests.
	gidx, err := remote.Index(b.zot.Ref(t, "conv/images/"+dockerList), opts...)
	if err != nil {
		t.Fatalf("pull converted list: %v", err)
	}
	sidx, err := remote.Index(b.src.Ref(t, dockerList), srcOpts...)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := gidx.Digest(); d.String() != list.Digest {
		t.Errorf("pulled index %s, the bill of materials says %s", d, list.Digest)
	}
	gm, _ := gidx.IndexManifest()
	sm, _ := sidx.IndexManifest()
	if gm.MediaType != types.OCIImageIndex || len(gm.Manifests) != len(sm.Manifests) {
		t.Fatalf("pulled index: media type %s, %d manifests (source %d)", gm.MediaType, len(gm.Manifests), len(sm.Manifests))
	}
	for i, child := range gm.Manifests {
		from, ok := list.ConvertedFrom(child.Digest.String())
		if !ok || from != sm.Manifests[i].Digest.String() {
			t.Errorf("index child %s: the bill of materials says converted from %q, the source's child is %s", child.Digest, from, sm.Manifests[i].Digest)
		}
		if child.Platform == nil || child.Platform.Architecture != sm.Manifests[i].Platform.Architecture {
			t.Errorf("index child %s lost its platform", child.Digest)
		}
		gi, err := gidx.Image(child.Digest)
		if err != nil {
			t.Fatal(err)
		}
		si, err := sidx.Image(sm.Manifests[i].Digest)
		if err != nil {
			t.Fatal(err)
		}
		sameImage(t, dockerList+" "+child.Platform.String(), si, gi, child.Digest.String())
	}
}

// sameImage checks a converted image against its Docker source: OCI media
// types, and config and layers with the same digests and bytes.
func sameImage(t *testing.T, what string, src, got v1.Image, wantDigest string) {
	t.Helper()
	if d, _ := got.Digest(); d.String() != wantDigest {
		t.Errorf("%s: pulled %s, the bill of materials says %s", what, d, wantDigest)
	}
	gm, err := got.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	sm, _ := src.Manifest()
	if gm.MediaType != types.OCIManifestSchema1 || gm.Config.MediaType != types.OCIConfigJSON {
		t.Errorf("%s: media types %s, config %s; want OCI", what, gm.MediaType, gm.Config.MediaType)
	}
	if gm.Config.Digest != sm.Config.Digest {
		t.Errorf("%s: config %s, source %s", what, gm.Config.Digest, sm.Config.Digest)
	}
	if len(gm.Layers) != len(sm.Layers) {
		t.Fatalf("%s: %d layers, source %d", what, len(gm.Layers), len(sm.Layers))
	}
	gl, _ := got.Layers()
	for i, l := range gm.Layers {
		if l.Digest != sm.Layers[i].Digest || l.Size != sm.Layers[i].Size || l.MediaType != types.OCILayer {
			t.Errorf("%s: layer %d is %s %d %s, source %s %d", what, i, l.Digest, l.Size, l.MediaType, sm.Layers[i].Digest, sm.Layers[i].Size)
		}
		// Pull the bytes too: the registry checks them against the digest.
		rc, err := gl[i].Compressed()
		if err != nil {
			t.Fatal(err)
		}
		h, _, err := v1.SHA256(rc)
		rc.Close()
		if err != nil || h != sm.Layers[i].Digest {
			t.Errorf("%s: layer %d bytes hash to %s (%v), source %s", what, i, h, err, sm.Layers[i].Digest)
		}
	}
}

// copyImage copies repoTag from one registry to another under a new name,
// as a pull-through mirror holds it.
func copyImage(t *testing.T, from *testbed.Registry, repoTag string, to *testbed.Registry, toRepoTag string) {
	t.Helper()
	desc, err := remote.Get(from.Ref(t, repoTag), append(from.Options(), remote.WithContext(t.Context()))...)
	if err != nil {
		t.Fatal(err)
	}
	opts := append(to.Options(), remote.WithContext(t.Context()))
	if desc.MediaType.IsIndex() {
		idx, _ := desc.ImageIndex()
		err = remote.WriteIndex(to.Ref(t, toRepoTag), idx, opts...)
	} else {
		img, _ := desc.Image()
		err = remote.Write(to.Ref(t, toRepoTag), img, opts...)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestCollectThroughRegistryMirror(t *testing.T) {
	b := newConvertBed(t)
	mirror := testbed.StartSourceRegistry(t)
	for _, r := range []string{dockerImage, dockerList, ociImage, ociIndex} {
		copyImage(t, b.src, r, mirror, "cache/"+r)
	}
	// The source sits behind a counting proxy, so the test sees that only
	// the mirror served content.
	proxy := startCountingProxy(t, b.src)
	rule := proxy.Host + "=" + mirror.Host + "/cache"
	refs := []string{dockerImage, dockerList, ociImage, ociIndex}
	args := func(name string, extra ...string) []string {
		out := filepath.Join(b.dir, "out", name)
		os.MkdirAll(filepath.Dir(out), 0o755)
		return append([]string{"collect", "--quiet", "--plain-http", "--key", b.key, "--output", out, "--cache-dir", filepath.Join(b.dir, "cache-"+name)}, extra...)
	}

	t.Run("archive names the original references", func(t *testing.T) {
		a := args("mirrored", "--registry-mirror", rule)
		for _, r := range refs {
			a = append(a, "--image", proxy.Host+"/"+r)
		}
		mustFerry(t, a...)
		if n := proxy.blobGets.Load(); n != 0 {
			t.Errorf("the source served %d blobs; the mirror should have served them all", n)
		}
		vols, _ := filepath.Glob(filepath.Join(b.dir, "out", "mirrored.tar.zst*"))
		mustFerry(t, append([]string{"verify", "--quiet", "--key", b.pub}, vols...)...)
		in := inspectJSON(t, b.pub, vols...)
		if len(in.Artifacts) != len(refs) {
			t.Fatalf("%d artifacts, want %d", len(in.Artifacts), len(refs))
		}
		for _, r := range refs {
			var found bool
			for _, art := range in.Artifacts {
				if art.Name != proxy.Host+"/"+r {
					continue
				}
				found = true
				if art.Source != proxy.Host+"/"+r || art.Dest.String() != "images/"+r || art.Digest != b.digests[r] {
					t.Errorf("%s: source %s, destination %s, digest %s (source digest %s)", r, art.Source, art.Dest, art.Digest, b.digests[r])
				}
				if want := mirror.Host + "/cache/" + strings.Split(r, ":")[0]; art.Mirror != want {
					t.Errorf("%s: mirror recorded as %q, want %q", r, art.Mirror, want)
				}
			}
			if !found {
				t.Errorf("archive does not name %s", proxy.Host+"/"+r)
			}
		}
		if r := mustFerry(t, "inspect", "--key", b.pub, vols[0]); !strings.Contains(r.stdout, "pulled through a registry mirror") {
			t.Errorf("inspect does not show the mirror:\n%s", r.stdout)
		}
	})

	t.Run("mirror and --convert-oci together", func(t *testing.T) {
		a := args("mirrored-oci", "--registry-mirror", rule, "--convert-oci", "--image", proxy.Host+"/"+dockerImage)
		mustFerry(t, a...)
		vols, _ := filepath.Glob(filepath.Join(b.dir, "out", "mirrored-oci.tar.zst*"))
		in := inspectJSON(t, b.pub, vols...)
		art := in.Artifacts[0].Artifact
		if art.Name != proxy.Host+"/"+dockerImage || len(art.Converted) != 1 || art.Converted[0].From != b.digests[dockerImage] {
			t.Errorf("mirrored and converted: %s, %+v", art.Name, art.Converted)
		}
	})

	t.Run("unreachable source, digest pinned", func(t *testing.T) {
		// A source nobody listens on: only the mirror can serve, and the pin
		// is what its content is checked against.
		gone := "127.0.0.1:1"
		pinned := gone + "/" + ociImage + "@" + b.digests[ociImage]
		r := mustFerry(t, args("pinned", "--registry-mirror", gone+"="+mirror.Host+"/cache", "--image", pinned, "--image", gone+"/"+dockerImage)...)
		if !strings.Contains(r.stderr, "taken on trust") || !strings.Contains(r.stderr, gone+"/"+dockerImage) {
			t.Errorf("no warning that the tag-only reference could not be checked:\n%s", r.stderr)
		}
		if strings.Contains(r.stderr, ociImage+"@") {
			t.Errorf("a warning about the pinned reference, which was checked:\n%s", r.stderr)
		}
		vols, _ := filepath.Glob(filepath.Join(b.dir, "out", "pinned.tar.zst*"))
		for _, art := range inspectJSON(t, b.pub, vols...).Artifacts {
			if !strings.HasPrefix(art.Source, gone+"/") {
				t.Errorf("artifact source %s, want the original reference", art.Source)
			}
		}
	})

	t.Run("mirror serving different content is refused", func(t *testing.T) {
		// The mirror's tag now points at other content than the source's.
		testbed.PushRandomImage(t, mirror, "cache/"+ociImage, 1, 8<<10)
		stale := destDigest(t, mirror, "cache/"+ociImage)
		if stale == b.digests[ociImage] {
			t.Fatal("the mirror's image did not change")
		}
		wantFail(t, ExitVerify, []string{"mirror", stale, b.digests[ociImage], proxy.Host + "/" + ociImage},
			args("lying", "--registry-mirror", rule, "--image", proxy.Host+"/"+ociImage)...)
		if left, _ := filepath.Glob(filepath.Join(b.dir, "out", "lying.tar.zst*")); len(left) > 0 {
			t.Errorf("a refused collect left %v", left)
		}
	})
}

// The spec carries both settings, and they parse from the flag forms.
func TestCollectSpecMirrorAndConvert(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "transfer.yaml")
	os.WriteFile(spec, []byte("apiVersion: ferry.dev/v1alpha1\nkind: TransferSpec\nconvertOCI: true\n"+
		"registryMirrors:\n  - {source: docker.io, mirror: mirror.corp.example/dockerhub}\nimages: [nginx:1.27]\n"), 0o644)
	f := collectFlags{spec: spec}
	s, err := f.buildSpec()
	if err != nil {
		t.Fatal(err)
	}
	if !s.ConvertOCI || len(s.RegistryMirrors) != 1 || s.RegistryMirrors[0].Mirror != "mirror.corp.example/dockerhub" {
		t.Errorf("spec: convertOCI %v, mirrors %+v", s.ConvertOCI, s.RegistryMirrors)
	}
	data, _ := json.Marshal(s.RegistryMirrors)
	if !strings.Contains(string(data), `"source":"docker.io"`) {
		t.Errorf("mirrors marshal as %s", data)
	}
	wantFail(t, ExitUsage, []string{"--registry-mirror", "SOURCE=MIRROR"}, "collect", "--plan", "--registry-mirror", "docker.io", "--image", "nginx")
	wantFail(t, ExitUsage, []string{"scheme"}, "collect", "--plan", "--registry-mirror", "docker.io=https://mirror", "--image", "nginx")
}
