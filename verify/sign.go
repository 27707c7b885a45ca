package verify

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"unicode"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"
)

// Signer signs bills of materials with one private key. It satisfies
// archive.Signer.
//
// Its signatures are deterministic: the same bytes and key always give the
// same signature, so two people who collect the same content with the same
// key write byte-identical volumes. RSA PKCS#1 v1.5 and Ed25519 are
// deterministic by definition; ECDSA takes its nonce from RFC 6979.
type Signer struct {
	signer signature.Signer
	// ecdsa is set for an ECDSA key. sigstore signs ECDSA with a random
	// nonce, so such keys are signed with the standard library's RFC 6979
	// signature instead; the encoding (ASN.1 DER over SHA-256) is the same,
	// and sigstore, cosign and openssl verify it unchanged.
	ecdsa *ecdsa.PrivateKey
	keyID string
}

// NewSigner returns a Signer for an ECDSA (P-224, P-256, P-384 or P-521),
// RSA (PKCS#1 v1.5) or Ed25519 private key, hashing with SHA-256 where the
// algorithm hashes.
func NewSigner(priv crypto.PrivateKey) (*Signer, error) {
	s, err := signature.LoadSigner(priv, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("%w: %T: %w", ErrUnsupportedKey, priv, err)
	}
	pub, err := s.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("public half of signing key: %w", err)
	}
	signer := &Signer{signer: s, keyID: KeyID(pub)}
	if ec, ok := priv.(*ecdsa.PrivateKey); ok {
		// Signing once here turns a curve without deterministic signatures
		// into an error now rather than at the end of a long collect.
		sum := sha256.Sum256(nil)
		if _, err := ec.Sign(nil, sum[:], crypto.SHA256); err != nil {
			return nil, fmt.Errorf("%w: ECDSA on %s: %w", ErrUnsupportedKey, ec.Curve.Params().Name, err)
		}
		signer.ecdsa = ec
	}
	return signer, nil
}

// SignerFromFile loads a private key with LoadPrivateKey and returns its
// Signer.
func SignerFromFile(path string, passphrase []byte) (*Signer, error) {
	priv, err := LoadPrivateKey(path, passphrase)
	if err != nil {
		return nil, err
	}
	s, err := NewSigner(priv)
	if err != nil {
		return nil, fmt.Errorf("private key %s: %w", path, err)
	}
	return s, nil
}

// KeyID names the key that signs, as KeyID does for its public half.
func (s *Signer) KeyID() string { return s.keyID }

// SignBOM returns the content of the signature file for bom: the standard
// base64 of the ASN.1 DER signature over the SHA-256 of the exact bytes, with
// no trailing newline, as `cosign sign-blob` writes it.
func (s *Signer) SignBOM(ctx context.Context, bom []byte) ([]byte, error) {
	sig, err := s.sign(ctx, bom)
	if err != nil {
		return nil, fmt.Errorf("sign bill of materials with key %s: %w", s.keyID, err)
	}
	return sig, nil
}

// sign returns the signature file content for the exact bytes of msg, in
// the form SignBOM documents.
func (s *Signer) sign(ctx context.Context, msg []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var raw []byte
	var err error
	if s.ecdsa != nil {
		sum := sha256.Sum256(msg)
		// A nil source of randomness asks for the RFC 6979 nonce.
		raw, err = s.ecdsa.Sign(nil, sum[:], crypto.SHA256)
	} else {
		raw, err = s.signer.SignMessage(bytes.NewReader(msg), options.WithContext(ctx))
	}
	if err != nil {
		return nil, err
	}
	out := make([]byte, base64.StdEncoding.EncodedLen(len(raw)))
	base64.StdEncoding.Encode(out, raw)
	return out, nil
}

// Verifier checks bill of materials signatures against one public key. It
// satisfies archive.Verifier.
type Verifier struct {
	verifier signature.Verifier
	keyID    string
}

// NewVerifier returns a Verifier for an ECDSA, RSA (PKCS#1 v1.5) or Ed25519
// public key.
func NewVerifier(pub crypto.PublicKey) (*Verifier, error) {
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("%w: %T: %w", ErrUnsupportedKey, pub, err)
	}
	return &Verifier{verifier: v, keyID: KeyID(pub)}, nil
}

// VerifierFromFile loads a public key with LoadPublicKey and returns its
// Verifier.
func VerifierFromFile(path string) (*Verifier, error) {
	pub, err := LoadPublicKey(path)
	if err != nil {
		return nil, err
	}
	v, err := NewVerifier(pub)
	if err != nil {
		return nil, fmt.Errorf("public key %s: %w", path, err)
	}
	return v, nil
}

// KeyID names the key that verifies, as KeyID does.
func (v *Verifier) KeyID() string { return v.keyID }

// VerifyBOM checks the content of a signature file, as SignBOM or
// `cosign sign-blob` writes it, against the exact bytes of bom. Whitespace in
// the base64 is ignored, since editors and `base64` add newlines. A nil or
// blank sig gives ErrNoSignature; a malformed or non-matching one gives
// ErrBadSignature, with the key id in the message so the operator can tell a
// wrong key from a tampered file.
func (v *Verifier) VerifyBOM(ctx context.Context, bom, sig []byte) error {
	return v.verify(ctx, bom, sig)
}

// verify checks a signature file's content against the exact bytes of msg,
// as VerifyBOM documents.
func (v *Verifier) verify(ctx context.Context, msg, sig []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	text := strings.Map(dropSpace, string(sig))
	if text == "" {
		return ErrNoSignature
	}
	raw, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		return fmt.Errorf("%w: signature is not base64: %w", ErrBadSignature, err)
	}
	err = v.verifier.VerifySignature(bytes.NewReader(raw), bytes.NewReader(msg), options.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("%w with key %s: %w", ErrBadSignature, v.keyID, err)
	}
	return nil
}

func dropSpace(r rune) rune {
	if unicode.IsSpace(r) {
		return -1
	}
	return r
}
