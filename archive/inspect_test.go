package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrytool/ferry/manifest"
)

// noiseSource generates incompressible blobs from a seed, so a large archive
// costs no memory.
type noiseSource map[string]uint64

func noise(seed uint64, size int64) io.Reader {
	var key [32]byte
	key[0] = byte(seed)
	return io.LimitReader(rand.NewChaCha8(key), size)
}

func (n noiseSource) OpenBlob(_ context.Context, b manifest.Blob) (io.ReadCloser, error) {
	return io.NopCloser(noise(n[b.Digest], b.Size)), nil
}

func TestInspectReadsOnlyTheIndex(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 256 MiB archive")
	}
	const blobSize, blobs = 32 << 20, 8
	bom := manifest.NewBOM("big", time.Now())
	src := noiseSource{}
	for i := range blobs {
		h := sha256.New()
		io.Copy(h, noise(uint64(i), blobSize))
		d := "sha256:" + hex.EncodeToString(h.Sum(nil))
		src[d] = uint64(i)
		bom.Blobs = append(bom.Blobs, manifest.Blob{Digest: d, Size: blobSize, MediaType: "application/vnd.oci.image.layer.v1.tar+gzip"})
		bom.Artifacts = append(bom.Artifacts, manifest.Artifact{Kind: manifest.KindPack, Name: fmt.Sprintf("blob-%d", i), Digest: d, Size: blobSize, Blobs: []string{d}})
	}
	dir := t.TempDir()
	res, err := Write(context.Background(), bom, src, WriteOptions{Dir: dir, Name: "big", Signer: testSigner{"k"}})
	if err != nil {
		t.Fatal(err)
	}
	var counted atomic.Int64
	set, err := OpenSet(context.Background(), []string{res.Volumes[0].Path}, SetOptions{Verifier: testSigner{"k"}, OnRead: func(_ string, n int64) { counted.Add(n) }})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	st, _ := os.Stat(res.Volumes[0].Path)
	in, err := Inspect(context.Background(), set)
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Artifacts) != blobs {
		t.Fatalf("inspect lists %d artifacts, want %d", len(in.Artifacts), blobs)
	}
	read := counted.Load()
	t.Logf("inspect read %d of %d bytes", read, st.Size())
	if read > 256<<10 {
		t.Fatalf("inspect read %d bytes of a %d byte volume; it should read only the trailer and index", read, st.Size())
	}
}
