package ingest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"

	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/registry"
)

// Results of a Docker media type probe.
const (
	ProbeAccepts = "accepts Docker media types"
	ProbeRefuses = "refuses Docker media types"
	ProbeUnknown = "unknown"
)

// DockerProbe is what a run found out about whether the registry takes
// Docker schema 2 manifests, which a default Zot refuses. A dry run always
// probes; a real run probes when it would push Docker manifests.
type DockerProbe struct {
	// Repository is the repository the probe manifest went to: one the
	// run pushes into anyway, so the probe adds none to the catalog.
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
	// DockerArtifacts counts the artifacts that would push Docker
	// manifests as they are, which a refusing registry does not take.
	DockerArtifacts int `json:"dockerArtifacts"`
	// ConvertedArtifacts counts, with CopyOptions.ConvertOCI, the artifacts
	// whose Docker manifests are pushed in their OCI form instead.
	ConvertedArtifacts int `json:"convertedArtifacts,omitempty"`
	// Refused counts the artifacts a real run refused because of the
	// probe's answer, before any of their blobs was uploaded.
	Refused int `json:"refused,omitempty"`
}

// probeDocker stores a tiny Docker schema 2 manifest (no layers, the empty
// config) by digest in repo, never under a tag, and deletes it and its
// config again: the one harmless way to learn what the registry's manifest
// rules are before anything real is pushed. repo is one the run pushes
// into anyway, so the catalog gains no repository of its own.
func probeDocker(ctx context.Context, reg *registry.Client, repo string) DockerProbe {
	// A config no one else stores: the empty JSON object is also the OCI
	// empty descriptor that referrers and artifacts share, and deleting it
	// afterwards would take it from them.
	config := []byte(fmt.Sprintf(`{"ferry.probe":%q}`, rand.Text()))
	pr := DockerProbe{Repository: repo, Result: ProbeUnknown}
	cfg := manifest.Blob{Digest: digestOf(config), Size: int64(len(config)), MediaType: manifest.MediaTypeDockerConfig}
	job := registry.BlobPush{Repo: repo, Digest: cfg.Digest, Size: cfg.Size, Open: func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(config)), nil
	}}
	if _, err := reg.PushBlob(ctx, job); err != nil {
		pr.Detail = fmt.Sprintf("could not upload the probe's config blob to %s: %v", repo, err)
		return pr
	}
	// A registry that does not allow deleting blobs keeps two bytes in a
	// repository that holds the archive's content anyway.
	defer reg.DeleteBlob(ctx, repo, cfg.Digest)
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
	if err := reg.PutManifest(ctx, repo, d, manifest.MediaTypeDockerManifest, doc); err != nil {
		if msg, ok := dockerRefusal(err, manifest.MediaTypeDockerManifest); ok {
			pr.Result, pr.Detail = ProbeRefuses, msg
			return pr
		}
		pr.Detail = fmt.Sprintf("PUT of a probe manifest to %s: %v", repo, err)
		return pr
	}
	pr.Result = ProbeAccepts
	if err := reg.DeleteManifest(ctx, repo, d); err != nil {
		pr.Cleanup = fmt.Sprintf("probe manifest %s@%s could not be deleted (%v); delete it by hand", repo, d, err)
	}
	return pr
}

// probeRepository picks where the probe goes: the destination repository
// of the first artifact (by name) the run would push Docker manifests of,
// else of the first artifact at all; "" when there is none.
func probeRepository(plans []*artifactPlan, convertOCI bool) string {
	first, docker := "", ""
	for _, p := range plans {
		if first == "" || p.a.Name < first {
			first = p.a.Name
		}
		if p.pushesDocker(convertOCI) && (docker == "" || p.a.Name < docker) {
			docker = p.a.Name
		}
	}
	if docker != "" {
		first = docker
	}
	for _, p := range plans {
		if p.a.Name == first {
			return p.repo
		}
	}
	return ""
}

// hasDocker reports whether the artifact's closure lists a Docker
// manifest or manifest list.
func (p *artifactPlan) hasDocker() bool {
	_, ok := p.firstDocker()
	return ok
}

// firstDocker returns the Docker manifest a refusing registry would trip
// over first for the artifact: its own manifest when that is Docker, else
// the first Docker child.
func (p *artifactPlan) firstDocker() (manifest.Blob, bool) {
	for i := len(p.manifests) - 1; i >= 0; i-- {
		if m := p.manifests[i]; manifest.IsDocker(m.MediaType) {
			return m, true
		}
	}
	return manifest.Blob{}, false
}

// pushesDocker reports whether the artifact would push Docker manifests
// as they are: it has some, and convertOCI is off or leaves it alone (an
// OCI index over Docker manifests, see convertPlan).
func (p *artifactPlan) pushesDocker(convertOCI bool) bool {
	return p.hasDocker() && (!convertOCI || p.warning != "")
}

// dockerCounts splits the artifacts with Docker manifests into those that
// would push them as they are and those that convertOCI pushes as OCI.
func dockerCounts(plans []*artifactPlan, convertOCI bool) (docker, converted int) {
	for _, p := range plans {
		switch {
		case p.pushesDocker(convertOCI):
			docker++
		case p.hasDocker():
			converted++
		}
	}
	return docker, converted
}

// refuseDocker refuses, before any blob is uploaded, every artifact that
// would push a Docker manifest into a registry the probe found refusing
// them: otherwise its layers (gigabytes, often) would go up only for its
// manifest to be refused at the end. An artifact whose tag already
// resolves to its digest is left alone; assess finds it present.
func (in *ingester) refuseDocker(ctx context.Context, pr *DockerProbe) error {
	for _, p := range in.plans {
		m, ok := p.firstDocker()
		if !ok || !p.pushesDocker(in.opts.ConvertOCI) {
			continue
		}
		got, err := in.tagDigest(ctx, p)
		if err != nil {
			return err
		}
		if got == p.digest {
			continue
		}
		p.res.State, p.res.Cause = StateRefused, CauseRegistry
		p.res.Reason = fmt.Sprintf("the registry would refuse manifest %s (%s) for %s (probed in %s before any upload): %s",
			m.Digest, m.MediaType, p.at(true), pr.Repository, dockerAdvice(pr.Detail, in.opts.ConvertAdvice))
		pr.Refused++
	}
	return nil
}
