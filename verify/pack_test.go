package verify_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ferrytool/ferry/verify"
)

// vendorKey makes a key pair with openssl, as the vendor would, and returns
// the private and public PEM paths.
func vendorKey(t *testing.T, dir, kind string) (privPath, pubPath string) {
	t.Helper()
	privPath = filepath.Join(dir, kind+".key.pem")
	pubPath = filepath.Join(dir, kind+".pub.pem")
	switch kind {
	case "rsa":
		openssl(t, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", privPath)
	case "ec":
		openssl(t, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", privPath)
	default:
		t.Fatalf("unknown key kind %q", kind)
	}
	openssl(t, "pkey", "-in", privPath, "-pubout", "-out", pubPath)
	return privPath, pubPath
}

// signedPack writes a random foo.zst to dir and signs it with openssl the
// way Spectro Cloud does, returning the pack and signature paths.
func signedPack(t *testing.T, dir, privPath string, size int) (zstPath, sigPath string) {
	t.Helper()
	zstPath = filepath.Join(dir, "foo.zst")
	sigPath = filepath.Join(dir, "foo.sig.bin")
	content := make([]byte, size)
	if _, err := rand.Read(content); err != nil {
		t.Fatal(err)
	}
	mustWriteFile(t, zstPath, content)
	openssl(t, "dgst", "-sha256", "-sign", privPath, "-out", sigPath, zstPath)
	return zstPath, sigPath
}

func opensslAccepts(t *testing.T, pubPath, sigPath, zstPath string) bool {
	t.Helper()
	out, err := opensslRun(t, "dgst", "-sha256", "-verify", pubPath, "-signature", sigPath, zstPath)
	if err == nil && !strings.Contains(string(out), "Verified OK") {
		t.Fatalf("openssl exited 0 without saying Verified OK: %s", out)
	}
	return err == nil
}

func TestVerifyPackFileAgreesWithOpenSSL(t *testing.T) {
	for _, kind := range []string{"rsa", "ec"} {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			privPath, pubPath := vendorKey(t, dir, kind)
			zstPath, sigPath := signedPack(t, dir, privPath, 1<<20+123)

			if !opensslAccepts(t, pubPath, sigPath, zstPath) {
				t.Fatal("openssl rejects its own pack signature")
			}
			if err := verify.VerifyPackFile(ctx, pubPath, zstPath, sigPath); err != nil {
				t.Fatalf("VerifyPackFile rejects a signature openssl accepts: %v", err)
			}

			// Tamper in place: one bit in the middle of the pack.
			data, err := os.ReadFile(zstPath)
			if err != nil {
				t.Fatal(err)
			}
			data[len(data)/2] ^= 0x01
			mustWriteFile(t, zstPath, data)

			if opensslAccepts(t, pubPath, sigPath, zstPath) {
				t.Fatal("openssl accepts a tampered pack")
			}
			err = verify.VerifyPackFile(ctx, pubPath, zstPath, sigPath)
			if !errors.Is(err, verify.ErrBadSignature) {
				t.Fatalf("tampered pack: err = %v, want ErrBadSignature", err)
			}
			if !strings.Contains(err.Error(), zstPath) {
				t.Errorf("error %q does not name the pack %s", err, zstPath)
			}
		})
	}
}

