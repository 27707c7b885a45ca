package collect

import (
	"context"
	"fmt"

	"github.com/ferrytool/ferry/manifest"
)

// convertOCI rewrites every Docker schema 2 manifest and manifest list of a
// resolved image as its OCI form (TransferSpec.ConvertOCI) and records each change on
// the artifact. The blobs are in archive order, children before parents, so
// a list is converted after the manifests it references and points at their
// new digests. Configs and layers keep their bytes and digests; only the
// media types that describe them change.
//
// An OCI index is left as it is, and so are the Docker manifests under it:
// rewriting them would leave the index pointing at digests the archive
// does not hold. The returned warning names such an image.
func (ir *imageResolver) convertOCI(ctx context.Context, r *resolved, art *manifest.Artifact) (string, error) {
	if !manifest.IsDocker(art.MediaType) {
		for _, b := range r.blobs {
			if manifest.IsDocker(b.blob.MediaType) {
				return fmt.Sprintf("image %s: OCI index %s references Docker manifest %s; kept as it is (the conversion to OCI rewrites only Docker manifests and lists, and what they reference)",
					art.Name, art.Digest, b.blob.Digest), nil
			}
		}
		return "", nil
	}
	converted := map[string]manifest.Descriptor{}
	for i, br := range r.blobs {
		b := br.blob
		if !manifest.IsManifest(b.MediaType) {
			r.blobs[i].blob.MediaType = manifest.OCIMediaType(b.MediaType)
			continue
		}
		if !manifest.IsDocker(b.MediaType) {
			continue
		}
		data, err := ir.cache.ReadSmall(b, manifest.MaxManifestSize)
		if err != nil {
			return "", fmt.Errorf("image %s: read manifest %s: %w", art.Name, b.Digest, err)
		}
		mt, out, err := manifest.ConvertToOCI(b.MediaType, data, converted)
		if err != nil {
			return "", fmt.Errorf("image %s: convert manifest %s to OCI: %w", art.Name, b.Digest, err)
		}
		nb, err := ir.cache.PutBytes(ctx, mt, out)
		if err != nil {
			return "", err
		}
		converted[b.Digest] = manifest.Descriptor{MediaType: nb.MediaType, Digest: nb.Digest, Size: nb.Size}
		r.blobs[i] = blobRef{blob: nb} // in the cache, nothing to download
		art.Converted = append(art.Converted, manifest.Conversion{From: b.Digest, FromMediaType: b.MediaType, To: nb.Digest, MediaType: nb.MediaType})
	}
	root, ok := converted[art.Digest]
	if !ok {
		return "", fmt.Errorf("image %s: manifest %s was not converted", art.Name, art.Digest)
	}
	art.Digest, art.Size, art.MediaType = root.Digest, root.Size, root.MediaType
	return "", nil
}
