package registry

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/ferrytool/ferry/internal/digestio"
)

// blob is test content with its digest.
type blob struct {
	data   []byte
	digest string
}

func randomBlob(t *testing.T, size int) blob {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	return blob{data: data, digest: digestio.FromBytes(data)}
}

// push is a BlobPush of b into repo, read from content (pass other bytes
// to play a tampered source).
func (b blob) push(repo string, content []byte) BlobPush {
	return BlobPush{Repo: repo, Digest: b.digest, Size: int64(len(b.data)), Open: func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(digestio.NewReader(bytes.NewReader(content), b.digest, int64(len(b.data)))), nil
	}}
}

func plainTransport() *http.Transport {
	tr, _ := NewTransport(TransportOptions{})
	return tr
}

// testConnect connects to host with fast retries; opts may set more.
func testConnect(t *testing.T, host string, opts Options, repos ...string) *Client {
	t.Helper()
	d, err := ParseDestination(host)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Transport == nil {
		opts.Transport = plainTransport()
	}
	if opts.Retry == (RetryPolicy{}) {
		opts.Retry = RetryPolicy{Attempts: 4, Base: 10 * time.Millisecond}
	}
	c, err := Connect(t.Context(), d, repos, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func basic(user, pass string) authn.Authenticator {
	return &authn.Basic{Username: user, Password: pass}
}

// acceptedBytes wraps a transport and counts the body bytes of the upload
// requests the registry accepted. Bytes of requests that failed on the
// way (the cut, a chunk from a stale offset refused with 416) are no sign
// of an upload starting over, and how many go out depends on the
// registry's timing; the accepted ones do not.
type acceptedBytes struct {
	inner    http.RoundTripper
	mu       sync.Mutex
	accepted []*countingReader
}

// total is read once the upload is done: the transport may go on reading
// a body after the answer came.
func (c *acceptedBytes) total() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for _, b := range c.accepted {
		n += b.n.Load()
	}
	return n
}

func (c *acceptedBytes) RoundTrip(req *http.Request) (*http.Response, error) {
	var body *countingReader
	if req.Body != nil && req.Body != http.NoBody {
		body = &countingReader{r: req.Body}
		req.Body = body
	}
	resp, err := c.inner.RoundTrip(req)
	if err == nil && resp.StatusCode/100 == 2 && body != nil {
		c.mu.Lock()
		c.accepted = append(c.accepted, body)
		c.mu.Unlock()
	}
	return resp, err
}

type countingReader struct {
	r io.ReadCloser
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (c *countingReader) Close() error { return c.r.Close() }

type memSessions struct{ m map[string]string }

func (s *memSessions) Load(repo, d string) (string, bool) { l, ok := s.m[repo+"@"+d]; return l, ok }
func (s *memSessions) Save(repo, d, loc string)           { s.m[repo+"@"+d] = loc }
func (s *memSessions) Drop(repo, d string)                { delete(s.m, repo+"@"+d) }
