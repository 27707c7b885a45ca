package archive

import (
	"bytes"
	"context"
	"os"
	"testing"
)

// seedVolume is a small valid volume for the fuzzers to mutate.
func seedVolume(f *testing.F) []byte {
	fx := newFixture(f, 2<<10)
	_, res := writeFixture(f, fx, 0)
	data, err := os.ReadFile(res.Volumes[0].Path)
	if err != nil {
		f.Fatal(err)
	}
	return data
}

// FuzzScan feeds arbitrary bytes to the one-pass reader: it must return an
// error or a result, never panic or hang.
func FuzzScan(f *testing.F) {
	f.Add(seedVolume(f))
	f.Add([]byte{})
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd})
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := Scan(context.Background(), bytes.NewReader(data), ScanOptions{Name: "fuzz", Verifier: testSigner{"k"}, TmpDir: t.TempDir()})
		if err == nil && res.Index == nil {
			t.Fatal("scan succeeded without reading an index")
		}
	})
}

// FuzzOpenVolume feeds arbitrary bytes to the random-access reader and reads
// every blob the index claims.
func FuzzOpenVolume(f *testing.F) {
	f.Add(seedVolume(f))
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		v, err := OpenVolume(ctx, bytes.NewReader(data), int64(len(data)), "fuzz", t.TempDir())
		if err != nil {
			return
		}
		for _, b := range v.Index().Blobs {
			rc, err := v.OpenBlob(ctx, b)
			if err != nil {
				continue
			}
			var buf bytes.Buffer
			buf.ReadFrom(rc)
			rc.Close()
		}
	})
}
