package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/ferrytool/ferry/internal/digestio"
)

// Outcome says how a blob came to be in a repository.
type Outcome string

// Blob outcomes of [Client.PushBlob].
const (
	Uploaded Outcome = "uploaded"
	Resumed  Outcome = "resumed"
	Mounted  Outcome = "mounted"
	Found    Outcome = "found"
)

// Sessions keeps upload locations across runs (a journal), so a killed
// upload resumes where the registry stopped.
type Sessions interface {
	Load(repo, digest string) (string, bool)
	Save(repo, digest, location string)
	Drop(repo, digest string)
}

type noSessions struct{}

func (noSessions) Load(string, string) (string, bool) { return "", false }
func (noSessions) Save(string, string, string)        {}
func (noSessions) Drop(string, string)                {}

// BlobPush is one blob to put into one repository.
type BlobPush struct {
	Repo   string
	Digest string
	Size   int64
	// Open returns a reader of the blob's whole content from its first
	// byte. It must fail at EOF unless the content matches Digest and
	// Size: nothing is committed before the reader said so.
	Open func(ctx context.Context) (io.ReadCloser, error)
	// MountFrom lists repositories of the registry known to hold the blob;
	// the first other than Repo is asked for a mount.
	MountFrom []string
	// Sessions keeps upload sessions across runs; nil keeps none.
	Sessions Sessions
	// OnBytes is told about content bytes handed to the transport.
	OnBytes func(n int64)
}

// PushBlob makes sure the repository holds the blob, in as few requests as
// the registry allows:
//   - a session an earlier run left open resumes at the registry's offset;
//   - with a repository to mount from, one POST mounts it (201) or opens
//     the session the content then goes to;
//   - a blob up to the chunk size goes in a single POST with ?digest=
//     (falling back to POST and PUT for a registry that answers such a
//     POST with a session, as the Distribution registry does);
//   - a larger blob is first looked for with one HEAD, then sent in PATCH
//     chunks of at most the chunk size, each resumable, a chunk cut off
//     halving the next ones.
//
// A blob the registry holds already is not looked for first unless it is
// large: sending a small one again costs less than asking.
func (c *Client) PushBlob(ctx context.Context, j BlobPush) (Outcome, error) {
	if j.Sessions == nil {
		j.Sessions = noSessions{}
	}
	d := j.Digest
	if saved, ok := j.Sessions.Load(j.Repo, d); ok {
		if off, next, err := c.uploadStatus(ctx, saved); err == nil && off <= j.Size {
			out := Uploaded
			if off > 0 {
				out = Resumed
			}
			return c.uploadChunks(ctx, j, next, off, out)
		}
		j.Sessions.Drop(j.Repo, d)
	}
	for _, from := range j.MountFrom {
		if from == j.Repo {
			continue
		}
		loc, mounted, err := c.startUpload(ctx, j.Repo, d, from)
		if err != nil {
			return "", err
		}
		if mounted {
			return Mounted, nil
		}
		// The registry opened an ordinary upload instead; use it.
		return c.uploadTo(ctx, j, loc)
	}
	if j.Size > c.chunk {
		ok, err := c.BlobExists(ctx, j.Repo, d)
		if err != nil {
			return "", fmt.Errorf("HEAD %s@%s: %w", j.Repo, d, err)
		}
		if ok {
			return Found, nil
		}
		return c.uploadTo(ctx, j, "")
	}
	return c.uploadSingle(ctx, j)
}

// startUpload opens an upload session, asking for a mount when from is set.
func (c *Client) startUpload(ctx context.Context, repo, digest, from string) (loc string, mounted bool, err error) {
	u := c.repoURL(repo, "blobs/uploads/")
	if from != "" {
		u += "?" + url.Values{"mount": {digest}, "from": {from}}.Encode()
	}
	resp, err := c.do(ctx, http.MethodPost, u, nil, []byte{})
	if err != nil {
		return "", false, fmt.Errorf("start upload of %s to %s: %w", digest, repo, err)
	}
	defer closeBody(resp)
	if err := checkStatus(resp, http.StatusCreated, http.StatusAccepted); err != nil {
		return "", false, fmt.Errorf("start upload of %s to %s: %w", digest, repo, err)
	}
	if resp.StatusCode == http.StatusCreated {
		return "", true, nil
	}
	loc, err = location(resp)
	return loc, false, err
}

func (c *Client) cancelUpload(loc string) {
	if loc == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if resp, err := c.do(ctx, http.MethodDelete, loc, nil, nil); err == nil {
		closeBody(resp)
	}
}

