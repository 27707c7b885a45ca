package verify

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/ferrytool/ferry/manifest"
)

var (
	// ErrSignatureArtifact is returned for an attached signature artifact
	// that cannot be read: a manifest or layer whose bytes do not match its
	// digest, or content that does not parse.
	ErrSignatureArtifact = errors.New("malformed signature artifact")
	// ErrSignatureSubject is returned for a signature that verifies but
	// names another image than the one it is attached to: a signature copied
	// from elsewhere.
	ErrSignatureSubject = errors.New("signature is for another image")
)

// maxSignatureBlobSize caps a signature payload or bundle read into memory.
// Both are a few kilobytes; a certificate chain and transparency-log proofs
// stay far below this.
const maxSignatureBlobSize = 4 << 20

// ImageKey is a public key an operator trusts to sign images, cosign-format
// PEM (PKIX "PUBLIC KEY": ECDSA, RSA or Ed25519).
type ImageKey struct {
	// Name is how the operator named the key, such as its file name.
	Name string
	// ID is KeyID of the public key.
	ID string
	// verifiers are tried in order: SHA-256 (pure Ed25519) first, then the
	// variants newer cosign releases pick by default: the curve's own hash
	// for larger ECDSA curves, Ed25519ph for Ed25519.
	verifiers []signature.Verifier
}

// NewImageKey wraps a public key under name. RSA signatures are PKCS#1 v1.5,
// as cosign makes them.
func NewImageKey(name string, pub crypto.PublicKey) (*ImageKey, error) {
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("image key %s: %w: %T: %w", name, ErrUnsupportedKey, pub, err)
	}
	k := &ImageKey{Name: name, ID: KeyID(pub), verifiers: []signature.Verifier{v}}
	switch pk := pub.(type) {
	case *ecdsa.PublicKey:
		if pk.Curve != elliptic.P256() {
			if dv, err := signature.LoadDefaultVerifier(pub); err == nil {
				k.verifiers = append(k.verifiers, dv)
			}
		}
	case ed25519.PublicKey:
		// cosign signs with Ed25519ph (the pre-hashed variant) by default.
		if pv, err := signature.LoadED25519phVerifier(pk); err == nil {
			k.verifiers = append(k.verifiers, pv)
		}
	}
	return k, nil
}

