package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/klauspost/compress/zstd"

	"github.com/ferrytool/ferry/archive"
	"github.com/ferrytool/ferry/internal/digestio"
	"github.com/ferrytool/ferry/manifest"
)

// monolithicMax is the largest blob sent in one PUT. Larger ones are
// streamed with PATCH, which a registry can report progress on, so a lost
// connection or a killed process resumes where the registry stopped rather
// than at byte zero.
const monolithicMax = 4 << 20

// opener returns a reader of a blob's whole content from its first byte.
// The reader fails at EOF unless the content matches the blob's digest and
// size, so nothing unverified is ever committed.
type opener func(ctx context.Context) (io.ReadCloser, error)

// sessions keeps upload locations across runs (the journal).
type sessions interface {
	load(repo, digest string) (string, bool)
	save(repo, digest, location string)
	drop(repo, digest string)
}

type noSessions struct{}

func (noSessions) load(string, string) (string, bool) { return "", false }
func (noSessions) save(string, string, string)        {}
func (noSessions) drop(string, string)                {}

// uploadJob is one blob to put into one repository.
type uploadJob struct {
	repo      string
	blob      manifest.Blob
	open      opener
	mountFrom []string
	sessions  sessions
	onBytes   func(int64)
}

// badBlobError marks content in the archive that did not verify: the blob
// is never committed and its artifacts are refused.
type badBlobError struct {
	digest string
	err    error
}

func (e *badBlobError) Error() string { return e.err.Error() }
func (e *badBlobError) Unwrap() error { return e.err }

// isBadContent reports whether reading a blob from the archive failed
// because of the archive's bytes (a digest mismatch, a damaged compressed
// frame), which refuses the blob, rather than because of the machine.
func isBadContent(err error) bool {
	if errors.Is(err, archive.ErrDigest) || errors.Is(err, digestio.ErrMismatch) ||
		errors.Is(err, archive.ErrTruncated) || errors.Is(err, archive.ErrFormat) {
		return true
	}
	for _, z := range []error{zstd.ErrCRCMismatch, zstd.ErrReservedBlockType, zstd.ErrCompressedSizeTooBig,
		zstd.ErrBlockTooSmall, zstd.ErrUnexpectedBlockSize, zstd.ErrMagicMismatch, zstd.ErrWindowSizeExceeded,
		zstd.ErrWindowSizeTooSmall, zstd.ErrFrameSizeExceeded, zstd.ErrFrameSizeMismatch} {
		if errors.Is(err, z) {
			return true
		}
	}
	return false
}

// pushBlob makes sure repo holds the blob: a HEAD first, then a
// cross-repository mount from a repository known to hold it, then an
// upload (resumed when a session of an earlier run is still open).
func (r *registry) pushBlob(ctx context.Context, j uploadJob) (string, error) {
	d := j.blob.Digest
	ok, err := r.blobExists(ctx, j.repo, d)
	if err != nil {
		return "", fmt.Errorf("HEAD %s@%s: %w", j.repo, d, err)
	}
	if ok {
		j.sessions.drop(j.repo, d)
		return BlobFound, nil
	}
	for _, from := range j.mountFrom {
		if from == j.repo {
			continue
		}
		loc, mounted, err := r.startUpload(ctx, j.repo, d, from)
		if err != nil {
			return "", err
		}
		if mounted {
			return BlobMounted, nil
		}
		// The registry opened an ordinary upload instead; use it.
		return r.upload(ctx, j, loc)
	}
	return r.upload(ctx, j, "")
}

// startUpload opens an upload session, asking for a mount when from is set.
func (r *registry) startUpload(ctx context.Context, repo, digest, from string) (loc string, mounted bool, err error) {
	u := r.repoURL(repo, "blobs/uploads/")
	if from != "" {
		u += "?" + url.Values{"mount": {digest}, "from": {from}}.Encode()
	}
	resp, err := r.do(ctx, http.MethodPost, u, nil, []byte{})
	if err != nil {
		return "", false, fmt.Errorf("start upload of %s to %s: %w", digest, repo, err)
	}
	defer resp.Body.Close()
	if err := checkStatus(resp, http.StatusCreated, http.StatusAccepted); err != nil {
		return "", false, fmt.Errorf("start upload of %s to %s: %w", digest, repo, err)
	}
	if resp.StatusCode == http.StatusCreated {
		return "", true, nil
	}
	loc, err = resolve(resp)
	return loc, false, err
}