func withDigest(loc, digest string) (string, error) {
	u, err := url.Parse(loc)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set("digest", digest)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// uploadTo sends the content into an open session, or a new one when loc
// is "".
func (c *Client) uploadTo(ctx context.Context, j BlobPush, loc string) (Outcome, error) {
	if j.Size <= c.chunk {
		return c.uploadMonolithic(ctx, j, loc)
	}
	if loc == "" {
		var err error
		if loc, _, err = c.startUpload(ctx, j.Repo, j.Digest, ""); err != nil {
			return "", err
		}
	}
	return c.uploadChunks(ctx, j, loc, 0, Uploaded)
}

// uploadSingle sends a blob in one POST with ?digest=, which the
// distribution spec allows and Zot takes. Until the registry has answered
// such a POST, only a blob of at most probeMax bytes is sent that way: a
// registry that answers with a session instead (the Distribution registry)
// drops the body, and then only a small one was sent in vain. From then on
// the client knows, and goes straight to POST and PUT, or to the single
// POST for any size.
//
// The probe does not ask for 100 Continue: the Distribution registry
// answers such a request only after the client's wait for the 100 runs
// out (a second with Go's transport), which cost every run that second.
func (c *Client) uploadSingle(ctx context.Context, j BlobPush) (Outcome, error) {
	d := j.Digest
	if c.singlePost.Load() == 0 && j.Size > probeMax {
		return c.uploadMonolithic(ctx, j, "")
	}
	for attempt := 1; c.singlePost.Load() >= 0; attempt++ {
		u := c.repoURL(j.Repo, "blobs/uploads/") + "?" + url.Values{"digest": {d}}.Encode()
		hdr := http.Header{"Content-Type": {"application/octet-stream"}}
		b, err := openBody(ctx, j, 0)
		if err != nil {
			return "", err
		}
		w := b.window(j.Size)
		resp, err := c.do(ctx, http.MethodPost, u, hdr, sizedBody{r: w, n: j.Size})
		w.wait(ctx)
		if err == nil {
			switch resp.StatusCode {
			case http.StatusCreated:
				closeBody(resp)
				if err := b.verify(); err != nil {
					// The registry checked the digest itself; the source did
					// not hold what it promised all the same.
					b.close()
					return "", err
				}
				b.close()
				c.singlePost.Store(1)
				return Uploaded, nil
			case http.StatusAccepted:
				loc, lerr := location(resp)
				closeBody(resp)
				b.close()
				c.singlePost.Store(-1)
				c.log.Debug("the registry takes no single-request upload; POST and PUT from now on", "repo", j.Repo)
				if lerr != nil {
					return "", lerr
				}
				return c.uploadMonolithic(ctx, j, loc)
			}
			err = checkStatus(resp, http.StatusCreated)
		}
		if serr := b.failed(); serr != nil {
			return "", serr
		}
		var se *StatusError
		if errors.As(err, &se) && !retryableStatus(se.Code) {
			// Refused as a form, not for its content: the registry checks a
			// digest on the PUT of the two-request upload all the same.
			c.singlePost.Store(-1)
			break
		}
		if !retryableErr(err) || attempt >= c.policy.Attempts {
			return "", fmt.Errorf("upload %s to %s: %w", d, j.Repo, err)
		}
		if err := sleepCtx(ctx, c.policy.wait(attempt, retryAfterOf(err))); err != nil {
			return "", err
		}
	}
	return c.uploadMonolithic(ctx, j, "")
}

// uploadMonolithic sends a blob in one PUT into a session (loc, or a new
// one), starting over on a passing failure. The registry checks the digest
// on commit, and so does the verifying reader.
func (c *Client) uploadMonolithic(ctx context.Context, j BlobPush, loc string) (Outcome, error) {
	d := j.Digest
	for attempt := 1; ; attempt++ {
		if loc == "" {
			var err error
			if loc, _, err = c.startUpload(ctx, j.Repo, d, ""); err != nil {
				return "", err
			}
		}
		put, err := withDigest(loc, d)
		if err != nil {
			return "", err
		}
		b, err := openBody(ctx, j, 0)
		if err != nil {
			c.cancelUpload(loc)
			return "", err
		}
		w := b.window(j.Size)
		resp, err := c.do(ctx, http.MethodPut, put, http.Header{"Content-Type": {"application/octet-stream"}}, sizedBody{r: w, n: j.Size})
		w.wait(ctx)
		if err == nil {
			err = checkStatus(resp, http.StatusCreated)
			closeBody(resp)
		}
		if err == nil {
			err = b.verify()
			b.close()
			if err != nil {
				return "", err
			}
			return Uploaded, nil
		}
		if serr := b.failed(); serr != nil {
			c.cancelUpload(loc)
			return "", serr
		}
		if !retryableErr(err) || attempt >= c.policy.Attempts {
			if exists, herr := c.BlobExists(ctx, j.Repo, d); herr == nil && exists {
				return Uploaded, nil
			}
			return "", fmt.Errorf("upload %s to %s: %w", d, j.Repo, err)
		}
		c.cancelUpload(loc)
		loc = ""
		if err := sleepCtx(ctx, c.policy.wait(attempt, retryAfterOf(err))); err != nil {
			return "", err
		}
	}
}

func retryAfterOf(err error) time.Duration {
	var se *StatusError
	if errors.As(err, &se) {
		return se.RetryAfter
	}
	return 0
}

// openBody opens the blob, skips offset bytes (still hashing them) and
// returns the rest for request bodies to read.
func openBody(ctx context.Context, j BlobPush, offset int64) (*uploadBody, error) {
	rc, err := j.Open(ctx)
	if err != nil {
		return nil, &ContentError{Digest: j.Digest, Err: err}
	}
	if offset > 0 {
		if _, err := io.CopyN(io.Discard, rc, offset); err != nil {
			rc.Close()
			return nil, &ContentError{Digest: j.Digest, Err: fmt.Errorf("skipping to byte %d: %w", offset, err)}
		}
	}
	if j.Size-offset > readAheadMin {
		rc = &readAhead{ReadAhead: digestio.NewReadAhead(rc, readAheadBufs, readAheadSize), src: rc}
	}
	return &uploadBody{rc: rc, onBytes: j.OnBytes, digest: j.Digest, pos: offset, size: j.Size}, nil
}

// probeMax bounds the blobs that may find out whether the registry takes
// a single-request upload.
const probeMax = 1 << 20

// Bodies larger than readAheadMin are read ahead on a goroutine of their
// own: reading the source, decoding and hashing then overlap with the
// transport encrypting and sending, where they used to take turns on the
// transport's goroutine. Each such upload holds readAheadBufs ×
// readAheadSize bytes: 1 MiB, 4 MiB with four uploads in parallel.
const (
	readAheadMin  = 4 << 20
	readAheadBufs = 4
	readAheadSize = 256 << 10
)

// readAhead stops the goroutine before the source is closed under it.
type readAhead struct {
	*digestio.ReadAhead
	src io.Closer
}

func (r *readAhead) Close() error {
	r.ReadAhead.Close()
	return r.src.Close()
}

// uploadBody is a blob's content being sent, from pos on; request bodies
// are windows on it.
type uploadBody struct {
	rc      io.ReadCloser
	onBytes func(int64)
	digest  string
	mu      sync.Mutex
	pos     int64
	size    int64
	err     error // the source's error, io.EOF included
}

func (b *uploadBody) read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.rc.Read(p)
	b.pos += int64(n)
	if n > 0 && b.onBytes != nil {
		b.onBytes(int64(n))
	}
	if err != nil {
		b.err = err
	}
	return n, err
}

