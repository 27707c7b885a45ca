package registry

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// BlobExists asks with HEAD whether repo holds a blob.
func (c *Client) BlobExists(ctx context.Context, repo, digest string) (bool, error) {
	resp, err := c.do(ctx, http.MethodHead, c.repoURL(repo, "blobs/"+digest), nil, nil)
	if err != nil {
		return false, err
	}
	closeBody(resp)
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, checkStatus(resp, http.StatusOK, http.StatusNotFound)
}

// FetchBlob opens a blob of repo for reading; the caller closes it and
// verifies the content.
func (c *Client) FetchBlob(ctx context.Context, repo, digest string) (io.ReadCloser, error) {
	resp, err := c.do(ctx, http.MethodGet, c.repoURL(repo, "blobs/"+digest), nil, nil)
	if err != nil {
		return nil, c.classify(fmt.Errorf("GET %s@%s: %w", repo, digest, err))
	}
	if err := checkStatus(resp, http.StatusOK); err != nil {
		return nil, c.classify(fmt.Errorf("GET %s@%s: %w", repo, digest, err))
	}
	return resp.Body, nil
}

// DeleteBlob deletes a blob from repo; a registry that does not allow it
// keeps it.
func (c *Client) DeleteBlob(ctx context.Context, repo, digest string) error {
	return c.delete(ctx, c.repoURL(repo, "blobs/"+digest))
}

func (c *Client) delete(ctx context.Context, u string) error {
	resp, err := c.do(ctx, http.MethodDelete, u, nil, nil)
	if err != nil {
		return err
	}
	defer closeBody(resp)
	return checkStatus(resp, http.StatusAccepted, http.StatusOK, http.StatusNoContent)
}
