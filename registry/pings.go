package registry

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// pingCache answers the version check, an anonymous GET /v2/, once per
// registry and scheme. go-containerregistry's transport sends that check for
// every repository it opens, to learn how the registry authenticates; the
// answer is the registry's, not the repository's, and a collect of many
// images from one registry would otherwise ask it once per image and
// client. Only answers the check understands (200 and 401 with their
// challenge) are kept; errors and other answers go through every time, but
// for one: a registry allowed plain HTTP is asked over HTTPS first, and
// once such a host has answered that in plain HTTP (not a timeout or a
// reset, which say nothing of the port) and answered a check over HTTP,
// later HTTPS checks of it fail at once with the same error instead of
// opening a connection each to fail again.
type pingCache struct {
	inner http.RoundTripper

	mu      sync.Mutex
	answers map[string]*pingEntry // scheme://host -> answer
	noTLS   map[string]error      // host -> how its last HTTPS check failed
}

// pingEntry is a registry's answer, asked once: callers that come while
// it is being asked wait for it.
type pingEntry struct {
	ready  chan struct{}
	answer *pingAnswer // nil: not kept, ask again
}

type pingAnswer struct {
	status     int
	proto      string
	protoMajor int
	protoMinor int
	header     http.Header
	body       []byte
}

// maxPingBody bounds what is kept of a version check's body.
const maxPingBody = 64 << 10

func newPingCache(inner http.RoundTripper) *pingCache {
	return &pingCache{inner: inner, answers: map[string]*pingEntry{}, noTLS: map[string]error{}}
}

func isPing(req *http.Request) bool {
	return req.Method == http.MethodGet && req.URL.Path == "/v2/" && req.URL.RawQuery == "" &&
		req.Header.Get("Authorization") == ""
}

func (p *pingCache) RoundTrip(req *http.Request) (*http.Response, error) {
	if !isPing(req) {
		return p.inner.RoundTrip(req)
	}
	key := req.URL.Scheme + "://" + req.URL.Host
	p.mu.Lock()
	if err := p.plainOnly(req); err != nil {
		p.mu.Unlock()
		return nil, err
	}
	e, ok := p.answers[key]
	if !ok {
		e = &pingEntry{ready: make(chan struct{})}
		p.answers[key] = e
	}
	p.mu.Unlock()
	if !ok {
		return p.ask(req, key, e)
	}
	select {
	case <-e.ready:
	case <-req.Context().Done():
		return nil, req.Context().Err()
	}
	if e.answer != nil {
		return e.answer.response(req), nil
	}
	// No answer to keep (an error, or one the check does not take from a
	// cache): each waiter asks for itself, at once, rather than one after
	// another behind a host that does not answer.
	return p.inner.RoundTrip(req)
}

// plainOnly returns how an HTTPS check of req's host failed, when the host
// has answered a plain HTTP check since; p.mu is held.
func (p *pingCache) plainOnly(req *http.Request) error {
	if req.URL.Scheme != "https" {
		return nil
	}
	err := p.noTLS[req.URL.Host]
	if err == nil {
		return nil
	}
	if e, ok := p.answers["http://"+req.URL.Host]; ok {
		select {
		case <-e.ready:
			if e.answer != nil {
				return err
			}
		default:
		}
	}
	return nil
}

// speaksPlainHTTP reports whether an HTTPS attempt failed because the
// server answered with something that is not TLS (net/http's client turns
// this into ErrSchemeMismatch): the port speaks plain HTTP, which does not
// change from one request to the next, unlike a timeout or a reset.
func speaksPlainHTTP(err error) bool {
	var rh tls.RecordHeaderError
	return err != nil && (errors.As(err, &rh) || errors.Is(err, http.ErrSchemeMismatch))
}

// ask sends the check and keeps a 200 or 401 answer in e.
func (p *pingCache) ask(req *http.Request, key string, e *pingEntry) (*http.Response, error) {
	defer close(e.ready)
	forget := func() {
		p.mu.Lock()
		delete(p.answers, key)
		p.mu.Unlock()
	}
	resp, err := p.inner.RoundTrip(req)
	if req.URL.Scheme == "https" && req.Context().Err() == nil {
		p.mu.Lock()
		if speaksPlainHTTP(err) {
			p.noTLS[req.URL.Host] = err
		} else {
			// A transient failure (timeout, reset, refused) says nothing
			// about the port; a later check tries HTTPS again.
			delete(p.noTLS, req.URL.Host)
		}
		p.mu.Unlock()
	}
	if err != nil || (resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusUnauthorized) {
		forget()
		return resp, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPingBody+1))
	resp.Body.Close()
	if err != nil {
		forget()
		return nil, err
	}
	a := &pingAnswer{status: resp.StatusCode, proto: resp.Proto, protoMajor: resp.ProtoMajor, protoMinor: resp.ProtoMinor,
		header: resp.Header.Clone(), body: body}
	if len(body) > maxPingBody {
		forget()
	} else {
		e.answer = a
	}
	return a.response(req), nil
}

func (a *pingAnswer) response(req *http.Request) *http.Response {
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", a.status, http.StatusText(a.status)),
		StatusCode:    a.status,
		Proto:         a.proto,
		ProtoMajor:    a.protoMajor,
		ProtoMinor:    a.protoMinor,
		Header:        a.header.Clone(),
		Body:          io.NopCloser(bytes.NewReader(a.body)),
		ContentLength: int64(len(a.body)),
		Request:       req,
	}
}
