package collect

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/ferrytool/ferry/manifest"
)

// Checking image signatures at collect, offline, from what was fetched: the
// check the air-gapped side repeats from the archive.

// BlobOpener opens a blob by digest. Checking signatures reads the blobs of
// signature artifacts through it; the reader checks size and digest itself.
type BlobOpener interface {
	OpenBlob(ctx context.Context, digest string) (io.ReadCloser, error)
}

// AttachedManifest is a signature artifact attached to an image, as
// collected: its manifest's bytes and its blobs.
type AttachedManifest struct {
	Digest   string
	Manifest []byte
	Blobs    BlobOpener
}

// ImageVerifier checks an image's signatures offline against the keys an
// operator trusts, and says which key verified it, or why none did.
type ImageVerifier interface {
	// VerifyImage checks the signatures attached to subject, the digest of
	// the image artifact named image, and returns the record the bill of
	// materials keeps.
	VerifyImage(ctx context.Context, image, subject string, attached []AttachedManifest) manifest.ImageVerification
}

// maxSignatureBlob caps a blob of a signature artifact fetched to be
// checked: payloads and bundles are a few kilobytes.
const maxSignatureBlob = 4 << 20

// verifyImages checks each image's signatures with Options.ImageVerifier
// and records the outcome for the bill of materials. With RequireSigned, an
// image no key verifies is an error naming it; every image is checked first,
// so the error names them all.
func (p *planner) verifyImages(ctx context.Context) error {
	v := p.opts.ImageVerifier
	if v == nil {
		return nil
	}
	images := p.imagesByName()
	var refused []string
	for _, im := range images {
		art := im.artifact
		var rec manifest.ImageVerification
		if why := art.RewrittenRoot(); why != "" {
			rec = manifest.ImageVerification{Image: art.Name, Subject: art.Digest, Status: manifest.SignatureFailed, Reason: why}
		} else {
			sigs, err := p.signaturesOf(ctx, art)
			if err != nil {
				return err
			}
			rec = v.VerifyImage(ctx, art.Name, art.Digest, sigs)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		p.verifications = append(p.verifications, rec)
		if rec.Status != manifest.SignatureVerified {
			why := rec.Reason
			if why == "" {
				why = string(rec.Status)
				if rec.Status == manifest.SignatureUnsigned {
					why = "no signature is attached"
				}
			}
			refused = append(refused, fmt.Sprintf("image %s (%s): %s", art.Name, art.Digest, why))
		}
	}
	if p.opts.RequireSigned && len(refused) > 0 {
		return fmt.Errorf("%w: no given key verifies %d image(s): %s", ErrImageSignature, len(refused), strings.Join(refused, "; "))
	}
	return nil
}

// signaturesOf returns the signature artifacts attached to the image's
// root manifest, with their blobs fetched into the cache (they are carried
// anyway, so the archive writer takes them from there).
func (p *planner) signaturesOf(ctx context.Context, art manifest.Artifact) ([]AttachedManifest, error) {
	at := p.attached[art.Name]
	if at == nil {
		return nil, nil
	}
	var out []AttachedManifest
	for _, r := range at.refs {
		ref := r.artifact.Referrer
		if ref.Subject != art.Digest || ref.Kind != manifest.ReferrerSignature {
			continue
		}
		for _, b := range r.blobs {
			if b.repo == nil || b.blob.Size > maxSignatureBlob || p.cache.Has(b.blob) {
				continue
			}
			if err := p.fetchSmall(ctx, b); err != nil {
				return nil, fmt.Errorf("image %s: signature %s: %w", art.Name, r.artifact.Digest, err)
			}
		}
		out = append(out, AttachedManifest{Digest: r.artifact.Digest, Manifest: at.manifests[r.artifact.Digest], Blobs: cachedBlobs{cache: p.cache, blobs: r.blobs}})
	}
	return out, nil
}

// fetchSmall downloads a small blob into the cache, verifying it.
func (p *planner) fetchSmall(ctx context.Context, b blobRef) error {
	rc, err := p.images.raw.Blob(ctx, *b.repo, b.blob.Digest)
	if err != nil {
		return sourceErr(b.repo.Name()+"@"+b.blob.Digest, err)
	}
	defer rc.Close()
	return p.cache.Put(ctx, b.blob, rc)
}

// cachedBlobs opens the blobs of one artifact from the cache.
type cachedBlobs struct {
	cache *Cache
	blobs []blobRef
}

func (c cachedBlobs) OpenBlob(ctx context.Context, digest string) (io.ReadCloser, error) {
	for _, b := range c.blobs {
		if b.blob.Digest == digest && c.cache.Has(b.blob) {
			return c.cache.OpenBlob(ctx, b.blob)
		}
	}
	return nil, fmt.Errorf("%w: blob %s was not fetched", ErrNotFound, digest)
}

// checkReferrerOptions refuses combinations that cannot be honoured:
// checking signatures that are not fetched, requiring them without a key.
func checkReferrerOptions(o Options) error {
	if _, err := ParseReferrerMode(string(o.Referrers)); err != nil {
		return err
	}
	if o.ImageVerifier != nil && o.Referrers == ReferrersNone {
		return fmt.Errorf("%w: checking image signatures needs them fetched; carrying no attached artifacts leaves none to check", ErrUsage)
	}
	if o.RequireSigned && o.ImageVerifier == nil {
		return fmt.Errorf("%w: requiring signed images needs keys to check them with", ErrUsage)
	}
	return nil
}
