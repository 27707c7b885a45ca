package verify_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/ferrytool/ferry/archive"
	"github.com/ferrytool/ferry/internal/digestio"
	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/verify"
)

type memBlobs map[string][]byte

func (m memBlobs) OpenBlob(_ context.Context, b manifest.Blob) (io.ReadCloser, error) {
	data, ok := m[b.Digest]
	if !ok {
		return nil, fmt.Errorf("no blob %s", b.Digest)
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

// reproducibleBOM is a bill of materials with everything fixed that collect
// will have to fix: the archive id and the creation time.
func reproducibleBOM(t *testing.T, created time.Time) (*manifest.BOM, memBlobs) {
	t.Helper()
	bom := manifest.NewBOM("fixed-id", created)
	src := memBlobs{}
	add := func(data []byte, mt string) manifest.Descriptor {
		d := digestio.FromBytes(data)
		if _, ok := src[d]; !ok {
			src[d] = data
			bom.Blobs = append(bom.Blobs, manifest.Blob{Digest: d, Size: int64(len(data)), MediaType: mt})
		}
		return manifest.Descriptor{MediaType: mt, Digest: d, Size: int64(len(data))}
	}
	// Layers that do not compress, so the archive spans volumes.
	layer := func(seed string, n int) []byte {
		out := make([]byte, 0, n)
		for h := sha256.Sum256([]byte(seed)); len(out) < n; h = sha256.Sum256(h[:]) {
			out = append(out, h[:]...)
		}
		return out[:n]
	}
	shared := add(layer("shared", 300<<10), "application/vnd.oci.image.layer.v1.tar+gzip")
	for _, name := range []string{"one", "two", "three"} {
		l := add(layer(name, 200<<10), "application/vnd.oci.image.layer.v1.tar+gzip")
		plain := add(bytes.Repeat([]byte(name+" compresses "), 4000), "application/vnd.oci.image.layer.v1.tar")
		cfg := add([]byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}}`+name), "application/vnd.oci.image.config.v1+json")
		m, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": manifest.MediaTypeOCIManifest, "config": cfg,
			"layers": []manifest.Descriptor{shared, l, plain}})
		if err != nil {
			t.Fatal(err)
		}
		root := add(m, manifest.MediaTypeOCIManifest)
		bom.Artifacts = append(bom.Artifacts, manifest.Artifact{Kind: manifest.KindImage, Name: name, Source: "example.test/" + name,
			Dest: manifest.Destination{Repository: "images/" + name, Tag: "1"}, Digest: root.Digest, Size: root.Size, MediaType: root.MediaType,
			Blobs: []string{shared.Digest, l.Digest, plain.Digest, cfg.Digest, root.Digest}})
	}
	return bom, src
}

// trustAll accepts every signature: these tests compare bytes, the
// signatures are checked elsewhere.
type trustAll struct{}

func (trustAll) VerifyBOM(context.Context, []byte, []byte) error { return nil }

// volumeSums writes the archive and returns, for every volume, the SHA-256
// of the whole file and of the bytes up to the end of its last blob.
func volumeSums(t *testing.T, s *verify.Signer, created time.Time, procs int) (whole, content []string) {
	t.Helper()
	// The number of processors sizes zstd's encoders; another machine has
	// another number.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
	bom, src := reproducibleBOM(t, created)
	res, err := archive.Write(context.Background(), bom, src, archive.WriteOptions{Dir: t.TempDir(), Name: "repro", VolumeSize: 512 << 10, Signer: s, Tool: "ferry test"})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range res.Volumes {
		data, err := os.ReadFile(v.Path)
		if err != nil {
			t.Fatal(err)
		}
		set, err := archive.OpenSet(context.Background(), []string{v.Path}, archive.SetOptions{Verifier: trustAll{}})
		if err != nil {
			t.Fatal(err)
		}
		var end int64
		for _, e := range set.Entries(v.Number) {
			end = max(end, e.Offset+e.Length)
		}
		set.Close()
		name := filepath.Base(v.Path)
		whole = append(whole, fmt.Sprintf("%s %x", name, sha256.Sum256(data)))
		content = append(content, fmt.Sprintf("%s %d %x", name, end, sha256.Sum256(data[:end])))
	}
	return whole, content
}

// With the archive id and creation time fixed and a deterministic
// signature, the writer gives the same bytes whatever the number of
// processors: the blobs, the index database that closes each volume, its
// seal and the trailer. Another creation time gives other bytes.
func TestArchiveVolumesReproducible(t *testing.T) {
	s, _, _, _ := fileSignerVerifier(t)
	created := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	wholeA, a := volumeSums(t, s, created, 1)
	wholeB, b := volumeSums(t, s, created, 8)
	if len(a) < 2 {
		t.Fatalf("%d volumes; the test needs several", len(a))
	}
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("same content, different volumes:\n%v\n%v", a, b)
	}
	if fmt.Sprint(wholeA) != fmt.Sprint(wholeB) {
		t.Errorf("same content, different whole volumes:\n%v\n%v", wholeA, wholeB)
	}
	wholeC, c := volumeSums(t, s, created.Add(time.Second), 1)
	for i := range min(len(a), len(c)) {
		if a[i] == c[i] || wholeA[i] == wholeC[i] {
			t.Errorf("volume %d is the same with another creation time", i+1)
		}
	}
}
