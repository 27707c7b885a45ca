package registry

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ggcr "github.com/google/go-containerregistry/pkg/registry"

	"github.com/ferrytool/ferry/internal/digestio"
	"github.com/ferrytool/ferry/internal/testbed"
)

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

// resumeThroughProxy uploads a 6 MiB blob in 4 MiB chunks through proxy,
// whose first PATCH is cut off halfway after the registry got its first
// half, and checks the upload goes on from where the registry stopped.
func resumeThroughProxy(t *testing.T, proxy *testbed.Proxy) {
	t.Helper()
	accepted := &acceptedBytes{inner: plainTransport()}
	c := testConnect(t, proxy.Host, Options{PlainHTTP: true, Transport: accepted, ChunkSize: 4 << 20}, "test/blob")
	b := randomBlob(t, 6<<20)
	proxy.ResetCounters()
	outcome, err := c.PushBlob(t.Context(), b.push("test/blob", b.data))
	if err != nil {
		t.Fatal(err)
	}
	if outcome != Resumed {
		t.Errorf("outcome %q, want %q", outcome, Resumed)
	}
	if f := proxy.Faults()["reset"]; f != 1 {
		t.Errorf("%d resets injected, want 1", f)
	}
	// Half the first chunk went in the PATCH that was cut; what the
	// registry accepted after it is the rest, not the whole blob again.
	size := int64(len(b.data))
	if sent := accepted.total(); sent == 0 || sent > size-(2<<20)+size/8 {
		t.Errorf("accepted requests sent %d bytes of a %d byte blob cut at 2 MiB (%d through the proxy in all); the resume started over",
			sent, size, proxy.RequestBytes())
	}
	if ok, err := c.BlobExists(t.Context(), "test/blob", b.digest); err != nil || !ok {
		t.Errorf("blob not in the registry after the upload: %v", err)
	}
}

func TestChunkedUploadResumesWhereTheRegistryStopped(t *testing.T) {
	reg := testbed.StartRegistry(t, testbed.RegistryOptions{})
	proxy := testbed.StartProxy(t, reg, testbed.ProxyOptions{Reset: 1, Only: firstPatch(nil)})
	resumeThroughProxy(t, proxy)
}

// A registry still writing the request that was cut off answers the
// status with less than it will hold, "0-0" even, and may do so twice in
// a row, which the upload takes as settled. The PATCH from there must be
// refused, not appended to what the registry holds, and the upload go on
// from the offset asked again.
func TestChunkedUploadCopesWithAStaleOffset(t *testing.T) {
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
	c := testConnect(t, reg.Host, Options{PlainHTTP: true, ChunkSize: 4 << 20}, "test/blob")
	b := randomBlob(t, 5<<20)
	// An earlier run got 2 MiB in and was killed.
	loc, _, err := c.startUpload(t.Context(), "test/blob", b.digest, "")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.do(t.Context(), http.MethodPatch, loc, http.Header{"Content-Type": {"application/octet-stream"}}, b.data[:2<<20])
	if err != nil {
		t.Fatal(err)
	}
	closeBody(resp)
	var sent int64
	store := &memSessions{m: map[string]string{"test/blob@" + b.digest: loc}}
	j := b.push("test/blob", b.data)
	j.Sessions, j.OnBytes = store, func(n int64) { sent += n }
	outcome, err := c.PushBlob(t.Context(), j)
	if err != nil {
		t.Fatal(err)
	}
	if outcome != Resumed || sent != int64(len(b.data))-2<<20 {
		t.Errorf("outcome %q after sending %d bytes; want %q after %d", outcome, sent, Resumed, len(b.data)-2<<20)
	}
	if len(store.m) != 0 {
		t.Errorf("session not dropped after the commit: %v", store.m)
	}
}

