package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"

	"github.com/ferrytool/ferry/internal/digestio"
	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/registry"
)

// CauseSignature (ArtifactResult.Cause): the image's signatures did not
// verify with the keys given (Options.Images), or it carries none and signed
// images are required. Its attached artifacts are refused with it.
const CauseSignature = "signature"

// ImageVerifier checks an image's signatures again on the air-gapped side,
// from the signature artifacts the archive carries attached to it.
type ImageVerifier interface {
	// VerifyImage checks image against signatures (artifacts of
	// KindReferrer whose subject is the image), reading their manifests
	// and layers through blobs, which verifies each against its digest. It
	// returns the outcome and, when the image must not go in, why.
	VerifyImage(ctx context.Context, image manifest.Artifact, signatures []manifest.Artifact, blobs DigestOpener) (rec manifest.ImageVerification, refusal string, err error)
}

// DigestOpener opens a blob of the run's source by digest, verified.
type DigestOpener interface {
	OpenBlob(ctx context.Context, digest string) (io.ReadCloser, error)
}

// isReferrer reports whether the artifact is attached to an image: it is
// pushed after its subject, into the subject's repository.
func (p *artifactPlan) isReferrer() bool { return p.a.Referrer != nil }

// bySubject reports whether the artifact is an OCI 1.1 referrer, listed
// by its subject rather than reached from a tag.
func (p *artifactPlan) bySubject() bool {
	return p.a.Referrer != nil && p.a.Referrer.Attachment == manifest.AttachedBySubject
}

// subjectKey names a manifest in a repository.
func subjectKey(repo, digest string) string { return repo + "@" + digest }

// subjectPlans maps every manifest of the artifacts that are not referrers,
// root and platform children, to the artifacts that push it.
func subjectPlans(plans []*artifactPlan) map[string][]*artifactPlan {
	out := map[string][]*artifactPlan{}
	for _, p := range plans {
		if p.isReferrer() {
			continue
		}
		for _, m := range p.manifests {
			k := subjectKey(p.repo, m.Digest)
			out[k] = append(out[k], p)
		}
	}
	return out
}

// subjectOf returns the artifact of the referrer's subject that settled
// best: one that is in, else the first.
func (in *ingester) subjectOf(p *artifactPlan) *artifactPlan {
	subs := in.subjects[subjectKey(p.repo, p.a.Referrer.Subject)]
	for _, s := range subs {
		if in.settled(s) {
			return s
		}
	}
	if len(subs) > 0 {
		return subs[0]
	}
	return nil
}

// digestOpener reads the blobs of an image's signature artifacts by
// digest for the image check: manifests from what the run holds (volumes
// or journal), other blobs from the volumes given, else from the image's
// repository, where an earlier run that had their volume put them; every
// byte read back is checked against its signed digest.
type digestOpener struct {
	in   *ingester
	repo string
}

func (o digestOpener) OpenBlob(ctx context.Context, digest string) (io.ReadCloser, error) {
	in := o.in
	if data := in.manifests[digest]; data != nil {
		return io.NopCloser(bytes.NewReader(data)), nil
	}
	b, repos, ok := in.signatureBlob(digest, o.repo)
	if !ok {
		return nil, fmt.Errorf("blob %s is not in the bill of materials", digest)
	}
	if ok, _ := in.vs.available(b); ok {
		return in.vs.src.OpenBlob(ctx, b)
	}
	var err error
	for _, repo := range repos {
		if manifest.IsManifest(b.MediaType) {
			var data []byte
			if data, _, err = in.reg.FetchManifest(ctx, repo, digest); err == nil {
				return io.NopCloser(bytes.NewReader(data)), nil // the caller checks its digest
			}
			err = fmt.Errorf("GET %s@%s: %w", repo, digest, err)
			continue
		}
		var rc io.ReadCloser
		if rc, err = in.reg.FetchBlob(ctx, repo, digest); err == nil {
			return digestio.NewReadCloser(rc, digest, b.Size, registry.ErrRegistry), nil
		}
	}
	return nil, classify(in.dest.host, err)
}

// signatureBlob returns what the run knows of a blob of a signature
// artifact, and the repositories of the destination that may hold it when
// no volume given does: the image's own, then, for a blob a delta archive
// expects at the destination, those its receipt names.
func (in *ingester) signatureBlob(digest, repo string) (manifest.Blob, []string, bool) {
	if b, ok := in.blobs[digest]; ok {
		return b, []string{repo}, true
	}
	e, ok := in.vs.bom.ExpectedBlob(digest)
	if !ok {
		return manifest.Blob{}, nil, false
	}
	b := manifest.Blob{Digest: digest, Size: e.Size}
	if e.Manifest {
		b.MediaType = manifest.MediaTypeOCIManifest // read through the manifest endpoints
	}
	repos := []string{repo}
	for _, r := range e.Repositories {
		if r := in.dest.repo(r); r != repo {
			repos = append(repos, r)
		}
	}
	return b, repos, true
}

