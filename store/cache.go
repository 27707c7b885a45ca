package store

import (
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ferrytool/ferry/manifest"
)

// The collect cache index: which blobs the cache folder holds (digest, size,
// media type, when last used) and what mutable source references (a chart
// version in an HTTP repository) last resolved to. The blob files themselves
// live beside it, named by digest; a blob counts as cached only when both the
// file and its record are there.
var (
	bucketCacheMeta  = []byte("meta")
	bucketCacheBlobs = []byte("blobs")
	bucketCacheRefs  = []byte("refs")
)

// cacheFormat is the layout version of the cache index; a different one is
// refused rather than misread.
const cacheFormat = "1"

// CacheBlob is one cached blob.
type CacheBlob struct {
	Digest    string    `json:"digest"`
	Size      int64     `json:"size"`
	MediaType string    `json:"mediaType,omitempty"`
	Added     time.Time `json:"added"`
	Used      time.Time `json:"used"`
}

// CacheRef records what a source reference resolved to, for sources whose
// references carry no digest of their own.
type CacheRef struct {
	// Key names the reference, e.g. "chart https://repo/clearml-7.14.7.tgz".
	Key       string    `json:"key"`
	Digest    string    `json:"digest"`
	Size      int64     `json:"size"`
	MediaType string    `json:"mediaType,omitempty"`
	Resolved  time.Time `json:"resolved"`
}

// CacheIndex is the open index of a collect cache. It is safe for
// concurrent use.
type CacheIndex struct {
	db   *bolt.DB
	path string
}

// OpenCacheIndex opens (creating) the cache index at path, waiting at most
// timeout (zero: DefaultLockTimeout) for another ferry using the same cache.
func OpenCacheIndex(path string, timeout time.Duration) (ci *CacheIndex, err error) {
	db, err := open(path, false, timeout)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			db.Close()
		}
	}()
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketCacheMeta)
		if err != nil {
			return err
		}
		switch v := meta.Get([]byte("format")); {
		case v == nil:
			if err := meta.Put([]byte("format"), []byte(cacheFormat)); err != nil {
				return err
			}
		case string(v) != cacheFormat:
			return fmt.Errorf("%w: %s has cache format %q, this ferry reads %q", ErrCorrupt, path, v, cacheFormat)
		}
		for _, b := range [][]byte{bucketCacheBlobs, bucketCacheRefs} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cache index %s: %w", path, err)
	}
	return &CacheIndex{db: db, path: path}, nil
}

// Close releases the index and its file lock.
func (c *CacheIndex) Close() error { return c.db.Close() }

// Path is the index file.
func (c *CacheIndex) Path() string { return c.path }

// PutBlob records a blob whose file is in place. Concurrent calls are
// batched into one transaction.
func (c *CacheIndex) PutBlob(b CacheBlob) error {
	if err := manifest.CheckDigest(b.Digest); err != nil {
		return err
	}
	return c.db.Batch(func(tx *bolt.Tx) error {
		return putJSON(tx.Bucket(bucketCacheBlobs), b.Digest, b)
	})
}

// PutBlobs records blobs whose files are in place, in one transaction: one
// disk sync for all of them.
func (c *CacheIndex) PutBlobs(bs []CacheBlob) error { return c.PutRecords(bs, nil) }

// PutRecords records blobs whose files are in place, then references, in
// one transaction. A reference whose blob is recorded neither before nor
// here is left out, so a reference never points at nothing.
func (c *CacheIndex) PutRecords(bs []CacheBlob, rs []CacheRef) error {
	for _, b := range bs {
		if err := manifest.CheckDigest(b.Digest); err != nil {
			return err
		}
	}
	return c.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketCacheBlobs)
		for _, b := range bs {
			if err := putJSON(bk, b.Digest, b); err != nil {
				return err
			}
		}
		refs := tx.Bucket(bucketCacheRefs)
		for _, r := range rs {
			if r.Key == "" || bk.Get([]byte(r.Digest)) == nil {
				continue
			}
			if err := putJSON(refs, r.Key, r); err != nil {
				return err
			}
		}
		return nil
	})
}