// sourceErr is the source's failure, nil when it has none (or only
// reached its end).
func (b *uploadBody) sourceErr() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil && b.err != io.EOF {
		return &ContentError{Digest: b.digest, Err: b.err}
	}
	return nil
}

func (b *uploadBody) position() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pos
}

// verify reads to the end, so the verifying source checks the digest
// before a commit, whatever the transport did not read.
func (b *uploadBody) verify() error {
	var buf [512]byte
	for {
		_, err := b.read(buf[:])
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return &ContentError{Digest: b.digest, Err: err}
		}
	}
}

func (b *uploadBody) close() { b.rc.Close() }

// failed closes the body after a request that failed and says whether the
// source is to blame: it failed on the way, or every byte went and the
// content does not match (which a registry refuses as DIGEST_INVALID).
func (b *uploadBody) failed() error {
	defer b.close()
	if err := b.sourceErr(); err != nil {
		return err
	}
	if b.position() == b.size {
		// Reading on to the end makes the verifying source check.
		return b.verify()
	}
	return nil
}

// window returns a request body of the next n bytes. The HTTP transport may
// go on reading a body after the request returns, until it closes it;
// wait holds the caller until then.
func (b *uploadBody) window(n int64) *window {
	return &window{b: b, left: n, closed: make(chan struct{})}
}

type window struct {
	b      *uploadBody
	left   int64
	once   sync.Once
	closed chan struct{}
}

func (w *window) Read(p []byte) (int, error) {
	if w.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > w.left {
		p = p[:w.left]
	}
	n, err := w.b.read(p)
	w.left -= int64(n)
	if err == io.EOF && w.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (w *window) Close() error {
	w.once.Do(func() { close(w.closed) })
	return nil
}

// wait returns once the transport let go of the body.
func (w *window) wait(ctx context.Context) {
	select {
	case <-w.closed:
	case <-ctx.Done():
		// The transport closes the body once the cancelled request ends.
		<-w.closed
	}
}
