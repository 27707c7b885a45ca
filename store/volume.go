package store

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ferrytool/ferry/manifest"
)

// The volume index: the last entry of every archive volume. It repeats the
// artifacts and blobs of the bill of materials and adds where each blob (or
// part of a blob) sits in this volume's compressed stream, so inspect and
// random reads never decode what comes before.
var (
	bucketMeta      = []byte("meta")
	bucketArtifacts = []byte("artifacts")
	bucketBlobs     = []byte("blobs")
	bucketEntries   = []byte("entries")
)

// VolumeMeta identifies a volume within its archive.
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
	// EntriesBytes is the compressed size of everything before the index.
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
	Meta      VolumeMeta
	Artifacts []manifest.Artifact
	Blobs     []manifest.Blob
	Entries   []Entry
}

// WriteVolumeIndex creates a new index file at path. A file already there is
// an error: an index is written once.
func WriteVolumeIndex(path string, ix *VolumeIndex) (err error) {
	db, err := open(path, false, 0)
	if err != nil {
		return err
	}
	defer removeOnError(path, &err)
	defer func() {
		if cerr := db.Close(); err == nil {
			err = cerr
		}
	}()
	return db.Update(func(tx *bolt.Tx) error {
		buckets := map[string]*bolt.Bucket{}
		for _, name := range [][]byte{bucketMeta, bucketArtifacts, bucketBlobs, bucketEntries} {
			b, err := tx.CreateBucket(name)
			if err != nil {
				return fmt.Errorf("index %s: create bucket %s: %w", path, name, err)
			}
			buckets[string(name)] = b
		}
		if err := putJSON(buckets["meta"], "volume", ix.Meta); err != nil {
			return err
		}
		for i, a := range ix.Artifacts {
			// Keyed by position so the bill of materials' order survives.
			if err := putJSON(buckets["artifacts"], fmt.Sprintf("%08d", i), a); err != nil {
				return err
			}
		}
		for i, bl := range ix.Blobs {
			if err := putJSON(buckets["blobs"], fmt.Sprintf("%08d", i), bl); err != nil {
				return err
			}
		}
		for _, e := range ix.Entries {
			if err := putJSON(buckets["entries"], e.Key(), e); err != nil {
				return err
			}
		}
		return nil
	})
}

// ReadVolumeIndex reads a whole index file into memory.
func ReadVolumeIndex(path string) (*VolumeIndex, error) {
	db, err := open(path, true, 0)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	ix := &VolumeIndex{}
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMeta)
		if b == nil {
			return fmt.Errorf("%w: %s has no meta bucket", ErrCorrupt, path)
		}
		if ok, err := getJSON(b, "volume", &ix.Meta); err != nil || !ok {
			return fmt.Errorf("%w: %s: volume meta missing or invalid: %v", ErrCorrupt, path, err)
		}
		for _, spec := range []struct {
			name []byte
			fn   func(*bolt.Bucket) error
		}{
			{bucketArtifacts, func(b *bolt.Bucket) error {
				return eachJSON(b, func(_ string, a manifest.Artifact) error { ix.Artifacts = append(ix.Artifacts, a); return nil })
			}},
			{bucketBlobs, func(b *bolt.Bucket) error {
				return eachJSON(b, func(_ string, bl manifest.Blob) error { ix.Blobs = append(ix.Blobs, bl); return nil })
			}},
			{bucketEntries, func(b *bolt.Bucket) error {
				return eachJSON(b, func(_ string, e Entry) error { ix.Entries = append(ix.Entries, e); return nil })
			}},
		} {
			b := tx.Bucket(spec.name)
			if b == nil {
				return fmt.Errorf("%w: %s has no %s bucket", ErrCorrupt, path, spec.name)
			}
			if err := spec.fn(b); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ix, nil
}
