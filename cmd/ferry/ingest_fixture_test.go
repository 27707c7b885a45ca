package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/klauspost/compress/zstd"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"

	"github.com/ferrytool/ferry/archive"
	"github.com/ferrytool/ferry/internal/digestio"
	"github.com/ferrytool/ferry/internal/testbed"
	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/verify"
)

// The ingest tests build their archive here rather than through collect, so
// they control every artifact kind (images, an index, a Docker image, a Helm
// chart, a signed pack, a bundle), the volume size and the blob that is split
// across volumes.

type fxBlob struct {
	mediaType string
	data      []byte
}

func (b fxBlob) digest() string { return digestio.FromBytes(b.data) }

// fixtureArtifact is one artifact of a test archive: its blobs, children
// first, and its own manifest last.
type fixtureArtifact struct {
	kind  manifest.ArtifactKind
	name  string
	dest  manifest.Destination
	blobs []fxBlob
	// source and reasons, when set, go into the bill of materials (source
	// defaults to the name).
	source  string
	reasons []manifest.Reason
	// referrer links an artifact of kind referrer to its subject.
	referrer *manifest.Referrer
}

func (a fixtureArtifact) root() fxBlob { return a.blobs[len(a.blobs)-1] }

type fixtureArchive struct {
	dir, key, pub string
	volumes       []string // in volume order
	bom           *manifest.BOM
	artifacts     []fixtureArtifact
	blobs         map[string]fxBlob
	packKey       string // vendor public key of the pack
	// created stamps the bill of materials; zero means now. A key set
	// before write is used instead of a new one.
	created time.Time
}

func imageArtifact(t *testing.T, kind manifest.ArtifactKind, name string, dest manifest.Destination, img v1.Image) fixtureArtifact {
	t.Helper()
	a := fixtureArtifact{kind: kind, name: name, dest: dest}
	a.blobs = imageBlobs(t, img)
	return a
}

func imageBlobs(t *testing.T, img v1.Image) []fxBlob {
	t.Helper()
	mf, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	out := []fxBlob{{mediaType: string(mf.Config.MediaType), data: cfg}}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(rc)
		rc.Close()
		mt, _ := l.MediaType()
		out = append(out, fxBlob{mediaType: string(mt), data: data})
	}
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	mt, _ := img.MediaType()
	return append(out, fxBlob{mediaType: string(mt), data: raw})
}

func indexArtifact(t *testing.T, name string, dest manifest.Destination, idx v1.ImageIndex) fixtureArtifact {
	t.Helper()
	a := fixtureArtifact{kind: manifest.KindImage, name: name, dest: dest}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		a.blobs = append(a.blobs, imageBlobs(t, img)...)
	}
	raw, _ := idx.RawManifest()
	mt, _ := idx.MediaType()
	a.blobs = append(a.blobs, fxBlob{mediaType: string(mt), data: raw})
	return a
}

// ociArtifact makes an OCI manifest over a config and file layers, the way
// `helm push` and oras lay out charts and files.
func ociArtifact(kind manifest.ArtifactKind, name string, dest manifest.Destination, configType string, config []byte, files map[string]fxBlob) fixtureArtifact {
	a := fixtureArtifact{kind: kind, name: name, dest: dest}
	cfg := fxBlob{mediaType: configType, data: config}
	a.blobs = append(a.blobs, cfg)
	type desc struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Size        int64             `json:"size"`
		Annotations map[string]string `json:"annotations,omitempty"`
	}
	m := struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType"`
		Config        desc   `json:"config"`
		Layers        []desc `json:"layers"`
	}{SchemaVersion: 2, MediaType: manifest.MediaTypeOCIManifest, Config: desc{MediaType: configType, Digest: cfg.digest(), Size: int64(len(config))}}
	titles := make([]string, 0, len(files))
	for title := range files {
		titles = append(titles, title)
	}
	sort.Strings(titles)
	for _, title := range titles {
		f := files[title]
		a.blobs = append(a.blobs, f)
		m.Layers = append(m.Layers, desc{MediaType: f.mediaType, Digest: f.digest(), Size: int64(len(f.data)), Annotations: map[string]string{"org.opencontainers.image.title": title}})
	}
	raw, _ := json.Marshal(m)
	a.blobs = append(a.blobs, fxBlob{mediaType: manifest.MediaTypeOCIManifest, data: raw})
	return a
}

