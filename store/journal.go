package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// The ingest journal, kept on the air-gapped admin host. It records, per
// destination (registry host and base path), which blobs and manifests are
// in and from which archive, the upload sessions in flight, and for each
// archive seen its signed bill of materials, what each volume held and the
// bytes of every verified manifest. With it a later run needs only the
// volumes not yet ingested, in any order, and `ferry ingest --status` can say
// what waits for which volume without any volume at hand.
//
// Layout:
//
//	archives/<archiveID>        ArchiveRecord
//	boms/<archiveID>            signed bill of materials bytes
//	boms/<archiveID>.sig        its signature file
//	manifest-data/<digest>      ManifestData: verified manifest bytes
//	dest/<dest>/blobs/<digest> <repo>            BlobRecord
//	dest/<dest>/manifests/<repo>@<digest>        ManifestRecord
//	dest/<dest>/uploads/<repo>@<digest>          UploadSession
//	dest/<dest>/archives/<archiveID>             DestArchive
//	dest/<dest>/tags/<repo>:<tag>                TagRecord
var (
	jBucketArchives  = []byte("archives")
	jBucketBOMs      = []byte("boms")
	jBucketManifests = []byte("manifest-data")
	jBucketDest      = []byte("dest")
	jSubBlobs        = []byte("blobs")
	jSubManifests    = []byte("manifests")
	jSubUploads      = []byte("uploads")
	jSubArchives     = []byte("archives")
	jSubTags         = []byte("tags")
)

// DefaultJournalLockTimeout is how long opening a journal waits for another
// ingest to release it.
const DefaultJournalLockTimeout = 30 * time.Second

// Holder identifies the process that holds a journal, so a second one that
// gives up waiting can say who to wait for.
type Holder struct {
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	Started time.Time `json:"started"`
	// Command is what the holder is doing, e.g. "ferry ingest".
	Command string `json:"command,omitempty"`
}

func (h Holder) String() string {
	s := fmt.Sprintf("pid %d on %s, since %s", h.PID, h.Host, h.Started.Local().Format(time.RFC3339))
	if h.Command != "" {
		s = h.Command + " (" + s + ")"
	}
	return s
}

// LockedError says that another process held the journal for the whole lock
// timeout. errors.Is(err, ErrLocked) holds.
type LockedError struct {
	Path   string
	Waited time.Duration
	// Holder is nil when the holder left no record.
	Holder *Holder
}

func (e *LockedError) Error() string {
	who := "another process (it left no holder record)"
	if e.Holder != nil {
		who = e.Holder.String()
	}
	return fmt.Sprintf("journal %s is in use by %s; waited %s", e.Path, who, e.Waited)
}

func (e *LockedError) Unwrap() error { return ErrLocked }

// JournalOptions configure OpenJournal. The zero value waits
// DefaultJournalLockTimeout and writes a holder record with only the pid and
// host filled in.
type JournalOptions struct {
	// LockTimeout bounds the wait for another process's lock.
	LockTimeout time.Duration
	// Holder describes this process; it is written beside the journal while
	// the journal is open. PID and Host default to this process's.
	Holder Holder
	// ReadOnly opens without writing: several readers may share it, but no
	// writer can open it meanwhile.
	ReadOnly bool
}

// Journal is an open ingest journal.
type Journal struct {
	db       *bolt.DB
	path     string
	holder   Holder
	readOnly bool
}

// HolderPath is where the holder record of a journal is kept: a separate
// file, since the database itself cannot be read while another process
// holds its lock.
func HolderPath(journalPath string) string { return journalPath + ".holder" }

