package manifest

import "strings"

// Media types ferry reads and writes beyond the OCI image ones.
const (
	MediaTypeOCIManifest     = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeOCIIndex        = "application/vnd.oci.image.index.v1+json"
	MediaTypeDockerManifest  = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerList      = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeHelmConfig      = "application/vnd.cncf.helm.config.v1+json"
	MediaTypeHelmChart       = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
	MediaTypeFerryPackConfig = "application/vnd.ferry.pack.config.v1+json"
	MediaTypeFerryFile       = "application/vnd.ferry.file.v1"
	// MediaTypeFerryBundleConfig is the config of a Profile Bundle archive
	// carried as an OCI artifact.
	MediaTypeFerryBundleConfig = "application/vnd.ferry.bundle.config.v1+json"
	// MediaTypeFerryFileZstd is an opaque file that is already zstd data,
	// such as an Artifact Studio pack.
	MediaTypeFerryFileZstd = "application/vnd.ferry.file.v1+zstd"
	// MediaTypeFerryPackSignature is the detached vendor signature of a pack
	// (the .sig.bin), the second layer of a .zst pack artifact.
	MediaTypeFerryPackSignature = "application/vnd.ferry.pack.signature.v1"
	// MediaTypeTarGzip is a gzip'd tar: pack tarballs and bundle archives.
	MediaTypeTarGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
)

// MediaTypeHelmProvenance is a chart's provenance file (the .prov of `helm
// package --sign`), a layer of the chart's manifest as `helm push` writes it.
const MediaTypeHelmProvenance = "application/vnd.cncf.helm.chart.provenance.v1.prov"

// Annotations ferry writes on the artifacts it builds, and the keys of
// Artifact.Annotations that ingest reads.
const (
	// AnnotationTitle names a layer's original file.
	AnnotationTitle = "org.opencontainers.image.title"
	// AnnotationVersion is the version of a chart, pack or bundle.
	AnnotationVersion = "org.opencontainers.image.version"
	// AnnotationPackFormat is "zst" (Artifact Studio) or "tarball".
	AnnotationPackFormat = "ferry.pack.format"
	// AnnotationPackFile is the digest of the pack file's layer.
	AnnotationPackFile = "ferry.pack.file"
	// AnnotationPackSignature is the digest of the .sig.bin layer, so the
	// air-gapped side can check the pack again against the vendor key.
	AnnotationPackSignature = "ferry.pack.signature"
	// AnnotationPackKeyID is the ID of the key the signature verified with.
	AnnotationPackKeyID = "ferry.pack.signatureKeyID"
	// AnnotationChartProvenance is the digest of a chart's provenance
	// layer, set on every chart artifact that carries one.
	AnnotationChartProvenance = "ferry.chart.provenance"
	// AnnotationChartProvenanceKeyID is the fingerprint of the OpenPGP key
	// whose signature of the provenance verified at collect, together with
	// the chart archive's hash; absent when no keyring was given.
	AnnotationChartProvenanceKeyID = "ferry.chart.provenanceKeyID"
	// AnnotationSourceDigest is the source's digest of an image index that
	// was cut down to a platform subset, and so has a new digest.
	AnnotationSourceDigest = "ferry.source.digest"
	// AnnotationPlatforms lists the platforms kept of a cut-down index.
	AnnotationPlatforms = "ferry.platforms"
)

// IsManifest reports whether a media type is an image manifest or index, the
// blobs that reference others and so are pushed last.
func IsManifest(mediaType string) bool {
	switch mediaType {
	case MediaTypeOCIManifest, MediaTypeOCIIndex, MediaTypeDockerManifest, MediaTypeDockerList:
		return true
	}
	return false
}

// IsIndex reports whether a media type is a multi-platform index.
func IsIndex(mediaType string) bool {
	return mediaType == MediaTypeOCIIndex || mediaType == MediaTypeDockerList
}

// IsCompressed reports whether a blob of this media type is already compressed
// and so not worth compressing again.
func IsCompressed(mediaType string) bool {
	return strings.HasSuffix(mediaType, "gzip") || strings.HasSuffix(mediaType, "zstd") ||
		strings.HasSuffix(mediaType, ".gzip") || mediaType == MediaTypeHelmChart
}
