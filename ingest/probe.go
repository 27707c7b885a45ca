package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/ferrytool/ferry/manifest"
)

// ProbeRepository is the scratch repository, under the base path, that a
// dry run probes Docker media types in.
const ProbeRepository = "ferry-probe"

// Results of a Docker media type probe.
const (
	ProbeAccepts = "accepts Docker media types"
	ProbeRefuses = "refuses Docker media types"
	ProbeUnknown = "unknown"
)

// DockerProbe is what a dry run found out about whether the registry takes
// Docker schema 2 manifests, which a default Zot refuses.
type DockerProbe struct {
	// Repository is the scratch repository the probe manifest went to.
	Repository string `json:"repository"`
	// Manifest is the probe manifest's digest.
	Manifest string `json:"manifest,omitempty"`
	// Result is one of the Probe* constants.
	Result string `json:"result"`
	// Detail is the registry's answer, or why the probe could not tell.
	Detail string `json:"detail,omitempty"`
	// Cleanup says what became of the probe manifest; empty when it was
	// never stored or was deleted.
	Cleanup string `json:"cleanup,omitempty"`
	// DockerArtifacts counts the artifacts with Docker manifests, which a
	// refusing registry will not take without --convert-oci.
	DockerArtifacts int `json:"dockerArtifacts"`
}

// probeConfig is the empty JSON object, the smallest config blob there is.
var probeConfig = []byte("{}")

// probeDocker stores a tiny Docker schema 2 manifest (no layers, the empty
// config) by digest in the scratch repository, never under a tag, and
// deletes it again: the one harmless way to learn what the registry's
// manifest rules are before anything real is pushed.
func (r *registry) probeDocker(ctx context.Context, repo string) DockerProbe {
	pr := DockerProbe{Repository: repo, Result: ProbeUnknown}
	cfg := manifest.Blob{Digest: digestOf(probeConfig), Size: int64(len(probeConfig)), MediaType: manifest.MediaTypeDockerConfig}
	job := uploadJob{repo: repo, blob: cfg, sessions: noSessions{}, open: func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(probeConfig)), nil
	}}
	if _, err := r.pushBlob(ctx, job); err != nil {
		pr.Detail = fmt.Sprintf("could not upload the probe's config blob to %s: %v", repo, err)
		return pr
	}
	defer r.deleteQuietly(ctx, r.repoURL(repo, "blobs/"+cfg.Digest))
	doc, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     manifest.MediaTypeDockerManifest,
		"config":        manifest.Descriptor{MediaType: cfg.MediaType, Digest: cfg.Digest, Size: cfg.Size},
		"layers":        []manifest.Descriptor{},
	})
	if err != nil {
		pr.Detail = err.Error()
		return pr
	}
	d := digestOf(doc)
	pr.Manifest = d
	err = r.putManifest(ctx, repo, d, manifest.MediaTypeDockerManifest, doc)
	if err != nil {
		var se *statusError
		var te *transport.Error
		if errors.As(err, &se) && (se.code == http.StatusBadRequest || se.code == http.StatusUnsupportedMediaType) && errors.As(err, &te) {
			for _, e := range te.Errors {
				if e.Code == transport.ManifestInvalidErrorCode || e.Code == transport.UnsupportedErrorCode {
					pr.Result, pr.Detail = ProbeRefuses, se.Error()
					return pr
				}
			}
		}
		pr.Detail = fmt.Sprintf("PUT of a probe manifest to %s: %v", repo, err)
		return pr
	}
	pr.Result = ProbeAccepts
	resp, err := r.do(ctx, http.MethodDelete, r.repoURL(repo, "manifests/"+d), nil, nil)
	if err == nil {
		err = checkStatus(resp, http.StatusAccepted, http.StatusOK, http.StatusNoContent)
		resp.Body.Close()
	}
	if err != nil {
		pr.Cleanup = fmt.Sprintf("probe manifest %s@%s could not be deleted (%v); delete it by hand", repo, d, err)
	}
	return pr
}

// deleteQuietly deletes what the probe left; a registry that does not
// allow it keeps a two-byte blob in the scratch repository, which is
// harmless.
func (r *registry) deleteQuietly(ctx context.Context, u string) {
	resp, err := r.do(ctx, http.MethodDelete, u, nil, nil)
	if err == nil {
		resp.Body.Close()
	}
}

// dockerArtifacts counts the plans that hold a Docker manifest.
func dockerArtifacts(plans []*artifactPlan) int {
	n := 0
	for _, p := range plans {
		for _, m := range p.manifests {
			if manifest.IsDocker(m.MediaType) {
				n++
				break
			}
		}
	}
	return n
}
