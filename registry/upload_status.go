package registry

import (
	"context"
	"net/http"
	"strconv"
	"strings"
)

// uploadStatus asks how much of an upload the registry holds.
func (c *Client) uploadStatus(ctx context.Context, loc string) (offset int64, next string, err error) {
	resp, err := c.do(ctx, http.MethodGet, loc, nil, nil)
	if err != nil {
		return 0, "", err
	}
	defer closeBody(resp)
	if err := checkStatus(resp, http.StatusNoContent, http.StatusOK); err != nil {
		return 0, "", err
	}
	next = loc
	if resp.Header.Get("Location") != "" {
		if next, err = location(resp); err != nil {
			return 0, "", err
		}
	}
	// "0-N" means N+1 bytes; "0-0" is also what an empty upload says, so it
	// is read as empty and a wrong guess ends in 416 and a fresh start.
	rng := strings.TrimPrefix(resp.Header.Get("Range"), "bytes=")
	if _, end, ok := strings.Cut(rng, "-"); ok {
		if n, err := strconv.ParseInt(end, 10, 64); err == nil && n > 0 {
			offset = n + 1
		}
	}
	return offset, next, nil
}

// settledStatus asks how much of an upload the registry holds until two
// answers in a row agree, a few times at most. Right after a dropped
// request the registry may still be writing what reached it, so a first
// answer can be short of what it will hold; a PATCH from there is refused,
// and a registry that answers only once the client's Expect: 100-continue
// wait is over has the whole body sent for nothing first.
func (c *Client) settledStatus(ctx context.Context, loc string) (offset int64, next string, err error) {
	if offset, next, err = c.uploadStatus(ctx, loc); err != nil {
		return 0, "", err
	}
	for range 3 {
		if err := sleepCtx(ctx, c.policy.Base); err != nil {
			return 0, "", err
		}
		again, loc, err := c.uploadStatus(ctx, next)
		if err != nil {
			return 0, "", err
		}
		if again == offset {
			return again, loc, nil
		}
		offset, next = again, loc
	}
	// Still moving: go on from the last answer; a wrong guess ends in 416
	// and another round.
	return offset, next, nil
}
