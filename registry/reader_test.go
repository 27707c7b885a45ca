package registry

import (
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/ferrytool/ferry/internal/testbed"
)

// pathCounter counts the requests that reach the wire by URL path.
type pathCounter struct {
	inner http.RoundTripper
	mu    sync.Mutex
	n     map[string]int
}

func (c *pathCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.n[req.URL.Path]++
	c.mu.Unlock()
	return c.inner.RoundTrip(req)
}

type basicKeychain struct{ user, pass string }

func (k basicKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return &authn.Basic{Username: k.user, Password: k.pass}, nil
}

// A reader of many repositories of one registry, read from at once, asks
// the registry's version check once, whatever the number of repositories,
// and each repository still gets its credentials (the registry asks for
// basic auth on every request).
func TestReaderAsksTheVersionCheckOncePerRegistry(t *testing.T) {
	reg := testbed.StartRegistry(t, testbed.RegistryOptions{TLS: true, Username: "u", Password: "p"})
	c := testConnect(t, reg.Host, Options{Auth: basic("u", "p"), Transport: reg.HTTPClient().Transport})
	repos := []string{"r/one", "r/two", "r/three", "r/four", "r/five", "r/six"}
	blobs := map[string]blob{}
	for _, r := range repos {
		b := randomBlob(t, 16<<10)
		if _, err := c.PushBlob(t.Context(), b.push(r, b.data)); err != nil {
			t.Fatal(err)
		}
		blobs[r] = b
	}
	wire := &pathCounter{inner: reg.HTTPClient().Transport, n: map[string]int{}}
	rd := NewReader(basicKeychain{"u", "p"}, wire, "")
	var wg sync.WaitGroup
	var failed atomic.Int32
	for range 3 {
		for _, r := range repos {
			wg.Go(func() {
				repo, err := name.NewRepository(reg.Host + "/" + r)
				if err != nil {
					t.Error(err)
					return
				}
				rc, err := rd.Blob(t.Context(), repo, blobs[r].digest)
				if err != nil {
					t.Errorf("%s: %v", r, err)
					failed.Add(1)
					return
				}
				defer rc.Close()
				got, err := io.ReadAll(rc)
				if err != nil || string(got) != string(blobs[r].data) {
					t.Errorf("%s: read %d bytes (%v), not the blob pushed", r, len(got), err)
				}
			})
		}
	}
	wg.Wait()
	if failed.Load() > 0 {
		return
	}
	if n := wire.n["/v2/"]; n != 1 {
		t.Errorf("the version check was asked %d times for %d repositories, want once", n, len(repos))
	}
}

// A registry allowed plain HTTP is asked over HTTPS first; once it has
// failed that and answered over HTTP, the other repositories' clients do
// not each open a connection to fail the HTTPS check again.
func TestReaderAsksAPlainHTTPRegistryOverHTTPSOnce(t *testing.T) {
	reg := testbed.StartSourceRegistry(t)
	repos := []string{"p/one", "p/two", "p/three", "p/four"}
	blobs := map[string]blob{}
	c := testConnect(t, reg.Host, Options{PlainHTTP: true})
	for _, r := range repos {
		b := randomBlob(t, 4<<10)
		if _, err := c.PushBlob(t.Context(), b.push(r, b.data)); err != nil {
			t.Fatal(err)
		}
		blobs[r] = b
	}
	wire := &schemeCounter{inner: http.DefaultTransport, n: map[string]int{}}
	rd := NewReader(nil, wire, "")
	for _, r := range repos {
		repo, err := name.NewRepository(reg.Host+"/"+r, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := rd.Blob(t.Context(), repo, blobs[r].digest)
		if err != nil {
			t.Fatalf("%s: %v", r, err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || string(got) != string(blobs[r].data) {
			t.Fatalf("%s: read %d bytes (%v), not the blob pushed", r, len(got), err)
		}
	}
	if n := wire.n["https /v2/"]; n != 1 {
		t.Errorf("the version check went over HTTPS %d times for %d repositories, want once", n, len(repos))
	}
	if n := wire.n["http /v2/"]; n != 1 {
		t.Errorf("the version check went over HTTP %d times for %d repositories, want once", n, len(repos))
	}
}

// schemeCounter counts requests by scheme and path.
type schemeCounter struct {
	inner http.RoundTripper
	mu    sync.Mutex
	n     map[string]int
}

func (c *schemeCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.n[req.URL.Scheme+" "+req.URL.Path]++
	c.mu.Unlock()
	return c.inner.RoundTrip(req)
}
