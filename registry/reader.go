package registry

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Reader reads blobs and manifests from any number of source registries,
// with credentials from a keychain and a pull-scoped token per repository
// (go-containerregistry's transport does the auth dance). It does not hash
// what it reads: a caller that keeps the content verifies it, and hashing a
// multi-gigabyte layer twice would cost more than the download.
type Reader struct {
	keychain authn.Keychain
	base     *pingCache
	ua       string
	policy   RetryPolicy

	mu     sync.Mutex
	byRepo map[string]*repoClient
}

// repoClient is one repository's authenticated client, set up once: the
// first caller does the auth dance while the others for the same
// repository wait, and callers for other repositories go on.
type repoClient struct {
	ready chan struct{}
	c     *http.Client
	err   error
	// gaveUp: err is the first caller's context ending, which says
	// nothing about the repository; a waiter tries for itself.
	gaveUp bool
}

// NewReader reads through base (nil means NewTransport's defaults) with
// credentials from keychain (nil means anonymous); userAgent may be "".
func NewReader(keychain authn.Keychain, base http.RoundTripper, userAgent string) *Reader {
	if keychain == nil {
		keychain = authn.NewMultiKeychain()
	}
	if base == nil {
		base, _ = NewTransport(TransportOptions{})
	}
	return &Reader{keychain: keychain, base: newPingCache(base), ua: userAgent, policy: RetryPolicy{}.withDefaults(), byRepo: map[string]*repoClient{}}
}

// Transport is the reader's base transport, which answers each registry's
// version check once: other clients of the same sources (such as
// go-containerregistry's remote package) share it to ask it once too.
func (r *Reader) Transport() http.RoundTripper { return r.base }

func (r *Reader) client(ctx context.Context, repo name.Repository) (*http.Client, error) {
	for {
		r.mu.Lock()
		rc, ok := r.byRepo[repo.Name()]
		if !ok {
			rc = &repoClient{ready: make(chan struct{})}
			r.byRepo[repo.Name()] = rc
		}
		r.mu.Unlock()
		if !ok {
			return r.setUp(ctx, repo, rc)
		}
		select {
		case <-rc.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if !rc.gaveUp {
			return rc.c, rc.err
		}
	}
}

// setUp makes rc's client as its first caller.
func (r *Reader) setUp(ctx context.Context, repo name.Repository, rc *repoClient) (*http.Client, error) {
	rc.c, rc.err = r.newClient(ctx, repo)
	if rc.err != nil {
		rc.gaveUp = ctx.Err() != nil
		// Not kept: a later caller tries again.
		r.mu.Lock()
		delete(r.byRepo, repo.Name())
		r.mu.Unlock()
	}
	close(rc.ready)
	return rc.c, rc.err
}

func (r *Reader) newClient(ctx context.Context, repo name.Repository) (*http.Client, error) {
	auth, err := authn.Resolve(ctx, r.keychain, repo)
	if err != nil {
		return nil, err
	}
	var rt http.RoundTripper = &retryTransport{inner: r.base, policy: r.policy}
	if r.ua != "" {
		rt = transport.NewUserAgent(rt, r.ua)
	}
	t, err := transport.NewWithContext(ctx, repo.Registry, auth, rt, []string{repo.Scope(transport.PullScope)})
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: t}, nil
}

func (r *Reader) get(ctx context.Context, repo name.Repository, rest string, hdr http.Header) (*http.Response, error) {
	c, err := r.client(ctx, repo)
	if err != nil {
		return nil, err
	}
	u := fmt.Sprintf("%s://%s/v2/%s/%s", repo.Registry.Scheme(), repo.RegistryStr(), repo.RepositoryStr(), rest)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, redactErr(err)
	}
	if err := checkStatus(resp, http.StatusOK); err != nil {
		return nil, err
	}
	return resp, nil
}

// Blob opens a blob of repo for reading; the caller closes it.
func (r *Reader) Blob(ctx context.Context, repo name.Repository, digest string) (io.ReadCloser, error) {
	resp, err := r.get(ctx, repo, "blobs/"+digest, nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// Manifest reads a manifest by tag or digest with its media type, without
// trusting any digest header: the caller hashes the bytes itself, which is
// the point when the registry is a mirror whose word is being checked.
func (r *Reader) Manifest(ctx context.Context, repo name.Repository, ref string) ([]byte, string, error) {
	resp, err := r.get(ctx, repo, "manifests/"+ref, http.Header{"Accept": {ManifestAccept}})
	if err != nil {
		return nil, "", err
	}
	defer closeBody(resp)
	return readManifest(resp, repo.Name()+":"+ref)
}
