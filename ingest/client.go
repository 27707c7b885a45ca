package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/ferrytool/ferry/internal/digestio"
	"github.com/ferrytool/ferry/manifest"
)

// manifestAccept lists every manifest type ferry pushes, so a registry
// answers HEAD and GET with the manifest as stored rather than converted.
var manifestAccept = strings.Join([]string{
	manifest.MediaTypeOCIManifest, manifest.MediaTypeOCIIndex,
	manifest.MediaTypeDockerManifest, manifest.MediaTypeDockerList,
}, ", ")

// registry is an authenticated client of one destination registry.
type registry struct {
	dest   destination
	scheme string
	client *http.Client
	policy RetryPolicy
}

// connect pings the registry, sets up authentication for the repositories
// given and checks the credentials with one request, so a wrong password,
// an untrusted certificate or a registry that is down is reported before
// any work starts.
func connect(ctx context.Context, opts *Options, dest destination, repos []string) (*registry, error) {
	nopts := []name.Option{name.StrictValidation}
	scheme := "https"
	if opts.PlainHTTP {
		nopts = append(nopts, name.Insecure)
		scheme = "http"
	}
	reg, err := name.NewRegistry(dest.host, nopts...)
	if err != nil {
		return nil, fmt.Errorf("registry %q: %w", dest.host, err)
	}
	base := opts.Transport
	if base == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.Proxy = nil
		// HTTP/1.1, as cmd/ferry's transport: each parallel upload gets a
		// connection of its own instead of sharing one HTTP/2 connection,
		// and the registry reads a plain body rather than flow-controlled
		// frames handed between goroutines, which costs it less CPU.
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetHTTP1(true)
		tr.MaxIdleConnsPerHost = max(opts.Jobs*2, 8)
		base = tr
	}
	rt := &retryTransport{inner: schemeGuard{inner: base, scheme: scheme}, policy: opts.Retry,
		onRetry: func(req *http.Request, attempt int, wait time.Duration, why string) {
			opts.Logger.Debug("retrying", "method", req.Method, "url", redactURL(req.URL), "attempt", attempt, "wait", wait, "reason", why)
		}}
	auth := opts.Auth
	if auth == nil && opts.Keychain != nil {
		if auth, err = authn.Resolve(ctx, opts.Keychain, reg); err != nil {
			return nil, fmt.Errorf("%w: credentials for %s from the docker config: %v", ErrAuth, dest.host, err)
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
		return nil, classify(dest.host, err)
	}
	r := &registry{dest: dest, scheme: scheme, client: &http.Client{Transport: tr}, policy: opts.Retry}
	resp, err := r.do(ctx, http.MethodGet, r.url("/v2/"), nil, nil)
	if err != nil {
		return nil, classify(dest.host, err)
	}
	defer resp.Body.Close()
	if err := checkStatus(resp, http.StatusOK); err != nil {
		return nil, classify(dest.host, err)
	}
	return r, nil
}

// schemeGuard refuses the scheme ferry was not told to use: the ping of
// go-containerregistry tries plain HTTP for private and loopback addresses,
// and an appliance VIP is one.
type schemeGuard struct {
	inner  http.RoundTripper
	scheme string
}

var errWrongScheme = errors.New("refusing to switch protocol")

func (g schemeGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != g.scheme {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("%w: %s %s (use --plain-http for an HTTP registry)", errWrongScheme, req.Method, redactURL(req.URL))
	}
	return g.inner.RoundTrip(req)
}

// classify turns a connection or registry error into one of the package's
// sentinels, keeping the cause.
func classify(host string, err error) error {
	var se *statusError
	var te *transport.Error
	code := 0
	if errors.As(err, &se) {
		code = se.code
	} else if errors.As(err, &te) {
		code = te.StatusCode
	}
	switch {
	case errors.Is(err, ErrAuth), errors.Is(err, ErrTLS), errors.Is(err, ErrUnreachable), errors.Is(err, ErrRegistry):
		return err
	case errors.Is(err, context.Canceled):
		return err
	case code == http.StatusUnauthorized:
		return fmt.Errorf("%w: %s answered 401 Unauthorized: wrong username or password, or none given (%v)", ErrAuth, host, err)
	case code == http.StatusForbidden:
		return fmt.Errorf("%w: %s answered 403 Forbidden: the account may not push there (%v)", ErrAuth, host, err)
	case isTLSErr(err):
		return fmt.Errorf("%w: %s: %v (give the registry's CA with --ca-file, or --insecure to skip the check)", ErrTLS, host, err)
	case code != 0:
		return fmt.Errorf("%w: %s: %v", ErrRegistry, host, err)
	case errors.Is(err, errWrongScheme):
		return fmt.Errorf("%w: %s: %v", ErrUnreachable, host, err)
	}
	return fmt.Errorf("%w: %s: %v", ErrUnreachable, host, err)
}

func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	q := c.Query()
	if q.Has("_state") {
		q.Set("_state", "…")
		c.RawQuery = q.Encode()
	}
	return c.String()
}

func (r *registry) url(path string) string {
	return r.scheme + "://" + r.dest.host + path
}