// OpenJournal opens the journal at path, creating it (and its folder) when
// missing. It waits up to the lock timeout for another process; past it the
// error is a *LockedError naming the holder.
func OpenJournal(path string, opts JournalOptions) (*Journal, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = DefaultJournalLockTimeout
	}
	h := opts.Holder
	if h.PID == 0 {
		h.PID = os.Getpid()
	}
	if h.Host == "" {
		h.Host, _ = os.Hostname()
	}
	if h.Started.IsZero() {
		h.Started = time.Now()
	}
	if opts.ReadOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("journal %s: %w", path, err)
		}
	} else if err := os.MkdirAll(dirOf(path), 0o700); err != nil {
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	db, err := openChecked(path, &bolt.Options{Timeout: opts.LockTimeout, ReadOnly: opts.ReadOnly})
	if errors.Is(err, berrors.ErrTimeout) {
		le := &LockedError{Path: path, Waited: opts.LockTimeout}
		if data, rerr := os.ReadFile(HolderPath(path)); rerr == nil {
			var other Holder
			if json.Unmarshal(data, &other) == nil {
				le.Holder = &other
			}
		}
		return nil, le
	}
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	j := &Journal{db: db, path: path, holder: h, readOnly: opts.ReadOnly}
	if opts.ReadOnly {
		return j, nil
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{jBucketArchives, jBucketBOMs, jBucketManifests, jBucketDest} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	// The holder record is advisory: a stale one left by a killed process is
	// simply overwritten, since the kernel released its lock.
	data, _ := json.Marshal(h)
	if err := writeFileAtomic(HolderPath(path), data); err != nil {
		db.Close()
		return nil, fmt.Errorf("journal %s: holder record: %w", path, err)
	}
	return j, nil
}

func dirOf(path string) string {
	if i := strings.LastIndexAny(path, `/\`); i > 0 {
		return path[:i]
	}
	return "."
}

func writeFileAtomic(path string, data []byte) (err error) {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	return os.Rename(tmp, path)
}

// Path is the journal's file.
func (j *Journal) Path() string { return j.path }

// Close releases the journal and removes this process's holder record.
func (j *Journal) Close() error {
	if !j.readOnly {
		if data, err := os.ReadFile(HolderPath(j.path)); err == nil {
			var h Holder
			if json.Unmarshal(data, &h) == nil && h.PID == j.holder.PID && h.Host == j.holder.Host {
				os.Remove(HolderPath(j.path))
			}
		}
	}
	return j.db.Close()
}

// ArchiveRecord is what the journal knows of one archive.
type ArchiveRecord struct {
	ArchiveID string    `json:"archiveID"`
	BOMDigest string    `json:"bomDigest"`
	FirstSeen time.Time `json:"firstSeen"`
	LastSeen  time.Time `json:"lastSeen"`
	// Volumes are the volumes seen so far, by number.
	Volumes map[int]VolumeRecord `json:"volumes,omitempty"`
}

// VolumeRecord is what one volume held.
type VolumeRecord struct {
	Path  string    `json:"path"`
	Final bool      `json:"final,omitempty"`
	Seen  time.Time `json:"seen"`
	// Blobs are the whole blobs in the volume.
	Blobs []string `json:"blobs,omitempty"`
	// Parts are the digests of split blobs of which the volume holds a part.
	Parts []string `json:"parts,omitempty"`
}

// PutArchive records an archive's signed bill of materials, keeping the
// volumes already recorded.
func (j *Journal) PutArchive(archiveID, bomDigest string, bom, sig []byte, now time.Time) error {
	return j.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(jBucketArchives)
		var rec ArchiveRecord
		if _, err := getJSON(b, archiveID, &rec); err != nil {
			return err
		}
		if rec.ArchiveID == "" {
			rec = ArchiveRecord{ArchiveID: archiveID, BOMDigest: bomDigest, FirstSeen: now}
		} else if rec.BOMDigest != bomDigest {
			return fmt.Errorf("%w: archive %s is recorded with bill of materials %s, now seen with %s", ErrCorrupt, archiveID, rec.BOMDigest, bomDigest)
		}
		rec.LastSeen = now
		if err := putJSON(b, archiveID, rec); err != nil {
			return err
		}
		boms := tx.Bucket(jBucketBOMs)
		if err := boms.Put([]byte(archiveID), bom); err != nil {
			return err
		}
		return boms.Put([]byte(archiveID+".sig"), sig)
	})
}

// AddVolume records what a volume of an archive held.
func (j *Journal) AddVolume(archiveID string, number int, v VolumeRecord) error {
	return j.AddVolumes(archiveID, map[int]VolumeRecord{number: v})
}

// AddVolumes records what volumes of an archive held, in one transaction.
func (j *Journal) AddVolumes(archiveID string, vols map[int]VolumeRecord) error {
	return j.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(jBucketArchives)
		var rec ArchiveRecord
		ok, err := getJSON(b, archiveID, &rec)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("journal: archive %s not recorded", archiveID)
		}
		if rec.Volumes == nil {
			rec.Volumes = map[int]VolumeRecord{}
		}
		for n, v := range vols {
			rec.Volumes[n] = v
		}
		return putJSON(b, archiveID, rec)
	})
}

// Archive returns an archive's record, bill of materials and signature.
func (j *Journal) Archive(archiveID string) (rec ArchiveRecord, bom, sig []byte, ok bool, err error) {
	err = j.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(jBucketArchives)
		if b == nil {
			return nil
		}
		if ok, err = getJSON(b, archiveID, &rec); err != nil || !ok {
			return err
		}
		boms := tx.Bucket(jBucketBOMs)
		bom = copyBytes(boms.Get([]byte(archiveID)))
		sig = copyBytes(boms.Get([]byte(archiveID + ".sig")))
		return nil
	})
	return rec, bom, sig, ok, err
}

// Archives lists every archive recorded, oldest first.
func (j *Journal) Archives() ([]ArchiveRecord, error) {
	var out []ArchiveRecord
	err := j.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(jBucketArchives)
		if b == nil {
			return nil
		}
		return eachJSON(b, func(_ string, r ArchiveRecord) error { out = append(out, r); return nil })
	})
	sort.SliceStable(out, func(a, b int) bool { return out[a].FirstSeen.Before(out[b].FirstSeen) })
	return out, err
}

// ManifestData is a verified manifest kept so that the run that completes an
// artifact can push it even when the volume holding it is not at hand.
type ManifestData struct {
	MediaType string `json:"mediaType"`
	Data      []byte `json:"data"`
}

// PutManifestData keeps manifests' bytes under their digests, in one
// transaction.
func (j *Journal) PutManifestData(byDigest map[string]ManifestData) error {
	return j.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(jBucketManifests)
		for d, m := range byDigest {
			if err := putJSON(b, d, m); err != nil {
				return err
			}
		}
		return nil
	})
}

// ManifestData returns kept manifest bytes. The caller checks them against
// the digest before use.
func (j *Journal) ManifestData(digest string) (ManifestData, bool, error) {
	var m ManifestData
	var ok bool
	err := j.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(jBucketManifests)
		if b == nil {
			return nil
		}
		var err error
		ok, err = getJSON(b, digest, &m)
		return err
	})
	return m, ok, err
}

// Check runs bbolt's consistency check; tests call it at cleanup.
func (j *Journal) Check() error {
	return j.db.View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
}

func copyBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}
