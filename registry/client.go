package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Options configure [Connect]. Zero values are documented per field.
type Options struct {
	// Auth is the credential. Nil means Keychain, and anonymous without
	// one.
	Auth authn.Authenticator
	// Keychain resolves credentials by registry host (a docker config and
	// its credential helpers, authn.DefaultKeychain).
	Keychain authn.Keychain
	// Transport carries every request. Nil means NewTransport with its
	// zero options.
	Transport http.RoundTripper
	// PlainHTTP talks HTTP instead of HTTPS. Without it the client never
	// falls back to HTTP, whatever the host.
	PlainHTTP bool
	// Retry is the policy for requests that fail for a passing reason.
	Retry RetryPolicy
	// ChunkSize bounds the body of one upload request: a blob up to it
	// goes in one request, a larger one in PATCH chunks of at most this
	// size. Zero means DefaultChunkSize.
	ChunkSize int64
	// UserAgent is sent with every request; "" means go-containerregistry's.
	UserAgent string
	// Logger receives debug records (retries, resumed uploads); nil
	// discards. Credentials never reach it.
	Logger *slog.Logger
}

// DefaultChunkSize is the largest request body of an upload unless
// Options.ChunkSize says otherwise: sent in under 30 s at 10 MB/s, within
// the minute most proxies allow a request, and large enough that the
// registry's cost per request (a bcrypt check, reopening the upload) stays
// a small share of sending the bytes: a 1 GiB layer goes in four PATCH
// requests, where 32 MiB chunks took 32 and the push a third longer.
const DefaultChunkSize = 256 << 20

// minChunk is the smallest a chunk is halved to after being cut off.
const minChunk = 1 << 20

// Client is an authenticated client of one registry.
type Client struct {
	dest     Destination
	scheme   string
	client   *http.Client
	policy   RetryPolicy
	chunk    int64
	log      *slog.Logger
	requests atomic.Int64
	// singlePost is 1 once the registry took a blob in a single POST, -1
	// once it answered such a POST with an upload session instead.
	singlePost atomic.Int32
}

// Connect pings the registry, sets up authentication for the repositories
// given (push and pull) and checks the credentials with one request, so a
// wrong password, an untrusted certificate or a registry that is down is
// reported before any work starts.
func Connect(ctx context.Context, dest Destination, repos []string, opts Options) (*Client, error) {
	opts.Retry = opts.Retry.withDefaults()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ChunkSize <= 0 {
		opts.ChunkSize = DefaultChunkSize
	}
	nopts := []name.Option{name.StrictValidation}
	scheme := "https"
	if opts.PlainHTTP {
		nopts = append(nopts, name.Insecure)
		scheme = "http"
	}
	host := dest.HostPort()
	reg, err := name.NewRegistry(host, nopts...)
	if err != nil {
		return nil, fmt.Errorf("%w: registry %q: %v", ErrDestination, host, err)
	}
	base := opts.Transport
	if base == nil {
		tr, err := NewTransport(TransportOptions{})
		if err != nil {
			return nil, err
		}
		base = tr
	}
	c := &Client{dest: dest, scheme: scheme, policy: opts.Retry, chunk: opts.ChunkSize, log: opts.Logger}
	var rt http.RoundTripper = &retryTransport{inner: schemeGuard{inner: counter{inner: base, n: &c.requests}, scheme: scheme}, policy: opts.Retry,
		onRetry: func(req *http.Request, attempt int, wait time.Duration, why string) {
			opts.Logger.Debug("retrying", "method", req.Method, "url", redactURL(req.URL), "attempt", attempt, "wait", wait, "reason", why)
		}}
	if opts.UserAgent != "" {
		rt = transport.NewUserAgent(rt, opts.UserAgent)
	}
	auth := opts.Auth
	if auth == nil && opts.Keychain != nil {
		if auth, err = authn.Resolve(ctx, opts.Keychain, reg); err != nil {
			return nil, fmt.Errorf("%w: credentials for %s from the docker config: %v", ErrAuth, host, err)
		}
	}
	if auth == nil {
		auth = authn.Anonymous
	}
	scopes := []string{transport.CatalogScope}
	for _, r := range repos {
		scopes = append(scopes, reg.Repo(r).Scope(transport.PushScope))
	}
	tr, err := transport.NewWithContext(ctx, reg, auth, rt, scopes)
	if err != nil {
		return nil, c.classify(err)
	}
	// A registry that hands out a session cookie after the first checked
	// request is spared checking the password again on the next ones.
	jar, _ := cookiejar.New(nil)
	c.client = &http.Client{Transport: tr, Jar: jar}
	resp, err := c.do(ctx, http.MethodGet, c.url("/v2/"), nil, nil)
	if err != nil {
		return nil, c.classify(err)
	}
	defer closeBody(resp)
	if err := checkStatus(resp, http.StatusOK); err != nil {
		return nil, c.classify(err)
	}
	return c, nil
}

// Destination is where the client was connected to.
func (c *Client) Destination() Destination { return c.dest }

