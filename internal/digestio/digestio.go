// Package digestio holds the verifying reader every blob read goes through:
// limited to the declared size, hashed while it streams, and an error at EOF
// when the bytes do not match the digest they were announced with.
package digestio

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
)

// ErrMismatch is returned at EOF by a verifying reader whose content does not
// match its declared digest or size.
var ErrMismatch = errors.New("content does not match its digest")

// Reader verifies what it reads. Read returns ErrMismatch (wrapped, naming the
// digest) instead of io.EOF when the content is wrong, so a consumer that
// reads to EOF can never mistake bad bytes for good ones.
type Reader struct {
	r      io.Reader
	h      hash.Hash
	digest string
	size   int64
	n      int64
	err    error
}

// NewReader returns a reader of r that expects exactly size bytes whose
// sha256 digest is digest ("sha256:<hex>").
func NewReader(r io.Reader, digest string, size int64) *Reader {
	return &Reader{r: r, h: sha256.New(), digest: digest, size: size}
}

func (v *Reader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	if rest := v.size - v.n; int64(len(p)) > rest+1 {
		// Read one byte past the declared size so an over-long stream is seen.
		p = p[:rest+1]
	}
	n, err := v.r.Read(p)
	v.n += int64(n)
	if v.n > v.size {
		v.err = fmt.Errorf("%w: %s: more than the declared %d bytes", ErrMismatch, v.digest, v.size)
		return 0, v.err
	}
	v.h.Write(p[:n])
	switch {
	case err == io.EOF:
		v.err = v.check()
		if v.err == nil {
			v.err = io.EOF
		}
		return n, v.err
	case err != nil:
		v.err = err
	}
	return n, err
}

// Verified reports whether the whole content was read and matched.
func (v *Reader) Verified() bool { return v.err == io.EOF }

// Count is the number of bytes read so far.
func (v *Reader) Count() int64 { return v.n }

func (v *Reader) check() error {
	if v.n != v.size {
		return fmt.Errorf("%w: %s: got %d bytes, declared %d", ErrMismatch, v.digest, v.n, v.size)
	}
	if got := "sha256:" + hex.EncodeToString(v.h.Sum(nil)); got != v.digest {
		return fmt.Errorf("%w: expected %s, got %s", ErrMismatch, v.digest, got)
	}
	return nil
}

// Digester hashes what is written to it; it is the writing counterpart used
// when content arrives without a known digest.
type Digester struct {
	h hash.Hash
	n int64
}

// NewDigester returns an empty sha256 digester.
func NewDigester() *Digester { return &Digester{h: sha256.New()} }

func (d *Digester) Write(p []byte) (int, error) {
	d.n += int64(len(p))
	return d.h.Write(p)
}

// Digest returns "sha256:<hex>" of what was written.
func (d *Digester) Digest() string { return "sha256:" + hex.EncodeToString(d.h.Sum(nil)) }

// Size returns how many bytes were written.
func (d *Digester) Size() int64 { return d.n }

// FromBytes returns the sha256 digest of b.
func FromBytes(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// NewReadCloser is NewReader over rc that closes rc, and that reports a
// mismatch as kind (a package's own sentinel, such as archive.ErrDigest)
// naming the blob, so callers match their own error rather than ErrMismatch.
func NewReadCloser(rc io.ReadCloser, digest string, size int64, kind error) io.ReadCloser {
	return &readCloser{r: NewReader(rc, digest, size), c: rc, digest: digest, kind: kind}
}

type readCloser struct {
	r      io.Reader
	c      io.Closer
	digest string
	kind   error
}

func (rc *readCloser) Read(p []byte) (int, error) {
	n, err := rc.r.Read(p)
	if err != nil && errors.Is(err, ErrMismatch) {
		return n, fmt.Errorf("%w: blob %s: %w", rc.kind, rc.digest, err)
	}
	return n, err
}

func (rc *readCloser) Close() error { return rc.c.Close() }
