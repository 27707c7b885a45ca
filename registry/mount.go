package registry

import "context"

// MountBlob asks the registry to mount a blob it holds in repository from
// into repo, without sending its content. It reports false when the
// registry would not (it opened an ordinary upload instead, which is
// cancelled): the caller has no content to send.
func (c *Client) MountBlob(ctx context.Context, repo, digest, from string) (bool, error) {
	loc, mounted, err := c.startUpload(ctx, repo, digest, from)
	if err != nil {
		return false, err
	}
	if !mounted {
		c.cancelUpload(loc)
	}
	return mounted, nil
}
