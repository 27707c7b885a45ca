package collect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ferrytool/ferry/internal/digestio"
	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/store"
)

// Cache is a content-addressed blob store on local disk with a bbolt index
// beside it. A blob is only visible under its digest once its bytes have
// been verified and it is recorded in the index, so an interrupted download
// leaves at most a temporary file behind.
type Cache struct {
	dir string
	idx *store.CacheIndex
	now func() time.Time
	// rebuilt says why the index was started anew; empty normally.
	rebuilt string
	rec     *recorder
}

// cacheIndexName is the index file inside the cache folder.
const cacheIndexName = "index.db"

// OpenCache opens (creating) a cache rooted at dir. Close it to release the
// index lock. A damaged index (a power cut while it was written) is moved
// aside and started anew; Rebuilt says so. The blob files stay, but are
// not trusted without a record, so what they held is downloaded again.
func OpenCache(dir string) (*Cache, error) {
	if dir == "" {
		return nil, fmt.Errorf("cache: no directory given")
	}
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return nil, fmt.Errorf("cache %s: %w", dir, err)
	}
	path := filepath.Join(dir, cacheIndexName)
	idx, err := store.OpenCacheIndex(path, 0)
	var rebuilt string
	if errors.Is(err, store.ErrDamaged) {
		aside := path + ".damaged"
		if rerr := os.Rename(path, aside); rerr != nil {
			return nil, fmt.Errorf("cache %s: %w; moving it aside failed: %v", dir, err, rerr)
		}
		rebuilt = fmt.Sprintf("cache index %s could not be read (%v); it was moved to %s and a new index started: cached blobs are downloaded again", path, err, aside)
		idx, err = store.OpenCacheIndex(path, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("cache %s: %w", dir, err)
	}
	return &Cache{dir: dir, idx: idx, now: time.Now, rebuilt: rebuilt, rec: newRecorder(idx)}, nil
}

// Rebuilt says why the index was started anew when it was, else "".
func (c *Cache) Rebuilt() string { return c.rebuilt }

// Close records what is still queued and releases the index. Its error is
// the first record that could not be written (those blobs are downloaded
// again by a later collect), or the index's own.
func (c *Cache) Close() error {
	err := c.rec.close()
	return errors.Join(err, c.idx.Close())
}

// Index is the cache's bbolt index.
func (c *Cache) Index() *store.CacheIndex { return c.idx }

func (c *Cache) path(digest string) string {
	return filepath.Join(c.dir, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:"))
}

// Has reports whether the blob is recorded and its file has the expected
// size. A record whose file went missing is dropped.
func (c *Cache) Has(b manifest.Blob) bool {
	rec, ok := c.rec.pending(b.Digest)
	if !ok {
		var err error
		if rec, ok, err = c.idx.Blob(b.Digest); err != nil {
			return false
		}
	}
	if !ok || rec.Size != b.Size {
		return false
	}
	st, err := os.Stat(c.path(b.Digest))
	if err != nil || st.Size() != b.Size {
		c.idx.DeleteBlob(b.Digest)
		return false
	}
	return true
}

// Lookup returns the recorded blob with this digest, whatever its size.
func (c *Cache) Lookup(digest string) (manifest.Blob, bool) {
	rec, ok := c.rec.pending(digest)
	if !ok {
		var err error
		if rec, ok, err = c.idx.Blob(digest); err != nil || !ok {
			return manifest.Blob{}, false
		}
	}
	b := manifest.Blob{Digest: rec.Digest, Size: rec.Size, MediaType: rec.MediaType}
	if !c.Has(b) {
		return manifest.Blob{}, false
	}
	return b, true
}

// Put stores content under its digest, verifying it on the way in.
func (c *Cache) Put(ctx context.Context, b manifest.Blob, r io.Reader) error {
	if err := manifest.CheckDigest(b.Digest); err != nil {
		return err
	}
	_, err := c.write(ctx, b.MediaType, r, &b)
	return err
}

// download copies a blob into a temporary file of the cache without
// hashing it, checking only its size, and returns the file's path. The blob
// is not in the cache until promote files it under its digest, which the
// caller does only once the content was verified on its way elsewhere (into
// the archive). obs, when set, lets a reader follow the file as it grows.
func (c *Cache) download(ctx context.Context, b manifest.Blob, r io.Reader, obs *inflight) (path string, err error) {
	tmp, err := os.CreateTemp(filepath.Join(c.dir, "blobs", "sha256"), ".dl-*")
	if err != nil {
		return "", fmt.Errorf("cache: %w", err)
	}
	defer func() {
		if cerr := tmp.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("cache: %w", cerr)
		}
		if err != nil {
			os.Remove(tmp.Name())
		}
	}()
	var w io.Writer = tmp
	if obs != nil {
		obs.started(tmp.Name())
		w = obs.writer(tmp)
	}
	// Large buffers: fewer system calls and wake-ups of the follower.
	// Pooled: allocating and clearing one for each of hundreds of small
	// blobs cost a third of a collect's download CPU.
	bp := downloadBufs.Get().(*[]byte)
	defer downloadBufs.Put(bp)
	n, err := io.CopyBuffer(w, digestio.ContextReader(ctx, io.LimitReader(r, b.Size+1)), *bp)
	if err == nil && n != b.Size {
		err = fmt.Errorf("got %d bytes, expected %d", n, b.Size)
	}
	if err != nil {
		return "", fmt.Errorf("blob %s: %w", b.Digest, err)
	}
	return tmp.Name(), nil
}

