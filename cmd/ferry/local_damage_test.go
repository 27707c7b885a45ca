package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrytool/ferry/internal/testbed/bolttest"
	"github.com/ferrytool/ferry/store"
)

// Local bbolt files a power cut or a bad disk damaged: the ingest journal
// is refused with the way out, the collect cache index is started anew.

func TestDamagedJournalExitCodes(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "ferry")
	mustFerry(t, "key", "generate", "--output", key)
	for _, d := range bolttest.Damages() {
		if !d.SmallFileOK {
			continue // the files here hold a record or two
		}
		t.Run(d.Name, func(t *testing.T) {
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
			d.Apply(t, journal)
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
	for _, d := range bolttest.Damages() {
		if !d.SmallFileOK {
			continue // the files here hold a record or two
		}
		t.Run(d.Name, func(t *testing.T) {
			cache := filepath.Join(t.TempDir(), "cache")
			args := []string{"collect", "--plan", "--quiet", "--cache-dir", cache, "--pack", zst, "--pack-key", ec.pub}
			mustFerry(t, args...)
			index := filepath.Join(cache, "index.db")
			d.Apply(t, index)
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
