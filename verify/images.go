package verify

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/ferrytool/ferry/manifest"
)

// ImagePolicy is what the air-gapped side asks of the images of an archive:
// the keys their signatures are checked with, and whether an unsigned image
// is refused. A failed image (signatures attached, none verifies) is always
// refused.
type ImagePolicy struct {
	Keys []*ImageKey
	// RequireSigned refuses an image no key verifies, unsigned ones too.
	RequireSigned bool
}

// Refuses reports whether the policy refuses an image with this outcome.
func (p ImagePolicy) Refuses(status manifest.SignatureStatus) bool {
	switch status {
	case manifest.SignatureVerified:
		return false
	case manifest.SignatureUnsigned:
		return p.RequireSigned
	}
	return true
}

// Refusal says why a policy refuses an image with this record.
func Refusal(rec manifest.ImageVerification) string {
	if rec.Status == manifest.SignatureUnsigned {
		return "no signature is attached, and signed images are required"
	}
	return "its signature check failed: " + rec.Reason
}

// ImageSignatures returns, per subject digest, the artifacts of bom that
// are signatures attached to it: what CheckImage needs of each image.
func ImageSignatures(bom *manifest.BOM) map[string][]manifest.Artifact {
	out := map[string][]manifest.Artifact{}
	for _, a := range bom.Artifacts {
		if a.Referrer != nil && a.Referrer.Kind == manifest.ReferrerSignature {
			out[a.Referrer.Subject] = append(out[a.Referrer.Subject], a)
		}
	}
	return out
}

// CheckImage checks the signatures of the image artifact image, reading
// each signature artifact's manifest and layers through blobs, which must
// verify what it serves against the digest (archive.Set does). It returns
// the record of the outcome, named after the image artifact.
//
// An image whose root manifest collect rewrote (converted to OCI, or an
// index cut to a subset of its platforms) fails: no signature made at the
// source covers what the archive holds and the destination would serve.
func CheckImage(ctx context.Context, image manifest.Artifact, signatures []manifest.Artifact, blobs BlobOpener, keys []*ImageKey) (manifest.ImageVerification, error) {
	if why := image.RewrittenRoot(); why != "" {
		return manifest.ImageVerification{Image: image.Name, Subject: image.Digest, Status: manifest.SignatureFailed, Reason: why}, nil
	}
	attached := make([]Attached, 0, len(signatures))
	for _, s := range signatures {
		data, err := readManifestBlob(ctx, blobs, s.Digest)
		if err != nil {
			return manifest.ImageVerification{}, fmt.Errorf("image %s: signature %s: %w", image.Name, s.Digest, err)
		}
		attached = append(attached, Attached{Digest: s.Digest, Manifest: data, Blobs: blobs})
	}
	rec := VerifyImage(ctx, image.Digest, attached, keys).Record(image.Name)
	if rec.Status == manifest.SignatureFailed {
		names := make([]string, len(keys))
		for i, k := range keys {
			names[i] = k.Name
		}
		rec.Reason += " (keys tried: " + strings.Join(names, ", ") + ")"
	}
	return rec, ctx.Err()
}

// readManifestBlob reads a signature artifact's manifest, capped at the
// manifest size limit; VerifyImage checks its digest again.
func readManifestBlob(ctx context.Context, blobs BlobOpener, digest string) ([]byte, error) {
	rc, err := blobs.OpenBlob(ctx, digest)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, manifest.MaxManifestSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > manifest.MaxManifestSize {
		return nil, fmt.Errorf("%w: manifest %s exceeds %d bytes", ErrSignatureArtifact, digest, manifest.MaxManifestSize)
	}
	return data, nil
}

// BlobFunc adapts a function to BlobOpener, such as archive.Set's Open.
type BlobFunc func(ctx context.Context, digest string) (io.ReadCloser, error)

// OpenBlob calls f.
func (f BlobFunc) OpenBlob(ctx context.Context, digest string) (io.ReadCloser, error) {
	return f(ctx, digest)
}
