package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ferrytool/ferry/internal/digestio"
	"github.com/ferrytool/ferry/internal/testbed"
)

// generated is size bytes of repeatable random content, generated again on
// each open rather than held in memory.
type generated struct {
	size   int64
	seed   [32]byte
	digest string
}

func newGenerated(t *testing.T, size int64) generated {
	g := generated{size: size}
	g.seed[0] = 42
	h := sha256.New()
	if _, err := io.Copy(h, g.reader()); err != nil {
		t.Fatal(err)
	}
	g.digest = "sha256:" + hex.EncodeToString(h.Sum(nil))
	return g
}

func (g generated) reader() io.Reader {
	return io.LimitReader(rand.NewChaCha8(g.seed), g.size)
}

func (g generated) push(repo string) BlobPush {
	return BlobPush{Repo: repo, Digest: g.digest, Size: g.size, Open: func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(digestio.NewReader(g.reader(), g.digest, g.size)), nil
	}}
}

// A registry behind something that cuts every request after a deadline
// (Zot's http.readTimeout, a load balancer) still takes a blob whose
// single-request upload takes ten times that deadline: chunks small enough
// to pass, halved when one is cut off, each resumed at the registry's
// offset, and little sent twice.
func TestUploadPassesARequestDeadline(t *testing.T) {
	if testing.Short() {
		t.Skip("pushes 512 MiB twice")
	}
	const size = 512 << 20
	reg := testbed.StartRegistry(t, testbed.RegistryOptions{})
	g := newGenerated(t, size)

	// The time of a single-request upload through a proxy without deadline.
	free := testbed.StartProxy(t, reg, testbed.ProxyOptions{})
	c := testConnect(t, free.Host, Options{PlainHTTP: true, ChunkSize: size}, "whole")
	start := time.Now()
	if out, err := c.PushBlob(t.Context(), g.push("whole")); err != nil || out != Uploaded {
		t.Fatalf("single-request upload: %q %v", out, err)
	}
	single := time.Since(start)

	deadline := single / 10
	cutting := testbed.StartProxy(t, reg, testbed.ProxyOptions{Deadline: deadline})
	// Chunks start at a quarter of the blob, larger than the deadline
	// lets through: they must shrink on the way.
	c = testConnect(t, cutting.Host, Options{PlainHTTP: true, ChunkSize: size / 4}, "chunked")
	start = time.Now()
	out, err := c.PushBlob(t.Context(), g.push("chunked"))
	if err != nil {
		t.Fatalf("upload with a %s deadline (single request took %s): %v", deadline, single, err)
	}
	t.Logf("single request %s; with a %s deadline: %s, %q, %d requests, %d cut off (want some), %d bytes sent for %d",
		single, deadline, time.Since(start), out, c.Requests(), cutting.Faults()["deadline"], cutting.RequestBytes(), int64(size))
	if ok, err := c.BlobExists(t.Context(), "chunked", g.digest); err != nil || !ok {
		t.Errorf("blob %s not in the registry: %v", g.digest, err)
	}
	if cutting.Faults()["deadline"] == 0 {
		t.Error("no request was cut off: the test does not test the deadline")
	}
	if sent := cutting.RequestBytes(); sent > size+size/10 {
		t.Errorf("%d bytes sent for a %d byte blob, more than 10%% over", sent, int64(size))
	}
}