// helmChart builds a small chart with Helm's SDK and returns its config
// (the chart metadata as JSON, what `helm push` writes) and .tgz.
func helmChart(t *testing.T, name, version string) (config, tgz []byte) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	os.MkdirAll(filepath.Join(dir, "templates"), 0o755)
	os.WriteFile(filepath.Join(dir, "Chart.yaml"), []byte("apiVersion: v2\nname: "+name+"\nversion: "+version+"\nappVersion: \"1.0\"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "values.yaml"), []byte("greeting: hello from the air gap\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "templates", "configmap.yaml"), []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-greeting\ndata:\n  greeting: {{ .Values.greeting | quote }}\n"), 0o644)
	ch, err := loader.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out, err := chartutil.Save(ch, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tgz, _ = os.ReadFile(out)
	config, _ = json.Marshal(ch.Metadata)
	return config, tgz
}

// signedPack makes an Artifact Studio-like pack (.zst with .sig.bin) signed
// by a vendor RSA key, and returns the artifact and the vendor public key.
func signedPack(t *testing.T, dir, name, version string) (fixtureArtifact, string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pubPath := filepath.Join(dir, "spectro_public_key.pem")
	os.WriteFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644)
	enc, _ := zstd.NewWriter(nil)
	content := enc.EncodeAll([]byte(strings.Repeat("pack.json and values.yaml of "+name+" ", 2000)+rand.Text()), nil)
	sum := sha256.Sum256(content)
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := json.Marshal(map[string]string{"name": name, "version": version})
	file := name + "-" + version
	a := ociArtifact(manifest.KindPack, "pack "+name+" "+version, manifest.Destination{Repository: "spectro-packs/archive/" + name, Tag: version},
		manifest.MediaTypeFerryPackConfig, cfg, map[string]fxBlob{
			file + ".zst":     {mediaType: manifest.MediaTypeFerryFile, data: content},
			file + ".sig.bin": {mediaType: manifest.MediaTypeFerryFile, data: sig},
		})
	return a, pubPath
}

// clearmlFixture is a ClearML-like archive: two images sharing a layer, an
// image with a layer larger than a volume, a multi-arch index, a Docker
// image, the chart, a signed pack and the bundle. Its images are pushed to
// src, so their digests can be compared with a source.
func clearmlFixture(t *testing.T, src *testbed.Registry, volumeSize, bigLayer int64) *fixtureArchive {
	t.Helper()
	fx := &fixtureArchive{dir: t.TempDir()}
	shared := testbed.RandomLayer(t, 120<<10)
	img := func(name string, layers int, size int64, extra ...v1.Layer) fixtureArtifact {
		im := testbed.PushRandomImage(t, src, name, layers, size, extra...)
		repo, tag, _ := strings.Cut(name, ":")
		return imageArtifact(t, manifest.KindImage, src.Host+"/"+name, manifest.Destination{Repository: "images/" + repo, Tag: tag}, im)
	}
	fx.artifacts = append(fx.artifacts,
		img("allegroai/clearml:1.16.2", 2, 100<<10, shared),
		img("allegroai/clearml-agent:1.9.1", 1, 80<<10, shared),
		img("allegroai/clearml-big:1.0", 1, bigLayer),
	)
	idx := testbed.PushIndex(t, src, "library/redis:7.4", "linux/amd64", "linux/arm64")
	fx.artifacts = append(fx.artifacts, indexArtifact(t, src.Host+"/library/redis:7.4", manifest.Destination{Repository: "images/library/redis", Tag: "7.4"}, idx))
	dock := testbed.PushDockerImage(t, src, "bitnami/mongodb:6.0")
	fx.artifacts = append(fx.artifacts, imageArtifact(t, manifest.KindImage, src.Host+"/bitnami/mongodb:6.0", manifest.Destination{Repository: "images/bitnami/mongodb", Tag: "6.0"}, dock))
	cfg, tgz := helmChart(t, "clearml", "7.14.7")
	fx.artifacts = append(fx.artifacts, ociArtifact(manifest.KindChart, "chart clearml 7.14.7", manifest.Destination{Repository: "charts/clearml/clearml", Tag: "7.14.7"},
		manifest.MediaTypeHelmConfig, cfg, map[string]fxBlob{"clearml-7.14.7.tgz": {mediaType: manifest.MediaTypeHelmChart, data: tgz}}))
	pack, packKey := signedPack(t, fx.dir, "edge-k8s", "1.33.5")
	fx.packKey = packKey
	fx.artifacts = append(fx.artifacts, pack)
	bundle := []byte("a Profile Bundle tar.gz stand-in " + rand.Text())
	fx.artifacts = append(fx.artifacts, ociArtifact(manifest.KindBundle, "bundle clearml 1.0.0", manifest.Destination{Repository: "bundles/clearml", Tag: "1.0.0"},
		"application/vnd.ferry.bundle.config.v1+json", []byte(`{"name":"clearml","version":"1.0.0"}`),
		map[string]fxBlob{"clearml-1.0.0.tar.gz": {mediaType: manifest.MediaTypeFerryFile, data: bundle}}))
	fx.write(t, volumeSize)
	return fx
}