// LoadImageKeys reads cosign-format public keys from files, each named by
// its file name.
func LoadImageKeys(paths ...string) ([]*ImageKey, error) {
	keys := make([]*ImageKey, 0, len(paths))
	for _, p := range paths {
		pub, err := LoadPublicKey(p)
		if err != nil {
			return nil, err
		}
		k, err := NewImageKey(filepath.Base(p), pub)
		if err != nil {
			return nil, fmt.Errorf("public key %s: %w", p, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// BlobOpener opens a blob of an attached artifact by digest, wherever it is
// kept (an archive, a registry, memory). The verifier reads no more than the
// descriptor's size and checks the digest itself.
type BlobOpener interface {
	OpenBlob(ctx context.Context, digest string) (io.ReadCloser, error)
}

// BlobMap is a BlobOpener over blobs held in memory, keyed by digest.
type BlobMap map[string][]byte

// OpenBlob returns the blob, or an error wrapping ErrSignatureArtifact when
// it is absent.
func (m BlobMap) OpenBlob(_ context.Context, digest string) (io.ReadCloser, error) {
	b, ok := m[digest]
	if !ok {
		return nil, fmt.Errorf("%w: blob %s is missing", ErrSignatureArtifact, digest)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// Attached is one artifact attached to an image, as carried: the bytes of
// its manifest and access to its layers.
type Attached struct {
	// Digest is the manifest's digest; the manifest bytes must match it.
	Digest   string
	Manifest []byte
	Blobs    BlobOpener
}

// SignatureCheck is the outcome of one signature attached to an image.
type SignatureCheck struct {
	// Artifact is the digest of the signature artifact's manifest, and
	// Format its form (manifest.SignatureFormatCosign or
	// manifest.SignatureFormatBundle).
	Artifact string
	Format   string
	// Key verified the signature; nil when Err is set.
	Key *ImageKey
	Err error
}

// ImageVerdict is the outcome of checking one image's signatures.
type ImageVerdict struct {
	// Subject is the image's manifest or index digest.
	Subject string
	Status  manifest.SignatureStatus
	// Verified is the check that verified the image when Status is
	// SignatureVerified: which key, which signature artifact.
	Verified *SignatureCheck
	// Checks lists every signature found, verified or not, in the order of
	// the attached artifacts.
	Checks []SignatureCheck
}

// Err returns nil for a verified image, and otherwise an error naming the
// image that says why: unsigned (wrapping ErrNoSignature) or every
// signature's failure joined.
func (v ImageVerdict) Err() error {
	switch v.Status {
	case manifest.SignatureVerified:
		return nil
	case manifest.SignatureUnsigned:
		return fmt.Errorf("image %s: %w", v.Subject, ErrNoSignature)
	}
	errs := make([]error, 0, len(v.Checks))
	for _, c := range v.Checks {
		errs = append(errs, c.Err)
	}
	return fmt.Errorf("image %s: no signature verifies with the given keys: %w", v.Subject, errors.Join(errs...))
}

// Record returns the bill of materials' record of the verdict for the image
// artifact named image.
func (v ImageVerdict) Record(image string) manifest.ImageVerification {
	r := manifest.ImageVerification{Image: image, Subject: v.Subject, Status: v.Status}
	switch {
	case v.Verified != nil:
		r.KeyID, r.KeyName = v.Verified.Key.ID, v.Verified.Key.Name
		r.Signature, r.Format = v.Verified.Artifact, v.Verified.Format
	case v.Status == manifest.SignatureFailed:
		r.Reason = v.Err().Error()
	}
	return r
}

// VerifyImage checks the cosign signatures among the artifacts attached to
// the image subject (a manifest or index digest) against keys, offline: no
// transparency log or timestamp is consulted, since the air gap has neither.
// It understands cosign's simple-signing manifests (the `.sig` tag) and
// sigstore bundles whose statement has cosign's signing predicate (the
// referrers cosign writes with the new bundle format); other attached
// artifacts (attestations, SBOMs) are skipped. An artifact whose manifest does
// not match its digest counts as a failed signature, since it cannot be told
// apart from a tampered one.
//
// The image is verified when any signature verifies with any key and names
// subject; unsigned when no signature is attached; failed otherwise.
func VerifyImage(ctx context.Context, subject string, attached []Attached, keys []*ImageKey) ImageVerdict {
	v := ImageVerdict{Subject: subject}
	for _, a := range attached {
		if ctx.Err() != nil {
			v.Checks = append(v.Checks, SignatureCheck{Artifact: a.Digest, Err: ctx.Err()})
			break
		}
		v.Checks = append(v.Checks, checkAttached(ctx, subject, a, keys)...)
	}
	for i := range v.Checks {
		if v.Checks[i].Err == nil {
			v.Status, v.Verified = manifest.SignatureVerified, &v.Checks[i]
			return v
		}
	}
	v.Status = manifest.SignatureFailed
	if len(v.Checks) == 0 {
		v.Status = manifest.SignatureUnsigned
	}
	return v
}

// checkAttached returns one check per signature in the artifact: none for an
// artifact that holds no signature, one per simple-signing layer.
func checkAttached(ctx context.Context, subject string, a Attached, keys []*ImageKey) []SignatureCheck {
	m, err := parseAttached(a)
	if err != nil {
		return []SignatureCheck{{Artifact: a.Digest, Err: err}}
	}
	var out []SignatureCheck
	for _, l := range m.Layers {
		switch {
		case l.MediaType == manifest.MediaTypeCosignSimpleSigning:
			c := SignatureCheck{Artifact: a.Digest, Format: manifest.SignatureFormatCosign}
			c.Key, c.Err = checkSimpleSigning(ctx, subject, a, l, keys)
			out = append(out, c)
		case manifest.IsSigstoreBundle(l.MediaType):
			if p := m.PredicateType(); p != "" && p != manifest.PredicateCosignSign {
				continue // an attestation in a bundle, not a signature
			}
			c := SignatureCheck{Artifact: a.Digest, Format: manifest.SignatureFormatBundle}
			var isSig bool
			c.Key, isSig, c.Err = checkBundle(ctx, subject, a, l, keys)
			if isSig {
				out = append(out, c)
			}
		}
	}
	return out
}

func parseAttached(a Attached) (*manifest.ReferrerManifest, error) {
	if err := manifest.CheckDigest(a.Digest); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSignatureArtifact, err)
	}
	sum := sha256.Sum256(a.Manifest)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != a.Digest {
		return nil, fmt.Errorf("%w: manifest %s: its bytes hash to %s", ErrSignatureArtifact, a.Digest, got)
	}
	m, err := manifest.ParseReferrerManifest(a.Manifest)
	if err != nil {
		return nil, fmt.Errorf("%w: manifest %s: %w", ErrSignatureArtifact, a.Digest, err)
	}
	return m, nil
}

// readSignatureBlob reads one layer of a signature artifact in full, checking
// its size and digest as it streams.
func readSignatureBlob(ctx context.Context, a Attached, l manifest.ReferrerDescriptor) ([]byte, error) {
	if l.Size < 0 || l.Size > maxSignatureBlobSize {
		return nil, fmt.Errorf("%w: %s layer %s: size %d is outside 0..%d", ErrSignatureArtifact, a.Digest, l.Digest, l.Size, maxSignatureBlobSize)
	}
	if a.Blobs == nil {
		return nil, fmt.Errorf("%w: %s layer %s: no blobs given", ErrSignatureArtifact, a.Digest, l.Digest)
	}
	rc, err := a.Blobs.OpenBlob(ctx, l.Digest)
	if err != nil {
		return nil, fmt.Errorf("%s layer %s: %w", a.Digest, l.Digest, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, l.Size+1))
	if err != nil {
		return nil, fmt.Errorf("%s layer %s: %w", a.Digest, l.Digest, err)
	}
	if int64(len(data)) != l.Size {
		return nil, fmt.Errorf("%w: %s layer %s: %d bytes, the manifest says %d", ErrSignatureArtifact, a.Digest, l.Digest, len(data), l.Size)
	}
	sum := sha256.Sum256(data)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != l.Digest {
		return nil, fmt.Errorf("%w: %s layer %s: its bytes hash to %s", ErrSignatureArtifact, a.Digest, l.Digest, got)
	}
	return data, nil
}

// firstKey returns the first key one of whose verifiers accepts, and
// ErrBadSignature when none does.
func firstKey(keys []*ImageKey, verify func(signature.Verifier) error) (*ImageKey, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no keys given", ErrBadSignature)
	}
	for _, k := range keys {
		for _, v := range k.verifiers {
			if verify(v) == nil {
				return k, nil
			}
		}
	}
	return nil, fmt.Errorf("%w with any of the %d given keys", ErrBadSignature, len(keys))
}