func (r *registry) repoURL(repo, rest string) string {
	return r.url("/v2/" + repo + "/" + rest)
}

// sizedBody is a streamed request body of known length.
type sizedBody struct {
	r io.ReadCloser
	n int64
}

// do sends one request. A []byte body can be replayed by the retry
// transport; a sizedBody is sent once.
func (r *registry) do(ctx context.Context, method, u string, hdr http.Header, body any) (*http.Response, error) {
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
	return r.client.Do(req)
}

// resolve makes a Location header absolute.
func resolve(resp *http.Response) (string, error) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "", fmt.Errorf("%w: %s %s: no Location in the answer", ErrRegistry, resp.Request.Method, redactURL(resp.Request.URL))
	}
	u, err := url.Parse(loc)
	if err != nil {
		return "", fmt.Errorf("%w: bad Location %q: %v", ErrRegistry, loc, err)
	}
	return resp.Request.URL.ResolveReference(u).String(), nil
}

// blobExists asks with HEAD whether repo holds a blob.
func (r *registry) blobExists(ctx context.Context, repo, digest string) (bool, error) {
	resp, err := r.do(ctx, http.MethodHead, r.repoURL(repo, "blobs/"+digest), nil, nil)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, checkStatus(resp, http.StatusOK, http.StatusNotFound)
}

// manifestDigest asks with HEAD what a tag or digest resolves to in repo;
// "" when it does not exist. A registry that sends no digest header is
// asked again with GET, and the content hashed.
func (r *registry) manifestDigest(ctx context.Context, repo, ref string) (string, error) {
	hdr := http.Header{"Accept": {manifestAccept}}
	resp, err := r.do(ctx, http.MethodHead, r.repoURL(repo, "manifests/"+ref), hdr, nil)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotFound:
		return "", nil
	case http.StatusOK:
		if d := resp.Header.Get("Docker-Content-Digest"); d != "" {
			return d, nil
		}
	default:
		return "", checkStatus(resp, http.StatusOK, http.StatusNotFound)
	}
	resp, err = r.do(ctx, http.MethodGet, r.repoURL(repo, "manifests/"+ref), hdr, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if err := checkStatus(resp, http.StatusOK); err != nil {
		return "", err
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, manifest.MaxManifestSize+1))
	if err != nil {
		return "", err
	}
	return digestio.FromBytes(data), nil
}

// putManifest pushes a manifest's exact bytes under ref (a tag or its
// digest).
func (r *registry) putManifest(ctx context.Context, repo, ref, mediaType string, data []byte) error {
	resp, err := r.do(ctx, http.MethodPut, r.repoURL(repo, "manifests/"+ref), http.Header{"Content-Type": {mediaType}}, data)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := checkStatus(resp, http.StatusCreated, http.StatusOK); err != nil {
		return err
	}
	if d := resp.Header.Get("Docker-Content-Digest"); d != "" && d != digestio.FromBytes(data) {
		return fmt.Errorf("%w: %s:%s stored as %s, not %s", ErrRegistry, repo, ref, d, digestio.FromBytes(data))
	}
	return nil
}

// catalog lists every repository, following pagination.
func (r *registry) catalog(ctx context.Context) ([]string, error) {
	var all []string
	next := r.url("/v2/_catalog?n=1000")
	for next != "" {
		var page struct {
			Repositories []string `json:"repositories"`
		}
		err := r.readJSON(ctx, next, &page, func(resp *http.Response) error {
			next = ""
			if link := resp.Header.Get("Link"); link != "" {
				if u, ok := parseLink(link); ok {
					nu, err := resp.Request.URL.Parse(u)
					if err != nil {
						return err
					}
					next = nu.String()
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		all = append(all, page.Repositories...)
	}
	return all, nil
}

// readJSON GETs a small JSON document; a connection lost in the middle of
// the body is retried like any other passing failure.
func (r *registry) readJSON(ctx context.Context, u string, v any, onResp func(*http.Response) error) error {
	var lastErr error
	for attempt := 1; attempt <= r.policy.Attempts; attempt++ {
		lastErr = func() error {
			resp, err := r.do(ctx, http.MethodGet, u, nil, nil)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if err := checkStatus(resp, http.StatusOK); err != nil {
				return err
			}
			data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
			if err != nil {
				return err
			}
			if err := json.Unmarshal(data, v); err != nil {
				return fmt.Errorf("%w: GET %s: %v", ErrRegistry, u, err)
			}
			if onResp != nil {
				return onResp(resp)
			}
			return nil
		}()
		if lastErr == nil || !retryableErr(lastErr) || attempt == r.policy.Attempts {
			return lastErr
		}
		if err := sleepCtx(ctx, r.policy.wait(attempt, 0)); err != nil {
			return err
		}
	}
	return lastErr
}

// parseLink reads the URL of a Link: <url>; rel="next" header.
func parseLink(h string) (string, bool) {
	for _, part := range strings.Split(h, ",") {
		part = strings.TrimSpace(part)
		if !strings.Contains(part, `rel="next"`) {
			continue
		}
		if i, j := strings.Index(part, "<"), strings.Index(part, ">"); i >= 0 && j > i {
			return part[i+1 : j], true
		}
	}
	return "", false
}
