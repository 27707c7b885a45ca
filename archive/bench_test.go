package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/ferrytool/ferry/manifest"
)

func benchArchive(b *testing.B, blobs int, size int64) (*manifest.BOM, noiseSource) {
	bom := manifest.NewBOM("bench", time.Now())
	src := noiseSource{}
	for i := range blobs {
		h := sha256.New()
		io.Copy(h, noise(uint64(i), size))
		d := "sha256:" + hex.EncodeToString(h.Sum(nil))
		src[d] = uint64(i)
		bom.Blobs = append(bom.Blobs, manifest.Blob{Digest: d, Size: size, MediaType: "application/vnd.oci.image.layer.v1.tar+gzip"})
		bom.Artifacts = append(bom.Artifacts, manifest.Artifact{Kind: manifest.KindPack, Name: fmt.Sprintf("b%d", i), Digest: d, Size: size, Blobs: []string{d}})
	}
	return bom, src
}

// BenchmarkWrite measures writing already-compressed layers, the common case.
func BenchmarkWrite(b *testing.B) {
	bom, src := benchArchive(b, 4, 16<<20)
	b.SetBytes(4 * 16 << 20)
	for i := 0; b.Loop(); i++ {
		dir := b.TempDir()
		if _, err := Write(context.Background(), bom, src, WriteOptions{Dir: dir, Name: "b", Signer: testSigner{"k"}}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenSetRead measures opening a volume and reading every blob.
func BenchmarkOpenSetRead(b *testing.B) {
	bom, src := benchArchive(b, 4, 16<<20)
	dir := b.TempDir()
	res, err := Write(context.Background(), bom, src, WriteOptions{Dir: dir, Name: "b", Signer: testSigner{"k"}})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(4 * 16 << 20)
	for b.Loop() {
		set, err := OpenSet(context.Background(), []string{res.Volumes[0].Path}, SetOptions{Verifier: testSigner{"k"}})
		if err != nil {
			b.Fatal(err)
		}
		for _, bl := range bom.Blobs {
			rc, err := set.Open(context.Background(), bl.Digest)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, rc); err != nil {
				b.Fatal(err)
			}
			rc.Close()
		}
		set.Close()
	}
}