// write signs and writes the archive.
func (fx *fixtureArchive) write(t *testing.T, volumeSize int64) {
	t.Helper()
	if fx.key == "" {
		fx.key, fx.pub = filepath.Join(fx.dir, "ferry.key"), filepath.Join(fx.dir, "ferry.pub")
		if err := verify.WriteKeyPair(fx.key, fx.pub, nil); err != nil {
			t.Fatal(err)
		}
	}
	signer, err := verify.SignerFromFile(fx.key, nil)
	if err != nil {
		t.Fatal(err)
	}
	created := fx.created
	if created.IsZero() {
		created = time.Now()
	}
	bom := manifest.NewBOM(rand.Text(), created)
	fx.blobs = map[string]fxBlob{}
	for _, a := range fx.artifacts {
		art := manifest.Artifact{Kind: a.kind, Name: a.name, Source: a.name, Dest: a.dest, Digest: a.root().digest(),
			Size: int64(len(a.root().data)), MediaType: a.root().mediaType, Reasons: a.reasons, Referrer: a.referrer}
		if a.source != "" {
			art.Source = a.source
		}
		for _, b := range a.blobs {
			d := b.digest()
			if _, ok := fx.blobs[d]; !ok {
				fx.blobs[d] = b
				bom.Blobs = append(bom.Blobs, manifest.Blob{Digest: d, Size: int64(len(b.data)), MediaType: b.mediaType})
			}
			if !fxContains(art.Blobs, d) {
				art.Blobs = append(art.Blobs, d)
			}
		}
		bom.Artifacts = append(bom.Artifacts, art)
	}
	fx.bom = bom
	out := filepath.Join(fx.dir, "out")
	os.MkdirAll(out, 0o755)
	res, err := archive.Write(context.Background(), bom, fxSource(fx.blobs), archive.WriteOptions{Dir: out, Name: "clearml", VolumeSize: volumeSize, Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range res.Volumes {
		fx.volumes = append(fx.volumes, v.Path)
	}
}

func fxContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

type fxSource map[string]fxBlob

func (m fxSource) OpenBlob(_ context.Context, b manifest.Blob) (io.ReadCloser, error) {
	r, ok := m[b.Digest]
	if !ok {
		return nil, fmt.Errorf("no blob %s", b.Digest)
	}
	return io.NopCloser(bytes.NewReader(r.data)), nil
}

// tamperBlob changes one byte of a blob inside its volume. A blob stored
// raw gets its frame's checksum fixed, the way a deliberate edit would: the
// volume still decodes, only the blob's digest gives it away; a compressed
// one no longer decodes. It returns the new volume path and the volume
// number.
func tamperBlob(t *testing.T, fx *fixtureArchive, digest string) (string, int) {
	t.Helper()
	for _, p := range fx.volumes {
		set := openSetForTest(t, fx.pub, p)
		number := set.Volumes()[0].Number
		for _, e := range set.Entries(number) {
			if e.Digest != digest || e.Part != nil {
				continue
			}
			data, _ := os.ReadFile(p)
			frame := data[e.Offset : e.Offset+e.Length]
			dec, _ := zstd.NewReader(nil)
			plain, err := dec.DecodeAll(frame, nil)
			dec.Close()
			if err != nil {
				t.Fatal(err)
			}
			// The content starts after the 512-byte tar header; random layer
			// bytes are stored raw, so a 32-byte window is found verbatim.
			at := 512 + int(e.Size)/2
			window := plain[at:min(at+32, len(plain))]
			if i := bytes.Index(frame, window); len(window) == 32 && i >= 0 && bytes.Index(frame[i+1:], window) < 0 {
				frame[i] ^= 0x01
				plain[at] ^= 0x01
				sum := xxhash.Sum64(plain)
				frame[len(frame)-4], frame[len(frame)-3], frame[len(frame)-2], frame[len(frame)-1] = byte(sum), byte(sum>>8), byte(sum>>16), byte(sum>>24)
			} else {
				// Compressed: a flipped bit in the middle of the frame's
				// blocks decodes to other bytes or to nothing, and the
				// frame's checksum no longer holds either way.
				frame[len(frame)/2] ^= 0x01
			}
			out := filepath.Join(t.TempDir(), filepath.Base(p))
			os.WriteFile(out, data, 0o644)
			return out, number
		}
	}
	t.Fatalf("blob %s is not whole in any volume", digest)
	return "", 0
}

// destDigest resolves a destination reference in the registry.
func destDigest(t *testing.T, reg *testbed.Registry, repoTag string) string {
	t.Helper()
	d, err := remote.Head(reg.Ref(t, repoTag), append(reg.Options(), remote.WithContext(t.Context()))...)
	if err != nil {
		return ""
	}
	return d.Digest.String()
}

// missingBytes sums what the registry lacks of the bill of materials: each
// blob that no repository holds once (a mount sends nothing), and each
// manifest missing from its repository.
func missingBytes(t *testing.T, reg *testbed.Registry, fx *fixtureArchive, base string) int64 {
	t.Helper()
	client := reg.HTTPClient()
	has := func(repo, kind, d string) bool {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodHead, reg.URL()+"/v2/"+base+"/"+repo+"/"+kind+"/"+d, nil)
		req.SetBasicAuth(reg.Username, reg.Password)
		req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	repos := map[string][]string{}
	size := map[string]int64{}
	var total int64
	for _, a := range fx.artifacts {
		for _, b := range a.blobs {
			d := b.digest()
			if manifest.IsManifest(b.mediaType) {
				if !has(a.dest.Repository, "manifests", d) {
					total += int64(len(b.data))
				}
				continue
			}
			repos[d] = append(repos[d], a.dest.Repository)
			size[d] = int64(len(b.data))
		}
	}
	for d, rs := range repos {
		anywhere := false
		for _, r := range rs {
			if has(r, "blobs", d) {
				anywhere = true
				break
			}
		}
		if !anywhere {
			total += size[d]
		}
	}
	return total
}

// openSetForTest opens volumes that must verify with the public key at pub.
func openSetForTest(t *testing.T, pub string, paths ...string) *archive.Set {
	t.Helper()
	v, err := verify.VerifierFromFile(pub)
	if err != nil {
		t.Fatal(err)
	}
	set, err := archive.OpenSet(context.Background(), paths, archive.SetOptions{Verifier: v})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { set.Close() })
	for _, vol := range set.Volumes() {
		if vol.Err != nil || vol.Tampered != nil {
			t.Fatalf("volume %s: %v %v", vol.Path, vol.Err, vol.Tampered)
		}
	}
	return set
}
