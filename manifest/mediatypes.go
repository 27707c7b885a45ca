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
