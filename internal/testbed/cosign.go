package testbed

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// emptyTrustedRoot lists no certificate authority, log or timestamp
// authority.
const emptyTrustedRoot = `{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1",` +
	`"tlogs":[],"certificateAuthorities":[],"ctlogs":[],"timestampAuthorities":[]}`

const (
	cosignBinary = "cosign"
	// cosignTimeout bounds one cosign command. Signing a digest offline takes
	// well under a second; the margin is for a loaded machine.
	cosignTimeout = 2 * time.Minute
)

// Cosign runs the real cosign CLI from [Binary] the way an operator would,
// with a key pair it generated itself. Its home, TUF cache and Docker
// configuration live in a temporary directory, so nothing from the machine
// leaks in and no command reaches a public Sigstore service.
type Cosign struct {
	// KeyPath is the private key (encrypted with an empty password, as
	// `cosign generate-key-pair` writes it when COSIGN_PASSWORD is empty).
	KeyPath string
	// PublicKeyPath is the public key, and PublicKeyPEM its bytes.
	PublicKeyPath string
	PublicKeyPEM  []byte
	// TrustedRootPath is an empty sigstore trusted root: verifying with it
	// trusts only the key given, and keeps cosign from fetching the public
	// Sigstore root over the network.
	TrustedRootPath string

	bin  string
	home string
	mu   sync.Mutex
	auth map[string]dockerAuth // registry host -> credentials in config.json
}

type dockerAuth struct {
	Auth string `json:"auth"`
}

// NewCosign generates a fresh ECDSA P-256 cosign key pair with the CLI and
// returns a runner using it.
func NewCosign(t testing.TB) *Cosign {
	t.Helper()
	c := &Cosign{bin: Binary(t, cosignBinary), home: t.TempDir(), auth: map[string]dockerAuth{}}
	for _, d := range []string{"docker", "keys"} {
		if err := os.MkdirAll(filepath.Join(c.home, d), 0o700); err != nil {
			t.Fatalf("testbed: %v", err)
		}
	}
	c.writeDockerConfig(t)
	prefix := filepath.Join(c.home, "keys", "cosign")
	c.Run(t, "generate-key-pair", "--output-key-prefix", prefix)
	c.KeyPath, c.PublicKeyPath = prefix+".key", prefix+".pub"
	pub, err := os.ReadFile(c.PublicKeyPath)
	if err != nil {
		t.Fatalf("testbed: cosign generate-key-pair wrote no public key: %v", err)
	}
	c.PublicKeyPEM = pub
	c.TrustedRootPath = filepath.Join(c.home, "keys", "trusted_root.json")
	if err := os.WriteFile(c.TrustedRootPath, []byte(emptyTrustedRoot), 0o644); err != nil {
		t.Fatalf("testbed: %v", err)
	}
	return c
}

// CosignKey is a key pair in cosign's format.
type CosignKey struct {
	// KeyPath is the encrypted private key (empty password), PublicKeyPath
	// the PKIX public key.
	KeyPath, PublicKeyPath string
}

// ImportKey converts priv (RSA, ECDSA or Ed25519) into a cosign key pair
// named name with `cosign import-key-pair`, for signing with keys of other
// algorithms than the generated one.
func (c *Cosign) ImportKey(t testing.TB, name string, priv crypto.PrivateKey) CosignKey {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatalf("testbed: encoding %T: %v", priv, err)
	}
	dir := filepath.Join(c.home, "keys")
	src := filepath.Join(dir, name+".pkcs8.pem")
	if err := os.WriteFile(src, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatalf("testbed: %v", err)
	}
	prefix := filepath.Join(dir, name)
	c.Run(t, "import-key-pair", "--key", src, "--output-key-prefix", prefix)
	return CosignKey{KeyPath: prefix + ".key", PublicKeyPath: prefix + ".pub"}
}

