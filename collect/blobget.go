package collect

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

// blobGetter downloads blobs with plain GET requests through
// go-containerregistry's authenticating transport, one per repository. It
// does not hash what it reads: the archive writer verifies every blob as it
// streams past, and a downloaded blob only enters the cache once it has.
// Hashing a multi-gigabyte layer twice would cost more than the download.
type blobGetter struct {
	keychain authn.Keychain
	base     http.RoundTripper
	ua       string

	mu   sync.Mutex
	byRe map[string]http.RoundTripper
}

func (g *blobGetter) transport(ctx context.Context, repo name.Repository) (http.RoundTripper, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if t, ok := g.byRe[repo.Name()]; ok {
		return t, nil
	}
	auth, err := authn.Resolve(ctx, g.keychain, repo)
	if err != nil {
		return nil, err
	}
	base := transport.NewRetry(transport.NewUserAgent(g.base, g.ua))
	t, err := transport.NewWithContext(ctx, repo.Registry, auth, base, []string{repo.Scope(transport.PullScope)})
	if err != nil {
		return nil, err
	}
	g.byRe[repo.Name()] = t
	return t, nil
}

// get opens a blob of repo for reading; the caller closes it.
func (g *blobGetter) get(ctx context.Context, repo name.Repository, digest string) (io.ReadCloser, error) {
	t, err := g.transport(ctx, repo)
	if err != nil {
		return nil, err
	}
	u := fmt.Sprintf("%s://%s/v2/%s/blobs/%s", repo.Registry.Scheme(), repo.RegistryStr(), repo.RepositoryStr(), digest)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Transport: t}).Do(req)
	if err != nil {
		return nil, err
	}
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		resp.Body.Close()
		return nil, err
	}
	return resp.Body, nil
}