func (r *registry) cancelUpload(loc string) {
	if loc == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if resp, err := r.do(ctx, http.MethodDelete, loc, nil, nil); err == nil {
		resp.Body.Close()
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

// upload sends the blob's content. loc is an open session or "".
func (r *registry) upload(ctx context.Context, j uploadJob, loc string) (string, error) {
	if loc == "" && j.blob.Size <= monolithicMax {
		return r.uploadMonolithic(ctx, j)
	}
	return r.uploadStreamed(ctx, j, loc)
}

// uploadMonolithic sends a small blob in one PUT, starting over on a
// passing failure. The registry checks the digest on commit, and so does
// the verifying reader.
func (r *registry) uploadMonolithic(ctx context.Context, j uploadJob) (string, error) {
	d := j.blob.Digest
	for attempt := 1; ; attempt++ {
		loc, _, err := r.startUpload(ctx, j.repo, d, "")
		if err != nil {
			return "", err
		}
		put, err := withDigest(loc, d)
		if err != nil {
			return "", err
		}
		body, err := openBody(ctx, j, 0)
		if err != nil {
			r.cancelUpload(loc)
			return "", err
		}
		resp, err := r.do(ctx, http.MethodPut, put, http.Header{"Content-Type": {"application/octet-stream"}}, sizedBody{r: body, n: j.blob.Size})
		if err == nil {
			err = checkStatus(resp, http.StatusCreated)
			resp.Body.Close()
		}
		if verr := body.finish(ctx, err == nil); verr != nil {
			r.cancelUpload(loc)
			return "", verr
		}
		if err == nil {
			return BlobUploaded, nil
		}
		if !retryableErr(err) || attempt >= r.policy.Attempts {
			if exists, herr := r.blobExists(ctx, j.repo, d); herr == nil && exists {
				return BlobUploaded, nil
			}
			return "", fmt.Errorf("upload %s to %s: %w", d, j.repo, err)
		}
		r.cancelUpload(loc)
		if err := sleepCtx(ctx, r.policy.wait(attempt, retryAfterOf(err))); err != nil {
			return "", err
		}
	}
}

func retryAfterOf(err error) time.Duration {
	var se *statusError
	if errors.As(err, &se) {
		return se.retryAfter
	}
	return 0
}

// uploadStreamed sends a blob with PATCH and, when a request fails on the
// way, asks the registry how far it got and goes on from there.
func (r *registry) uploadStreamed(ctx context.Context, j uploadJob, loc string) (string, error) {
	d := j.blob.Digest
	var offset int64
	outcome := BlobUploaded
	// fresh: nothing was sent on the session yet, so its first PATCH may
	// stream without a Content-Range. Every later one says where it starts:
	// an offset read while the registry was still writing a dropped request
	// is refused then (416), instead of appended where it does not belong.
	fresh := loc != ""
	if loc == "" {
		if saved, ok := j.sessions.load(j.repo, d); ok {
			if off, next, err := r.uploadStatus(ctx, saved); err == nil {
				loc, offset = next, off
				if off > 0 {
					outcome = BlobResumed
				}
			} else {
				j.sessions.drop(j.repo, d)
			}
		}
	}
	restarted := false
	restart := func() error {
		r.cancelUpload(loc)
		j.sessions.drop(j.repo, d)
		var err error
		if loc, _, err = r.startUpload(ctx, j.repo, d, ""); err != nil {
			return err
		}
		offset = 0
		outcome = BlobUploaded
		fresh = true
		j.sessions.save(j.repo, d, loc)
		return nil
	}
	if loc == "" {
		if err := restart(); err != nil {
			return "", err
		}
	} else {
		j.sessions.save(j.repo, d, loc)
	}
	failures := 0
	verified := false
	for !verified && (offset < j.blob.Size || j.blob.Size == 0) {
		if offset > j.blob.Size {
			if err := restart(); err != nil {
				return "", err
			}
		}
		body, err := openBody(ctx, j, offset)
		if err != nil {
			return "", err
		}
		// Expect: 100-continue lets the registry refuse a stale session or
		// range before the body is on its way.
		hdr := http.Header{"Content-Type": {"application/octet-stream"}, "Expect": {"100-continue"}}
		if offset > 0 || !fresh {
			hdr.Set("Content-Range", fmt.Sprintf("%d-%d", offset, j.blob.Size-1))
		}
		fresh = false
		resp, err := r.do(ctx, http.MethodPatch, loc, hdr, sizedBody{r: body, n: j.blob.Size - offset})
		if err == nil {
			if err = checkStatus(resp, http.StatusAccepted, http.StatusNoContent, http.StatusCreated); err == nil {
				loc, err = resolve(resp)
			}
			resp.Body.Close()
		}
		if verr := body.finish(ctx, err == nil); verr != nil {
			r.cancelUpload(loc)
			j.sessions.drop(j.repo, d)
			return "", verr
		}
		if err == nil {
			verified = true
			break
		}
		var se *statusError
		rangeRefused := errors.As(err, &se) && se.code == http.StatusRequestedRangeNotSatisfiable
		failures++
		if rangeRefused && failures >= r.policy.Attempts && !restarted {
			// The session will not settle: start over, once.
			restarted, failures = true, 0
			if err := restart(); err != nil {
				return "", err
			}
			continue
		}
		if !rangeRefused && !retryableErr(err) || failures >= r.policy.Attempts {
			return "", fmt.Errorf("upload %s to %s at byte %d: %w", d, j.repo, offset, err)
		}
		if err := sleepCtx(ctx, r.policy.wait(failures, retryAfterOf(err))); err != nil {
			return "", err
		}
		off, next, serr := r.settledStatus(ctx, loc)
		if serr != nil {
			if errors.As(serr, &se) && (se.code == http.StatusNotFound || se.code == http.StatusBadRequest) {
				if err := restart(); err != nil {
					return "", err
				}
				continue
			}
			return "", fmt.Errorf("upload %s to %s: status after a failed request: %w", d, j.repo, serr)
		}
		if off > offset {
			failures = 0 // it moved on: only failures in a row count
		}
		offset, loc = off, next
		if offset > 0 && outcome == BlobUploaded {
			outcome = BlobResumed
		}
		if j.blob.Size == 0 {
			break
		}
	}
	if !verified {
		// Every byte reached the registry in an earlier run: check the
		// content here before the commit all the same.
		body, err := openBody(ctx, j, j.blob.Size)
		if err != nil {
			return "", err
		}
		body.Close()
		if err := body.finish(ctx, true); err != nil {
			r.cancelUpload(loc)
			j.sessions.drop(j.repo, d)
			return "", err
		}
	}
	put, err := withDigest(loc, d)
	if err != nil {
		return "", err
	}
	resp, err := r.do(ctx, http.MethodPut, put, nil, []byte{})
	if err == nil {
		err = checkStatus(resp, http.StatusCreated)
		resp.Body.Close()
	}
	if err != nil {
		// A commit answered after the connection broke, or content the
		// registry kept from an earlier run that no longer matches.
		if exists, herr := r.blobExists(ctx, j.repo, d); herr == nil && exists {
			j.sessions.drop(j.repo, d)
			return outcome, nil
		}
		var te *transport.Error
		if errors.As(err, &te) && !restarted && outcome == BlobResumed {
			r.cancelUpload(loc)
			j.sessions.drop(j.repo, d)
			return r.uploadStreamed(ctx, uploadJob{repo: j.repo, blob: j.blob, open: j.open, sessions: noSessions{}, onBytes: j.onBytes}, "")
		}
		return "", fmt.Errorf("commit %s to %s: %w", d, j.repo, err)
	}
	j.sessions.drop(j.repo, d)
	return outcome, nil
}

// openBody opens the blob, skips offset bytes (still hashing them) and
// returns the rest as a request body.
func openBody(ctx context.Context, j uploadJob, offset int64) (*uploadBody, error) {
	rc, err := j.open(ctx)
	if err != nil {
		if isBadContent(err) {
			return nil, &badBlobError{digest: j.blob.Digest, err: err}
		}
		return nil, err
	}
	if offset > 0 {
		if _, err := io.CopyN(io.Discard, rc, offset); err != nil {
			rc.Close()
			if isBadContent(err) {
				return nil, &badBlobError{digest: j.blob.Digest, err: err}
			}
			return nil, fmt.Errorf("blob %s: skipping to byte %d: %w", j.blob.Digest, offset, err)
		}
	}
	if j.blob.Size-offset > readAheadMin {
		rc = &readAhead{ReadAhead: digestio.NewReadAhead(rc, readAheadBufs, readAheadSize), src: rc}
	}
	return &uploadBody{rc: rc, onBytes: j.onBytes, closed: make(chan struct{}), digest: j.blob.Digest}, nil
}

// Bodies larger than monolithicMax are read ahead on a goroutine of their
// own: reading the volume, decoding and hashing then overlap with the
// transport encrypting and sending, where they used to take turns on the
// transport's goroutine (hack/bench-ingest.sh). Each such upload holds
// readAheadBufs × readAheadSize bytes: 1 MiB, 4 MiB with --jobs 4.
const (
	readAheadMin  = monolithicMax
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

// uploadBody is a request body read from a volume. The HTTP transport may
// go on using a body after the request returns, until it closes it, so the
// real close and the final verification wait for that.
type uploadBody struct {
	rc      io.ReadCloser
	onBytes func(int64)
	digest  string
	mu      sync.Mutex
	err     error
	once    sync.Once
	closed  chan struct{}
}

func (b *uploadBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.rc.Read(p)
	if n > 0 && b.onBytes != nil {
		b.onBytes(int64(n))
	}
	if err != nil {
		b.err = err
	}
	return n, err
}

func (b *uploadBody) Close() error {
	b.once.Do(func() { close(b.closed) })
	return nil
}

// finish waits for the transport to let go of the body and reports bad
// content. After a request that succeeded, whatever the transport did not
// read is read now, so the digest is always checked before a commit.
func (b *uploadBody) finish(ctx context.Context, succeeded bool) error {
	select {
	case <-b.closed:
	case <-ctx.Done():
		// The transport closes the body once the cancelled request ends.
		<-b.closed
	}
	defer b.rc.Close()
	if succeeded {
		if _, err := io.Copy(io.Discard, b); err != nil {
			if isBadContent(err) {
				return &badBlobError{digest: b.digest, err: err}
			}
			return fmt.Errorf("blob %s: %w", b.digest, err)
		}
		return nil
	}
	b.mu.Lock()
	err := b.err
	b.mu.Unlock()
	if err != nil && err != io.EOF && isBadContent(err) {
		return &badBlobError{digest: b.digest, err: err}
	}
	return nil
}
