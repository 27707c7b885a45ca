package store

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ferrytool/ferry/manifest"
)

// checkConsistency runs bbolt's own structural check on a database file.
func checkConsistency(t *testing.T, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s is inconsistent: %v", path, err)
	}
}

func TestVolumeIndexRoundTrip(t *testing.T) {
	d := "sha256:" + strings.Repeat("a", 64)
	in := &VolumeIndex{
		Meta:      VolumeMeta{ArchiveID: "x", Volume: 2, Final: true, BOMDigest: d, Created: time.Unix(100, 0).UTC(), EntriesBytes: 42},
		Artifacts: []manifest.Artifact{{Kind: manifest.KindImage, Name: "b"}, {Kind: manifest.KindImage, Name: "a"}},
		Blobs:     []manifest.Blob{{Digest: d, Size: 9}},
		Entries: []Entry{
			{Digest: d, Path: "ferry/parts/x/1", Offset: 10, Length: 20, Size: 5, Part: &Part{Offset: 100, Digest: d}},
			{Digest: d, Path: "blobs/sha256/x", Offset: 30, Length: 5, Size: 9},
		},
	}
	path := filepath.Join(t.TempDir(), "index.db")
	if err := WriteVolumeIndex(path, in); err != nil {
		t.Fatal(err)
	}
	checkConsistency(t, path)
	out, err := ReadVolumeIndex(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in.Meta, out.Meta) || !reflect.DeepEqual(in.Artifacts, out.Artifacts) || !reflect.DeepEqual(in.Blobs, out.Blobs) {
		t.Fatalf("round trip changed the index:\n%+v\n%+v", in, out)
	}
	if len(out.Entries) != 2 {
		t.Fatalf("entries: %+v", out.Entries)
	}
	// Artifacts keep the bill of materials' order, not name order.
	if out.Artifacts[0].Name != "b" {
		t.Errorf("artifact order lost: %v", out.Artifacts)
	}
}

func TestReadVolumeIndexRejectsOtherFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := ReadVolumeIndex(path); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
}
