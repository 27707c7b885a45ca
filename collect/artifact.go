package collect

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/ferrytool/ferry/internal/digestio"
	"github.com/ferrytool/ferry/manifest"
)

// artifactLayer is one layer of an artifact ferry builds from files: a blob
// already in the cache (file empty) or a local file.
type artifactLayer struct {
	blob  manifest.Blob
	file  string
	title string
}

// artifactSpec describes an OCI artifact ferry builds: a chart from an HTTP
// repository, a pack, a bundle.
type artifactSpec struct {
	kind        manifest.ArtifactKind
	source      string
	dest        manifest.Destination
	configType  string
	config      any
	layers      []artifactLayer
	annotations map[string]string // on the OCI manifest
}

type ociDescriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type ociManifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	Config        ociDescriptor     `json:"config"`
	Layers        []ociDescriptor   `json:"layers"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// buildArtifact writes the config and the image manifest of an artifact
// into the cache and returns it resolved. The bytes depend only on the
// content, so collecting the same files again gives the same digest.
func buildArtifact(ctx context.Context, cache *Cache, s artifactSpec) (*resolved, error) {
	cfgBytes, err := json.Marshal(s.config)
	if err != nil {
		return nil, fmt.Errorf("%s: config: %w", s.source, err)
	}
	cfg, err := cache.PutBytes(ctx, s.configType, cfgBytes)
	if err != nil {
		return nil, err
	}
	m := ociManifest{
		SchemaVersion: 2,
		MediaType:     manifest.MediaTypeOCIManifest,
		Config:        ociDescriptor{MediaType: cfg.MediaType, Digest: cfg.Digest, Size: cfg.Size},
		Layers:        []ociDescriptor{},
		Annotations:   s.annotations,
	}
	r := &resolved{}
	seen := map[string]bool{cfg.Digest: true}
	r.blobs = append(r.blobs, blobRef{blob: cfg})
	for _, l := range s.layers {
		d := ociDescriptor{MediaType: l.blob.MediaType, Digest: l.blob.Digest, Size: l.blob.Size}
		if l.title != "" {
			d.Annotations = map[string]string{manifest.AnnotationTitle: l.title}
		}
		m.Layers = append(m.Layers, d)
		if !seen[l.blob.Digest] {
			seen[l.blob.Digest] = true
			r.blobs = append(r.blobs, blobRef{blob: l.blob, file: l.file})
		}
	}
	data, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	mb, err := cache.PutBytes(ctx, manifest.MediaTypeOCIManifest, data)
	if err != nil {
		return nil, err
	}
	r.blobs = append(r.blobs, blobRef{blob: mb})
	r.artifact = manifest.Artifact{
		Kind:      s.kind,
		Name:      s.dest.String(),
		Source:    s.source,
		Dest:      s.dest,
		Digest:    mb.Digest,
		Size:      mb.Size,
		MediaType: mb.MediaType,
		Blobs:     r.closure(),
	}
	return r, nil
}

// hashFile returns the digest and size of a local file, read once.
func hashFile(ctx context.Context, path, mediaType string) (manifest.Blob, error) {
	f, err := os.Open(path)
	if err != nil {
		return manifest.Blob{}, err
	}
	defer f.Close()
	d := digestio.NewDigester()
	if _, err := io.Copy(d, digestio.ContextReader(ctx, f)); err != nil {
		return manifest.Blob{}, fmt.Errorf("read %s: %w", path, err)
	}
	return manifest.Blob{Digest: d.Digest(), Size: d.Size(), MediaType: mediaType}, nil
}
