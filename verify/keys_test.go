package verify_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrytool/ferry/verify"
)

// openssl runs the openssl binary and fails the test if it exits non-zero.
// The interop tests are the proof that ferry's files are what other tools
// expect, so a missing binary is a failure, not a skip.
func openssl(t *testing.T, args ...string) []byte {
	t.Helper()
	out, err := opensslRun(t, args...)
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// opensslRun runs openssl and returns its combined output and exit error,
// for the cases where a non-zero exit is the expected answer.
func opensslRun(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatalf("the openssl binary is required by the interop tests and was not found on PATH (install the openssl package): %v", err)
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("openssl %s could not run: %v", strings.Join(args, " "), err)
	}
	return out, err
}

func pemType(t *testing.T, data []byte) string {
	t.Helper()
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("not PEM:\n%s", data)
	}
	return block.Type
}

func mustWriteFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestGenerateKeyPlain(t *testing.T) {
	privPEM, pubPEM, err := verify.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := pemType(t, privPEM); got != "PRIVATE KEY" {
		t.Errorf("private key PEM type = %q, want PKCS#8 \"PRIVATE KEY\"", got)
	}
	if got := pemType(t, pubPEM); got != "PUBLIC KEY" {
		t.Errorf("public key PEM type = %q, want PKIX \"PUBLIC KEY\"", got)
	}
	priv, err := verify.ParsePrivateKey(privPEM, nil)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := verify.ParsePublicKey(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	ec, ok := priv.(*ecdsa.PrivateKey)
	if !ok {
		t.Fatalf("private key is %T, want *ecdsa.PrivateKey", priv)
	}
	if ec.Curve != elliptic.P256() {
		t.Errorf("curve = %s, want P-256", ec.Curve.Params().Name)
	}
	if !ec.PublicKey.Equal(pub) {
		t.Error("public key PEM is not the public half of the private key")
	}

	other, _, err := verify.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(other, privPEM) {
		t.Error("two calls generated the same key")
	}
}

func TestWriteKeyPairModes(t *testing.T) {
	dir := t.TempDir()
	privPath := filepath.Join(dir, "ferry.key")
	pubPath := filepath.Join(dir, "ferry.pub")
	if err := verify.WriteKeyPair(privPath, pubPath, nil); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]fs.FileMode{privPath: 0o600, pubPath: 0o644} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s mode = %o, want %o", path, got, want)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want only the two keys (temporary files left behind?)", names)
	}
	priv, err := verify.LoadPrivateKey(privPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := verify.LoadPublicKey(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	if !priv.(*ecdsa.PrivateKey).PublicKey.Equal(pub) {
		t.Error("written public key does not belong to the written private key")
	}
}

func TestWriteKeyPairRefusesOverwrite(t *testing.T) {
	for _, existing := range []string{"ferry.key", "ferry.pub"} {
		t.Run(existing, func(t *testing.T) {
			dir := t.TempDir()
			privPath := filepath.Join(dir, "ferry.key")
			pubPath := filepath.Join(dir, "ferry.pub")
			clash := filepath.Join(dir, existing)
			old := []byte("precious\n")
			mustWriteFile(t, clash, old)

			err := verify.WriteKeyPair(privPath, pubPath, nil)
			if !errors.Is(err, verify.ErrExists) {
				t.Fatalf("err = %v, want ErrExists", err)
			}
			if !strings.Contains(err.Error(), clash) {
				t.Errorf("error %q does not name %s", err, clash)
			}
			got, err := os.ReadFile(clash)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, old) {
				t.Errorf("%s was overwritten", clash)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 {
				t.Errorf("directory holds %d entries, want only the existing file", len(entries))
			}
		})
	}

	t.Run("same path", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ferry.key")
		if err := verify.WriteKeyPair(path, path, nil); err == nil {
			t.Fatal("WriteKeyPair accepted the same path for both keys")
		}
	})
}

