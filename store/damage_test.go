package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrytool/ferry/internal/testbed/bolttest"
)

// Damage a local database the way a power cut or a bad disk does
// (bolttest.Damages()), and check that opening it says so, naming the file,
// instead of crashing.

// fillJournal writes enough records to spread the journal over many pages.
func fillJournal(t *testing.T, path string) {
	t.Helper()
	j, err := OpenJournal(path, JournalOptions{LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := j.PutArchive("a1", digestN(1), []byte(strings.Repeat("{}", 3000)), []byte("sig"), now); err != nil {
		t.Fatal(err)
	}
	if err := j.Write(func(w *JournalWriter) error {
		for i := range 400 {
			if err := w.PutBlob("reg/base", fmt.Sprintf("images/r%d", i%7), digestN(i), BlobRecord{Archive: "a1", At: now, Size: int64(i), How: "uploaded"}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
}

// useJournal reads everything a run or --status reads.
func useJournal(j *Journal) error {
	if _, err := j.Archives(); err != nil {
		return err
	}
	if _, err := j.Destinations(); err != nil {
		return err
	}
	_, err := j.BlobRepos("reg/base", digestN(3))
	return err
}

func checkDamaged(t *testing.T, path string, err error) {
	t.Helper()
	if !errors.Is(err, ErrDamaged) {
		t.Fatalf("open of a damaged file: %v, want ErrDamaged", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("%q does not name the file", err)
	}
}

func TestDamagedJournal(t *testing.T) {
	for _, ro := range []bool{false, true} {
		for _, d := range bolttest.Damages() {
			t.Run(fmt.Sprintf("%s/readonly=%v", d.Name, ro), func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "journal.db")
				fillJournal(t, path)
				d.Apply(t, path)
				_, err := OpenJournal(path, JournalOptions{LockTimeout: time.Second, ReadOnly: ro})
				checkDamaged(t, path, err)
			})
		}
	}
}

// TestJournalZeroedPages zeroes each page in turn: a file bbolt can still
// read (a zeroed meta page has a good twin) opens and reads without a
// panic; any other is refused as damaged; and the pages that hold records
// are refused.
func TestJournalZeroedPages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.db")
	fillJournal(t, path)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	refused := 0
	for n := range bolttest.Pages(t, path) {
		for _, ro := range []bool{true, false} {
			if err := os.WriteFile(path, good, 0o600); err != nil {
				t.Fatal(err)
			}
			bolttest.ZeroPage(t, path, n)
			j, err := OpenJournal(path, JournalOptions{LockTimeout: time.Second, ReadOnly: ro})
			if err != nil {
				checkDamaged(t, path, err)
				refused++
				continue
			}
			if err := useJournal(j); err != nil {
				t.Errorf("page %d zeroed: opened, then %v", n, err)
			}
			j.Close()
		}
	}
	if refused == 0 {
		t.Fatal("no zeroed page was noticed")
	}
	t.Logf("%d pages, %d opens refused", bolttest.Pages(t, path), refused)
}

func TestDamagedCacheIndex(t *testing.T) {
	for _, d := range bolttest.Damages() {
		t.Run(d.Name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "index.db")
			ci, err := OpenCacheIndex(path, 0)
			if err != nil {
				t.Fatal(err)
			}
			var bs []CacheBlob
			for i := range 300 {
				bs = append(bs, CacheBlob{Digest: digestN(i), Size: int64(i)})
			}
			if err := ci.PutBlobs(bs); err != nil {
				t.Fatal(err)
			}
			ci.Close()
			d.Apply(t, path)
			_, err = OpenCacheIndex(path, 0)
			checkDamaged(t, path, err)
		})
	}
}