// readable reports whether every blob of the artifacts can be read now:
// from the volumes given, the journal, or the registry (digestOpener).
func (in *ingester) readable(ctx context.Context, arts []manifest.Artifact, repo string) (bool, error) {
	for _, a := range arts {
		for _, d := range a.Blobs {
			if in.manifests[d] != nil {
				continue
			}
			b, repos, known := in.signatureBlob(d, repo)
			if !known {
				return false, nil
			}
			if ok, _ := in.vs.available(b); ok {
				continue
			}
			got := false
			for _, r := range repos {
				var err error
				if manifest.IsManifest(b.MediaType) {
					var m string
					m, err = in.reg.ManifestDigest(ctx, r, d)
					got = m == d
				} else {
					got, err = in.reg.BlobExists(ctx, r, d)
				}
				if err != nil {
					return false, classify(in.dest.host, fmt.Errorf("HEAD %s@%s: %w", r, d, err))
				}
				if got {
					break
				}
			}
			if !got {
				return false, nil
			}
		}
	}
	return true, nil
}

// checkImages checks every image's signatures again (Options.Images),
// before anything is sent. An image the check refuses is refused with its
// attached artifacts: none of its blobs or manifests is pushed. An image
// whose signatures are neither in the volumes given nor in the registry
// waits for their volume.
func (in *ingester) checkImages(ctx context.Context) error {
	if in.opts.Images == nil {
		return nil
	}
	in.report.ImageSignatures = "checked"
	sigs := map[string][]manifest.Artifact{}
	for _, a := range in.vs.bom.Artifacts {
		if a.Referrer != nil && a.Referrer.Kind == manifest.ReferrerSignature {
			sigs[a.Referrer.Subject] = append(sigs[a.Referrer.Subject], a)
		}
	}
	for _, p := range in.plans {
		if p.a.Kind != manifest.KindImage {
			continue
		}
		s := sigs[p.a.Digest]
		ok, err := in.readable(ctx, s, p.repo)
		if err != nil {
			return err
		}
		if !ok {
			p.res.State = StateWaiting
			p.res.WaitingFor = "its signatures"
			p.res.Reason = "its signatures are in volumes not given, so it cannot be checked yet"
			continue
		}
		rec, refusal, err := in.opts.Images.VerifyImage(ctx, p.a, s, digestOpener{in: in, repo: p.repo})
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			rec = manifest.ImageVerification{Image: p.a.Name, Subject: p.a.Digest, Status: manifest.SignatureFailed, Reason: err.Error()}
			refusal = "its signatures cannot be read: " + err.Error()
		}
		in.report.Images = append(in.report.Images, rec)
		if refusal != "" {
			p.res.State, p.res.Cause, p.res.Reason = StateRefused, CauseSignature, refusal
		}
	}
	// Nothing of a refused image goes in: neither what is attached to it.
	for _, p := range in.plans {
		if !p.isReferrer() || p.res.State == StateRefused {
			continue
		}
		if s := in.subjectOf(p); s != nil && s.res.Cause == CauseSignature {
			p.res.State, p.res.Cause = StateRefused, CauseSignature
			p.res.Reason = "its subject " + s.a.Name + " was refused: " + s.res.Reason
		}
	}
	return nil
}

// pushReferrers pushes the attached artifacts after their subjects are in,
// those of one subject in turn: each by its legacy tag, or by digest with
// its subject field, and then, on a registry without the referrers API,
// listed in the referrers tag schema's index.
func (in *ingester) pushReferrers(ctx context.Context, ready []bool) error {
	groups := map[string][]int{}
	var keys []string
	for i, p := range in.plans {
		if !p.isReferrer() {
			continue
		}
		k := subjectKey(p.repo, p.a.Referrer.Subject)
		if groups[k] == nil {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], i)
	}
	sort.Strings(keys)
	return fanOut(ctx, in.opts.Jobs, len(keys), func(ctx context.Context, g int) error {
		for _, i := range groups[keys[g]] {
			if err := in.pushReferrer(ctx, in.plans[i], ready[i]); err != nil {
				return err
			}
		}
		return in.listReferrers(ctx, groups[keys[g]])
	})
}

