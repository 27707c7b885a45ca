package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/ferrytool/ferry/internal/digestio"
	"github.com/ferrytool/ferry/manifest"
)

// ManifestAccept lists every manifest type ferry reads and pushes, so a
// registry answers with the manifest as stored rather than converted.
var ManifestAccept = strings.Join([]string{
	manifest.MediaTypeOCIManifest, manifest.MediaTypeOCIIndex,
	manifest.MediaTypeDockerManifest, manifest.MediaTypeDockerList,
}, ", ")

// ManifestDigest asks with HEAD what a tag or digest resolves to in repo;
// "" when it does not exist. A registry that sends no digest header is
// asked again with GET, and the content hashed.
func (c *Client) ManifestDigest(ctx context.Context, repo, ref string) (string, error) {
	hdr := http.Header{"Accept": {ManifestAccept}}
	resp, err := c.do(ctx, http.MethodHead, c.repoURL(repo, "manifests/"+ref), hdr, nil)
	if err != nil {
		return "", err
	}
	closeBody(resp)
	switch resp.StatusCode {
	case http.StatusNotFound:
		return "", nil
	case http.StatusOK:
		if d := resp.Header.Get("Docker-Content-Digest"); d != "" {
			return d, nil
		}
	default:
		return "", checkStatus(resp, http.StatusOK, http.StatusNotFound)
	}
	data, _, err := c.FetchManifest(ctx, repo, ref)
	if err != nil {
		return "", err
	}
	return digestio.FromBytes(data), nil
}

// FetchManifest reads a manifest by tag or digest with its media type,
// without trusting any digest header: the caller hashes the bytes where it
// matters.
func (c *Client) FetchManifest(ctx context.Context, repo, ref string) ([]byte, string, error) {
	resp, err := c.do(ctx, http.MethodGet, c.repoURL(repo, "manifests/"+ref), http.Header{"Accept": {ManifestAccept}}, nil)
	if err != nil {
		return nil, "", err
	}
	defer closeBody(resp)
	if err := checkStatus(resp, http.StatusOK); err != nil {
		return nil, "", err
	}
	return readManifest(resp, repo+":"+ref)
}

// readManifest reads a manifest answer, capped at manifest.MaxManifestSize,
// with its media type: the Content-Type, or the document's own when the
// registry answers application/json.
func readManifest(resp *http.Response, what string) ([]byte, string, error) {
	data, err := io.ReadAll(io.LimitReader(resp.Body, manifest.MaxManifestSize+1))
	if err != nil {
		return nil, "", err
	}
	if len(data) > manifest.MaxManifestSize {
		return nil, "", fmt.Errorf("manifest %s is over the %d byte limit", what, manifest.MaxManifestSize)
	}
	mt, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";")
	if mt = strings.TrimSpace(mt); !manifest.IsManifest(mt) {
		var doc struct {
			MediaType string `json:"mediaType"`
		}
		if json.Unmarshal(data, &doc) == nil && doc.MediaType != "" {
			mt = doc.MediaType
		}
	}
	return data, mt, nil
}

// PutManifest pushes a manifest's exact bytes under ref (a tag or its
// digest). The registry's 201 with the digest of these bytes is the
// answer: there is nothing to ask again.
func (c *Client) PutManifest(ctx context.Context, repo, ref, mediaType string, data []byte) error {
	resp, err := c.do(ctx, http.MethodPut, c.repoURL(repo, "manifests/"+ref), http.Header{"Content-Type": {mediaType}}, data)
	if err != nil {
		return err
	}
	defer closeBody(resp)
	if err := checkStatus(resp, http.StatusCreated, http.StatusOK); err != nil {
		return err
	}
	if d := resp.Header.Get("Docker-Content-Digest"); d != "" && d != digestio.FromBytes(data) {
		return fmt.Errorf("%w: %s:%s stored as %s, not %s", ErrRegistry, repo, ref, d, digestio.FromBytes(data))
	}
	return nil
}

// DeleteManifest deletes a manifest by digest.
func (c *Client) DeleteManifest(ctx context.Context, repo, digest string) error {
	return c.delete(ctx, c.repoURL(repo, "manifests/"+digest))
}

