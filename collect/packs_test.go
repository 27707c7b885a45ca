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
	"runtime"
	"strings"
	"testing"

	"github.com/ferrytool/ferry/manifest"
)

// packEntry is one entry of a generated pack tarball.
type packEntry struct {
	name string
	size int // bytes of 'x' when body is empty
	body string
}

func makePackTarball(t testing.TB, entries ...packEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		body := []byte(e.body)
		if e.body == "" {
			body = bytes.Repeat([]byte("x"), e.size)
		}
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(body)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	return buf.Bytes()
}

const packJSONBody = `{"name":"p","version":"1.0.0"}`

func TestReadPackTarballLimits(t *testing.T) {
	ok := packEntry{name: "p/pack.json", body: packJSONBody}
	many := []packEntry{ok}
	for i := 0; i < MaxPackEntries; i++ {
		many = append(many, packEntry{name: fmt.Sprintf("p/f%d", i), body: "x"})
	}
	small := packLimits{entries: 100, size: 64 << 10, held: 16 << 10, yamlSize: 1 << 10, charts: 8 << 10}
	tests := []struct {
		name    string
		entries []packEntry
		lim     packLimits
		want    string
	}{
		{"many tiny entries", many, defaultPackLimits, fmt.Sprintf(`more than %d entries (MaxPackEntries) at "p/f%d"`, MaxPackEntries, MaxPackEntries-1)},
		// Each skipped entry is small; together they pass the cap.
		{"entries sum past the cap", []packEntry{ok, {name: "p/a.bin", size: 30 << 10}, {name: "p/b.bin", size: 30 << 10}, {name: "p/c.bin", size: 30 << 10}},
			small, `entries up to "p/c.bin" add up to 92190 bytes, more than 65536 (MaxPackSize)`},
		// Empty entries declare nothing; their headers alone pass the cap.
		{"headers past the cap", append([]packEntry{ok}, many[1:200]...), packLimits{entries: 1000, size: 32 << 10, held: 16 << 10, yamlSize: 1 << 10, charts: 8 << 10},
			"more than 32768 bytes once uncompressed (MaxPackSize)"},
		{"charts held past the cap", []packEntry{ok, {name: "p/charts/a.tgz", size: 6 << 10}, {name: "p/charts/b.tgz", size: 6 << 10}, {name: "p/charts/c.tgz", size: 6 << 10}},
			small, "p/charts/c.tgz brings what is read into memory to 18462 bytes, over the 16384 byte limit (MaxPackHeldSize)"},
		{"chart too big", []packEntry{ok, {name: "p/charts/a.tgz", size: 9 << 10}}, small, "over the 8192 byte limit (MaxPackChartSize)"},
		{"values too big", []packEntry{ok, {name: "p/values.yaml", size: 2 << 10}}, small, "p/values.yaml is 2048 bytes, over the 1024 byte limit (MaxPackYAMLSize)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := makePackTarball(t, tc.entries...)
			_, err := readPackTarball(context.Background(), bytes.NewReader(data), tc.lim)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one saying %q", err, tc.want)
			}
		})
	}
	t.Run("within the limits", func(t *testing.T) {
		data := makePackTarball(t, ok, packEntry{name: "p/values.yaml", body: "a: 1\n"}, packEntry{name: "p/charts/a.tgz", size: 100})
		c, err := readPackTarball(context.Background(), bytes.NewReader(data), small)
		if err != nil || string(c.packJSON) != packJSONBody || len(c.charts) != 1 {
			t.Fatalf("content %+v, err %v", c, err)
		}
	})
}

// Counting entries costs nothing per entry kept: a tarball of many empty
// entries is refused without memory growing with it.
func TestReadPackTarballManyEntriesMemory(t *testing.T) {
	entries := []packEntry{{name: "p/pack.json", body: packJSONBody}}
	for i := 0; i <= MaxPackEntries; i++ {
		entries = append(entries, packEntry{name: fmt.Sprintf("p/%d", i), body: "x"})
	}
	data := makePackTarball(t, entries...)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := readPackTarball(context.Background(), bytes.NewReader(data), defaultPackLimits)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "MaxPackEntries") {
		t.Fatalf("err = %v", err)
	}
	if in := after.HeapInuse; in > before.HeapInuse+32<<20 {
		t.Errorf("heap grew from %d to %d MiB", before.HeapInuse>>20, in>>20)
	}
}

// A pack whose values.yaml is an alias bomb is refused by name before
// anything expands it.
func TestTarballPackValuesAliasBomb(t *testing.T) {
	var bomb strings.Builder
	bomb.WriteString("a0: &a0 \"" + strings.Repeat("x", 1<<20) + "\"\npad: [" + strings.Repeat("1, ", 50) + "1]\n")
	for i := 1; i <= 3; i++ {
		fmt.Fprintf(&bomb, "a%d: &a%d [%s*a%d]\n", i, i, strings.Repeat(fmt.Sprintf("*a%d, ", i-1), 9), i-1)
	}
	file := filepath.Join(t.TempDir(), "p-1.0.0.tar.gz")
	os.WriteFile(file, makePackTarball(t, packEntry{name: "p/pack.json", body: packJSONBody}, packEntry{name: "p/values.yaml", body: bomb.String()}), 0o644)
	cache, err := OpenCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	p := &planner{spec: manifest.NewTransferSpec(), cache: cache}
	_, _, err = p.tarballPack(context.Background(), manifest.PackSpec{File: file})
	if !errors.Is(err, ErrPack) || !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), "MaxYAMLDecodedSize") {
		t.Fatalf("err = %v, want ErrPack naming %s and MaxYAMLDecodedSize", err, file)
	}
}