func (in *ingester) pushReferrer(ctx context.Context, p *artifactPlan, ready bool) error {
	defer in.settle(p)
	if !ready {
		return nil
	}
	s := in.subjectOf(p)
	switch {
	case s == nil:
		p.res.State, p.res.Reason = StateWaiting, "its subject "+p.a.Referrer.Subject+" is not in the archive for "+p.repo
		return nil
	case s.res.State == StateRefused:
		p.res.State, p.res.Cause = StateRefused, s.res.Cause
		p.res.Reason = "its subject " + s.a.Name + " was refused: " + s.res.Reason
		return nil
	case !in.settled(s):
		p.res.State, p.res.WaitingFor = StateWaiting, s.res.WaitingFor
		p.res.Reason = "its subject " + s.a.Name + " is not in yet"
		return nil
	}
	ok, err := in.completeArtifact(ctx, p, true)
	if err != nil {
		return err
	}
	if ok {
		p.res.State = StatePushed
	}
	return nil
}

// referrersIndex is an OCI image index as the referrers tag schema keeps
// it. Descriptors and fields ferry does not know are kept as they are.
type referrersIndex struct {
	fields    map[string]json.RawMessage
	manifests []json.RawMessage
	digests   map[string]bool
}

func parseReferrersIndex(data []byte) (*referrersIndex, error) {
	x := &referrersIndex{fields: map[string]json.RawMessage{}, digests: map[string]bool{}}
	if data == nil {
		x.fields["schemaVersion"] = json.RawMessage("2")
		x.fields["mediaType"], _ = json.Marshal(manifest.MediaTypeOCIIndex)
		return x, nil
	}
	if err := json.Unmarshal(data, &x.fields); err != nil {
		return nil, err
	}
	if raw, ok := x.fields["manifests"]; ok {
		if err := json.Unmarshal(raw, &x.manifests); err != nil {
			return nil, err
		}
	}
	for _, m := range x.manifests {
		var d struct {
			Digest string `json:"digest"`
		}
		if json.Unmarshal(m, &d) == nil {
			x.digests[d.Digest] = true
		}
	}
	return x, nil
}

func (x *referrersIndex) add(d manifest.ReferrerDescriptor) error {
	raw, err := json.Marshal(d)
	if err != nil {
		return err
	}
	x.manifests = append(x.manifests, raw)
	x.digests[d.Digest] = true
	return nil
}

func (x *referrersIndex) marshal() ([]byte, error) {
	list, err := json.Marshal(x.manifests)
	if err != nil {
		return nil, err
	}
	x.fields["manifests"] = list
	return json.Marshal(x.fields)
}

// referrerDescriptor is how a referrer is listed for its subject: its
// manifest's digest, size and media type, its artifactType (else its
// config's media type) and its annotations, as the distribution spec has
// registries list them.
func referrerDescriptor(p *artifactPlan, data []byte) (manifest.ReferrerDescriptor, error) {
	root := p.manifests[len(p.manifests)-1]
	m, err := manifest.ParseReferrerManifest(data)
	if err != nil {
		return manifest.ReferrerDescriptor{}, fmt.Errorf("referrer %s (%s): %w", p.a.Name, root.Digest, err)
	}
	at := m.ArtifactType
	if at == "" {
		at = m.Config.MediaType
	}
	return manifest.ReferrerDescriptor{MediaType: manifestMediaType(root.MediaType, data), Digest: root.Digest, Size: root.Size, ArtifactType: at, Annotations: m.Annotations}, nil
}