// Vendor keys sometimes come as PKCS#1 "RSA PUBLIC KEY" rather than PKIX.
func TestVerifyPackFilePKCS1PublicKey(t *testing.T) {
	dir := t.TempDir()
	privPath, pubPath := vendorKey(t, dir, "rsa")
	pkcs1Path := filepath.Join(dir, "rsa.pkcs1.pem")
	openssl(t, "rsa", "-pubin", "-in", pubPath, "-RSAPublicKey_out", "-out", pkcs1Path)
	data, err := os.ReadFile(pkcs1Path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "BEGIN RSA PUBLIC KEY") {
		t.Fatalf("openssl did not write a PKCS#1 public key:\n%s", data)
	}
	zstPath, sigPath := signedPack(t, dir, privPath, 4096)
	if err := verify.VerifyPackFile(context.Background(), pkcs1Path, zstPath, sigPath); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyPackFileWrongKey(t *testing.T) {
	dir := t.TempDir()
	rsaPriv, _ := vendorKey(t, dir, "rsa")
	_, ecPub := vendorKey(t, dir, "ec")
	otherDir := t.TempDir()
	_, otherECPub := vendorKey(t, otherDir, "ec")
	ecPriv := filepath.Join(dir, "ec.key.pem")

	for name, tc := range map[string]struct{ signWith, verifyWith string }{
		"rsa signature, ec key":   {rsaPriv, ecPub},
		"ec signature, other key": {ecPriv, otherECPub},
	} {
		t.Run(name, func(t *testing.T) {
			packDir := t.TempDir()
			zstPath, sigPath := signedPack(t, packDir, tc.signWith, 2048)
			err := verify.VerifyPackFile(context.Background(), tc.verifyWith, zstPath, sigPath)
			if !errors.Is(err, verify.ErrBadSignature) {
				t.Fatalf("err = %v, want ErrBadSignature", err)
			}
			pub, lerr := verify.LoadPublicKey(tc.verifyWith)
			if lerr != nil {
				t.Fatal(lerr)
			}
			if id := verify.KeyID(pub); !strings.Contains(err.Error(), id) {
				t.Errorf("error %q does not name key %s", err, id)
			}
		})
	}
}

func TestVerifyPackFileMissingParts(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	privPath, pubPath := vendorKey(t, dir, "ec")
	zstPath, sigPath := signedPack(t, dir, privPath, 100)

	missingSig := filepath.Join(dir, "nope.sig.bin")
	err := verify.VerifyPackFile(ctx, pubPath, zstPath, missingSig)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missingSig) {
		t.Errorf("missing signature: err = %v, want fs.ErrNotExist naming %s", err, missingSig)
	}

	emptySig := filepath.Join(dir, "empty.sig.bin")
	mustWriteFile(t, emptySig, nil)
	err = verify.VerifyPackFile(ctx, pubPath, zstPath, emptySig)
	if !errors.Is(err, verify.ErrNoSignature) || !strings.Contains(err.Error(), emptySig) {
		t.Errorf("empty signature: err = %v, want ErrNoSignature naming %s", err, emptySig)
	}

	missingPack := filepath.Join(dir, "nope.zst")
	err = verify.VerifyPackFile(ctx, pubPath, missingPack, sigPath)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missingPack) {
		t.Errorf("missing pack: err = %v, want fs.ErrNotExist naming %s", err, missingPack)
	}

	missingKey := filepath.Join(dir, "nope.pem")
	err = verify.VerifyPackFile(ctx, missingKey, zstPath, sigPath)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missingKey) {
		t.Errorf("missing key: err = %v, want fs.ErrNotExist naming %s", err, missingKey)
	}
}

func TestVerifyPackSignatureUnsupportedKey(t *testing.T) {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	err = verify.VerifyPackSignature(context.Background(), pub, strings.NewReader("x"), []byte("sig"))
	if !errors.Is(err, verify.ErrUnsupportedKey) {
		t.Errorf("err = %v, want ErrUnsupportedKey", err)
	}
}

// patternReader yields n deterministic bytes without holding them, so the
// test can tell whether the verifier buffers the content.
type patternReader struct{ n, off int64 }

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	if rem := p.n - p.off; int64(len(b)) > rem {
		b = b[:rem]
	}
	for i := range b {
		b[i] = byte((p.off + int64(i)) * 31 >> 3)
	}
	p.off += int64(len(b))
	return len(b), nil
}

func TestVerifyPackSignatureStreams(t *testing.T) {
	const size = 64 << 20
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, &patternReader{n: size}); err != nil {
		t.Fatal(err)
	}
	sig, err := ecdsa.SignASN1(rand.Reader, key, h.Sum(nil))
	if err != nil {
		t.Fatal(err)
	}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	err = verify.VerifyPackSignature(context.Background(), key.Public(), &patternReader{n: size}, sig)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > size/8 {
		t.Errorf("verifying a %d MiB pack allocated %d MiB: the content is being buffered", size>>20, alloc>>20)
	}
}

type failingReader struct{ err error }

func (f failingReader) Read([]byte) (int, error) { return 0, f.err }

func TestVerifyPackSignatureReadErrors(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("disk on fire")
	err = verify.VerifyPackSignature(context.Background(), key.Public(), failingReader{boom}, []byte("sig"))
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want the reader's error", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = verify.VerifyPackSignature(ctx, key.Public(), &patternReader{n: 1 << 20}, []byte("sig"))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}

	err = verify.VerifyPackSignature(context.Background(), key.Public(), strings.NewReader("x"), nil)
	if !errors.Is(err, verify.ErrNoSignature) {
		t.Errorf("err = %v, want ErrNoSignature", err)
	}
}
