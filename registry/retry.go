package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// RetryPolicy says how a request that failed for a passing reason (HTTP 429,
// 5xx, a connection refused or reset) is tried again. go-containerregistry's
// own retries ignore Retry-After, so ferry keeps its own.
type RetryPolicy struct {
	// Attempts is how often one request is tried in all; zero means 6, one
	// turns retries off.
	Attempts int
	// Base is the first wait; each further wait doubles, and a random share
	// of up to half of it is taken off so that parallel workers spread out.
	// Zero means 200ms.
	Base time.Duration
	// Max caps a single wait, a registry's Retry-After included; zero means
	// 30s.
	Max time.Duration
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.Attempts <= 0 {
		p.Attempts = 6
	}
	if p.Base <= 0 {
		p.Base = 200 * time.Millisecond
	}
	if p.Max <= 0 {
		p.Max = 30 * time.Second
	}
	return p
}

// wait is the pause before attempt+1. A Retry-After the registry sent wins
// over the back-off, capped at Max.
func (p RetryPolicy) wait(attempt int, retryAfter time.Duration) time.Duration {
	if retryAfter > 0 {
		return min(retryAfter, p.Max)
	}
	d := p.Base << min(attempt-1, 20)
	if d <= 0 || d > p.Max {
		d = p.Max
	}
	return d - time.Duration(rand.Int64N(int64(d)/2+1))
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(h http.Header) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// retryableStatus lists the answers that say "not now" rather than "no".
func retryableStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// retryableErr reports whether a transport error may pass on a new
// connection. Certificate problems and cancellations never do.
func retryableErr(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || isTLSErr(err) {
		return false
	}
	var se *StatusError
	if errors.As(err, &se) {
		return retryableStatus(se.Code)
	}
	var te *transport.Error
	if errors.As(err, &te) {
		return retryableStatus(te.StatusCode)
	}
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, net.ErrClosed) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe)
}

func isTLSErr(err error) bool {
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	var rh tls.RecordHeaderError
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci) || errors.As(err, &rh)
}

// StatusError is a registry answer other than the one expected, with the
// wait the registry asked for. It wraps go-containerregistry's
// *transport.Error, which holds the registry's diagnostics.
type StatusError struct {
	Code       int
	RetryAfter time.Duration
	Err        error
}

func (e *StatusError) Error() string { return e.Err.Error() }
func (e *StatusError) Unwrap() error { return e.Err }

// checkStatus turns an unexpected answer into a *StatusError; it reads and
// closes the body then.
func checkStatus(resp *http.Response, want ...int) error {
	for _, c := range want {
		if resp.StatusCode == c {
			return nil
		}
	}
	err := transport.CheckError(resp, want...)
	resp.Body.Close()
	return &StatusError{Code: resp.StatusCode, RetryAfter: retryAfter(resp.Header), Err: err}
}

// retryTransport retries requests whose body can be sent again (none, or
// one with GetBody) on retryable answers and errors. Uploads streamed from
// a volume are not replayable; the upload loop resumes them instead.
type retryTransport struct {
	inner  http.RoundTripper
	policy RetryPolicy
	// onRetry, when set, is told about each retry (for the logger).
	onRetry func(req *http.Request, attempt int, wait time.Duration, why string)

	// A Retry-After holds every request to the registry, not just the one
	// that got it: the registry is saying it has too much to do.
	mu       sync.Mutex
	holdTill time.Time
}

// hold delays every request until t.
func (t *retryTransport) hold(until time.Time) {
	t.mu.Lock()
	if until.After(t.holdTill) {
		t.holdTill = until
	}
	t.mu.Unlock()
}

func (t *retryTransport) waitHold(ctx context.Context) error {
	t.mu.Lock()
	d := time.Until(t.holdTill)
	t.mu.Unlock()
	if d <= 0 {
		return nil
	}
	return sleepCtx(ctx, d)
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	for attempt := 1; ; attempt++ {
		if err := t.waitHold(req.Context()); err != nil {
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, err
		}
		r := req
		if attempt > 1 && req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			r = req.Clone(req.Context())
			r.Body = body
		}
		resp, err := t.inner.RoundTrip(r)
		if err == nil && resp.StatusCode == http.StatusTooManyRequests {
			if after := retryAfter(resp.Header); after > 0 {
				t.hold(time.Now().Add(min(after, t.policy.Max)))
			}
		}
		if !replayable || attempt >= t.policy.Attempts {
			return resp, err
		}
		var after time.Duration
		var why string
		switch {
		case err != nil:
			if !retryableErr(err) {
				return resp, err
			}
			why = err.Error()
		case retryableStatus(resp.StatusCode):
			after = retryAfter(resp.Header)
			why = resp.Status
			closeBody(resp)
		default:
			return resp, nil
		}
		wait := t.policy.wait(attempt, after)
		if t.onRetry != nil {
			t.onRetry(req, attempt, wait, why)
		}
		if err := sleepCtx(req.Context(), wait); err != nil {
			return nil, err
		}
	}
}

func asStatus(err error, se **StatusError) bool { return err != nil && errors.As(err, se) }
