package main

import (
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrytool/ferry/store"
)

// Local bbolt files a power cut or a bad disk damaged: the ingest journal
// is refused with the way out, the collect cache index is started anew.

// localDamages are the kinds of damage applied to a closed bbolt file.
var localDamages = []struct {
	name string
	fn   func(t *testing.T, path string)
}{
	{"truncated", func(t *testing.T, path string) {
		// Cut before the first root page either meta names: bbolt grows
		// its files ahead, so a cut in the free tail would change nothing.
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		ps, roots := rootPages(t, data)
		if err := os.Truncate(path, int64(min(roots[0], roots[1])*ps)); err != nil {
			t.Fatal(err)
		}
	}},
	{"zeroed root page", zeroRootPages},
	{"random bytes", func(t *testing.T, path string) {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		data := make([]byte, st.Size())
		r := rand.New(rand.NewPCG(3, 4))
		for i := range data {
			data[i] = byte(r.Uint32())
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}},
}

// zeroRootPages zeroes the page each of the two meta pages names as the
// root of the buckets, so whichever meta bbolt picks leads to zeros.
func zeroRootPages(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ps, roots := rootPages(t, data)
	for _, root := range roots {
		clear(data[root*ps : (root+1)*ps])
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// rootPages reads a bbolt file's page size and the root page each of its
// two meta pages names.
func rootPages(t *testing.T, data []byte) (int, [2]int) {
	t.Helper()
	ps := int(binary.LittleEndian.Uint32(data[16+8:])) // meta: magic, version, page size
	var roots [2]int
	for i, meta := range []int{0, ps} {
		// page header (16 bytes), magic, version, page size, flags, then
		// the root bucket's page id.
		roots[i] = int(binary.LittleEndian.Uint64(data[meta+16+16:]))
		if (roots[i]+1)*ps > len(data) || roots[i] < 2 {
			t.Fatalf("meta %d names root page %d of a %d byte file", i, roots[i], len(data))
		}
	}
	return ps, roots
}

func TestDamagedJournalExitCodes(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "ferry")
	mustFerry(t, "key", "generate", "--output", key)
	for _, d := range localDamages {
		t.Run(d.name, func(t *testing.T) {
			journal := filepath.Join(t.TempDir(), "journal.db")
			j, err := store.OpenJournal(journal, store.JournalOptions{})
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			if err := j.PutArchive("0123456789abcdef", "sha256:"+strings.Repeat("a", 64), []byte("{}"), []byte("sig"), now); err != nil {
				t.Fatal(err)
			}
			if err := j.PutDestArchive("127.0.0.1:1/base", store.DestArchive{ArchiveID: "0123456789abcdef", FirstRun: now, LastRun: now}); err != nil {
				t.Fatal(err)
			}
			j.Close()
			d.fn(t, journal)
			names := []string{journal, "damaged", "--journal", "move the file aside"}
			r := wantFail(t, ExitFailure, names, "ingest", "--status", "--journal", journal)
			checkNoPanic(t, r)
			// A run opens the journal before it reads a volume or sends a
			// request: neither exists here.
			r = wantFail(t, ExitFailure, names, "ingest", "--quiet", "--registry", "127.0.0.1:1/base", "--key", key+".pub",
				"--journal", journal, filepath.Join(dir, "no-such.tar.zst"))
			checkNoPanic(t, r)
		})
	}
}

func checkNoPanic(t *testing.T, r result) {
	t.Helper()
	if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic") && !strings.Contains(r.stderr, "damaged") {
		t.Errorf("output shows a crash:\n%s", r.stderr)
	}
}

func TestDamagedCacheIndexIsRebuilt(t *testing.T) {
	dir := t.TempDir()
	ec := newVendorKey(t, dir, "ecdsa")
	zst := ec.writePack(t, dir, "edge-k8s", "1.33.5")
	for _, d := range localDamages {
		t.Run(d.name, func(t *testing.T) {
			cache := filepath.Join(t.TempDir(), "cache")
			args := []string{"collect", "--plan", "--quiet", "--cache-dir", cache, "--pack", zst, "--pack-key", ec.pub}
			mustFerry(t, args...)
			index := filepath.Join(cache, "index.db")
			d.fn(t, index)
			r := mustFerry(t, args...)
			checkNoPanic(t, r)
			for _, want := range []string{"warning:", index, index + ".damaged", "downloaded again"} {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr does not say %q:\n%s", want, r.stderr)
				}
			}
			if !strings.Contains(r.stdout, "spectro-packs/archive/edge-k8s:1.33.5") {
				t.Errorf("plan after the rebuild:\n%s", r.stdout)
			}
			// The new index is sound: the next run says nothing.
			r = mustFerry(t, args...)
			if strings.Contains(r.stderr, "damaged") {
				t.Errorf("the rebuilt index is refused again:\n%s", r.stderr)
			}
		})
	}
}
