package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Damage a local database the way a power cut or a bad disk does, and check
// that opening it says so, naming the file, instead of crashing.

// damages are the kinds of damage each test applies to a closed file.
var damages = []struct {
	name string
	fn   func(t *testing.T, path string)
}{
	{"truncated to 16 KiB", func(t *testing.T, path string) { truncate(t, path, 16<<10) }},
	{"truncated to half", func(t *testing.T, path string) {
		st, _ := os.Stat(path)
		truncate(t, path, st.Size()/2)
	}},
	// Cut at the page the freelist is on: every bucket still reads, and
	// only the consistency check, on a goroutine of its own, would touch
	// the missing page.
	{"truncated at the freelist", func(t *testing.T, path string) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var freelist, pageSize, txid uint64
		for _, off := range []uint64{0, uint64(binary.LittleEndian.Uint32(data[24:28]))} {
			m := data[off+16:]
			if id := binary.LittleEndian.Uint64(m[48:56]); id >= txid {
				txid, pageSize, freelist = id, uint64(binary.LittleEndian.Uint32(m[8:12])), binary.LittleEndian.Uint64(m[32:40])
			}
		}
		truncate(t, path, int64(freelist*pageSize))
	}},
	{"random bytes", func(t *testing.T, path string) {
		st, _ := os.Stat(path)
		data := make([]byte, st.Size())
		r := rand.New(rand.NewPCG(1, 2))
		for i := range data {
			data[i] = byte(r.Uint32())
		}
		writeFile(t, path, data)
	}},
}

func truncate(t *testing.T, path string, n int64) {
	t.Helper()
	if err := os.Truncate(path, n); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// zeroPage overwrites page n of a bbolt file (4 KiB pages) with zeros.
func zeroPage(t *testing.T, path string, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(make([]byte, os.Getpagesize()), int64(n*os.Getpagesize())); err != nil {
		t.Fatal(err)
	}
}

func pages(t *testing.T, path string) int {
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return int(st.Size() / int64(os.Getpagesize()))
}

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
		for _, d := range damages {
			t.Run(fmt.Sprintf("%s/readonly=%v", d.name, ro), func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "journal.db")
				fillJournal(t, path)
				d.fn(t, path)
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
	for n := range pages(t, path) {
		for _, ro := range []bool{true, false} {
			writeFile(t, path, good)
			zeroPage(t, path, n)
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
	t.Logf("%d pages, %d opens refused", pages(t, path), refused)
}

func TestDamagedCacheIndex(t *testing.T) {
	for _, d := range damages {
		t.Run(d.name, func(t *testing.T) {
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
			d.fn(t, path)
			_, err = OpenCacheIndex(path, 0)
			checkDamaged(t, path, err)
		})
	}
}
