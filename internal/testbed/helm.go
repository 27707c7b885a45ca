package testbed

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
)

const (
	helmBinary = "helm"
	// helmTimeout bounds one helm command; packaging or pulling a small
	// chart takes well under a second.
	helmTimeout = 2 * time.Minute
)

// Helm runs the real helm CLI from [Binary] the way an operator would. Its
// configuration, cache and data (registry credentials, repositories) live in
// a temporary directory, so nothing from the machine leaks in.
type Helm struct {
	bin  string
	home string
}

// NewHelm returns a helm runner with a home of its own.
func NewHelm(t testing.TB) *Helm {
	t.Helper()
	return &Helm{bin: Binary(t, helmBinary), home: t.TempDir()}
}

// Run runs helm with args and returns its combined output. A failure fails
// the test with that output.
func (h *Helm) Run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := h.RunErr(t, args...)
	if err != nil {
		t.Fatalf("testbed: helm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// RunErr is Run for commands a test expects may fail.
func (h *Helm) RunErr(t testing.TB, args ...string) (string, error) {
	t.Helper()
	return h.run(t, "", args...)
}

// Login returns the flags that let helm commands reach reg: --plain-http,
// or --ca-file with its CA. Credentials, when reg has them, go into the
// runner's registry configuration through `helm registry login
// --password-stdin`, so no password is on a command line.
func (h *Helm) Login(t testing.TB, reg *Registry) []string {
	t.Helper()
	if reg.CA == nil {
		if reg.Username != "" {
			t.Fatalf("testbed: helm login to a plain-HTTP registry with credentials is not supported")
		}
		return []string{"--plain-http"}
	}
	dir := filepath.Join(h.home, "ca", strings.ReplaceAll(reg.Host, ":", "_"))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatalf("testbed: %v", err)
	}
	tlsArgs := []string{"--ca-file", reg.CA.WriteCert(t, dir)}
	if reg.Username != "" {
		args := append([]string{"registry", "login", reg.Host, "--username", reg.Username, "--password-stdin"}, tlsArgs...)
		if out, err := h.run(t, reg.Password, args...); err != nil {
			t.Fatalf("testbed: helm registry login %s: %v\n%s", reg.Host, err, out)
		}
	}
	return tlsArgs
}

func (h *Helm) run(t testing.TB, stdin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), helmTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.bin, args...)
	cmd.Env = h.env()
	cmd.Dir = h.home
	cmd.Stdin = strings.NewReader(stdin)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// env is the test's environment with helm's state redirected into the
// runner's directory and without proxies (every server is on loopback).
func (h *Helm) env() []string {
	return isolatedEnv(func(k string) bool { return strings.HasPrefix(k, "HELM_") || strings.HasPrefix(k, "XDG_") },
		"HOME="+h.home,
		"HELM_CONFIG_HOME="+filepath.Join(h.home, "config"),
		"HELM_CACHE_HOME="+filepath.Join(h.home, "cache"),
		"HELM_DATA_HOME="+filepath.Join(h.home, "data"),
		"DOCKER_CONFIG="+filepath.Join(h.home, "docker"),
	)
}

// PGPKey is an OpenPGP key pair for signing charts, in the keyring files
// `helm package --sign` and `helm verify` read.
type PGPKey struct {
	// Name is the key's identity name, what `helm package --key` selects.
	Name string
	// Fingerprint is the primary key's fingerprint in upper-case hex, as
	// helm prints it.
	Fingerprint string
	// SecretKeyring holds the unencrypted private key; PublicKeyring only
	// the public key, as `gpg --export` writes it.
	SecretKeyring, PublicKeyring string
}

// NewPGPKey generates a fresh key named name and writes its keyrings into
// dir as <file>-secring.gpg and <file>-pubring.gpg.
func NewPGPKey(t testing.TB, dir, name, file string) PGPKey {
	t.Helper()
	e, err := openpgp.NewEntity(name, "ferry test", strings.ReplaceAll(strings.ToLower(name), " ", ".")+"@example.test", nil)
	if err != nil {
		t.Fatalf("testbed: generating an OpenPGP key: %v", err)
	}
	k := PGPKey{
		Name:          name,
		Fingerprint:   fmt.Sprintf("%X", e.PrimaryKey.Fingerprint),
		SecretKeyring: filepath.Join(dir, file+"-secring.gpg"),
		PublicKeyring: filepath.Join(dir, file+"-pubring.gpg"),
	}
	var sec, pub strings.Builder
	if err := e.SerializePrivate(&sec, nil); err != nil {
		t.Fatalf("testbed: writing the OpenPGP secret key: %v", err)
	}
	if err := e.Serialize(&pub); err != nil {
		t.Fatalf("testbed: writing the OpenPGP public key: %v", err)
	}
	if err := os.WriteFile(k.SecretKeyring, []byte(sec.String()), 0o600); err != nil {
		t.Fatalf("testbed: %v", err)
	}
	if err := os.WriteFile(k.PublicKeyring, []byte(pub.String()), 0o644); err != nil {
		t.Fatalf("testbed: %v", err)
	}
	return k
}
