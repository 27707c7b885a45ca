package testbed

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"
)

// RegistryOptions configures [StartRegistry]. The zero value is a plain-HTTP
// registry without authentication, storing into a fresh temporary directory.
type RegistryOptions struct {
	// TLS serves HTTPS with a certificate issued by CA.
	TLS bool
	// CA issues the server certificate when TLS is set; nil means a new CA.
	// Setting it without TLS is a test bug and fails the test.
	CA *CA
	// Username and Password turn on htpasswd basic auth with that one user.
	// Both empty means anonymous access; only one set fails the test.
	Username, Password string
	// StorageDir is the registry's filesystem storage root; empty means a new
	// t.TempDir(). Passing the same directory to a second registry after
	// [Registry.Stop] simulates a restart that keeps its content.
	StorageDir string
}

// Registry is a running CNCF Distribution registry on loopback.
type Registry struct {
	// Host is "127.0.0.1:PORT", the registry part of references.
	Host string
	// CA is the authority that signed the server certificate; nil when the
	// registry speaks plain HTTP.
	CA *CA
	// Username and Password are the only valid credentials; empty when the
	// registry is anonymous.
	Username, Password string

	transport *http.Transport
	proc      *registryProcess
	// closer stops a registry that is not a process of its own (a proxy).
	closer func()
}

const (
	registryBinary       = "registry"
	registryStartTimeout = 30 * time.Second
	registryStartTries   = 5
)

// StartRegistry starts the real registry binary from [Binary] on a free
// loopback port and waits until /v2/ answers. The test's cleanup stops it.
func StartRegistry(t testing.TB, opts RegistryOptions) *Registry {
	t.Helper()
	if opts.CA != nil && !opts.TLS {
		t.Fatalf("testbed: RegistryOptions.CA is set but TLS is not")
	}
	if (opts.Username == "") != (opts.Password == "") {
		t.Fatalf("testbed: RegistryOptions needs both Username and Password, or neither")
	}
	bin := Binary(t, registryBinary)
	dir := t.TempDir()
	storage := opts.StorageDir
	if storage == "" {
		storage = t.TempDir()
	}

	r := &Registry{Username: opts.Username, Password: opts.Password}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // loopback servers must never be reached through a proxy from the environment
	cfg := registryConfig{storage: storage}
	if opts.TLS {
		r.CA = opts.CA
		if r.CA == nil {
			r.CA = NewCA(t)
		}
		certPEM, keyPEM := r.CA.Issue(t)
		cfg.cert = filepath.Join(dir, "server.crt")
		cfg.key = filepath.Join(dir, "server.key")
		writeRegistryFile(t, cfg.cert, certPEM, 0o644)
		writeRegistryFile(t, cfg.key, keyPEM, 0o600)
		tr.TLSClientConfig = &tls.Config{RootCAs: r.CA.Pool(), MinVersion: tls.VersionTLS12}
	}
	r.transport = tr
	if opts.Username != "" {
		// MinCost: the registry checks the hash on every request, and the
		// default cost would add tens of milliseconds to each one.
		hash, err := bcrypt.GenerateFromPassword([]byte(opts.Password), bcrypt.MinCost)
		if err != nil {
			t.Fatalf("testbed: hashing registry password: %v", err)
		}
		cfg.htpasswd = filepath.Join(dir, "htpasswd")
		writeRegistryFile(t, cfg.htpasswd, []byte(opts.Username+":"+string(hash)+"\n"), 0o600)
	}

	cfgPath := filepath.Join(dir, "config.yml")
	var lastErr error
	var lastLog string
	tries := 0
	for tries < registryStartTries {
		tries++
		cfg.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(pickRegistryPort(t)))
		writeRegistryFile(t, cfgPath, cfg.yaml(), 0o600)
		r.Host = cfg.addr
		proc, err := startRegistryProcess(t.Context(), bin, cfgPath, r.URL()+"/v2/", tr)
		if err == nil {
			r.proc = proc
			t.Cleanup(func() {
				if !proc.stopped.Load() && proc.hasExited() {
					t.Logf("testbed: registry %s exited before the test stopped it (%v); output:\n%s", r.Host, proc.waitErr, proc.log.String())
				}
				r.Stop()
			})
			return r
		}
		lastErr, lastLog = err, proc.log.String()
		// Another process can take the port between pickRegistryPort closing its
		// listener and the registry binding it; only that case is retried.
		if !strings.Contains(lastLog, "address already in use") {
			break
		}
	}
	t.Logf("testbed: registry output:\n%s", lastLog)
	t.Fatalf("testbed: starting registry %s with %s (try %d of %d): %v", bin, cfgPath, tries, registryStartTries, lastErr)
	return nil
}

// StartSourceRegistry starts a plain-HTTP, anonymous registry: the stand-in
// for the public registries ferry collects from on the connected side.
func StartSourceRegistry(t testing.TB) *Registry {
	t.Helper()
	return StartRegistry(t, RegistryOptions{})
}