func TestUploadRefusesContentThatDoesNotMatch(t *testing.T) {
	reg := testbed.StartRegistry(t, testbed.RegistryOptions{})
	c := testConnect(t, reg.Host, Options{PlainHTTP: true, ChunkSize: 2 << 20}, "test/blob")
	for _, size := range []int{64 << 10, 5 << 20} { // one request and chunks
		b := randomBlob(t, size)
		tampered := bytes.Clone(b.data)
		tampered[size/2] ^= 1
		_, err := c.PushBlob(t.Context(), b.push("test/blob", tampered))
		var ce *ContentError
		if !errors.As(err, &ce) || !errors.Is(err, digestio.ErrMismatch) {
			t.Fatalf("size %d: err %v, want a content error", size, err)
		}
		if ok, _ := c.BlobExists(t.Context(), "test/blob", b.digest); ok {
			t.Errorf("size %d: the tampered blob reached the registry", size)
		}
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	reg := testbed.StartRegistry(t, testbed.RegistryOptions{})
	proxy := testbed.StartProxy(t, reg, testbed.ProxyOptions{Err429: 1, MaxFaultsInARow: 1, RetryAfter: time.Second,
		Only: func(r *http.Request) bool { return r.Method == http.MethodPost }})
	c := testConnect(t, proxy.Host, Options{PlainHTTP: true}, "test/blob")
	b := randomBlob(t, 1024)
	start := time.Now()
	if _, err := c.PushBlob(t.Context(), b.push("test/blob", b.data)); err != nil {
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

// Against the test bed's TLS registry with basic auth (a bcrypt check per
// request, as on Zot): no HEAD before a small blob, POST and PUT where the
// registry takes no single-request upload, one POST for a mount, and a
// large blob looked for once before its chunks.
func TestRequestsPerBlob(t *testing.T) {
	reg := testbed.StartRegistry(t, testbed.RegistryOptions{TLS: true, Username: "u", Password: "p"})
	c := testConnect(t, reg.Host, Options{Auth: basic("u", "p"), Transport: reg.HTTPClient().Transport, ChunkSize: 1 << 20}, "a/one", "a/two")
	var blobs []blob
	for range 5 {
		blobs = append(blobs, randomBlob(t, 64<<10))
	}
	start := c.Requests()
	for _, b := range blobs {
		if out, err := c.PushBlob(t.Context(), b.push("a/one", b.data)); err != nil || out != Uploaded {
			t.Fatalf("push: %q %v", out, err)
		}
	}
	// The Distribution registry answers a POST with ?digest= by opening a
	// session: two requests a blob, the floor of a two-request upload.
	if n := c.Requests() - start; n != 2*int64(len(blobs)) {
		t.Errorf("%d requests for %d small blobs, want %d", n, len(blobs), 2*len(blobs))
	}
	start = c.Requests()
	for _, b := range blobs {
		j := b.push("a/two", nil)
		j.MountFrom = []string{"a/one"}
		j.Open = func(context.Context) (io.ReadCloser, error) { return nil, errors.New("a mount must not read the blob") }
		if out, err := c.PushBlob(t.Context(), j); err != nil || out != Mounted {
			t.Fatalf("mount: %q %v", out, err)
		}
	}
	if n := c.Requests() - start; n != int64(len(blobs)) {
		t.Errorf("%d requests for %d mounts, want one each", n, len(blobs))
	}
	large := randomBlob(t, 3<<20+5)
	start = c.Requests()
	if out, err := c.PushBlob(t.Context(), large.push("a/one", large.data)); err != nil || out != Uploaded {
		t.Fatalf("large push: %q %v", out, err)
	}
	// HEAD, POST, four PATCH chunks of at most 1 MiB, PUT.
	if n := c.Requests() - start; n != 7 {
		t.Errorf("%d requests for a blob of four chunks, want 7", n)
	}
	start = c.Requests()
	if out, err := c.PushBlob(t.Context(), large.push("a/one", large.data)); err != nil || out != Found {
		t.Fatalf("large push again: %q %v", out, err)
	}
	if n := c.Requests() - start; n != 1 {
		t.Errorf("%d requests for a large blob the registry has, want one HEAD", n)
	}
}

// A registry that takes a blob in one POST (the distribution spec's
// single-request upload, as Zot does; go-containerregistry's in-process
// registry here) gets one request a blob.
func TestSingleRequestUpload(t *testing.T) {
	srv := httptest.NewServer(ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	c := testConnect(t, host, Options{PlainHTTP: true}, "x")
	start := c.Requests()
	for range 4 {
		b := randomBlob(t, 32<<10)
		if out, err := c.PushBlob(t.Context(), b.push("x", b.data)); err != nil || out != Uploaded {
			t.Fatalf("push: %q %v", out, err)
		}
		if ok, err := c.BlobExists(t.Context(), "x", b.digest); err != nil || !ok {
			t.Fatalf("blob not there: %v", err)
		}
	}
	// One POST and the check's HEAD a blob.
	if n := c.Requests() - start; n != 8 {
		t.Errorf("%d requests for 4 blobs and 4 checks, want 8", n)
	}
}

func TestConnectErrors(t *testing.T) {
	reg := testbed.StartRegistry(t, testbed.RegistryOptions{TLS: true, Username: "admin", Password: "right-password"})
	connectErr := func(host string, plain bool, tr http.RoundTripper, auth Options) error {
		d, err := ParseDestination(host)
		if err != nil {
			t.Fatal(err)
		}
		auth.PlainHTTP, auth.Transport, auth.Retry = plain, tr, RetryPolicy{Attempts: 2, Base: time.Millisecond}
		_, err = Connect(t.Context(), d, []string{"x"}, auth)
		return err
	}
	trusted := reg.HTTPClient().Transport
	if err := connectErr(reg.Host, false, trusted, Options{Auth: basic("admin", "wrong-password")}); !errors.Is(err, ErrAuth) || strings.Contains(err.Error(), "wrong-password") {
		t.Errorf("wrong password: %v", err)
	}
	if err := connectErr(reg.Host, false, plainTransport(), Options{}); !errors.Is(err, ErrTLS) || strings.Contains(err.Error(), "--") {
		t.Errorf("unknown CA: %v (a library error names no flag)", err)
	}
	if err := connectErr(reg.Host, true, plainTransport(), Options{}); !errors.Is(err, ErrUnreachable) && !errors.Is(err, ErrRegistry) {
		t.Errorf("plain HTTP to a TLS registry: %v", err)
	}
	src := testbed.StartSourceRegistry(t)
	if err := connectErr(src.Host, false, plainTransport(), Options{}); err == nil {
		t.Error("HTTPS to a plain HTTP loopback registry succeeded: the client fell back to HTTP on its own")
	}
	src.Stop()
	if err := connectErr(src.Host, true, plainTransport(), Options{}); !errors.Is(err, ErrUnreachable) {
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

// requestLog records each request's method, whether it names a digest,
// and the body length it declares.
type requestLog struct {
	inner http.RoundTripper
	mu    sync.Mutex
	log   []string
}

func (l *requestLog) RoundTrip(req *http.Request) (*http.Response, error) {
	what := req.Method
	if req.URL.Query().Get("digest") != "" {
		what += " digest"
	}
	if req.ContentLength > probeMax {
		what += " large"
	}
	l.mu.Lock()
	l.log = append(l.log, what)
	l.mu.Unlock()
	return l.inner.RoundTrip(req)
}

func (l *requestLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.log
	l.log = nil
	return out
}

// Whether a registry takes a blob in a single POST is found out with a
// small blob only: a large blob is never sent where the registry may drop
// it, and once the registry said yes, large blobs go in one POST too.
func TestSingleRequestUploadIsProbedWithASmallBlob(t *testing.T) {
	srv := httptest.NewServer(ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	dist := testbed.StartRegistry(t, testbed.RegistryOptions{})
	for _, tc := range []struct {
		name, host string
		// want: the requests of a large blob, a small one, a large one.
		want [][]string
	}{
		{"takes a single POST", strings.TrimPrefix(srv.URL, "http://"), [][]string{
			{"POST", "PUT digest large"},
			{"POST digest"},
			{"POST digest large"},
		}},
		{"answers with a session", dist.Host, [][]string{
			{"POST", "PUT digest large"},
			{"POST digest", "PUT digest"},
			{"POST", "PUT digest large"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wire := &requestLog{inner: plainTransport()}
			c := testConnect(t, tc.host, Options{PlainHTTP: true, Transport: wire}, "p")
			wire.take()
			for i, size := range []int{2 << 20, 32 << 10, 3 << 20} {
				b := randomBlob(t, size)
				if out, err := c.PushBlob(t.Context(), b.push("p", b.data)); err != nil || out != Uploaded {
					t.Fatalf("blob %d: %q %v", i, out, err)
				}
				if got := wire.take(); strings.Join(got, ", ") != strings.Join(tc.want[i], ", ") {
					t.Errorf("blob %d of %d bytes: requests %q, want %q", i, size, got, tc.want[i])
				}
			}
		})
	}
}
