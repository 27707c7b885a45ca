// Package bolttest damages bbolt files the way a power cut or a bad disk
// does, for the tests of every local bbolt file ferry keeps. It uses the
// standard library only, so a test that imports it builds no test bed.
package bolttest

import (
	"encoding/binary"
	"math/rand/v2"
	"os"
	"testing"
)

// BoltDamage is one way a power cut or a bad disk leaves a closed bbolt
// file: Apply changes the file at path in place.
type Damage struct {
	Name  string
	Apply func(t testing.TB, path string)
	// SmallFileOK is true when the damage reaches the data of any file,
	// even one whose few records sit in its first pages; the others need a
	// file with records spread over many pages.
	SmallFileOK bool
}

// Damages lists the damages every test of a local bbolt file (the ingest
// journal, the collect cache index) applies. Each one leaves a file bbolt
// would misread or fault on, not one it merely opens empty.
func Damages() []Damage {
	return []Damage{
		{"truncated to 16 KiB", func(t testing.TB, path string) { truncate(t, path, 16<<10) }, false},
		{"truncated to half", func(t testing.TB, path string) { truncate(t, path, fileSize(t, path)/2) }, false},
		// Cut before the first root page a meta names: bbolt grows its files
		// ahead, so a cut in the free tail would change nothing.
		{"truncated before a root page", func(t testing.TB, path string) {
			m := readBoltMetas(t, path)
			truncate(t, path, int64(min(m[0].root, m[1].root)*m[0].pageSize))
		}, true},
		// Cut at the freelist page of the newer meta: every bucket still reads,
		// and only bbolt's consistency check, on a goroutine of its own, would
		// touch the missing page.
		{"truncated at the freelist", func(t testing.TB, path string) {
			m := readBoltMetas(t, path)
			newer := m[0]
			if m[1].txid >= newer.txid {
				newer = m[1]
			}
			truncate(t, path, int64(newer.freelist*newer.pageSize))
		}, false},
		// Zero the root page each meta names, so whichever meta bbolt picks
		// leads to zeros.
		{"zeroed root pages", func(t testing.TB, path string) {
			data := readFile(t, path)
			for _, m := range readBoltMetas(t, path) {
				clear(data[m.root*m.pageSize : (m.root+1)*m.pageSize])
			}
			writeFile(t, path, data)
		}, true},
		{"random bytes", func(t testing.TB, path string) {
			data := make([]byte, fileSize(t, path))
			r := rand.New(rand.NewPCG(3, 4))
			for i := range data {
				data[i] = byte(r.Uint32())
			}
			writeFile(t, path, data)
		}, true},
	}
}

// ZeroPage overwrites page n of the bbolt file at path with zeros.
func ZeroPage(t testing.TB, path string, n int) {
	t.Helper()
	ps := readBoltMetas(t, path)[0].pageSize
	data := readFile(t, path)
	clear(data[n*ps : (n+1)*ps])
	writeFile(t, path, data)
}

// Pages returns the number of pages of the bbolt file at path.
func Pages(t testing.TB, path string) int {
	t.Helper()
	return int(fileSize(t, path)) / readBoltMetas(t, path)[0].pageSize
}

// boltMeta is what the damages need of one of a bbolt file's two meta
// pages.
type boltMeta struct {
	pageSize, root, freelist int
	txid                     uint64
}

// readBoltMetas decodes the two meta pages (pages 0 and 1). A meta page is
// a 16-byte page header, then magic, version and page size (4 bytes each),
// flags (4), the root bucket (page id, sequence: 16), the freelist page id,
// the high water mark and the transaction id (8 each).
func readBoltMetas(t testing.TB, path string) [2]boltMeta {
	t.Helper()
	data := readFile(t, path)
	if len(data) < 64 {
		t.Fatalf("%s: %d bytes is no bbolt file", path, len(data))
	}
	ps := int(binary.LittleEndian.Uint32(data[16+8:]))
	var metas [2]boltMeta
	for i := range metas {
		m := data[i*ps+16:]
		metas[i] = boltMeta{
			pageSize: int(binary.LittleEndian.Uint32(m[8:])),
			root:     int(binary.LittleEndian.Uint64(m[16:])),
			freelist: int(binary.LittleEndian.Uint64(m[32:])),
			txid:     binary.LittleEndian.Uint64(m[48:]),
		}
		if metas[i].pageSize != ps || metas[i].root < 2 || (metas[i].root+1)*ps > len(data) {
			t.Fatalf("%s: meta %d is not sound: %+v in a %d byte file", path, i, metas[i], len(data))
		}
	}
	return metas
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func truncate(t testing.TB, path string, n int64) {
	t.Helper()
	if err := os.Truncate(path, n); err != nil {
		t.Fatal(err)
	}
}
