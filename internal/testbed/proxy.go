package testbed

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// ProxyOptions configures [StartProxy]. The zero value forwards everything
// untouched, as fast as it comes, and only counts.
type ProxyOptions struct {
	// Err500, Err429 and Reset are the shares (0 to 1) of requests answered
	// 500 Internal Server Error, answered 429 Too Many Requests with a
	// Retry-After header, or cut off with a TCP reset in the middle of a
	// body: halfway through a request body (the first half reaches the
	// registry, as a real network drop would leave it) or a response body.
	Err500, Err429, Reset float64
	// RetryAfter is the wait a 429 asks for, in whole seconds; zero means
	// one second.
	RetryAfter time.Duration
	// MaxFaultsInARow caps faults on one method and path in a row, so that a
	// client with a bounded number of retries always gets through; zero
	// means 2.
	MaxFaultsInARow int
	// Deadline cuts off, with a TCP reset, any request whose body is still
	// coming in when it has been running this long, as a registry's read
	// timeout or a load balancer in front of it does; what arrived before
	// reaches the registry. Zero means no deadline.
	Deadline time.Duration
	// BytesPerSecond throttles request bodies, all connections together;
	// zero means no limit.
	BytesPerSecond int64
	// Seed makes the fault pattern repeatable; zero means 1.
	Seed uint64
	// Only, when set, limits faults to the requests it accepts.
	Only func(*http.Request) bool
	// Respond, when set, sees each answer the registry gives and may change
	// its headers and status code (it returns the code to send), to play a
	// registry that answers wrong: one still writing a dropped upload
	// reports a shorter Range than it will hold, say.
	Respond func(r *http.Request, code int, h http.Header) int
}

// Proxy is a reverse proxy in front of a [Registry] that injects faults and
// counts bytes. It speaks the registry's protocol (HTTPS with a certificate
// from the registry's CA, or plain HTTP) and passes the client's Host on,
// so the registry's Location headers point back at the proxy.
type Proxy struct {
	// Host is "127.0.0.1:PORT".
	Host string

	opts     ProxyOptions
	target   *Registry
	srv      *http.Server
	upstream *http.Transport

	reqBytes, respBytes, requests atomic.Int64

	mu         sync.Mutex
	rng        *rand.Rand
	faults     map[string]int
	inARow     map[string]int
	notBefore  map[string]time.Time
	violations []string
	throttleAt time.Time
}

// StartProxy starts a proxy in front of target; the test's cleanup stops it.
func StartProxy(t testing.TB, target *Registry, opts ProxyOptions) *Proxy {
	t.Helper()
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = time.Second
	}
	if opts.MaxFaultsInARow <= 0 {
		opts.MaxFaultsInARow = 2
	}
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testbed: proxy listen: %v", err)
	}
	p := &Proxy{
		Host: l.Addr().String(), opts: opts, target: target,
		upstream:  target.transport.Clone(),
		rng:       rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
		faults:    map[string]int{},
		inARow:    map[string]int{},
		notBefore: map[string]time.Time{},
	}
	// HTTP/1.1 only: a reset in the middle of a body needs the raw
	// connection, which HTTP/2 does not hand out.
	p.srv = &http.Server{Handler: p, TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){}, ErrorLog: nil}
	if target.CA != nil {
		certPEM, keyPEM := target.CA.Issue(t)
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatalf("testbed: proxy certificate: %v", err)
		}
		p.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		l = tls.NewListener(l, p.srv.TLSConfig)
	}
	go p.srv.Serve(l)
	t.Cleanup(p.Close)
	return p
}

// Close stops the proxy.
func (p *Proxy) Close() {
	p.srv.Close()
	p.upstream.CloseIdleConnections()
}

// URL is the proxy's base URL.
func (p *Proxy) URL() string {
	if p.target.CA != nil {
		return "https://" + p.Host
	}
	return "http://" + p.Host
}

// RequestBytes counts request body bytes received from clients, including
// bodies cut off by a fault.
func (p *Proxy) RequestBytes() int64 { return p.reqBytes.Load() }

// ResponseBytes counts response body bytes sent to clients.
func (p *Proxy) ResponseBytes() int64 { return p.respBytes.Load() }

// Requests counts requests received.
func (p *Proxy) Requests() int64 { return p.requests.Load() }

// Faults returns how many faults of each kind ("500", "429", "reset",
// "deadline") were injected.
func (p *Proxy) Faults() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for k, v := range p.faults {
		out[k] = v
	}
	return out
}

// RetryAfterViolations lists requests that came back before the
// Retry-After of the 429 they got had passed.
func (p *Proxy) RetryAfterViolations() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.violations...)
}

// ResetCounters zeroes the byte and request counters.
func (p *Proxy) ResetCounters() {
	p.reqBytes.Store(0)
	p.respBytes.Store(0)
	p.requests.Store(0)
}

