package collect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ferrytool/ferry/internal/digestio"
	"github.com/ferrytool/ferry/manifest"
)

// Cache is a content-addressed blob store on local disk. A blob is only ever
// visible under its digest once its bytes have been verified, so an
// interrupted download leaves at most a temporary file behind.
type Cache struct {
	dir string
}

// OpenCache opens (creating) a cache rooted at dir.
func OpenCache(dir string) (*Cache, error) {
	if dir == "" {
		return nil, fmt.Errorf("cache: no directory given")
	}
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return nil, fmt.Errorf("cache %s: %w", dir, err)
	}
	return &Cache{dir: dir}, nil
}

func (c *Cache) path(digest string) string {
	return filepath.Join(c.dir, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:"))
}

// Has reports whether the blob is in the cache with the expected size.
func (c *Cache) Has(b manifest.Blob) bool {
	st, err := os.Stat(c.path(b.Digest))
	return err == nil && st.Size() == b.Size
}

// Put stores content under its digest, verifying it on the way in.
func (c *Cache) Put(ctx context.Context, b manifest.Blob, r io.Reader) (err error) {
	if err := manifest.CheckDigest(b.Digest); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(c.path(b.Digest)), ".tmp-*")
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = io.Copy(tmp, ctxReader{ctx: ctx, r: digestio.NewReader(r, b.Digest, b.Size)}); err != nil {
		return fmt.Errorf("blob %s: %w", b.Digest, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	if err = os.Rename(tmp.Name(), c.path(b.Digest)); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	return nil
}

// OpenBlob implements archive.BlobSource.
func (c *Cache) OpenBlob(_ context.Context, b manifest.Blob) (io.ReadCloser, error) {
	f, err := os.Open(c.path(b.Digest))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s is not in the cache %s", b.Digest, c.dir)
	}
	return f, err
}

// ctxReader stops a long copy when the context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
