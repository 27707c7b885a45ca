package collect

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrytool/ferry/manifest"
)

// A ClusterProfile whose pack values are an alias bomb is refused, naming
// the bundle, the profile and the limit, before the values are parsed.
func TestReadBundlePackValuesAliasBomb(t *testing.T) {
	var values strings.Builder
	values.WriteString("      a0: &a0 \"" + strings.Repeat("x", 1<<20) + "\"\n      pad: [" + strings.Repeat("1, ", 50) + "1]\n")
	for i := 1; i <= 3; i++ {
		fmt.Fprintf(&values, "      a%d: &a%d [%s*a%d]\n", i, i, strings.Repeat(fmt.Sprintf("*a%d, ", i-1), 9), i-1)
	}
	doc := "kind: ClusterProfile\nmetadata: {name: edge}\nspec:\n  packs:\n  - name: cni\n    version: 1.0.0\n    values: |\n" + values.String()
	file := bundleFile(t, doc)
	p := &planner{spec: manifest.NewTransferSpec(), cache: testCache(t)}
	_, err := p.readBundle(context.Background(), manifest.BundleSpec{File: file})
	if !errors.Is(err, manifest.ErrInvalidBundle) {
		t.Fatalf("err = %v, want ErrInvalidBundle", err)
	}
	for _, want := range []string{file, "ClusterProfile edge", "pack cni 1.0.0", "MaxYAMLDecodedSize"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to name %q", err, want)
		}
	}
}

// bundleFile writes a bundle tarball edge-bundle-1.0.0.tar.gz holding one
// document.
func bundleFile(t *testing.T, doc string) string {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: "b/profile.yaml", Mode: 0o644, Size: int64(len(doc)), Typeflag: tar.TypeReg})
	tw.Write([]byte(doc))
	tw.Close()
	zw.Close()
	file := filepath.Join(t.TempDir(), "edge-bundle-1.0.0.tar.gz")
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

func testCache(t *testing.T) *Cache {
	t.Helper()
	cache, err := OpenCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cache.Close() })
	return cache
}
