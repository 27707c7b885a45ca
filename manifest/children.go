package manifest

import (
	"encoding/json"
	"fmt"
)

// MaxManifestSize caps the manifests and indexes ferry holds in memory;
// registries commonly refuse larger ones.
const MaxManifestSize = 4 << 20

// Descriptor is the part of an OCI descriptor ferry needs.
type Descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

// Children lists the descriptors an image manifest or index references:
// config and layers, or child manifests. A subject is not a child: it points
// at a parent that must exist on its own.
func Children(mediaType string, data []byte) ([]Descriptor, error) {
	var m struct {
		MediaType string       `json:"mediaType"`
		Config    *Descriptor  `json:"config"`
		Layers    []Descriptor `json:"layers"`
		Manifests []Descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("parse %s: %w", mediaType, err)
	}
	var out []Descriptor
	if IsIndex(mediaType) {
		out = append(out, m.Manifests...)
	} else {
		if m.Config != nil {
			out = append(out, *m.Config)
		}
		out = append(out, m.Layers...)
	}
	for _, d := range out {
		if err := CheckDigest(d.Digest); err != nil {
			return nil, fmt.Errorf("%s references %w", mediaType, err)
		}
	}
	return out, nil
}
