package archive

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrytool/ferry/internal/digestio"
)

// The index database of a volume depends only on what it indexes: written
// again, it has the same bytes, with the fixed page size whatever the
// machine's, and it reads back as written. The volume record is made too
// large for bbolt to keep inline, so both buckets take pages of their own.
func TestIndexDBBytesStable(t *testing.T) {
	ix := &VolumeIndex{Meta: VolumeMeta{ArchiveID: "id", Volume: 2, BOMDigest: digestio.FromBytes([]byte("bom")),
		Created: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Tool: "ferry test " + strings.Repeat("x", 2000), HeadBytes: 100, EntriesBytes: 5000}}
	// Enough entries to fill several pages of the entries bucket.
	for i := range 400 {
		ix.Entries = append(ix.Entries, Entry{Digest: digestio.FromBytes([]byte(fmt.Sprint(i))), Path: fmt.Sprintf("blobs/%d", i), Offset: int64(i) * 10, Length: 10, Size: 20})
	}
	var first []byte
	for i := range 5 {
		path := filepath.Join(t.TempDir(), "index.db")
		if err := writeIndexDB(path, ix); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = data
			continue
		}
		if !bytes.Equal(first, data) {
			t.Fatalf("write %d: index database differs from the first (%d and %d bytes)", i+1, len(first), len(data))
		}
	}
	// bbolt's meta page: page header (16 bytes), magic, version, page size.
	if ps := binary.LittleEndian.Uint32(first[16+8:]); ps != indexPageSize {
		t.Errorf("page size %d, want %d", ps, indexPageSize)
	}
	got, err := readIndexDB(first)
	if err != nil {
		t.Fatal(err)
	}
	if got.Meta != ix.Meta || len(got.Entries) != len(ix.Entries) {
		t.Errorf("read back %+v with %d entries", got.Meta, len(got.Entries))
	}
}
