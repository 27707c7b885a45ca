package archive

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The volume index: the entry that closes every volume. It says where each
// blob, or part of a blob, sits in this volume's compressed stream, so
// random reads never decode what comes before. It is a bbolt file, trusted
// only once its seal (seal.go) has verified its exact bytes.
var (
	bucketMeta    = []byte("meta")
	bucketEntries = []byte("entries")
	keyVolume     = []byte("volume")
)

// VolumeMeta identifies a volume within its archive and records where its
// regions start, so a reader can check that nothing sits between them.
type VolumeMeta struct {
	ArchiveID string `json:"archiveID"`
	// Volume numbers start at 1.
	Volume int `json:"volume"`
	// Final is set on the last volume of the archive, so a reader can tell a
	// missing tail from a complete set.
	Final bool `json:"final"`
	// BOMDigest is the sha256 of manifest.json's exact bytes; every volume of
	// one archive carries the same.
	BOMDigest string    `json:"bomDigest"`
	Created   time.Time `json:"created"`
	Tool      string    `json:"tool,omitempty"`
	// HeadBytes is where the first blob or part frame starts: the end of the
	// bill of materials, its signature and oci-layout.
	HeadBytes int64 `json:"headBytes"`
	// EntriesBytes is where index.json's frame starts: the end of the last
	// blob or part frame.
	EntriesBytes int64 `json:"entriesBytes"`
}

// Entry is where one blob, or one part of a split blob, sits in a volume.
type Entry struct {
	Digest string `json:"digest"`
	// Path is the tar entry name.
	Path string `json:"path"`
	// Offset and Length locate the entry's zstd frame in the volume file.
	Offset int64 `json:"offset"`
	Length int64 `json:"length"`
	// Size is the number of content bytes in the entry.
	Size int64 `json:"size"`
	// Part is set for a part of a blob larger than a volume.
	Part *Part `json:"part,omitempty"`
}

// Part describes a slice of a split blob.
type Part struct {
	// Offset is where the part starts in the whole blob.
	Offset int64 `json:"offset"`
	// Digest is the sha256 of the part's own bytes.
	Digest string `json:"digest"`
}

// Key is the entry's key in the index: the digest, plus the offset for parts.
func (e Entry) Key() string {
	if e.Part == nil {
		return e.Digest
	}
	return fmt.Sprintf("%s@%016d", e.Digest, e.Part.Offset)
}

// VolumeIndex is a volume index read into memory.
type VolumeIndex struct {
	Meta    VolumeMeta
	Entries []Entry
}

// indexPageSize is the index database's page size. bbolt defaults to the
// operating system's, which differs between machines; a fixed one keeps
// the bytes of an index the same wherever it is written.
const indexPageSize = 4096

// writeIndexDB creates a new index file at path. The bytes depend only on
// ix: the page size is fixed, the entries go in in the order given, and
// each bucket is written in a transaction of its own, because bbolt lays
// out the buckets of one transaction in map order.
func writeIndexDB(path string, ix *VolumeIndex) (err error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, PageSize: indexPageSize})
	if err != nil {
		return fmt.Errorf("index %s: %w", path, err)
	}
	defer func() {
		if cerr := db.Close(); err == nil {
			err = cerr
		}
	}()
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		data, err := json.Marshal(ix.Meta)
		if err != nil {
			return err
		}
		return meta.Put(keyVolume, data)
	})
	if err != nil {
		return fmt.Errorf("index %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		entries, err := tx.CreateBucket(bucketEntries)
		if err != nil {
			return err
		}
		for _, e := range ix.Entries {
			data, err := json.Marshal(e)
			if err != nil {
				return err
			}
			if err := entries.Put([]byte(e.Key()), data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("index %s: %w", path, err)
	}
	return nil
}

// readIndexDB reads an index whose bytes have been verified against their
// seal. bbolt needs a file it can map; the bytes go into an anonymous
// memory file (memfile.go), so nothing is written to disk. A panic inside
// bbolt, which cannot happen for bytes ferry wrote, is turned into an
// error rather than trusted not to happen.
func readIndexDB(data []byte) (ix *VolumeIndex, err error) {
	f, err := memFile("ferry-index", data)
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	defer f.Close()
	defer func() {
		if r := recover(); r != nil {
			ix, err = nil, fmt.Errorf("%w: index database unreadable: %v", ErrFormat, r)
		}
	}()
	db, err := bolt.Open(f.Name(), 0o400, &bolt.Options{
		ReadOnly: true, Timeout: time.Second,
		OpenFile: func(string, int, os.FileMode) (*os.File, error) { return dupFile(f) },
	})
	if err != nil {
		return nil, fmt.Errorf("%w: index database: %v", ErrFormat, err)
	}
	defer db.Close()
	ix = &VolumeIndex{}
	err = db.View(func(tx *bolt.Tx) error {
		meta, entries := tx.Bucket(bucketMeta), tx.Bucket(bucketEntries)
		if meta == nil || entries == nil {
			return errors.New("buckets missing")
		}
		data := meta.Get(keyVolume)
		if data == nil {
			return errors.New("volume record missing")
		}
		if err := json.Unmarshal(data, &ix.Meta); err != nil {
			return fmt.Errorf("volume record: %v", err)
		}
		return entries.ForEach(func(k, v []byte) error {
			if len(ix.Entries) >= MaxIndexEntries {
				return fmt.Errorf("more than %d entries (MaxIndexEntries)", MaxIndexEntries)
			}
			var e Entry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("entry %q: %v", k, err)
			}
			if e.Key() != string(k) {
				return fmt.Errorf("entry %q is filed under %q", e.Key(), k)
			}
			ix.Entries = append(ix.Entries, e)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("%w: index database: %v", ErrFormat, err)
	}
	return ix, nil
}
