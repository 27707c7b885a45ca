package testbed

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Sizes of the layers the generators pick themselves: big enough to be real
// blobs, small enough that a test pushes dozens in well under a second.
const (
	indexLayerSize  = 16 << 10
	dockerLayerSize = 16 << 10
)

// RandomLayer returns a gzip'd tar layer holding one file of size random
// bytes, with the OCI layer media type. The compressed bytes are generated
// once and kept in memory, so keep size small (KiB to a few MiB).
func RandomLayer(t testing.TB, size int64) v1.Layer {
	t.Helper()
	return randomLayer(t, size, types.OCILayer)
}

// PushRandomImage pushes an OCI image of layers random layers of layerSize
// bytes each, followed by the shared layers, and returns it. Pushing the same
// shared layer in several images makes blobs that a copy must deduplicate.
func PushRandomImage(t testing.TB, reg *Registry, repoTag string, layers int, layerSize int64, shared ...v1.Layer) v1.Image {
	t.Helper()
	all := make([]v1.Layer, 0, layers+len(shared))
	for range layers {
		all = append(all, randomLayer(t, layerSize, types.OCILayer))
	}
	all = append(all, shared...)
	img := buildImage(t, types.OCIManifestSchema1, types.OCIConfigJSON, v1.Platform{OS: "linux", Architecture: "amd64"}, all)
	pushImage(t, reg, repoTag, img)
	return img
}

// PushIndex pushes an OCI image index with one image per platform ("os/arch"
// or "os/arch/variant"; none means linux/amd64 and linux/arm64) and returns
// it. The platform is set in each image's config and in its index
// descriptor, and all images share one layer besides their own.
func PushIndex(t testing.TB, reg *Registry, repoTag string, platforms ...string) v1.ImageIndex {
	t.Helper()
	if len(platforms) == 0 {
		platforms = []string{"linux/amd64", "linux/arm64"}
	}
	shared := randomLayer(t, indexLayerSize, types.OCILayer)
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, s := range platforms {
		p, err := v1.ParsePlatform(s)
		if err != nil {
			t.Fatalf("testbed: platform %q: %v", s, err)
		}
		own := randomLayer(t, indexLayerSize, types.OCILayer)
		img := buildImage(t, types.OCIManifestSchema1, types.OCIConfigJSON, *p, []v1.Layer{own, shared})
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: p},
		})
	}
	ref := reg.Ref(t, repoTag)
	if err := remote.WriteIndex(ref, idx, append(reg.Options(), remote.WithContext(t.Context()))...); err != nil {
		t.Fatalf("testbed: pushing index %s: %v", ref, err)
	}
	return idx
}

// PushDockerImage pushes an image with Docker schema 2 media types (manifest,
// config and two layers), the kind older registries and tools still serve,
// and returns it.
func PushDockerImage(t testing.TB, reg *Registry, repoTag string) v1.Image {
	t.Helper()
	layers := []v1.Layer{
		randomLayer(t, dockerLayerSize, types.DockerLayer),
		randomLayer(t, dockerLayerSize, types.DockerLayer),
	}
	img := buildImage(t, types.DockerManifestSchema2, types.DockerConfigJSON, v1.Platform{OS: "linux", Architecture: "amd64"}, layers)
	pushImage(t, reg, repoTag, img)
	return img
}

func buildImage(t testing.TB, manifestType, configType types.MediaType, platform v1.Platform, layers []v1.Layer) v1.Image {
	t.Helper()
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, manifestType), configType)
	img, err := mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: platform.Architecture,
		OS:           platform.OS,
		Variant:      platform.Variant,
		OSVersion:    platform.OSVersion,
		RootFS:       v1.RootFS{Type: "layers"},
		Config:       v1.Config{Labels: map[string]string{"org.opencontainers.image.vendor": "ferry testbed"}},
	})
	if err != nil {
		t.Fatalf("testbed: setting image config: %v", err)
	}
	img, err = mutate.AppendLayers(img, layers...)
	if err != nil {
		t.Fatalf("testbed: appending layers: %v", err)
	}
	return img
}

func pushImage(t testing.TB, reg *Registry, repoTag string, img v1.Image) {
	t.Helper()
	ref := reg.Ref(t, repoTag)
	if err := remote.Write(ref, img, append(reg.Options(), remote.WithContext(t.Context()))...); err != nil {
		t.Fatalf("testbed: pushing image %s: %v", ref, err)
	}
}

// randomLayer builds the tar and its gzip in one pass, hashing both on the
// way, so the digest and diff ID never need a second read.
func randomLayer(t testing.TB, size int64, mt types.MediaType) v1.Layer {
	t.Helper()
	var gz bytes.Buffer
	diffHash := sha256.New()
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestSpeed) // random bytes do not compress; do not try hard
	if err != nil {
		t.Fatalf("testbed: %v", err)
	}
	tw := tar.NewWriter(io.MultiWriter(zw, diffHash))
	hdr := &tar.Header{Name: "random-" + rand.Text() + ".bin", Mode: 0o644, Size: size, Typeflag: tar.TypeReg}
	if err := tw.WriteHeader(hdr); err != nil {
		t.Fatalf("testbed: writing random layer: %v", err)
	}
	if _, err := io.CopyN(tw, rand.Reader, size); err != nil {
		t.Fatalf("testbed: writing random layer: %v", err)
	}
	if err := tw.Close(); err != nil {
		t.Fatalf("testbed: writing random layer: %v", err)
	}
	if err := zw.Close(); err != nil {
		t.Fatalf("testbed: compressing random layer: %v", err)
	}
	sum := sha256.Sum256(gz.Bytes())
	return &generatedLayer{
		compressed: gz.Bytes(),
		digest:     v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])},
		diffID:     v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(diffHash.Sum(nil))},
		mediaType:  mt,
	}
}

// generatedLayer is a gzip'd layer held in memory with its hashes precomputed.
type generatedLayer struct {
	compressed     []byte
	digest, diffID v1.Hash
	mediaType      types.MediaType
}

var _ v1.Layer = (*generatedLayer)(nil)

func (l *generatedLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *generatedLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *generatedLayer) Size() (int64, error)                { return int64(len(l.compressed)), nil }
func (l *generatedLayer) MediaType() (types.MediaType, error) { return l.mediaType, nil }

func (l *generatedLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.compressed)), nil
}

func (l *generatedLayer) Uncompressed() (io.ReadCloser, error) {
	return gzip.NewReader(bytes.NewReader(l.compressed))
}