// URL returns the registry's base URL, https:// or http://, without a path.
func (r *Registry) URL() string {
	if r.CA != nil {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

// HTTPClient returns a client that trusts the registry's CA and sends no
// credentials. It has no timeout; bound requests with a context.
func (r *Registry) HTTPClient() *http.Client {
	return &http.Client{Transport: r.transport}
}

// Options returns go-containerregistry options that reach this registry: a
// transport trusting its CA and, when auth is on, its basic credentials.
func (r *Registry) Options() []remote.Option {
	opts := []remote.Option{remote.WithTransport(r.transport)}
	if r.Username != "" {
		opts = append(opts, remote.WithAuth(&authn.Basic{Username: r.Username, Password: r.Password}))
	}
	return opts
}

// Ref parses "repo:tag" or "repo@digest" as a reference into this registry,
// marked insecure when the registry speaks plain HTTP.
func (r *Registry) Ref(t testing.TB, repoAndTag string) name.Reference {
	t.Helper()
	var opts []name.Option
	if r.CA == nil {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(r.Host+"/"+repoAndTag, opts...)
	if err != nil {
		t.Fatalf("testbed: reference %q in registry %s: %v", repoAndTag, r.Host, err)
	}
	return ref
}

// Stop kills the registry and waits for it to exit, to simulate a registry
// going down mid-test. It is safe to call more than once and from any goroutine.
func (r *Registry) Stop() {
	if r.proc != nil {
		r.proc.stop()
	}
	if r.closer != nil {
		r.closer()
	}
	r.transport.CloseIdleConnections()
}

// registryConfig is the part of the registry's configuration the test bed sets.
type registryConfig struct {
	addr, storage, cert, key, htpasswd string
}

// yaml renders the configuration. Every value is a path or address quoted
// with strconv.Quote, which YAML reads as the same double-quoted string.
func (c registryConfig) yaml() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "version: 0.1\n")
	fmt.Fprintf(&b, "log:\n  level: error\n  accesslog:\n    disabled: true\n")
	fmt.Fprintf(&b, "storage:\n  filesystem:\n    rootdirectory: %s\n", strconv.Quote(c.storage))
	fmt.Fprintf(&b, "  delete:\n    enabled: true\n")
	// No http.debug section: the debug and metrics server stays off.
	fmt.Fprintf(&b, "http:\n  addr: %s\n", strconv.Quote(c.addr))
	if c.cert != "" {
		fmt.Fprintf(&b, "  tls:\n    certificate: %s\n    key: %s\n", strconv.Quote(c.cert), strconv.Quote(c.key))
	}
	if c.htpasswd != "" {
		fmt.Fprintf(&b, "auth:\n  htpasswd:\n    realm: ferry-testbed\n    path: %s\n", strconv.Quote(c.htpasswd))
	}
	return b.Bytes()
}

// registryProcess is one run of the registry binary.
type registryProcess struct {
	cmd     *exec.Cmd
	log     *registryLog
	exited  chan struct{} // closed once cmd.Wait returns
	waitErr error         // set before exited is closed
	once    sync.Once
	stopped atomic.Bool // Stop was called, so an exit is expected
}

func startRegistryProcess(ctx context.Context, bin, cfgPath, probeURL string, tr http.RoundTripper) (*registryProcess, error) {
	p := &registryProcess{log: &registryLog{}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, "serve", cfgPath)
	p.cmd.Env = registryEnv()
	p.cmd.Stdout = p.log
	p.cmd.Stderr = p.log
	if err := p.cmd.Start(); err != nil {
		close(p.exited)
		return p, fmt.Errorf("running registry: %w", err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	if err := p.waitReady(ctx, probeURL, tr); err != nil {
		p.stop()
		return p, err
	}
	return p, nil
}

// waitReady polls probeURL until the registry answers 200 or 401, the process
// exits, or the start timeout passes.
func (p *registryProcess) waitReady(ctx context.Context, probeURL string, tr http.RoundTripper) error {
	ctx, cancel := context.WithTimeout(ctx, registryStartTimeout)
	defer cancel()
	client := &http.Client{Transport: tr, Timeout: 2 * time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, probeURL, nil)
		if err != nil {
			return fmt.Errorf("probing %s: %w", probeURL, err)
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
			err = fmt.Errorf("GET %s: status %s", probeURL, resp.Status)
		}
		lastErr = err
		select {
		case <-p.exited:
			return fmt.Errorf("registry exited before answering %s: %v", probeURL, p.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("registry did not answer %s within %s: %w", probeURL, registryStartTimeout, errors.Join(ctx.Err(), lastErr))
		case <-tick.C:
		}
	}
}

func (p *registryProcess) hasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

func (p *registryProcess) stop() {
	p.stopped.Store(true)
	p.once.Do(func() {
		if p.cmd.Process != nil {
			_ = p.cmd.Process.Kill() // fails only when it already exited
		}
		<-p.exited
	})
}

// registryEnv is the test's environment without variables that would change
// the registry's configuration behind the config file's back.
func registryEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "REGISTRY_") || strings.HasPrefix(kv, "OTEL_") {
			continue
		}
		env = append(env, kv)
	}
	// The registry exports traces over OTLP to localhost by default and logs
	// every failed export.
	return append(env, "OTEL_TRACES_EXPORTER=none")
}

// registryLog collects the registry's output; the process writes it from
// exec's copying goroutines while the test may read it.
type registryLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *registryLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *registryLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// pickRegistryPort asks the kernel for a free loopback port and releases it for the
// registry to bind; StartRegistry retries when another process wins the race.
func pickRegistryPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testbed: finding a free port: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatalf("testbed: releasing port %d: %v", port, err)
	}
	return port
}

func writeRegistryFile(t testing.TB, path string, data []byte, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, perm); err != nil {
		t.Fatalf("testbed: %v", err)
	}
}
