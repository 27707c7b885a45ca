package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/ferrytool/ferry/manifest"
)

// Referrers lists the referrers of subject in repo through the OCI 1.1
// referrers API. ok is false when the registry does not serve the API: it
// answers 404, as the Distribution registry does (one that serves it never
// answers 404, even for a subject it does not hold), 400, 405, 406 or 501,
// or a 200 that is not an OCI index.
func (c *Client) Referrers(ctx context.Context, repo, subject string) (_ []manifest.ReferrerDescriptor, ok bool, err error) {
	resp, err := c.do(ctx, http.MethodGet, c.repoURL(repo, "referrers/"+subject), http.Header{"Accept": {manifest.MediaTypeOCIIndex}}, nil)
	if err != nil {
		return nil, false, err
	}
	defer closeBody(resp)
	switch resp.StatusCode {
	case http.StatusNotFound, http.StatusBadRequest, http.StatusMethodNotAllowed, http.StatusNotAcceptable, http.StatusNotImplemented:
		return nil, false, nil
	}
	if err := checkStatus(resp, http.StatusOK); err != nil {
		return nil, false, err
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != manifest.MediaTypeOCIIndex {
		return nil, false, nil
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, manifest.MaxManifestSize+1))
	if err != nil {
		return nil, false, err
	}
	if len(data) > manifest.MaxManifestSize {
		return nil, false, fmt.Errorf("%w: referrers of %s@%s: answer over the %d byte limit", ErrRegistry, repo, subject, manifest.MaxManifestSize)
	}
	var idx struct {
		Manifests []manifest.ReferrerDescriptor `json:"manifests"`
	}
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, false, fmt.Errorf("%w: referrers of %s@%s: %v", ErrRegistry, repo, subject, err)
	}
	return idx.Manifests, true, nil
}