// Catalog lists every repository, following pagination.
func (c *Client) Catalog(ctx context.Context) ([]string, error) {
	return c.list(ctx, c.url("/v2/_catalog?n=1000"), "repositories")
}

// CatalogPage lists the repositories on the catalog's first page (up to
// 1000), and says whether that is every one: a caller deciding what to ask
// about may take one page where following every page would cost more
// than it saves.
func (c *Client) CatalogPage(ctx context.Context) (repos []string, complete bool, err error) {
	resp, err := c.do(ctx, http.MethodGet, c.url(fmt.Sprintf("/v2/_catalog?n=%d", catalogPage)), nil, nil)
	if err != nil {
		return nil, false, err
	}
	defer closeBody(resp)
	if err := checkStatus(resp, http.StatusOK); err != nil {
		return nil, false, err
	}
	var page struct {
		Repositories []string `json:"repositories"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&page); err != nil {
		return nil, false, fmt.Errorf("%w: GET %s: %v", ErrRegistry, redactURL(resp.Request.URL), err)
	}
	// Any Link (rel="next" or rel=next) or a full page may hide more: a
	// repository taken for absent when it is on the next page would be
	// pushed again and reported as new.
	complete = resp.Header.Get("Link") == "" && len(page.Repositories) < catalogPage
	return page.Repositories, complete, nil
}

// catalogPage is how many repositories CatalogPage asks for.
const catalogPage = 1000

// Tags lists a repository's tags, following pagination; none when the
// repository does not exist.
func (c *Client) Tags(ctx context.Context, repo string) ([]string, error) {
	all, err := c.list(ctx, c.repoURL(repo, "tags/list?n=1000"), "tags")
	var se *StatusError
	if asStatus(err, &se) && se.Code == http.StatusNotFound {
		return nil, nil
	}
	return all, err
}

// list gathers the strings under key of every page of a paginated list.
func (c *Client) list(ctx context.Context, u, key string) ([]string, error) {
	var all []string
	err := c.pages(ctx, u, func(data []byte) error {
		var page map[string]json.RawMessage
		if err := json.Unmarshal(data, &page); err != nil {
			return err
		}
		var items []string
		if raw, ok := page[key]; ok && string(raw) != "null" {
			if err := json.Unmarshal(raw, &items); err != nil {
				return err
			}
		}
		all = append(all, items...)
		return nil
	})
	return all, err
}

// pages GETs a paginated JSON list; a connection lost in the middle of a
// body is retried like any other passing failure.
func (c *Client) pages(ctx context.Context, next string, page func([]byte) error) error {
	for next != "" {
		u := next
		next = ""
		var lastErr error
		for attempt := 1; attempt <= c.policy.Attempts; attempt++ {
			lastErr = func() error {
				resp, err := c.do(ctx, http.MethodGet, u, nil, nil)
				if err != nil {
					return err
				}
				defer closeBody(resp)
				if err := checkStatus(resp, http.StatusOK); err != nil {
					return err
				}
				data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
				if err != nil {
					return err
				}
				if err := page(data); err != nil {
					return fmt.Errorf("%w: GET %s: %v", ErrRegistry, redactURL(resp.Request.URL), err)
				}
				if link := resp.Header.Get("Link"); link != "" {
					if l, ok := parseLink(link); ok {
						nu, err := resp.Request.URL.Parse(l)
						if err != nil {
							return err
						}
						next = nu.String()
					}
				}
				return nil
			}()
			if lastErr == nil || !retryableErr(lastErr) || attempt == c.policy.Attempts {
				break
			}
			if err := sleepCtx(ctx, c.policy.wait(attempt, 0)); err != nil {
				return err
			}
		}
		if lastErr != nil {
			return lastErr
		}
	}
	return nil
}

// parseLink reads the URL of a Link: <url>; rel="next" header.
func parseLink(h string) (string, bool) {
	for _, part := range strings.Split(h, ",") {
		part = strings.TrimSpace(part)
		if !strings.Contains(part, `rel="next"`) {
			continue
		}
		if i, j := strings.Index(part, "<"), strings.Index(part, ">"); i >= 0 && j > i {
			return part[i+1 : j], true
		}
	}
	return "", false
}
