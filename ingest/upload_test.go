package ingest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/ferrytool/ferry/internal/digestio"
	"github.com/ferrytool/ferry/internal/testbed"
	"github.com/ferrytool/ferry/manifest"
)

func randomBlob(t *testing.T, size int) ([]byte, manifest.Blob) {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	return data, manifest.Blob{Digest: digestio.FromBytes(data), Size: int64(size), MediaType: "application/octet-stream"}
}

// bytesOpener serves content that must match b; pass other bytes to play
// a tampered archive.
func bytesOpener(data []byte, b manifest.Blob) opener {
	return func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(digestio.NewReader(bytes.NewReader(data), b.Digest, b.Size)), nil
	}
}

func testConnect(t *testing.T, host string, plain bool, auth authn.Authenticator, repos ...string) *registry {
	t.Helper()
	opts := &Options{Registry: host, PlainHTTP: plain, Auth: auth, Retry: RetryPolicy{Attempts: 4, Base: 10 * time.Millisecond}}
	opts.defaults()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	opts.Transport = tr
	r, err := connect(t.Context(), opts, destination{host: host}, repos)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// firstPatch accepts the first PATCH only, and then sets cut when given: a
// fault pattern by count, so that what the upload does after the fault (a
// retry refused for a stale offset, say) cannot draw another one.
func firstPatch(cut *atomic.Bool) func(*http.Request) bool {
	var patches atomic.Int64
	return func(r *http.Request) bool {
		if r.Method != http.MethodPatch || patches.Add(1) != 1 {
			return false
		}
		if cut != nil {
			cut.Store(true)
		}
		return true
	}
}

// acceptedBytes wraps a transport and counts the body bytes of the PATCH
// requests the registry accepted. Bytes of requests that failed on the way
// (the cut, and a PATCH from a stale offset, refused with 416 or by
// closing the connection while the body was still coming) are no sign of
// an upload starting over, and how many of them go out depends on the
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
	if req.Method == http.MethodPatch && req.Body != nil && req.Body != http.NoBody {
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

// resumeThroughProxy uploads a 6 MiB blob through proxy, whose first PATCH
// is cut off halfway after the registry got the first half, and checks the
// upload goes on from where the registry stopped.
func resumeThroughProxy(t *testing.T, proxy *testbed.Proxy) {
	t.Helper()
	accepted := &acceptedBytes{inner: func() http.RoundTripper {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.Proxy = nil
		return tr
	}()}
	opts := &Options{Registry: proxy.Host, PlainHTTP: true, Transport: accepted, Retry: RetryPolicy{Attempts: 4, Base: 10 * time.Millisecond}}
	opts.defaults()
	r, err := connect(t.Context(), opts, destination{host: proxy.Host}, []string{"test/blob"})
	if err != nil {
		t.Fatal(err)
	}
	data, b := randomBlob(t, 6<<20)
	proxy.ResetCounters()
	outcome, err := r.pushBlob(t.Context(), uploadJob{repo: "test/blob", blob: b, open: bytesOpener(data, b), sessions: noSessions{}})
	if err != nil {
		t.Fatal(err)
	}
	if outcome != BlobResumed {
		t.Errorf("outcome %q, want %q", outcome, BlobResumed)
	}
	if f := proxy.Faults()["reset"]; f != 1 {
		t.Errorf("%d resets injected, want 1", f)
	}
	// The first half went in the PATCH that was cut; what the registry
	// accepted after it is the second half, not the whole blob again.
	if sent := accepted.total(); sent == 0 || sent > b.Size-b.Size/2+b.Size/8 {
		t.Errorf("accepted PATCH requests sent %d bytes of a %d byte blob cut halfway (%d through the proxy in all); the resume started over",
			sent, b.Size, proxy.RequestBytes())
	}
	if ok, err := r.blobExists(t.Context(), "test/blob", b.Digest); err != nil || !ok {
		t.Errorf("blob not in the registry after the upload: %v", err)
	}
}

func TestStreamedUploadResumesWhereTheRegistryStopped(t *testing.T) {
	reg := testbed.StartRegistry(t, testbed.RegistryOptions{})
	proxy := testbed.StartProxy(t, reg, testbed.ProxyOptions{Reset: 1, Only: firstPatch(nil)})
	resumeThroughProxy(t, proxy)
}

// A registry still writing the request that was cut off answers the
// status with less than it will hold, "0-0" even, and may do so twice in
// a row, which the upload takes as settled. The PATCH from there must be
// refused, not appended to what the registry holds, and the upload go on
// from the offset asked again.
func TestStreamedUploadCopesWithAStaleOffset(t *testing.T) {
	reg := testbed.StartRegistry(t, testbed.RegistryOptions{})
	var cut atomic.Bool
	var stale atomic.Int64
	proxy := testbed.StartProxy(t, reg, testbed.ProxyOptions{Reset: 1,
		Only: firstPatch(&cut),
		Respond: func(r *http.Request, code int, h http.Header) int {
			if cut.Load() && r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/uploads/") && stale.Add(1) <= 2 {
				h.Set("Range", "0-0")
			}
			return code
		}})
	resumeThroughProxy(t, proxy)
	if stale.Load() <= 2 {
		t.Errorf("%d status answers seen, want the 2 stale ones and more", stale.Load())
	}
}

func TestUploadResumesSessionOfEarlierRun(t *testing.T) {
	reg := testbed.StartRegistry(t, testbed.RegistryOptions{})
	r := testConnect(t, reg.Host, true, nil, "test/blob")
	data, b := randomBlob(t, 5<<20)
	// An earlier run got 2 MiB in and was killed.
	loc, _, err := r.startUpload(t.Context(), "test/blob", b.Digest, "")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := r.do(t.Context(), http.MethodPatch, loc, http.Header{"Content-Type": {"application/octet-stream"}}, data[:2<<20])
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var sent int64
	store := &memSessions{m: map[string]string{"test/blob@" + b.Digest: loc}}
	outcome, err := r.pushBlob(t.Context(), uploadJob{repo: "test/blob", blob: b, open: bytesOpener(data, b), sessions: store, onBytes: func(n int64) { sent += n }})
	if err != nil {
		t.Fatal(err)
	}
	if outcome != BlobResumed || sent != b.Size-2<<20 {
		t.Errorf("outcome %q after sending %d bytes; want %q after %d", outcome, sent, BlobResumed, b.Size-2<<20)
	}
	if len(store.m) != 0 {
		t.Errorf("session not dropped after the commit: %v", store.m)
	}
}

type memSessions struct{ m map[string]string }

func (s *memSessions) load(repo, d string) (string, bool) { l, ok := s.m[repo+"@"+d]; return l, ok }
func (s *memSessions) save(repo, d, loc string)           { s.m[repo+"@"+d] = loc }
func (s *memSessions) drop(repo, d string)                { delete(s.m, repo+"@"+d) }

func TestUploadRefusesContentThatDoesNotMatch(t *testing.T) {
	reg := testbed.StartRegistry(t, testbed.RegistryOptions{})
	r := testConnect(t, reg.Host, true, nil, "test/blob")
	for _, size := range []int{64 << 10, 5 << 20} { // monolithic and streamed
		data, b := randomBlob(t, size)
		tampered := bytes.Clone(data)
		tampered[size/2] ^= 1
		_, err := r.pushBlob(t.Context(), uploadJob{repo: "test/blob", blob: b, open: bytesOpener(tampered, b), sessions: noSessions{}})
		var bbe *badBlobError
		if !errors.As(err, &bbe) || !errors.Is(err, digestio.ErrMismatch) {
			t.Fatalf("size %d: err %v, want a bad blob", size, err)
		}
		if ok, _ := r.blobExists(t.Context(), "test/blob", b.Digest); ok {
			t.Errorf("size %d: the tampered blob reached the registry", size)
		}
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	reg := testbed.StartRegistry(t, testbed.RegistryOptions{})
	proxy := testbed.StartProxy(t, reg, testbed.ProxyOptions{Err429: 1, MaxFaultsInARow: 1, RetryAfter: time.Second,
		Only: func(r *http.Request) bool { return r.Method == http.MethodHead }})
	r := testConnect(t, proxy.Host, true, nil, "test/blob")
	data, b := randomBlob(t, 1024)
	start := time.Now()
	if _, err := r.pushBlob(t.Context(), uploadJob{repo: "test/blob", blob: b, open: bytesOpener(data, b), sessions: noSessions{}}); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("done after %s; the 429 asked for 1s", waited)
	}
	if v := proxy.RetryAfterViolations(); len(v) > 0 {
		t.Errorf("Retry-After not honoured: %v", v)
	}
	if proxy.Faults()["429"] == 0 {
		t.Error("no 429 was injected")
	}
}

func TestMountFromAnotherRepository(t *testing.T) {
	reg := testbed.StartRegistry(t, testbed.RegistryOptions{TLS: true, Username: "u", Password: "p"})
	opts := &Options{Registry: reg.Host, Auth: &authn.Basic{Username: "u", Password: "p"}}
	opts.defaults()
	opts.Transport = reg.HTTPClient().Transport
	r, err := connect(t.Context(), opts, destination{host: reg.Host}, []string{"a/one", "a/two"})
	if err != nil {
		t.Fatal(err)
	}
	data, b := randomBlob(t, 100<<10)
	if out, err := r.pushBlob(t.Context(), uploadJob{repo: "a/one", blob: b, open: bytesOpener(data, b), sessions: noSessions{}}); err != nil || out != BlobUploaded {
		t.Fatalf("first push: %q %v", out, err)
	}
	out, err := r.pushBlob(t.Context(), uploadJob{repo: "a/two", blob: b, mountFrom: []string{"a/one"}, sessions: noSessions{},
		open: func(context.Context) (io.ReadCloser, error) { return nil, errors.New("a mount must not read the blob") }})
	if err != nil || out != BlobMounted {
		t.Fatalf("second push: %q %v, want a mount", out, err)
	}
	if out, err := r.pushBlob(t.Context(), uploadJob{repo: "a/two", blob: b, sessions: noSessions{}}); err != nil || out != BlobFound {
		t.Fatalf("third push: %q %v, want found", out, err)
	}
}

func TestConnectErrors(t *testing.T) {
	reg := testbed.StartRegistry(t, testbed.RegistryOptions{TLS: true, Username: "admin", Password: "right-password"})
	connectErr := func(host string, plain bool, tr http.RoundTripper, auth authn.Authenticator) error {
		opts := &Options{Registry: host, PlainHTTP: plain, Auth: auth, Transport: tr, Retry: RetryPolicy{Attempts: 2, Base: time.Millisecond}}
		opts.defaults()
		_, err := connect(t.Context(), opts, destination{host: host}, []string{"x"})
		return err
	}
	trusted := reg.HTTPClient().Transport
	if err := connectErr(reg.Host, false, trusted, &authn.Basic{Username: "admin", Password: "wrong-password"}); !errors.Is(err, ErrAuth) || strings.Contains(err.Error(), "wrong-password") {
		t.Errorf("wrong password: %v", err)
	}
	plain := http.DefaultTransport.(*http.Transport).Clone()
	plain.Proxy = nil
	if err := connectErr(reg.Host, false, plain, nil); !errors.Is(err, ErrTLS) || !strings.Contains(err.Error(), "--ca-file") {
		t.Errorf("unknown CA: %v", err)
	}
	if err := connectErr(reg.Host, true, plain, nil); !errors.Is(err, ErrUnreachable) && !errors.Is(err, ErrRegistry) {
		t.Errorf("plain HTTP to a TLS registry: %v", err)
	}
	src := testbed.StartSourceRegistry(t)
	if err := connectErr(src.Host, false, plain, nil); err == nil {
		t.Error("HTTPS to a plain HTTP loopback registry succeeded: ferry fell back to HTTP on its own")
	}
	src.Stop()
	if err := connectErr(src.Host, true, plain, nil); !errors.Is(err, ErrUnreachable) {
		t.Errorf("registry down: %v", err)
	}
}

func TestRetryPolicyWait(t *testing.T) {
	p := RetryPolicy{Base: 100 * time.Millisecond, Max: time.Second}.withDefaults()
	for attempt := 1; attempt < 10; attempt++ {
		d := p.wait(attempt, 0)
		full := min(p.Base<<(attempt-1), p.Max)
		if d < full/2 || d > full {
			t.Errorf("attempt %d: wait %s outside [%s, %s]", attempt, d, full/2, full)
		}
	}
	if d := p.wait(1, 3*time.Second); d != time.Second {
		t.Errorf("Retry-After beyond Max: %s", d)
	}
	if d := p.wait(5, 700*time.Millisecond); d != 700*time.Millisecond {
		t.Errorf("Retry-After: %s", d)
	}
	h := http.Header{}
	h.Set("Retry-After", "2")
	if retryAfter(h) != 2*time.Second {
		t.Error("Retry-After seconds")
	}
	h.Set("Retry-After", time.Now().Add(3*time.Second).UTC().Format(http.TimeFormat))
	if d := retryAfter(h); d < time.Second || d > 3*time.Second {
		t.Errorf("Retry-After date: %s", d)
	}
}
