package verify_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrytool/ferry/archive"
	"github.com/ferrytool/ferry/verify"
)

// The archive writer and reader take these interfaces; a change on either
// side must break the build here rather than at the lead's merge.
var (
	_ archive.Signer   = (*verify.Signer)(nil)
	_ archive.Verifier = (*verify.Verifier)(nil)
)

var testBOM = []byte(`{"schemaVersion":1,"artifacts":[{"name":"nginx","digest":"sha256:00"}]}` + "\n")

// keyPairFiles writes a fresh ECDSA key pair to dir and returns its paths.
func keyPairFiles(t *testing.T, dir string) (privPath, pubPath string) {
	t.Helper()
	privPath = filepath.Join(dir, "ferry.key")
	pubPath = filepath.Join(dir, "ferry.pub")
	if err := verify.WriteKeyPair(privPath, pubPath, nil); err != nil {
		t.Fatal(err)
	}
	return privPath, pubPath
}

func fileSignerVerifier(t *testing.T) (*verify.Signer, *verify.Verifier, string, string) {
	t.Helper()
	privPath, pubPath := keyPairFiles(t, t.TempDir())
	s, err := verify.SignerFromFile(privPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.VerifierFromFile(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	return s, v, privPath, pubPath
}

func TestSignVerifyRoundTrip(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]crypto.Signer{"ecdsa": ecKey, "rsa": rsaKey, "ed25519": edKey}
	ctx := context.Background()
	for name, key := range keys {
		t.Run(name, func(t *testing.T) {
			s, err := verify.NewSigner(key)
			if err != nil {
				t.Fatal(err)
			}
			v, err := verify.NewVerifier(key.Public())
			if err != nil {
				t.Fatal(err)
			}
			if s.KeyID() != v.KeyID() || s.KeyID() != verify.KeyID(key.Public()) {
				t.Errorf("key ids differ: signer %s, verifier %s", s.KeyID(), v.KeyID())
			}
			sig, err := s.SignBOM(ctx, testBOM)
			if err != nil {
				t.Fatal(err)
			}
			if err := v.VerifyBOM(ctx, testBOM, sig); err != nil {
				t.Fatalf("own signature rejected: %v", err)
			}
			tampered := append([]byte{}, testBOM...)
			tampered[10] ^= 1
			if err := v.VerifyBOM(ctx, tampered, sig); !errors.Is(err, verify.ErrBadSignature) {
				t.Errorf("tampered BOM: err = %v, want ErrBadSignature", err)
			}
		})
	}
}

// The file must be exactly what cosign sign-blob writes: standard base64 of
// an ASN.1 DER ECDSA signature, no newline.
func TestSignatureFileForm(t *testing.T) {
	s, _, _, _ := fileSignerVerifier(t)
	sig, err := s.SignBOM(context.Background(), testBOM)
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(string(sig), " \n\r\t") {
		t.Errorf("signature file contains whitespace: %q", sig)
	}
	raw, err := base64.StdEncoding.DecodeString(string(sig))
	if err != nil {
		t.Fatalf("signature file is not standard base64: %v", err)
	}
	var rs struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(raw, &rs)
	if err != nil || len(rest) != 0 {
		t.Fatalf("decoded signature is not a DER ECDSA-Sig-Value (rest %d bytes): %v", len(rest), err)
	}
}

func TestVerifyBOMTampered(t *testing.T) {
	s, v, _, _ := fileSignerVerifier(t)
	ctx := context.Background()
	sig, err := s.SignBOM(ctx, testBOM)
	if err != nil {
		t.Fatal(err)
	}
	for name, bom := range map[string][]byte{
		"flipped byte":     []byte(strings.Replace(string(testBOM), "nginx", "nginy", 1)),
		"trailing newline": append(append([]byte{}, testBOM...), '\n'),
		"truncated":        testBOM[:len(testBOM)-1],
		"empty":            nil,
	} {
		if err := v.VerifyBOM(ctx, bom, sig); !errors.Is(err, verify.ErrBadSignature) {
			t.Errorf("%s: err = %v, want ErrBadSignature", name, err)
		}
	}
}

func TestVerifyBOMOtherKey(t *testing.T) {
	s, _, _, _ := fileSignerVerifier(t)
	_, other, _, _ := fileSignerVerifier(t)
	sig, err := s.SignBOM(context.Background(), testBOM)
	if err != nil {
		t.Fatal(err)
	}
	err = other.VerifyBOM(context.Background(), testBOM, sig)
	if !errors.Is(err, verify.ErrBadSignature) {
		t.Fatalf("err = %v, want ErrBadSignature", err)
	}
	if !strings.Contains(err.Error(), other.KeyID()) {
		t.Errorf("error %q does not name the verifying key %s", err, other.KeyID())
	}
}

func TestVerifyBOMSignatureText(t *testing.T) {
	s, v, _, _ := fileSignerVerifier(t)
	ctx := context.Background()
	sig, err := s.SignBOM(ctx, testBOM)
	if err != nil {
		t.Fatal(err)
	}

	for name, text := range map[string][]byte{
		"nil":        nil,
		"empty":      {},
		"whitespace": []byte(" \n\t\r\n"),
	} {
		if err := v.VerifyBOM(ctx, testBOM, text); !errors.Is(err, verify.ErrNoSignature) {
			t.Errorf("%s: err = %v, want ErrNoSignature", name, err)
		}
	}

	wrapped := string(sig[:20]) + "\n" + string(sig[20:40]) + "\r\n" + string(sig[40:])
	for name, text := range map[string][]byte{
		"trailing newline": append(append([]byte{}, sig...), '\n'),
		"surrounding":      []byte("  " + string(sig) + " \r\n"),
		"wrapped lines":    []byte(wrapped),
	} {
		if err := v.VerifyBOM(ctx, testBOM, text); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}

	junk := base64.StdEncoding.EncodeToString([]byte("not a signature at all"))
	for name, text := range map[string][]byte{
		"not base64":   []byte("%%% not base64 %%%"),
		"base64 junk":  []byte(junk),
		"raw DER":      mustDecode(t, sig),
		"one char off": flipBase64(sig),
	} {
		if err := v.VerifyBOM(ctx, testBOM, text); !errors.Is(err, verify.ErrBadSignature) {
			t.Errorf("%s: err = %v, want ErrBadSignature", name, err)
		}
	}
}

func mustDecode(t *testing.T, sig []byte) []byte {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(string(sig))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// flipBase64 changes one character in the middle of the signature, keeping
// it valid base64, so only the cryptography can notice.
func flipBase64(sig []byte) []byte {
	out := append([]byte{}, sig...)
	i := len(out) / 2
	if out[i] == 'A' {
		out[i] = 'B'
	} else {
		out[i] = 'A'
	}
	return out
}

func TestSignVerifyCanceled(t *testing.T) {
	s, v, _, _ := fileSignerVerifier(t)
	sig, err := s.SignBOM(context.Background(), testBOM)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.SignBOM(ctx, testBOM); !errors.Is(err, context.Canceled) {
		t.Errorf("SignBOM: err = %v, want context.Canceled", err)
	}
	if err := v.VerifyBOM(ctx, testBOM, sig); !errors.Is(err, context.Canceled) {
		t.Errorf("VerifyBOM: err = %v, want context.Canceled", err)
	}
}

func TestSignerFromEncryptedFile(t *testing.T) {
	dir := t.TempDir()
	privPath := filepath.Join(dir, "ferry.key")
	pubPath := filepath.Join(dir, "ferry.pub")
	pass := []byte("pw")
	if err := verify.WriteKeyPair(privPath, pubPath, pass); err != nil {
		t.Fatal(err)
	}
	if _, err := verify.SignerFromFile(privPath, nil); !errors.Is(err, verify.ErrPassphraseRequired) {
		t.Errorf("err = %v, want ErrPassphraseRequired", err)
	}
	s, err := verify.SignerFromFile(privPath, pass)
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.VerifierFromFile(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := s.SignBOM(context.Background(), testBOM)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.VerifyBOM(context.Background(), testBOM, sig); err != nil {
		t.Fatal(err)
	}
}

// An auditor with only openssl must accept what ferry signs, which is the
// same check `cosign verify-blob --key` makes offline.
func TestOpenSSLVerifiesSignBOM(t *testing.T) {
	s, _, _, pubPath := fileSignerVerifier(t)
	dir := t.TempDir()
	bomPath := filepath.Join(dir, "manifest.json")
	sigPath := filepath.Join(dir, "manifest.json.sig.der")
	mustWriteFile(t, bomPath, testBOM)
	sig, err := s.SignBOM(context.Background(), testBOM)
	if err != nil {
		t.Fatal(err)
	}
	mustWriteFile(t, sigPath, mustDecode(t, sig))

	out := openssl(t, "dgst", "-sha256", "-verify", pubPath, "-signature", sigPath, bomPath)
	if !strings.Contains(string(out), "Verified OK") {
		t.Errorf("openssl did not verify the signature: %s", out)
	}

	// The same check must be able to fail, or the success above proves nothing.
	mustWriteFile(t, bomPath, append(append([]byte{}, testBOM...), ' '))
	if out, err := opensslRun(t, "dgst", "-sha256", "-verify", pubPath, "-signature", sigPath, bomPath); err == nil {
		t.Errorf("openssl accepted the signature over a tampered BOM: %s", out)
	}
}

func TestVerifyBOMAcceptsOpenSSLSignature(t *testing.T) {
	_, v, privPath, _ := fileSignerVerifier(t)
	dir := t.TempDir()
	bomPath := filepath.Join(dir, "manifest.json")
	sigPath := filepath.Join(dir, "sig.der")
	mustWriteFile(t, bomPath, testBOM)
	openssl(t, "dgst", "-sha256", "-sign", privPath, "-out", sigPath, bomPath)
	raw, err := os.ReadFile(sigPath)
	if err != nil {
		t.Fatal(err)
	}
	sig := []byte(base64.StdEncoding.EncodeToString(raw) + "\n")
	if err := v.VerifyBOM(context.Background(), testBOM, sig); err != nil {
		t.Errorf("signature made by openssl rejected: %v", err)
	}
}