// Requests counts the requests sent so far, retries and token requests
// included.
func (c *Client) Requests() int64 { return c.requests.Load() }

// classify turns a connection or registry error into one of the package's
// sentinels, keeping the cause.
func (c *Client) classify(err error) error { return Classify(c.dest.HostPort(), err) }

// Classify turns an error from a request to host into one of the
// package's sentinels, keeping the cause; an error that already is one, a
// cancellation and a ContentError pass unchanged.
func Classify(host string, err error) error {
	var se *StatusError
	var te *transport.Error
	var ce *ContentError
	code := 0
	if errors.As(err, &se) {
		code = se.Code
	} else if errors.As(err, &te) {
		code = te.StatusCode
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrAuth), errors.Is(err, ErrTLS), errors.Is(err, ErrUnreachable), errors.Is(err, ErrRegistry), errors.Is(err, ErrDestination):
		return err
	case errors.Is(err, context.Canceled), errors.As(err, &ce):
		return err
	case code == http.StatusUnauthorized:
		return fmt.Errorf("%w: %s answered 401 Unauthorized: wrong username or password, or none given: %w", ErrAuth, host, err)
	case code == http.StatusForbidden:
		return fmt.Errorf("%w: %s answered 403 Forbidden: the account may not do that: %w", ErrAuth, host, err)
	case isTLSErr(err):
		return fmt.Errorf("%w: %s: %w", ErrTLS, host, err)
	case code != 0:
		return fmt.Errorf("%w: %s: %w", ErrRegistry, host, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrUnreachable, host, err)
}

// protocolParams are the query parameters the distribution protocol itself
// sends; any other (an upload session's _state, a storage back end's
// signature or token in a Location or a redirect) may grant access, so
// redactURL masks its value.
var protocolParams = map[string]bool{"digest": true, "mount": true, "from": true, "n": true, "last": true, "scope": true, "service": true}

// redactURL is u as errors and logs may show it: no user information, and
// the values of query parameters other than the protocol's masked.
func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	c.Fragment, c.RawFragment = "", ""
	if c.RawQuery != "" {
		q := c.Query()
		for k, vs := range q {
			if !protocolParams[k] {
				for i := range vs {
					vs[i] = "redacted"
				}
			}
		}
		c.RawQuery = q.Encode()
	}
	return c.String()
}

// redactRawURL is redactURL of a URL as text; one that does not parse
// keeps only what comes before its query and fragment, without user
// information.
func redactRawURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return redactURL(u)
	}
	end := strings.IndexAny(s, "?#")
	if end < 0 {
		end = len(s)
	}
	out := s[:end]
	if scheme, rest, ok := strings.Cut(out, "://"); ok {
		authority := rest
		if i := strings.Index(rest, "/"); i >= 0 {
			authority = rest[:i]
		}
		if at := strings.LastIndex(authority, "@"); at >= 0 {
			out = scheme + "://" + rest[at+1:]
		}
	}
	if end < len(s) {
		out += "?redacted"
	}
	return out
}

// redactErr masks the URL an HTTP client's error names (an upload
// location, a redirect to signed storage) as redactURL does.
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = redactRawURL(ue.URL)
	}
	return err
}

func (c *Client) url(path string) string {
	return c.scheme + "://" + c.dest.HostPort() + path
}

func (c *Client) repoURL(repo, rest string) string {
	return c.url("/v2/" + repo + "/" + rest)
}

// sizedBody is a streamed request body of known length.
type sizedBody struct {
	r io.ReadCloser
	n int64
}

// do sends one request. A []byte body can be replayed by the retry
// transport; a sizedBody is sent once.
func (c *Client) do(ctx context.Context, method, u string, hdr http.Header, body any) (*http.Response, error) {
	var rd io.Reader
	var size int64
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case sizedBody:
		rd, size = b.r, b.n
	default:
		return nil, fmt.Errorf("internal: body of type %T", body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if sb, ok := body.(sizedBody); ok {
		// A streamed body is sent once: no GetBody, so the retry transport
		// leaves it to the upload loop. An empty one is still closed.
		req.GetBody = nil
		req.ContentLength = size
		if size == 0 {
			sb.r.Close()
			req.Body = http.NoBody
		}
	}
	resp, err := c.client.Do(req)
	return resp, redactErr(err)
}

// closeBody drains a small rest of a body so the connection is kept alive,
// and closes it.
func closeBody(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// location makes a Location header absolute.
func location(resp *http.Response) (string, error) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "", fmt.Errorf("%w: %s %s: no Location in the answer", ErrRegistry, resp.Request.Method, redactURL(resp.Request.URL))
	}
	u, err := url.Parse(loc)
	if err != nil {
		var why error = err
		if ue, ok := err.(*url.Error); ok {
			why = ue.Err // without the URL, which redactRawURL shows
		}
		return "", fmt.Errorf("%w: %s %s: bad Location %q: %v", ErrRegistry, resp.Request.Method, redactURL(resp.Request.URL), redactRawURL(loc), why)
	}
	return resp.Request.URL.ResolveReference(u).String(), nil
}
