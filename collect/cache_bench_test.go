package collect

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/ferrytool/ferry/internal/digestio"
	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/store"
)

// BenchmarkCachePromote files 200 small verified blobs into a cache one
// after another, as the archive writer does: each recorded with its own
// transaction and sync (how promote recorded them before), and queued for
// the background recorder (how it does now), the close included.
func BenchmarkCachePromote(b *testing.B) {
	const blobs = 200
	for _, mode := range []string{"sync-per-blob", "queued"} {
		b.Run(mode, func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				c, err := OpenCache(b.TempDir())
				if err != nil {
					b.Fatal(err)
				}
				var paths []string
				var descs []manifest.Blob
				for i := range blobs {
					data := []byte(fmt.Sprintf("small blob %d", i))
					d := manifest.Blob{Digest: digestio.FromBytes(data), Size: int64(len(data))}
					p, err := c.download(context.Background(), d, bytes.NewReader(data), nil)
					if err != nil {
						b.Fatal(err)
					}
					paths, descs = append(paths, p), append(descs, d)
				}
				b.StartTimer()
				for i, d := range descs {
					if mode == "queued" {
						err = c.promote(paths[i], d)
					} else {
						err = promoteWaiting(c, paths[i], d)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				if err := c.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// promoteWaiting is promote as it was: the record written and synced
// before the next blob.
func promoteWaiting(c *Cache, path string, b manifest.Blob) error {
	if err := os.Rename(path, c.path(b.Digest)); err != nil {
		return err
	}
	now := time.Now().UTC()
	return c.idx.PutBlob(store.CacheBlob{Digest: b.Digest, Size: b.Size, Added: now, Used: now})
}