// Blob returns the record of a blob.
func (c *CacheIndex) Blob(digest string) (CacheBlob, bool, error) {
	var b CacheBlob
	var ok bool
	err := c.db.View(func(tx *bolt.Tx) error {
		var err error
		ok, err = getJSON(tx.Bucket(bucketCacheBlobs), digest, &b)
		return err
	})
	return b, ok, err
}

// DeleteBlob forgets a blob, for a file that turned out missing or damaged,
// and every reference that resolved to it.
func (c *CacheIndex) DeleteBlob(digest string) error {
	return c.db.Update(func(tx *bolt.Tx) error {
		refs := tx.Bucket(bucketCacheRefs)
		var stale []string
		if err := eachJSON(refs, func(k string, r CacheRef) error {
			if r.Digest == digest {
				stale = append(stale, k)
			}
			return nil
		}); err != nil {
			return err
		}
		for _, k := range stale {
			if err := refs.Delete([]byte(k)); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketCacheBlobs).Delete([]byte(digest))
	})
}

// Touch sets the last-use time of the listed blobs that are recorded.
func (c *CacheIndex) Touch(digests []string, t time.Time) error {
	return c.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketCacheBlobs)
		for _, d := range digests {
			var b CacheBlob
			ok, err := getJSON(bk, d, &b)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			b.Used = t.UTC()
			if err := putJSON(bk, d, b); err != nil {
				return err
			}
		}
		return nil
	})
}

// Blobs lists every recorded blob in digest order.
func (c *CacheIndex) Blobs() ([]CacheBlob, error) {
	var out []CacheBlob
	err := c.db.View(func(tx *bolt.Tx) error {
		return eachJSON(tx.Bucket(bucketCacheBlobs), func(_ string, b CacheBlob) error {
			out = append(out, b)
			return nil
		})
	})
	return out, err
}

// PutRef records what a reference resolved to. The blob must be recorded
// first, so a reference never points at nothing.
func (c *CacheIndex) PutRef(r CacheRef) error {
	if r.Key == "" {
		return errors.New("cache ref: empty key")
	}
	return c.db.Batch(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketCacheBlobs).Get([]byte(r.Digest)) == nil {
			return fmt.Errorf("cache ref %s: blob %s is not recorded", r.Key, r.Digest)
		}
		return putJSON(tx.Bucket(bucketCacheRefs), r.Key, r)
	})
}

// Ref returns what a reference last resolved to.
func (c *CacheIndex) Ref(key string) (CacheRef, bool, error) {
	var r CacheRef
	var ok bool
	err := c.db.View(func(tx *bolt.Tx) error {
		var err error
		ok, err = getJSON(tx.Bucket(bucketCacheRefs), key, &r)
		return err
	})
	return r, ok, err
}

// Check verifies the index's own consistency: every record decodes, is
// filed under its digest or key, and every reference points at a recorded
// blob. It does not look at the blob files.
func (c *CacheIndex) Check() error {
	return c.db.View(func(tx *bolt.Tx) error {
		blobs := tx.Bucket(bucketCacheBlobs)
		if err := eachJSON(blobs, func(k string, b CacheBlob) error {
			if k != b.Digest {
				return fmt.Errorf("%w: blob record %s holds digest %s", ErrCorrupt, k, b.Digest)
			}
			if err := manifest.CheckDigest(k); err != nil {
				return fmt.Errorf("%w: %v", ErrCorrupt, err)
			}
			if b.Size < 0 {
				return fmt.Errorf("%w: blob %s has size %d", ErrCorrupt, k, b.Size)
			}
			return nil
		}); err != nil {
			return err
		}
		return eachJSON(tx.Bucket(bucketCacheRefs), func(k string, r CacheRef) error {
			if k != r.Key {
				return fmt.Errorf("%w: ref record %q holds key %q", ErrCorrupt, k, r.Key)
			}
			if blobs.Get([]byte(r.Digest)) == nil {
				return fmt.Errorf("%w: ref %q points at unrecorded blob %s", ErrCorrupt, k, r.Digest)
			}
			return nil
		})
	})
}
