package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// uploadChunks sends a blob into the session at loc from offset, in PATCH
// requests of at most the chunk size. Each says where it starts
// (Content-Range), so a request the registry did not take in full is
// refused (416) rather than appended where it does not belong; after a
// failure the registry is asked how far it got and the upload goes on from
// there. A chunk cut off in the middle (a proxy's or the registry's request
// deadline, a dropped connection) halves the chunks that follow, so a
// deadline longer than one small chunk's time never stops the push.
func (c *Client) uploadChunks(ctx context.Context, j BlobPush, loc string, offset int64, outcome Outcome) (Outcome, error) {
	d := j.Digest
	j.Sessions.Save(j.Repo, d, loc)
	chunk := c.chunk
	var body *uploadBody
	defer func() {
		if body != nil {
			body.close()
		}
	}()
	restarted := false
	restart := func() error {
		c.cancelUpload(loc)
		j.Sessions.Drop(j.Repo, d)
		var err error
		if loc, _, err = c.startUpload(ctx, j.Repo, d, ""); err != nil {
			return err
		}
		offset, outcome = 0, Uploaded
		j.Sessions.Save(j.Repo, d, loc)
		return nil
	}
	failures := 0
	for offset < j.Size {
		if body != nil && body.position() != offset {
			body.close()
			body = nil
		}
		if body == nil {
			var err error
			if body, err = openBody(ctx, j, offset); err != nil {
				c.cancelUpload(loc)
				j.Sessions.Drop(j.Repo, d)
				return "", err
			}
		}
		n := min(chunk, j.Size-offset)
		hdr := http.Header{
			"Content-Type":  {"application/octet-stream"},
			"Content-Range": {fmt.Sprintf("%d-%d", offset, offset+n-1)},
		}
		if failures > 0 {
			// After a failure the registry may refuse the range: let it say
			// so before the chunk is on its way.
			hdr.Set("Expect", "100-continue")
		}
		w := body.window(n)
		resp, err := c.do(ctx, http.MethodPatch, loc, hdr, sizedBody{r: w, n: n})
		w.wait(ctx)
		var next string
		if err == nil {
			if err = checkStatus(resp, http.StatusAccepted, http.StatusNoContent, http.StatusCreated); err == nil {
				next, err = location(resp)
				if end, ok := rangeEnd(resp.Header); ok && err == nil && end != offset+n {
					// The registry says it holds another amount: believe it,
					// but a registry that keeps taking no bytes at all is
					// going nowhere, and the upload fails after the policy's
					// attempts instead of sending the same chunk forever.
					c.log.Debug("registry offset differs", "repo", j.Repo, "digest", d, "sent to", offset+n, "registry", end)
					closeBody(resp)
					loc = next
					if end <= offset {
						if failures++; failures >= c.policy.Attempts {
							return "", fmt.Errorf("upload %s to %s: %w: the registry took none of the chunk at byte %d %d times", d, j.Repo, ErrRegistry, offset, failures)
						}
					} else {
						failures = 0
					}
					offset = end
					continue
				}
			}
			closeBody(resp)
		}
		if serr := body.sourceErr(); serr != nil {
			c.cancelUpload(loc)
			j.Sessions.Drop(j.Repo, d)
			return "", serr
		}
		if err == nil {
			offset += n
			loc = next
			failures = 0
			continue
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		var se *StatusError
		rangeRefused := errors.As(err, &se) && se.Code == http.StatusRequestedRangeNotSatisfiable
		if cutOff := !errors.As(err, &se) && retryableErr(err); cutOff && chunk > minChunk {
			// A connection lost in the middle of a chunk, not a registry's
			// "not now": smaller chunks pass a deadline that cut this one.
			chunk = max(chunk/2, minChunk)
			c.log.Debug("chunk cut off; halving", "repo", j.Repo, "digest", d, "chunk", chunk)
		}
		failures++
		if rangeRefused && failures >= c.policy.Attempts && !restarted {
			// The session will not settle: start over, once.
			restarted, failures = true, 0
			if err := restart(); err != nil {
				return "", err
			}
			continue
		}
		if !rangeRefused && !retryableErr(err) || failures >= c.policy.Attempts {
			return "", fmt.Errorf("upload %s to %s at byte %d: %w", d, j.Repo, offset, err)
		}
		if err := sleepCtx(ctx, c.policy.wait(failures, retryAfterOf(err))); err != nil {
			return "", err
		}
		off, nloc, serr := c.settledStatus(ctx, loc)
		if serr != nil {
			if errors.As(serr, &se) && (se.Code == http.StatusNotFound || se.Code == http.StatusBadRequest) {
				if err := restart(); err != nil {
					return "", err
				}
				continue
			}
			return "", fmt.Errorf("upload %s to %s: status after a failed request: %w", d, j.Repo, serr)
		}
		if off > j.Size {
			if err := restart(); err != nil {
				return "", err
			}
			continue
		}
		if off > offset {
			failures = 0 // it moved on: only failures in a row count
		}
		offset, loc = off, nloc
		if offset > 0 && outcome == Uploaded {
			outcome = Resumed
		}
	}
	// Every byte is in: check the content before the commit, reading
	// whatever was not read in this run (all of it when an earlier run
	// sent everything).
	if body != nil && body.position() != j.Size {
		body.close()
		body = nil
	}
	if body == nil {
		var err error
		if body, err = openBody(ctx, j, j.Size); err != nil {
			c.cancelUpload(loc)
			j.Sessions.Drop(j.Repo, d)
			return "", err
		}
	}
	if err := body.verify(); err != nil {
		c.cancelUpload(loc)
		j.Sessions.Drop(j.Repo, d)
		return "", err
	}
	put, err := withDigest(loc, d)
	if err != nil {
		return "", err
	}
	resp, err := c.do(ctx, http.MethodPut, put, nil, []byte{})
	if err == nil {
		err = checkStatus(resp, http.StatusCreated)
		closeBody(resp)
	}
	if err != nil {
		// A commit answered after the connection broke, or content the
		// registry kept from an earlier run that no longer matches.
		if exists, herr := c.BlobExists(ctx, j.Repo, d); herr == nil && exists {
			j.Sessions.Drop(j.Repo, d)
			return outcome, nil
		}
		var se *StatusError
		if errors.As(err, &se) && !restarted && outcome == Resumed {
			body.close()
			body = nil
			c.cancelUpload(loc)
			j.Sessions.Drop(j.Repo, d)
			fresh := j
			fresh.Sessions = noSessions{}
			fresh.MountFrom = nil
			return c.uploadTo(ctx, fresh, "")
		}
		return "", fmt.Errorf("commit %s to %s: %w", d, j.Repo, err)
	}
	j.Sessions.Drop(j.Repo, d)
	return outcome, nil
}

// rangeEnd reads the registry's Range answer "0-N" as the offset N+1.
func rangeEnd(h http.Header) (int64, bool) {
	rng := strings.TrimPrefix(h.Get("Range"), "bytes=")
	_, end, ok := strings.Cut(rng, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(end, 10, 64)
	if err != nil || n <= 0 { // "0-0" is also what an empty upload says
		return 0, false
	}
	return n + 1, true
}