// listReferrers makes the subject-attached referrers of one subject that
// are in (group, indexes into the plans) listed by the registry. A
// registry with the referrers API lists them from their subject field; on
// one without it, the index tagged with the subject's referrers tag
// (sha256-<hex>) gets the missing descriptors, and is PUT back only when
// something was missing, so a second run changes nothing. The tag is not
// recorded for the rollback check: it only ever grows, by design.
func (in *ingester) listReferrers(ctx context.Context, group []int) error {
	if in.opts.DryRun {
		return nil
	}
	var attached []*artifactPlan
	for _, i := range group {
		if p := in.plans[i]; p.bySubject() && in.settled(p) {
			attached = append(attached, p)
		}
	}
	if len(attached) == 0 {
		return nil
	}
	repo, subject := attached[0].repo, attached[0].a.Referrer.Subject
	if _, api, err := in.reg.Referrers(ctx, repo, subject); err != nil {
		return classify(in.dest.host, fmt.Errorf("GET referrers of %s@%s: %w", repo, subject, err))
	} else if api {
		// The registry lists them from their subject field; validation
		// checks that it does.
		return nil
	}
	tag := manifest.ReferrersTag(subject)
	var current []byte
	got, err := in.reg.ManifestDigest(ctx, repo, tag)
	if err != nil {
		return classify(in.dest.host, fmt.Errorf("HEAD %s:%s: %w", repo, tag, err))
	}
	if got != "" {
		if current, _, err = in.reg.FetchManifest(ctx, repo, tag); err != nil {
			return classify(in.dest.host, fmt.Errorf("GET %s:%s: %w", repo, tag, err))
		}
	}
	idx, err := parseReferrersIndex(current)
	if err != nil {
		return fmt.Errorf("%w: the referrers index %s:%s does not parse: %v", ErrRegistry, repo, tag, err)
	}
	changed := false
	for _, p := range attached {
		if idx.digests[p.digest] {
			continue
		}
		data := in.manifests[p.digest]
		if data == nil {
			if data, _, err = in.reg.FetchManifest(ctx, repo, p.digest); err != nil {
				return classify(in.dest.host, fmt.Errorf("GET %s@%s: %w", repo, p.digest, err))
			}
		}
		d, err := referrerDescriptor(p, data)
		if err != nil {
			return err
		}
		if err := idx.add(d); err != nil {
			return err
		}
		changed = true
	}
	if !changed {
		return nil
	}
	data, err := idx.marshal()
	if err != nil {
		return err
	}
	if err := in.reg.PutManifest(ctx, repo, tag, manifest.MediaTypeOCIIndex, data); err != nil {
		return classify(in.dest.host, fmt.Errorf("PUT referrers index %s:%s: %w", repo, tag, err))
	}
	in.mu.Lock()
	in.report.Blobs.Manifests++
	in.mu.Unlock()
	return nil
}

// SupplyChainImage is one image of the report's supply-chain view: the
// check of its signatures and the artifacts attached to it.
type SupplyChainImage struct {
	Image       string `json:"image"`
	Destination string `json:"destination"`
	Digest      string `json:"digest"`
	State       string `json:"state"`
	// Verification is the check of its signatures; nil when none was
	// asked for.
	Verification *manifest.ImageVerification `json:"verification,omitempty"`
	Attached     []AttachedResult            `json:"attached,omitempty"`
}

// AttachedResult is one artifact attached to an image, and its state.
type AttachedResult struct {
	Name string `json:"name"`
	manifest.Referrer
	Digest      string `json:"digest"`
	Destination string `json:"destination"`
	State       string `json:"state"`
	Reason      string `json:"reason,omitempty"`
}

// supplyChain gathers, per image, its signature check and the artifacts
// attached to it or to one of its platform manifests.
func supplyChain(plans []*artifactPlan, checks []manifest.ImageVerification) []SupplyChainImage {
	byName := map[string]*manifest.ImageVerification{}
	for i := range checks {
		byName[checks[i].Image] = &checks[i]
	}
	owners := subjectPlans(plans)
	attached := map[*artifactPlan][]AttachedResult{}
	for _, p := range plans {
		if !p.isReferrer() {
			continue
		}
		for _, s := range owners[subjectKey(p.repo, p.a.Referrer.Subject)] {
			attached[s] = append(attached[s], AttachedResult{Name: p.a.Name, Referrer: *p.a.Referrer, Digest: p.a.Digest,
				Destination: p.res.Destination, State: p.res.State, Reason: p.res.Reason})
		}
	}
	var out []SupplyChainImage
	for _, p := range plans {
		if p.a.Kind != manifest.KindImage || byName[p.a.Name] == nil && len(attached[p]) == 0 {
			continue
		}
		out = append(out, SupplyChainImage{Image: p.a.Name, Destination: p.res.Destination, Digest: p.a.Digest, State: p.res.State,
			Verification: byName[p.a.Name], Attached: attached[p]})
	}
	return out
}

// referrerListed reports whether the registry lists the referrer for its
// subject: through the referrers API where it has one, else in the
// referrers tag schema's index.
func referrerListed(ctx context.Context, reg *registry.Client, p *artifactPlan) (bool, error) {
	subject := p.a.Referrer.Subject
	listed, api, err := reg.Referrers(ctx, p.repo, subject)
	if err != nil {
		return false, fmt.Errorf("GET referrers of %s@%s: %w", p.repo, subject, err)
	}
	if !api {
		tag := manifest.ReferrersTag(subject)
		got, err := reg.ManifestDigest(ctx, p.repo, tag)
		if err != nil || got == "" {
			return false, err
		}
		data, _, err := reg.FetchManifest(ctx, p.repo, tag)
		if err != nil {
			return false, fmt.Errorf("GET %s:%s: %w", p.repo, tag, err)
		}
		idx, err := parseReferrersIndex(data)
		if err != nil {
			return false, nil
		}
		return idx.digests[p.digest], nil
	}
	for _, d := range listed {
		if d.Digest == p.digest {
			return true, nil
		}
	}
	return false, nil
}
