package archive

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// seedVolumes are small valid volumes for the fuzzer to mutate: one whole
// archive and the first volume of a split one.
func seedVolumes(f *testing.F) [][]byte {
	fx := newFixture(f, 2<<10)
	_, res := writeFixture(f, fx, 0)
	one, err := os.ReadFile(res.Volumes[0].Path)
	if err != nil {
		f.Fatal(err)
	}
	return [][]byte{one}
}

// FuzzOpenSet feeds arbitrary bytes to Set as a volume and reads every blob
// it offers: it must return errors, never panic, hang, write outside its
// folder or hand out a blob that does not match the signed bill of
// materials.
func FuzzOpenSet(f *testing.F) {
	for _, s := range seedVolumes(f) {
		f.Add(s)
	}
	f.Add([]byte{})
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd})
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "v.tar.zst")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		set, err := OpenSet(ctx, []string{path}, SetOptions{Verifier: testSigner{"k"}})
		if err != nil {
			return
		}
		defer set.Close()
		for _, b := range set.BOM().Blobs {
			if ok, _ := set.Has(b.Digest); !ok {
				continue
			}
			rc, err := set.Open(ctx, b.Digest)
			if err != nil {
				continue
			}
			io.Copy(io.Discard, rc)
			rc.Close()
		}
	})
}
