package ingest

import (
	"fmt"
	"sort"
	"strings"

	"github.com/ferrytool/ferry/manifest"
)

// DigestChange is a manifest converted to its OCI form, under a new
// digest, by ingest --convert-oci or collect --convert-oci. Layer and config bytes never change, only the
// manifests (and, in a list, the child digests they reference).
type DigestChange struct {
	From string `json:"from"`
	To   string `json:"to"`
	// MediaType is the media type pushed (the OCI one).
	MediaType string `json:"mediaType"`
	// Root marks the artifact's own manifest, the one its tag points at.
	Root bool `json:"root,omitempty"`
}

// StaleReference is a reference that pins an image by a digest which
// conversion changed: it still names the Docker digest, which the registry
// does not hold, so whatever uses it (a chart value, a WorkloadProfile, a
// pack's values) must be pointed at the new one.
type StaleReference struct {
	Artifact  string `json:"artifact"`
	Reference string `json:"reference"`
	From      string `json:"from"`
	To        string `json:"to"`
	// Where lists what asked for the reference, from the bill of
	// materials' reasons (chart template and field, pack, spec).
	Where []string `json:"where,omitempty"`
}

// converted is one manifest in the form ingest pushes it.
type converted struct {
	mediaType string
	data      []byte
	digest    string
}

// convertPlan computes the OCI form of every Docker manifest of the
// artifact, children first so a list references its converted children.
// get returns a manifest's verified bytes, nil when not at hand; an
// artifact whose Docker manifests are not all at hand keeps no conversion
// and reports false, so it waits for them rather than pushing half of it.
//
// An artifact with a parent that is not Docker (an OCI index over Docker
// manifests) is left as it is, with a warning, as collect leaves it:
// converting its children would push them under new digests while the
// index, which ferry does not rewrite, still names the old ones.
func convertPlan(p *artifactPlan, get func(digest string) []byte) (bool, error) {
	p.pushAs, p.res.Converted, p.res.PushedDigest, p.warning = nil, nil, "", ""
	p.digest = p.a.Digest
	types := make([]string, len(p.manifests))
	var docker string
	for i, m := range p.manifests {
		types[i] = manifestMediaType(m.MediaType, get(m.Digest))
		if manifest.IsDocker(types[i]) && docker == "" {
			docker = m.Digest
		}
	}
	for i, m := range p.manifests {
		if docker != "" && manifest.IsIndex(types[i]) && !manifest.IsDocker(types[i]) {
			p.warning = fmt.Sprintf("artifact %s: OCI index %s references Docker manifest %s; kept as it is (the conversion to OCI rewrites only Docker manifests and lists, and what they reference)",
				p.a.Name, m.Digest, docker)
			return true, nil
		}
	}
	children := map[string]manifest.Descriptor{}
	var changes []DigestChange
	pushAs := map[string]converted{}
	for i, m := range p.manifests {
		mt := types[i]
		if !manifest.IsDocker(mt) {
			continue
		}
		data := get(m.Digest)
		if data == nil {
			return false, nil
		}
		newType, newData, err := manifest.ConvertToOCI(mt, data, children)
		if err != nil {
			return false, fmt.Errorf("artifact %s: convert manifest %s to OCI: %w", p.a.Name, m.Digest, err)
		}
		c := converted{mediaType: newType, data: newData, digest: digestOf(newData)}
		pushAs[m.Digest] = c
		children[m.Digest] = manifest.Descriptor{MediaType: newType, Digest: c.digest, Size: int64(len(newData))}
		changes = append(changes, DigestChange{From: m.Digest, To: c.digest, MediaType: newType, Root: m.Digest == p.a.Digest})
	}
	if len(pushAs) > 0 {
		p.pushAs, p.res.Converted = pushAs, changes
		if c, ok := pushAs[p.a.Digest]; ok {
			p.digest, p.res.PushedDigest, p.ociDigest = c.digest, c.digest, c.digest
			if p.a.Dest.Tag == "" {
				// Without a tag the artifact is addressed by its digest,
				// which is now the converted one.
				p.res.Destination = strings.TrimSuffix(p.res.Destination, p.ref) + c.digest
				p.ref = c.digest
			}
		}
	}
	return true, nil
}

// pushForm returns what to push for a manifest of the plan: its converted
// form when there is one, else the bytes given.
func (p *artifactPlan) pushForm(m manifest.Blob, data []byte) converted {
	if c, ok := p.pushAs[m.Digest]; ok {
		return c
	}
	return converted{mediaType: manifestMediaType(m.MediaType, data), data: data, digest: m.Digest}
}

// staleReferences lists the artifacts whose source reference pins a digest
// that conversion changed, here or at collect (the signed record of
// `collect --convert-oci`). The bill of materials' reasons say where each
// reference came from (chart template and field, pack values, bundle).
func staleReferences(plans []*artifactPlan) []StaleReference {
	var out []StaleReference
	for _, p := range plans {
		_, pinned, ok := strings.Cut(p.a.Source, "@")
		if !ok {
			continue
		}
		for _, c := range append(append([]DigestChange(nil), p.res.ConvertedByCollect...), p.res.Converted...) {
			if pinned != c.From {
				continue
			}
			s := StaleReference{Artifact: p.a.Name, Reference: p.a.Source, From: c.From, To: c.To}
			for _, r := range p.a.Reasons {
				w := r.From
				if r.Detail != "" {
					w += ": " + r.Detail
				}
				s.Where = append(s.Where, w)
			}
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Artifact < out[j].Artifact })
	return out
}

// DigestMap returns every digest conversion changed, source to pushed,
// whether collect or this run converted, for rewriting references
// elsewhere (cluster import --rewrite-digests).
func (r *Report) DigestMap() map[string]string {
	m := map[string]string{}
	for _, a := range r.Artifacts {
		for _, c := range a.ConvertedByCollect {
			m[c.From] = c.To
		}
		for _, c := range a.Converted {
			m[c.From] = c.To
		}
	}
	return m
}

// convertPlans converts every plan whose manifests are at hand; the others
// wait for the volumes that hold them.
func convertPlans(plans []*artifactPlan, get func(string) []byte) error {
	for _, p := range plans {
		if _, err := convertPlan(p, get); err != nil {
			return err
		}
	}
	return nil
}

// noteOCIForms records, without converting, the digest each plan's OCI
// form would have, so validation accepts an artifact that an earlier run
// pushed with --convert-oci.
func noteOCIForms(plans []*artifactPlan, get func(string) []byte) {
	for _, p := range plans {
		c := *p
		if ok, err := convertPlan(&c, get); ok && err == nil && c.digest != p.a.Digest {
			p.ociDigest = c.digest
		}
	}
}

// dockerManifests lists the Docker manifests of the plans, the ones whose
// bytes conversion needs.
func dockerManifests(plans []*artifactPlan) map[string]manifest.Blob {
	out := map[string]manifest.Blob{}
	for _, p := range plans {
		for _, m := range p.manifests {
			if manifest.IsDocker(m.MediaType) {
				out[m.Digest] = m
			}
		}
	}
	return out
}