func TestEncryptedKey(t *testing.T) {
	dir := t.TempDir()
	privPath := filepath.Join(dir, "ferry.key")
	pubPath := filepath.Join(dir, "ferry.pub")
	pass := []byte("correct horse")
	if err := verify.WriteKeyPair(privPath, pubPath, pass); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(privPath)
	if err != nil {
		t.Fatal(err)
	}
	if got := pemType(t, data); got != "ENCRYPTED SIGSTORE PRIVATE KEY" {
		t.Errorf("encrypted key PEM type = %q, want cosign's \"ENCRYPTED SIGSTORE PRIVATE KEY\"", got)
	}

	_, err = verify.LoadPrivateKey(privPath, nil)
	if !errors.Is(err, verify.ErrPassphraseRequired) {
		t.Errorf("no passphrase: err = %v, want ErrPassphraseRequired", err)
	} else if !strings.Contains(err.Error(), privPath) {
		t.Errorf("error %q does not name %s", err, privPath)
	}

	_, err = verify.LoadPrivateKey(privPath, []byte("wrong horse"))
	if !errors.Is(err, verify.ErrBadPassphrase) {
		t.Errorf("wrong passphrase: err = %v, want ErrBadPassphrase", err)
	} else if !strings.Contains(err.Error(), privPath) {
		t.Errorf("error %q does not name %s", err, privPath)
	}

	priv, err := verify.LoadPrivateKey(privPath, pass)
	if err != nil {
		t.Fatalf("right passphrase: %v", err)
	}
	pub, err := verify.LoadPublicKey(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	if !priv.(*ecdsa.PrivateKey).PublicKey.Equal(pub) {
		t.Error("decrypted private key does not match the public key")
	}
}

// An operator may bring a key made by openssl, encrypted as standard PKCS#8.
func TestLoadOpenSSLEncryptedKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "enc.pem")
	openssl(t, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
		"-aes-256-cbc", "-pass", "pass:s3cret", "-out", path)

	if _, err := verify.LoadPrivateKey(path, nil); !errors.Is(err, verify.ErrPassphraseRequired) {
		t.Errorf("no passphrase: err = %v, want ErrPassphraseRequired", err)
	}
	if _, err := verify.LoadPrivateKey(path, []byte("nope")); !errors.Is(err, verify.ErrBadPassphrase) {
		t.Errorf("wrong passphrase: err = %v, want ErrBadPassphrase", err)
	}
	if _, err := verify.LoadPrivateKey(path, []byte("s3cret")); err != nil {
		t.Errorf("right passphrase: %v", err)
	}
}

func TestLoadKeyErrorsNameFile(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	garbage := filepath.Join(dir, "garbage.pem")
	mustWriteFile(t, garbage, []byte("this is not a key\n"))
	_, pubPEM, err := verify.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	pubOnly := filepath.Join(dir, "ferry.pub")
	mustWriteFile(t, pubOnly, pubPEM)

	cases := []struct {
		name string
		load func() error
		path string
		want error
	}{
		{"private missing", func() error { _, err := verify.LoadPrivateKey(missing, nil); return err }, missing, fs.ErrNotExist},
		{"public missing", func() error { _, err := verify.LoadPublicKey(missing); return err }, missing, fs.ErrNotExist},
		{"private garbage", func() error { _, err := verify.LoadPrivateKey(garbage, nil); return err }, garbage, verify.ErrMalformedKey},
		{"public garbage", func() error { _, err := verify.LoadPublicKey(garbage); return err }, garbage, verify.ErrMalformedKey},
		{"public key as private", func() error { _, err := verify.LoadPrivateKey(pubOnly, nil); return err }, pubOnly, verify.ErrMalformedKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.load()
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.path) {
				t.Errorf("error %q does not name %s", err, tc.path)
			}
		})
	}
}

func TestKeyIDMatchesOpenSSL(t *testing.T) {
	dir := t.TempDir()
	privPath := filepath.Join(dir, "ferry.key")
	pubPath := filepath.Join(dir, "ferry.pub")
	if err := verify.WriteKeyPair(privPath, pubPath, nil); err != nil {
		t.Fatal(err)
	}
	pub, err := verify.LoadPublicKey(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	der := openssl(t, "pkey", "-pubin", "-in", pubPath, "-outform", "DER")
	sum := sha256.Sum256(der)
	want := "sha256:" + hex.EncodeToString(sum[:])
	if got := verify.KeyID(pub); got != want {
		t.Errorf("KeyID = %s, want %s (SHA-256 of openssl's PKIX DER)", got, want)
	}

	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if verify.KeyID(other.Public()) == want {
		t.Error("two different keys have the same KeyID")
	}
}