// downloadBufs holds the buffers downloads copy through.
var downloadBufs = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// promote files a downloaded temporary file under its digest, once its
// content has been verified.
func (c *Cache) promote(path string, b manifest.Blob) error {
	if err := os.Rename(path, c.path(b.Digest)); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	now := c.now().UTC()
	// Queued, not waited for: the writer promotes one blob after another,
	// and a disk sync per blob would cost more than small blobs do.
	c.rec.add(store.CacheBlob{Digest: b.Digest, Size: b.Size, MediaType: b.MediaType, Added: now, Used: now})
	return nil
}

// PutRef records what a reference (a chart URL, an image tag) resolved
// to, in the background like a blob's record; a reference to a blob that
// never got recorded is dropped.
func (c *Cache) PutRef(key string, b manifest.Blob) {
	c.rec.addRef(store.CacheRef{Key: key, Digest: b.Digest, Size: b.Size, MediaType: b.MediaType, Resolved: c.now().UTC()})
}

// Ref returns what a reference last resolved to.
func (c *Cache) Ref(key string) (store.CacheRef, bool) {
	if ref, ok := c.rec.pendingRef(key); ok {
		return ref, true
	}
	ref, ok, err := c.idx.Ref(key)
	return ref, ok && err == nil
}

// PutBytes stores a small blob held in memory and returns its descriptor.
func (c *Cache) PutBytes(ctx context.Context, mediaType string, data []byte) (manifest.Blob, error) {
	b := manifest.Blob{Digest: digestio.FromBytes(data), Size: int64(len(data)), MediaType: mediaType}
	if c.Has(b) {
		return b, nil
	}
	return b, c.Put(ctx, b, bytes.NewReader(data))
}

// PutStream stores content whose digest is not known in advance, such as a
// chart archive from a repository whose index lists no digest.
func (c *Cache) PutStream(ctx context.Context, mediaType string, r io.Reader) (manifest.Blob, error) {
	return c.write(ctx, mediaType, r, nil)
}

// write copies r to a temporary file, then files it under its digest. With
// want given, the content must match its digest and size, and is hashed only
// once, by the verifying reader.
func (c *Cache) write(ctx context.Context, mediaType string, r io.Reader, want *manifest.Blob) (b manifest.Blob, err error) {
	tmp, err := os.CreateTemp(filepath.Join(c.dir, "blobs", "sha256"), ".tmp-*")
	if err != nil {
		return b, fmt.Errorf("cache: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if want != nil {
		if _, err = io.Copy(tmp, digestio.ContextReader(ctx, digestio.NewReader(r, want.Digest, want.Size))); err != nil {
			return b, fmt.Errorf("blob %s: %w", want.Digest, err)
		}
		b = *want
	} else {
		d := digestio.NewDigester()
		if _, err = io.Copy(io.MultiWriter(tmp, d), digestio.ContextReader(ctx, r)); err != nil {
			return b, err
		}
		b = manifest.Blob{Digest: d.Digest(), Size: d.Size(), MediaType: mediaType}
	}
	if err = tmp.Close(); err != nil {
		return b, fmt.Errorf("cache: %w", err)
	}
	if err = os.Rename(tmp.Name(), c.path(b.Digest)); err != nil {
		return b, fmt.Errorf("cache: %w", err)
	}
	now := c.now().UTC()
	// Queued like a promoted blob's record: a manifest or config stored
	// on the way through resolution would otherwise wait for a disk sync.
	c.rec.add(store.CacheBlob{Digest: b.Digest, Size: b.Size, MediaType: mediaType, Added: now, Used: now})
	return b, nil
}

// ReadSmall returns a cached blob's bytes, refusing one over limit.
func (c *Cache) ReadSmall(b manifest.Blob, limit int64) ([]byte, error) {
	if b.Size > limit {
		return nil, fmt.Errorf("blob %s is %d bytes, over the %d byte limit", b.Digest, b.Size, limit)
	}
	f, err := os.Open(c.path(b.Digest))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(digestio.NewReader(f, b.Digest, b.Size))
}

// OpenBlob implements archive.BlobSource.
func (c *Cache) OpenBlob(_ context.Context, b manifest.Blob) (io.ReadCloser, error) {
	f, err := os.Open(c.path(b.Digest))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s is not in the cache %s", b.Digest, c.dir)
	}
	return f, err
}
