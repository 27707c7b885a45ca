package collect

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/ferrytool/ferry/manifest"
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

// manifestAccept is every manifest media type ferry reads, so a registry
// serves what it holds instead of converting to what we did not ask for.
var manifestAccept = strings.Join([]string{
	manifest.MediaTypeOCIManifest, manifest.MediaTypeOCIIndex,
	manifest.MediaTypeDockerManifest, manifest.MediaTypeDockerList,
}, ", ")

// manifest reads a manifest by tag or digest, without trusting any digest
// header: the caller hashes the bytes itself, which is the point when the
// registry is a mirror whose word is being checked.
func (g *blobGetter) manifest(ctx context.Context, repo name.Repository, identifier string) ([]byte, string, error) {
	t, err := g.transport(ctx, repo)
	if err != nil {
		return nil, "", err
	}
	u := fmt.Sprintf("%s://%s/v2/%s/manifests/%s", repo.Registry.Scheme(), repo.RegistryStr(), repo.RepositoryStr(), identifier)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Accept", manifestAccept)
	resp, err := (&http.Client{Transport: t}).Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		return nil, "", err
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, manifest.MaxManifestSize+1))
	if err != nil {
		return nil, "", err
	}
	if len(data) > manifest.MaxManifestSize {
		return nil, "", fmt.Errorf("manifest %s of %s is over the %d byte limit", identifier, repo.Name(), manifest.MaxManifestSize)
	}
	mt, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";")
	if mt = strings.TrimSpace(mt); !manifest.IsManifest(mt) {
		// Some registries answer application/json; the document says.
		var doc struct {
			MediaType string `json:"mediaType"`
		}
		if json.Unmarshal(data, &doc) == nil && doc.MediaType != "" {
			mt = doc.MediaType
		}
	}
	return data, mt, nil
}
