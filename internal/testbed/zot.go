package testbed

import (
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"sync/atomic"
	"testing"
)

// Zot (v2.1.2 and later) refuses Docker schema 2 manifests and manifest
// lists unless its config enables `"http": {"compat": ["docker2s2"]}`. The
// Distribution registry accepts both, so the test bed puts this proxy in
// front of it to behave like a default Zot.
var manifestPath = regexp.MustCompile(`^/v2/.+/manifests/[^/]+$`)

// zotRefusedTypes are the media types a default Zot refuses on manifest PUT.
var zotRefusedTypes = map[string]bool{
	"application/vnd.docker.distribution.manifest.v2+json":      true,
	"application/vnd.docker.distribution.manifest.list.v2+json": true,
}

// ZotRules fronts a registry and refuses what a default Zot refuses.
type ZotRules struct {
	*Registry
	// Refused counts the manifest PUTs refused.
	Refused atomic.Int64
}

// StartZotRules starts a proxy in front of backend that refuses Docker
// manifest media types on PUT with Zot's error body, and passes everything
// else through. The returned registry has the backend's CA and credentials.
func StartZotRules(t testing.TB, backend *Registry) *ZotRules {
	t.Helper()
	target, err := url.Parse(backend.URL())
	if err != nil {
		t.Fatalf("testbed: %v", err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = backend.transport
	z := &ZotRules{}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && manifestPath.MatchString(r.URL.Path) && zotRefusedTypes[r.Header.Get("Content-Type")] {
			z.Refused.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]any{{
				"code":    "MANIFEST_INVALID",
				"message": "manifest invalid",
				"detail":  map[string]string{"mediaType": r.Header.Get("Content-Type"), "reason": "unsupported media type"},
			}}})
			return
		}
		proxy.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testbed: zot-rules listener: %v", err)
	}
	srv := &http.Server{Handler: handler}
	reg := &Registry{Host: ln.Addr().String(), CA: backend.CA, Username: backend.Username, Password: backend.Password, transport: backend.transport.Clone()}
	if backend.CA != nil {
		certPEM, keyPEM := backend.CA.Issue(t)
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatalf("testbed: zot-rules certificate: %v", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		go srv.ServeTLS(ln, "", "")
	} else {
		go srv.Serve(ln)
	}
	reg.closer = func() { srv.Close() }
	t.Cleanup(reg.Stop)
	z.Registry = reg
	return z
}
