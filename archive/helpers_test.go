package archive

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferrytool/ferry/internal/digestio"
	"github.com/ferrytool/ferry/manifest"
)

// testSigner is a stand-in keyed hash, enough to tell signed from tampered;
// real signatures are the verify package's business and tested there.
type testSigner struct{ key string }

func (s testSigner) SignBOM(_ context.Context, bom []byte) ([]byte, error) {
	h := sha256.Sum256(append([]byte(s.key), bom...))
	return []byte(fmt.Sprintf("%x", h)), nil
}

func (s testSigner) VerifyBOM(ctx context.Context, bom, sig []byte) error {
	want, _ := s.SignBOM(ctx, bom)
	if len(sig) == 0 {
		return errors.New("empty signature")
	}
	if !bytes.Equal(want, sig) {
		return errors.New("signature does not match")
	}
	return nil
}

// memSource serves blobs from memory.
type memSource map[string][]byte

func (m memSource) OpenBlob(_ context.Context, b manifest.Blob) (io.ReadCloser, error) {
	data, ok := m[b.Digest]
	if !ok {
		return nil, fmt.Errorf("no blob %s", b.Digest)
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

type fixture struct {
	bom *manifest.BOM
	src memSource
}

func (f *fixture) add(data []byte, mediaType string) manifest.Descriptor {
	d := digestio.FromBytes(data)
	if _, ok := f.src[d]; !ok {
		f.src[d] = data
		f.bom.Blobs = append(f.bom.Blobs, manifest.Blob{Digest: d, Size: int64(len(data)), MediaType: mediaType})
	}
	return manifest.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// image adds an OCI image with the given layers and returns its manifest.
func (f *fixture) image(t testing.TB, name string, layers ...manifest.Descriptor) manifest.Descriptor {
	cfg := f.add([]byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"},"config":{"Labels":{"n":%q}}}`, name)), "application/vnd.oci.image.config.v1+json")
	m := map[string]any{"schemaVersion": 2, "mediaType": manifest.MediaTypeOCIManifest, "config": cfg, "layers": layers}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return f.add(data, manifest.MediaTypeOCIManifest)
}

func (f *fixture) artifact(name string, d manifest.Descriptor) {
	var closure []string
	var walk func(d string)
	walk = func(d string) {
		closure = append(closure, d)
		for _, b := range f.bom.Blobs {
			if b.Digest == d && manifest.IsManifest(b.MediaType) {
				children, _ := manifest.Children(b.MediaType, f.src[d])
				for _, c := range children {
					walk(c.Digest)
				}
			}
		}
	}
	walk(d.Digest)
	f.bom.Artifacts = append(f.bom.Artifacts, manifest.Artifact{
		Kind: manifest.KindImage, Name: name, Source: "example.test/" + name, Digest: d.Digest, Size: d.Size,
		MediaType: d.MediaType, Blobs: closure, Dest: manifest.Destination{Repository: "images/" + name, Tag: "v1"},
	})
}

// newFixture builds two images sharing a layer, each layer of layerSize bytes.
func newFixture(t testing.TB, layerSize int) *fixture {
	f := &fixture{bom: manifest.NewBOM("test-archive", time.Unix(1700000000, 0)), src: memSource{}}
	shared := f.add(randomBytes(t, layerSize), "application/vnd.oci.image.layer.v1.tar+gzip")
	a := f.add(randomBytes(t, layerSize), "application/vnd.oci.image.layer.v1.tar+gzip")
	b := f.add(bytes.Repeat([]byte("compressible "), layerSize/13), "application/vnd.oci.image.layer.v1.tar")
	f.artifact("one", f.image(t, "one", shared, a))
	f.artifact("two", f.image(t, "two", shared, b))
	return f
}

func writeFixture(t testing.TB, f *fixture, volumeSize int64) (string, *Result) {
	t.Helper()
	dir := t.TempDir()
	res, err := Write(context.Background(), f.bom, f.src, WriteOptions{Dir: dir, Name: "test", VolumeSize: volumeSize, Signer: testSigner{"k"}})
	if err != nil {
		t.Fatalf("write: %v", err)
	}
	return dir, res
}

func volumePaths(res *Result) []string {
	var out []string
	for _, v := range res.Volumes {
		out = append(out, v.Path)
	}
	return out
}

func listDir(t testing.TB, dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, filepath.Join(dir, e.Name()))
	}
	return names
}
