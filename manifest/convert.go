package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Docker media types and their OCI equivalents. Zot refuses Docker schema 2
// manifests unless configured otherwise, so ferry can store or push their OCI
// form: the same layers and config bytes under OCI media types.
const (
	MediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerLayer        = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	MediaTypeDockerForeignLayer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
	MediaTypeOCIConfig          = "application/vnd.oci.image.config.v1+json"
	MediaTypeOCILayerGzip       = "application/vnd.oci.image.layer.v1.tar+gzip"
	MediaTypeOCILayerNonDistrib = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
	mediaTypeDockerLayerUncomp  = "application/vnd.docker.image.rootfs.diff.tar"
	mediaTypeOCILayerPlain      = "application/vnd.oci.image.layer.v1.tar"
)

var dockerToOCI = map[string]string{
	MediaTypeDockerManifest:     MediaTypeOCIManifest,
	MediaTypeDockerList:         MediaTypeOCIIndex,
	MediaTypeDockerConfig:       MediaTypeOCIConfig,
	MediaTypeDockerLayer:        MediaTypeOCILayerGzip,
	MediaTypeDockerForeignLayer: MediaTypeOCILayerNonDistrib,
	mediaTypeDockerLayerUncomp:  mediaTypeOCILayerPlain,
}

// IsDocker reports whether a manifest media type is a Docker schema 2 one.
func IsDocker(mediaType string) bool {
	return mediaType == MediaTypeDockerManifest || mediaType == MediaTypeDockerList
}

// OCIMediaType returns the OCI equivalent of a Docker media type, or the
// media type itself when it has none.
func OCIMediaType(mediaType string) string {
	if oci, ok := dockerToOCI[mediaType]; ok {
		return oci
	}
	return mediaType
}

// ConvertToOCI rewrites a Docker schema 2 manifest or manifest list as its OCI
// form. Only media types change: every digest and size stays, except that in
// a list each child manifest is replaced by its converted descriptor from
// children (keyed by the child's original digest). Fields ferry does not
// know are kept.
func ConvertToOCI(mediaType string, data []byte, children map[string]Descriptor) (string, []byte, error) {
	if !IsDocker(mediaType) {
		return mediaType, data, nil
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		return "", nil, fmt.Errorf("parse %s: %w", mediaType, err)
	}
	newType := dockerToOCI[mediaType]
	if err := setString(doc, "mediaType", newType); err != nil {
		return "", nil, err
	}
	if mediaType == MediaTypeDockerList {
		if err := rewriteDescriptors(doc, "manifests", func(d map[string]json.RawMessage) error {
			var digest string
			if err := json.Unmarshal(d["digest"], &digest); err != nil {
				return fmt.Errorf("child manifest digest: %w", err)
			}
			c, ok := children[digest]
			if !ok {
				// A child that needed no conversion keeps its descriptor.
				return convertMediaType(d)
			}
			if err := setString(d, "digest", c.Digest); err != nil {
				return err
			}
			if err := setValue(d, "size", c.Size); err != nil {
				return err
			}
			return setString(d, "mediaType", c.MediaType)
		}); err != nil {
			return "", nil, err
		}
	} else {
		if cfg, ok := doc["config"]; ok {
			var d map[string]json.RawMessage
			if err := json.Unmarshal(cfg, &d); err != nil {
				return "", nil, fmt.Errorf("config descriptor: %w", err)
			}
			if err := convertMediaType(d); err != nil {
				return "", nil, err
			}
			if err := setValue(doc, "config", d); err != nil {
				return "", nil, err
			}
		}
		if err := rewriteDescriptors(doc, "layers", convertMediaType); err != nil {
			return "", nil, err
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return "", nil, err
	}
	return newType, bytes.TrimRight(buf.Bytes(), "\n"), nil
}

func convertMediaType(d map[string]json.RawMessage) error {
	var mt string
	if raw, ok := d["mediaType"]; ok {
		if err := json.Unmarshal(raw, &mt); err != nil {
			return fmt.Errorf("descriptor media type: %w", err)
		}
	}
	return setString(d, "mediaType", OCIMediaType(mt))
}

func rewriteDescriptors(doc map[string]json.RawMessage, key string, fn func(map[string]json.RawMessage) error) error {
	raw, ok := doc[key]
	if !ok {
		return nil
	}
	var list []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	for _, d := range list {
		if err := fn(d); err != nil {
			return err
		}
	}
	return setValue(doc, key, list)
}

func setString(m map[string]json.RawMessage, key, v string) error { return setValue(m, key, v) }

func setValue(m map[string]json.RawMessage, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	m[key] = raw
	return nil
}
