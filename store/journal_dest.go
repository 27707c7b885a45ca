package store

import (
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Per-destination records of the ingest journal: blobs and manifests in the
// registry, upload sessions in flight, and each archive's runs.

// BlobRecord says a blob is in a repository of a destination.
type BlobRecord struct {
	// Archive is the archive ID that brought it; empty when it was found
	// already there.
	Archive string    `json:"archive,omitempty"`
	At      time.Time `json:"at"`
	Size    int64     `json:"size"`
	// How is "uploaded", "mounted" (from another repository) or "found".
	How string `json:"how"`
}

// ManifestRecord says a manifest is in a repository of a destination.
type ManifestRecord struct {
	Archive   string    `json:"archive,omitempty"`
	At        time.Time `json:"at"`
	MediaType string    `json:"mediaType"`
	// Tag is set for an artifact's root manifest pushed by tag.
	Tag string `json:"tag,omitempty"`
}

// UploadSession is a blob upload started and not yet committed, so a run
// after an interruption resumes it where the registry says it stopped.
type UploadSession struct {
	Location string    `json:"location"`
	Started  time.Time `json:"started"`
}

// DestArchive is one archive's ingest into one destination.
type DestArchive struct {
	ArchiveID string    `json:"archiveID"`
	FirstRun  time.Time `json:"firstRun"`
	LastRun   time.Time `json:"lastRun"`
	// Mappings are the repository rewrites the ingest used, so status and
	// validation compute the same destinations.
	Mappings []string `json:"mappings,omitempty"`
	// Bad lists blobs that failed verification, with where and why; an entry
	// goes away when the blob is later pushed from a good volume.
	Bad map[string]string `json:"bad,omitempty"`
	// Refused lists artifacts refused for another reason than a bad blob
	// (a pack signature), with the reason.
	Refused map[string]string `json:"refused,omitempty"`
}

// destBucket returns a destination's sub-bucket, creating it in a writable
// transaction; nil in a read-only one when absent.
func destBucket(tx *bolt.Tx, dest string, sub []byte) (*bolt.Bucket, error) {
	root := tx.Bucket(jBucketDest)
	if root == nil {
		return nil, nil
	}
	if !tx.Writable() {
		d := root.Bucket([]byte(dest))
		if d == nil {
			return nil, nil
		}
		return d.Bucket(sub), nil
	}
	d, err := root.CreateBucketIfNotExists([]byte(dest))
	if err != nil {
		return nil, err
	}
	return d.CreateBucketIfNotExists(sub)
}

func blobKey(repo, digest string) string     { return digest + " " + repo }
func manifestKey(repo, digest string) string { return repo + "@" + digest }

// JournalWriter writes several records in one transaction; see Write.
type JournalWriter struct{ tx *bolt.Tx }

// Write runs fn in one transaction, so many records cost one disk sync.
func (j *Journal) Write(fn func(w *JournalWriter) error) error {
	return j.db.Update(func(tx *bolt.Tx) error { return fn(&JournalWriter{tx: tx}) })
}

// PutBlob records that a blob is in a repository of dest.
func (w *JournalWriter) PutBlob(dest, repo, digest string, r BlobRecord) error {
	b, err := destBucket(w.tx, dest, jSubBlobs)
	if err != nil {
		return err
	}
	return putJSON(b, blobKey(repo, digest), r)
}

// PutManifest records that a manifest is in a repository of dest.
func (w *JournalWriter) PutManifest(dest, repo, digest string, r ManifestRecord) error {
	b, err := destBucket(w.tx, dest, jSubManifests)
	if err != nil {
		return err
	}
	return putJSON(b, manifestKey(repo, digest), r)
}

// PutUpload records an upload session in flight.
func (w *JournalWriter) PutUpload(dest, repo, digest string, s UploadSession) error {
	b, err := destBucket(w.tx, dest, jSubUploads)
	if err != nil {
		return err
	}
	return putJSON(b, manifestKey(repo, digest), s)
}

// DeleteUpload forgets an upload session.
func (w *JournalWriter) DeleteUpload(dest, repo, digest string) error {
	b, err := destBucket(w.tx, dest, jSubUploads)
	if err != nil {
		return err
	}
	return b.Delete([]byte(manifestKey(repo, digest)))
}

// PutBlob records that a blob is in a repository of dest.
func (j *Journal) PutBlob(dest, repo, digest string, r BlobRecord) error {
	return j.Write(func(w *JournalWriter) error { return w.PutBlob(dest, repo, digest, r) })
}

// DeleteBlob forgets a blob record, for a registry that lost the blob.
func (j *Journal) DeleteBlob(dest, repo, digest string) error {
	return j.db.Update(func(tx *bolt.Tx) error {
		b, err := destBucket(tx, dest, jSubBlobs)
		if err != nil {
			return err
		}
		return b.Delete([]byte(blobKey(repo, digest)))
	})
}

// Blob returns the record of a blob in a repository of dest.
func (j *Journal) Blob(dest, repo, digest string) (BlobRecord, bool, error) {
	var r BlobRecord
	var ok bool
	err := j.db.View(func(tx *bolt.Tx) error {
		b, err := destBucket(tx, dest, jSubBlobs)
		if err != nil || b == nil {
			return err
		}
		ok, err = getJSON(b, blobKey(repo, digest), &r)
		return err
	})
	return r, ok, err
}

// BlobRepos lists the repositories of dest that hold a blob, the sources
// for a cross-repository mount.
func (j *Journal) BlobRepos(dest, digest string) ([]string, error) {
	var out []string
	err := j.db.View(func(tx *bolt.Tx) error {
		b, err := destBucket(tx, dest, jSubBlobs)
		if err != nil || b == nil {
			return err
		}
		prefix := []byte(digest + " ")
		c := b.Cursor()
		for k, _ := c.Seek(prefix); k != nil && strings.HasPrefix(string(k), string(prefix)); k, _ = c.Next() {
			out = append(out, string(k[len(prefix):]))
		}
		return nil
	})
	return out, err
}

// PutManifest records that a manifest is in a repository of dest.
func (j *Journal) PutManifest(dest, repo, digest string, r ManifestRecord) error {
	return j.Write(func(w *JournalWriter) error { return w.PutManifest(dest, repo, digest, r) })
}

// Manifest returns the record of a manifest in a repository of dest.
func (j *Journal) Manifest(dest, repo, digest string) (ManifestRecord, bool, error) {
	var r ManifestRecord
	var ok bool
	err := j.db.View(func(tx *bolt.Tx) error {
		b, err := destBucket(tx, dest, jSubManifests)
		if err != nil || b == nil {
			return err
		}
		ok, err = getJSON(b, manifestKey(repo, digest), &r)
		return err
	})
	return r, ok, err
}

// PutUpload records an upload session in flight.
func (j *Journal) PutUpload(dest, repo, digest string, s UploadSession) error {
	return j.Write(func(w *JournalWriter) error { return w.PutUpload(dest, repo, digest, s) })
}

// Upload returns the upload session in flight for a blob, if any.
func (j *Journal) Upload(dest, repo, digest string) (UploadSession, bool, error) {
	var s UploadSession
	var ok bool
	err := j.db.View(func(tx *bolt.Tx) error {
		b, err := destBucket(tx, dest, jSubUploads)
		if err != nil || b == nil {
			return err
		}
		ok, err = getJSON(b, manifestKey(repo, digest), &s)
		return err
	})
	return s, ok, err
}

// DeleteUpload forgets an upload session, committed or abandoned.
func (j *Journal) DeleteUpload(dest, repo, digest string) error {
	return j.Write(func(w *JournalWriter) error { return w.DeleteUpload(dest, repo, digest) })
}

// Uploads counts the upload sessions in flight for dest.
func (j *Journal) Uploads(dest string) (int, error) {
	n := 0
	err := j.db.View(func(tx *bolt.Tx) error {
		b, err := destBucket(tx, dest, jSubUploads)
		if err != nil || b == nil {
			return err
		}
		n = b.Stats().KeyN
		return nil
	})
	return n, err
}

// PutDestArchive records an archive's ingest into dest.
func (j *Journal) PutDestArchive(dest string, r DestArchive) error {
	return j.db.Update(func(tx *bolt.Tx) error {
		b, err := destBucket(tx, dest, jSubArchives)
		if err != nil {
			return err
		}
		return putJSON(b, r.ArchiveID, r)
	})
}

// DestArchive returns an archive's ingest record for dest.
func (j *Journal) DestArchive(dest, archiveID string) (DestArchive, bool, error) {
	var r DestArchive
	var ok bool
	err := j.db.View(func(tx *bolt.Tx) error {
		b, err := destBucket(tx, dest, jSubArchives)
		if err != nil || b == nil {
			return err
		}
		ok, err = getJSON(b, archiveID, &r)
		return err
	})
	return r, ok, err
}

// DestArchives lists the archives ingested into dest.
func (j *Journal) DestArchives(dest string) ([]DestArchive, error) {
	var out []DestArchive
	err := j.db.View(func(tx *bolt.Tx) error {
		b, err := destBucket(tx, dest, jSubArchives)
		if err != nil || b == nil {
			return err
		}
		return eachJSON(b, func(_ string, r DestArchive) error { out = append(out, r); return nil })
	})
	sort.SliceStable(out, func(a, b int) bool { return out[a].FirstRun.Before(out[b].FirstRun) })
	return out, err
}

// Destinations lists the destinations the journal knows.
func (j *Journal) Destinations() ([]string, error) {
	var out []string
	err := j.db.View(func(tx *bolt.Tx) error {
		root := tx.Bucket(jBucketDest)
		if root == nil {
			return nil
		}
		return root.ForEachBucket(func(k []byte) error { out = append(out, string(k)); return nil })
	})
	return out, err
}

// TagRecord says which archive last set a tag of a destination, so that an
// older archive signed with the same key cannot move the tag back unseen.
type TagRecord struct {
	ArchiveID string `json:"archiveID"`
	// Created is the creation time the archive's signed bill of
	// materials states.
	Created time.Time `json:"created"`
	Digest  string    `json:"digest"`
	At      time.Time `json:"at"`
}

// RollsBack reports whether setting the tag from an archive created at
// created, with the given ID, would move it back to older content than
// the archive that set it: another archive, created strictly before.
func (r TagRecord) RollsBack(archiveID string, created time.Time) bool {
	return r.ArchiveID != "" && r.ArchiveID != archiveID && created.Before(r.Created)
}

func tagKey(repo, tag string) string { return repo + ":" + tag }

// PutTag records which archive set a tag of dest.
func (w *JournalWriter) PutTag(dest, repo, tag string, r TagRecord) error {
	b, err := destBucket(w.tx, dest, jSubTags)
	if err != nil {
		return err
	}
	return putJSON(b, tagKey(repo, tag), r)
}

// Tag returns the record of the archive that last set a tag of dest.
func (j *Journal) Tag(dest, repo, tag string) (TagRecord, bool, error) {
	var r TagRecord
	var ok bool
	err := j.db.View(func(tx *bolt.Tx) error {
		b, err := destBucket(tx, dest, jSubTags)
		if err != nil || b == nil {
			return err
		}
		ok, err = getJSON(b, tagKey(repo, tag), &r)
		return err
	})
	return r, ok, err
}
