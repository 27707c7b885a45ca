package verify

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"io"
	"os"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"

	"github.com/ferrytool/ferry/internal/digestio"
)

// maxPackSignatureSize caps a .sig.bin read into memory. An RSA-16384
// signature is 2 KiB; anything much larger is not a signature.
const maxPackSignatureSize = 64 << 10

// VerifyPackSignature checks a Spectro Cloud pack signature: sig is the raw
// content of `<name>.sig.bin`, a signature over the SHA-256 of content (the
// `<name>.zst` bytes) made with the vendor's RSA (PKCS#1 v1.5) or ECDSA key,
// the form `openssl dgst -sha256 -sign` writes. content is hashed as it
// streams and never held whole. An empty sig gives ErrNoSignature, a
// mismatch ErrBadSignature.
func VerifyPackSignature(ctx context.Context, pub crypto.PublicKey, content io.Reader, sig []byte) error {
	// Ed25519 signs the message itself rather than a digest, so it cannot be
	// checked while streaming, and the vendor does not use it.
	switch pub.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey:
	default:
		return fmt.Errorf("%w for pack signatures: %T (want RSA or ECDSA)", ErrUnsupportedKey, pub)
	}
	if len(sig) == 0 {
		return ErrNoSignature
	}
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnsupportedKey, err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, digestio.ContextReader(ctx, content)); err != nil {
		return fmt.Errorf("hash pack: %w", err)
	}
	err = v.VerifySignature(bytes.NewReader(sig), nil, options.WithDigest(h.Sum(nil)))
	if err != nil {
		return fmt.Errorf("%w with key %s: %w", ErrBadSignature, KeyID(pub), err)
	}
	return nil
}

// VerifyPackFile is VerifyPackSignature for files on disk: the vendor's PEM
// public key, the pack and its .sig.bin. Errors name the files involved.
func VerifyPackFile(ctx context.Context, pubKeyPath, zstPath, sigPath string) error {
	pub, err := LoadPublicKey(pubKeyPath)
	if err != nil {
		return fmt.Errorf("pack %s: %w", zstPath, err)
	}
	sig, err := readPackSignature(sigPath)
	if err != nil {
		return fmt.Errorf("pack %s: %w", zstPath, err)
	}
	f, err := os.Open(zstPath)
	if err != nil {
		return fmt.Errorf("pack: %w", err)
	}
	defer f.Close()
	if err := VerifyPackSignature(ctx, pub, f, sig); err != nil {
		return fmt.Errorf("pack %s (signature %s): %w", zstPath, sigPath, err)
	}
	return nil
}

func readPackSignature(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read signature: %w", err)
	}
	defer f.Close()
	sig, err := io.ReadAll(io.LimitReader(f, maxPackSignatureSize+1))
	if err != nil {
		return nil, fmt.Errorf("read signature %s: %w", path, err)
	}
	if len(sig) > maxPackSignatureSize {
		return nil, fmt.Errorf("signature %s: %w: larger than %d bytes", path, ErrBadSignature, maxPackSignatureSize)
	}
	if len(sig) == 0 {
		return nil, fmt.Errorf("signature %s: %w", path, ErrNoSignature)
	}
	return sig, nil
}