// pick draws the fault for a request, or "".
func (p *Proxy) pick(r *http.Request) string {
	key := r.Method + " " + r.URL.Path
	p.mu.Lock()
	defer p.mu.Unlock()
	// A request already on its way when the 429 went out is no violation.
	const inFlight = 100 * time.Millisecond
	if nb, ok := p.notBefore[key]; ok && time.Now().After(nb.Add(inFlight-p.opts.RetryAfter)) {
		delete(p.notBefore, key)
		if time.Now().Before(nb) {
			p.violations = append(p.violations, fmt.Sprintf("%s came back %s before its Retry-After passed", key, time.Until(nb).Round(time.Millisecond)))
		}
	}
	if p.opts.Only != nil && !p.opts.Only(r) {
		return ""
	}
	if p.inARow[key] >= p.opts.MaxFaultsInARow {
		p.inARow[key] = 0
		return ""
	}
	x := p.rng.Float64()
	fault := ""
	switch {
	case x < p.opts.Err500:
		fault = "500"
	case x < p.opts.Err500+p.opts.Err429:
		fault = "429"
		p.notBefore[key] = time.Now().Add(p.opts.RetryAfter)
	case x < p.opts.Err500+p.opts.Err429+p.opts.Reset:
		if r.ContentLength > 1 || r.Method == http.MethodGet {
			fault = "reset"
		}
	}
	if fault == "" {
		p.inARow[key] = 0
		return ""
	}
	p.inARow[key]++
	p.faults[fault]++
	return fault
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	fault := p.pick(r)
	switch fault {
	case "500":
		io.Copy(io.Discard, p.body(r.Body))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, `{"errors":[{"code":"UNKNOWN","message":"injected by the test proxy"}]}`)
		return
	case "429":
		io.Copy(io.Discard, p.body(r.Body))
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", strconv.Itoa(int(p.opts.RetryAfter/time.Second)))
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, `{"errors":[{"code":"TOOMANYREQUESTS","message":"injected by the test proxy"}]}`)
		return
	}
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.URL.Scheme = "http"
	if p.target.CA != nil {
		out.URL.Scheme = "https"
	}
	out.URL.Host = p.target.Host
	out.Host = r.Host
	var cut *cutReader
	var late *deadlineReader
	if r.Body != nil && r.ContentLength != 0 {
		body := p.body(r.Body)
		if fault == "reset" && r.ContentLength > 1 {
			cut = &cutReader{r: body, left: r.ContentLength / 2}
			body = cut
		}
		if p.opts.Deadline > 0 {
			late = &deadlineReader{r: body, at: time.Now().Add(p.opts.Deadline)}
			body = late
		}
		out.Body = io.NopCloser(body)
	}
	resp, err := p.upstream.RoundTrip(out)
	if late != nil && late.passed() {
		if resp != nil {
			resp.Body.Close()
		}
		p.mu.Lock()
		p.faults["deadline"]++
		p.mu.Unlock()
		reset(w)
		return
	}
	if cut != nil {
		// The fault was chosen: the client sees its connection reset half
		// way through the body even when the registry answered before
		// reading that far (a refusal, say), or the test would depend on
		// the registry's timing.
		if resp != nil {
			resp.Body.Close()
		}
		io.Copy(io.Discard, cut)
		reset(w)
		return
	}
	if err != nil {
		http.Error(w, "proxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	code := resp.StatusCode
	if p.opts.Respond != nil {
		code = p.opts.Respond(r, code, w.Header())
	}
	w.WriteHeader(code)
	if fault == "reset" && r.Method == http.MethodGet && resp.ContentLength != 0 {
		n := resp.ContentLength / 2
		if n <= 0 {
			n = 1
		}
		c, _ := io.CopyN(w, resp.Body, n)
		p.respBytes.Add(c)
		reset(w)
		return
	}
	c, _ := io.Copy(w, resp.Body)
	p.respBytes.Add(c)
}

// body counts and throttles a request body.
func (p *Proxy) body(r io.Reader) io.Reader {
	return &countingBody{r: r, p: p}
}

type countingBody struct {
	r io.Reader
	p *Proxy
}

func (c *countingBody) Read(b []byte) (int, error) {
	if c.p.opts.BytesPerSecond > 0 && len(b) > 32<<10 {
		b = b[:32<<10]
	}
	n, err := c.r.Read(b)
	if n > 0 {
		c.p.reqBytes.Add(int64(n))
		c.p.throttle(n)
	}
	return n, err
}

// throttle keeps all request bodies together under BytesPerSecond.
func (p *Proxy) throttle(n int) {
	if p.opts.BytesPerSecond <= 0 {
		return
	}
	p.mu.Lock()
	now := time.Now()
	if p.throttleAt.Before(now) {
		p.throttleAt = now
	}
	p.throttleAt = p.throttleAt.Add(time.Duration(int64(n) * int64(time.Second) / p.opts.BytesPerSecond))
	wait := p.throttleAt.Sub(now)
	p.mu.Unlock()
	time.Sleep(wait)
}

// cutReader ends a request body early, as a dropped connection does. The
// upstream transport may still be reading it when its round trip returns,
// while the proxy reads on to the cut, hence the lock.
type cutReader struct {
	mu   sync.Mutex
	r    io.Reader
	left int64
	hit  bool
}

var errCut = errors.New("testbed proxy: connection cut")

func (c *cutReader) Read(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.left <= 0 {
		c.hit = true
		return 0, errCut
	}
	if int64(len(b)) > c.left {
		b = b[:c.left]
	}
	n, err := c.r.Read(b)
	c.left -= int64(n)
	return n, err
}

// deadlineReader fails a request body read after a point in time.
type deadlineReader struct {
	mu  sync.Mutex
	r   io.Reader
	at  time.Time
	hit bool
}

func (d *deadlineReader) Read(b []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if time.Now().After(d.at) {
		d.hit = true
		return 0, errCut
	}
	return d.r.Read(b)
}

func (d *deadlineReader) passed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.hit
}

// reset drops the client connection with a TCP RST.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("testbed proxy: connection cannot be hijacked")
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	raw := conn
	if tc, ok := conn.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	if tcp, ok := raw.(*net.TCPConn); ok {
		tcp.SetLinger(0)
	}
	raw.Close()
}