// Run runs cosign with args and returns its standard output. A failure fails
// the test with cosign's output.
func (c *Cosign) Run(t testing.TB, args ...string) []byte {
	t.Helper()
	out, errOut, err := c.run(t, args...)
	if err != nil {
		t.Fatalf("testbed: cosign %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// RunErr is Run for commands a test expects may fail: it returns the
// combined output and the error instead of failing the test.
func (c *Cosign) RunErr(t testing.TB, args ...string) ([]byte, error) {
	t.Helper()
	out, errOut, err := c.run(t, args...)
	return append(out, errOut...), err
}

// RegistryArgs returns the flags that let cosign reach reg: plain HTTP
// allowed, or its CA trusted; its credentials go into cosign's Docker
// configuration rather than onto the command line.
func (c *Cosign) RegistryArgs(t testing.TB, reg *Registry) []string {
	t.Helper()
	if reg.Username != "" {
		c.mu.Lock()
		c.auth[reg.Host] = dockerAuth{Auth: base64.StdEncoding.EncodeToString([]byte(reg.Username + ":" + reg.Password))}
		c.mu.Unlock()
		c.writeDockerConfig(t)
	}
	if reg.CA == nil {
		return []string{"--allow-http-registry"}
	}
	dir := filepath.Join(c.home, "ca", reg.Host)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatalf("testbed: %v", err)
	}
	return []string{"--registry-cacert", reg.CA.WriteCert(t, dir)}
}

// SignKeyArgs are the flags that sign offline with the runner's key: no
// transparency log, no prompt.
func (c *Cosign) SignKeyArgs() []string {
	return []string{"--key", c.KeyPath, "--tlog-upload=false", "--yes"}
}

// VerifyKeyArgs are the flags that verify offline against the runner's
// public key, as the air-gapped side must.
func (c *Cosign) VerifyKeyArgs() []string {
	return []string{"--key", c.PublicKeyPath, "--insecure-ignore-tlog=true", "--trusted-root", c.TrustedRootPath}
}

func (c *Cosign) run(t testing.TB, args ...string) (stdout, stderr []byte, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), cosignTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = c.env()
	cmd.Dir = c.home
	var outBuf, errBuf strings.Builder
	cmd.Stdout, cmd.Stderr = &outBuf, &errBuf
	err = cmd.Run()
	return []byte(outBuf.String()), []byte(errBuf.String()), err
}

// env is the test's environment with cosign's state redirected into the
// runner's directory and without proxies (every registry is on loopback).
func (c *Cosign) env() []string {
	return isolatedEnv(func(k string) bool {
		return strings.HasPrefix(k, "COSIGN_") || strings.HasPrefix(k, "SIGSTORE_") || strings.HasPrefix(k, "TUF_") ||
			k == "XDG_CONFIG_HOME" || k == "XDG_CACHE_HOME"
	},
		"HOME="+c.home,
		"DOCKER_CONFIG="+filepath.Join(c.home, "docker"),
		"TUF_ROOT="+filepath.Join(c.home, "sigstore"),
		"XDG_CONFIG_HOME="+filepath.Join(c.home, "config"),
		"XDG_CACHE_HOME="+filepath.Join(c.home, "cache"),
		"COSIGN_PASSWORD=",
		"COSIGN_YES=true",
	)
}

// isolatedEnv is this process's environment for a CLI under test, without
// proxies (every server is on loopback), HOME or DOCKER_CONFIG, nor the
// variables drop names, and with set added.
func isolatedEnv(drop func(key string) bool, set ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if drop(k) || strings.EqualFold(k, "http_proxy") || strings.EqualFold(k, "https_proxy") ||
			strings.EqualFold(k, "no_proxy") || k == "HOME" || k == "DOCKER_CONFIG" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, set...)
}

func (c *Cosign) writeDockerConfig(t testing.TB) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	data, err := json.Marshal(map[string]any{"auths": c.auth})
	if err != nil {
		t.Fatalf("testbed: %v", err)
	}
	if err := os.WriteFile(filepath.Join(c.home, "docker", "config.json"), data, 0o600); err != nil {
		t.Fatalf("testbed: writing cosign's Docker configuration: %v", err)
	}
}
