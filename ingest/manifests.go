package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/ferrytool/ferry/internal/digestio"
	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/registry"
	"github.com/ferrytool/ferry/store"
)

func digestOf(data []byte) string { return digestio.FromBytes(data) }

// pushManifests decides, per artifact, whether it can be completed now and
// pushes the manifests of those that can: children by digest, then the
// artifact's own manifest by tag. With CopyOptions.Atomic nothing is tagged
// unless every artifact can be (see pushAtomic).
func (in *ingester) pushManifests(ctx context.Context) error {
	loc := in.locator()
	ready := make([]bool, len(in.plans))
	err := fanOut(ctx, in.opts.Jobs, len(in.plans), func(ctx context.Context, i int) error {
		p := in.plans[i]
		if p.res.State == StateRefused || p.res.State == StateWaiting {
			return nil // refused before the blobs (refuseDocker, checkImages), or its signatures wait
		}
		ok, err := in.assess(ctx, p, loc)
		ready[i] = ok
		return err
	})
	if err != nil {
		return err
	}
	if in.opts.Atomic {
		in.holdForAtomic(ready)
	}
	if in.opts.DryRun {
		for i, p := range in.plans {
			if ready[i] {
				p.res.State = StateWouldPush
			}
			in.settle(p)
		}
		return nil
	}
	// Attached artifacts follow their subjects (pushReferrers).
	if in.opts.Atomic {
		if err := in.pushAtomic(ctx, ready); err != nil {
			return err
		}
		return in.pushReferrers(ctx, ready)
	}
	err = fanOut(ctx, in.opts.Jobs, len(in.plans), func(ctx context.Context, i int) error {
		p := in.plans[i]
		if p.isReferrer() {
			return nil
		}
		if !ready[i] {
			in.settle(p)
			return nil
		}
		ok, err := in.completeArtifact(ctx, p, true)
		if err != nil {
			return err
		}
		if ok {
			p.res.State = StatePushed
		}
		in.settle(p)
		return nil
	})
	if err != nil {
		return err
	}
	return in.pushReferrers(ctx, ready)
}

// pushAtomic pushes the ready artifacts all or nothing. A registry may
// refuse a manifest only when it is PUT (a Docker manifest into a default
// Zot), so every manifest, the artifacts' own included, is first stored by
// digest alone, which no one pulls by name; the tags go on only when none
// was refused. A refusal leaves some manifests stored by digest, but no
// tag of this run.
func (in *ingester) pushAtomic(ctx context.Context, ready []bool) error {
	stored := make([]bool, len(in.plans))
	err := fanOut(ctx, in.opts.Jobs, len(in.plans), func(ctx context.Context, i int) error {
		if !ready[i] || in.plans[i].isReferrer() {
			return nil
		}
		ok, err := in.completeArtifact(ctx, in.plans[i], false)
		stored[i] = ok
		return err
	})
	if err != nil {
		return err
	}
	var refused []string
	for i, p := range in.plans {
		if ready[i] && !stored[i] && !p.isReferrer() {
			refused = append(refused, p.a.Name)
		}
	}
	if len(refused) > 0 {
		for i, p := range in.plans {
			if p.isReferrer() {
				continue // refused with their subjects (pushReferrers)
			}
			if stored[i] {
				p.res.State, p.res.Cause = StateRefused, CauseAtomic
				p.res.Reason = "atomic: no tag was set because the registry refused " + strings.Join(refused, ", ") +
					"; its manifests are stored by digest only"
			}
			in.settle(p)
		}
		return nil
	}
	// Every artifact has a tag (digest-only ones get DigestTag's), so the
	// staging ends tagged and nothing stays for a garbage collector.
	return fanOut(ctx, in.opts.Jobs, len(in.plans), func(ctx context.Context, i int) error {
		p := in.plans[i]
		if p.isReferrer() {
			return nil
		}
		if !ready[i] {
			in.settle(p)
			return nil
		}
		ok := true
		if p.a.Dest.Tag != "" {
			root := p.manifests[len(p.manifests)-1]
			var err error
			if ok, err = in.putManifest(ctx, p, p.pushForm(root, in.manifests[root.Digest]), true, false); err != nil {
				return err
			}
		}
		if ok {
			p.res.State = StatePushed
		}
		in.settle(p)
		return nil
	})
}

func (in *ingester) settle(p *artifactPlan) {
	if in.opts.Progress.OnArtifact != nil {
		in.opts.Progress.OnArtifact(p.res)
	}
}

// isAt reports whether a manifest digest found under the artifact's tag is
// the artifact: its digest as pushed, or its OCI form's, which an earlier
// run with conversion pushed.
func (p *artifactPlan) isAt(got string) bool {
	return got != "" && (got == p.digest || p.ociDigest != "" && got == p.ociDigest)
}

// tagDigest asks once per run what the artifact's tag resolves to.
func (in *ingester) tagDigest(ctx context.Context, p *artifactPlan) (string, error) {
	in.mu.Lock()
	got, ok := in.tags[p]
	in.mu.Unlock()
	if ok {
		return got, nil
	}
	got, err := in.reg.ManifestDigest(ctx, p.repo, p.ref)
	if err != nil {
		return "", classify(in.dest.host, fmt.Errorf("HEAD %s:%s: %w", p.repo, p.ref, err))
	}
	in.mu.Lock()
	in.tags[p] = got
	in.mu.Unlock()
	return got, nil
}

// settled reports whether an artifact should be in the registry after
// this run, for the final validation.
func (in *ingester) settled(p *artifactPlan) bool {
	return p.res.State == StatePushed || p.res.State == StatePresent
}

// locator places missing blobs in volumes, from this run's volumes and
// those recorded by earlier runs.
func (in *ingester) locator() *locator {
	vols := map[int]store.VolumeRecord{}
	if in.journal != nil {
		if rec, _, _, ok, err := in.journal.Archive(in.vs.bom.ArchiveID); err == nil && ok {
			for n, v := range rec.Volumes {
				vols[n] = v
			}
		}
	}
	for _, v := range in.vs.vols {
		vols[v.number] = volumeRecord(v)
	}
	return newLocator(in.vs.bom, vols)
}

// assess sets the artifact's state unless it is ready to be pushed.
func (in *ingester) assess(ctx context.Context, p *artifactPlan, loc *locator) (bool, error) {
	for _, b := range append(append([]manifest.Blob(nil), p.layers...), p.manifests...) {
		if why, bad := in.isBad(b.Digest); bad {
			p.res.State, p.res.Cause, p.res.Reason = StateRefused, CauseVerification, "blob "+b.Digest+" failed verification: "+why
			return false, nil
		}
	}
	got, err := in.tagDigest(ctx, p)
	if err != nil {
		return false, err
	}
	if p.isAt(got) {
		// The second: an earlier run pushed its OCI form (ConvertOCI).
		p.res.State = StatePresent
		return false, nil
	}
	var missing []manifest.Blob
	for _, b := range p.layers {
		if in.isPresent(p.repo, b.Digest) {
			continue
		}
		if in.opts.DryRun {
			if ok, _ := in.vs.available(b); ok {
				p.res.ToSend += b.Size
				continue
			}
		}
		missing = append(missing, b)
	}
	for _, m := range p.manifests {
		if in.manifests[m.Digest] != nil {
			continue
		}
		if in.opts.ConvertOCI && manifest.IsDocker(m.MediaType) {
			// Its OCI form needs its bytes, whatever the registry holds.
			missing = append(missing, m)
			continue
		}
		if m.Digest != p.a.Digest {
			d, err := in.reg.ManifestDigest(ctx, p.repo, m.Digest)
			if err != nil {
				return false, classify(in.dest.host, err)
			}
			if d == m.Digest {
				continue
			}
		}
		missing = append(missing, m)
	}
	if len(missing) > 0 {
		var ranges []volumeRange
		for _, b := range missing {
			if why, ok := in.previous.Bad[b.Digest]; ok {
				p.res.State, p.res.Cause, p.res.Reason = StateRefused, CauseVerification, "blob "+b.Digest+" failed verification in an earlier run: "+why
				return false, nil
			}
			p.res.MissingBlobs++
			p.res.MissingBytes += b.Size
			ranges = append(ranges, loc.where(b.Digest)...)
		}
		p.res.State = StateWaiting
		p.res.WaitingFor = describeVolumes(ranges)
		p.res.Reason = fmt.Sprintf("%d blob(s), %s, are in %s", p.res.MissingBlobs, humanSize(p.res.MissingBytes), p.res.WaitingFor)
		return false, nil
	}
	if in.opts.DryRun {
		for _, m := range p.manifests {
			p.res.ToSend += m.Size
		}
		return true, nil
	}
	if err := in.checkPack(ctx, p); err != nil {
		var refusal *packRefusal
		if errors.As(err, &refusal) {
			p.res.State, p.res.Cause, p.res.Reason = StateRefused, CauseVerification, refusal.Error()
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// holdForAtomic keeps every artifact out unless all can go in.
func (in *ingester) holdForAtomic(ready []bool) {
	var refused, waiting []string
	for _, p := range in.plans {
		switch p.res.State {
		case StateRefused:
			refused = append(refused, p.a.Name)
		case StateWaiting:
			waiting = append(waiting, p.a.Name)
		}
	}
	if len(refused) == 0 && len(waiting) == 0 {
		return
	}
	for i, p := range in.plans {
		if !ready[i] {
			continue
		}
		ready[i] = false
		if len(refused) > 0 {
			p.res.State, p.res.Cause = StateRefused, CauseAtomic
			p.res.Reason = "atomic: nothing is pushed because " + strings.Join(refused, ", ") + " was refused"
		} else {
			p.res.State = StateWaiting
			p.res.WaitingFor = "the other artifacts of the atomic push"
			p.res.Reason = "atomic: nothing is pushed until " + strings.Join(waiting, ", ") + " can go in too"
		}
	}
}

// at names where a manifest of the artifact goes: REPO:TAG for its own
// manifest pushed by tag, REPO@DIGEST otherwise.
func (p *artifactPlan) at(tagged bool) string {
	if tagged && p.a.Dest.Tag != "" {
		return p.repo + ":" + p.ref
	}
	return p.repo + "@" + p.digest
}

// completeArtifact pushes an artifact's manifests, children first, its own
// manifest last: by tag when tag is set, else by digest. It reports false
// when the registry refused one, with the artifact's state set.
func (in *ingester) completeArtifact(ctx context.Context, p *artifactPlan, tag bool) (bool, error) {
	for _, m := range p.manifests {
		root := m.Digest == p.a.Digest
		data := in.manifests[m.Digest]
		if !root && data == nil {
			continue // assess found it in the registry
		}
		// No HEAD first: a manifest is small, and PUT again is what a HEAD
		// that found nothing would lead to anyway.
		pf := p.pushForm(m, data)
		if ok, err := in.putManifest(ctx, p, pf, root && tag, true); !ok || err != nil {
			return false, err
		}
	}
	return true, nil
}

// putManifest PUTs one manifest of the artifact, by the artifact's tag or
// by its digest, and records it in the journal. A refusal by the registry
// sets the artifact refused and reports false; count says whether it
// counts as a manifest pushed (tagging one stored already does not).
func (in *ingester) putManifest(ctx context.Context, p *artifactPlan, pf converted, byTag, count bool) (bool, error) {
	ref := pf.digest
	if byTag {
		ref = p.ref
	}
	// A digest tag names its content: it can never roll anything back.
	if byTag && p.a.Dest.Tag != "" && p.a.Dest.Tag != DigestTag(p.a.Digest) {
		refusal, warning, err := rollbackCheck(in.journal, in.dest.key(), p.repo, p.a.Dest.Tag, in.vs.bom, in.opts.AllowRollback)
		if err != nil {
			return false, err
		}
		if refusal != "" {
			p.res.State, p.res.Cause, p.res.Reason = StateRefused, CauseRollback, refusal
			return false, nil
		}
		if warning != "" {
			in.mu.Lock()
			in.report.Warnings = append(in.report.Warnings, warning)
			in.mu.Unlock()
		}
	}
	err := in.reg.PutManifest(ctx, p.repo, ref, pf.mediaType, pf.data)
	if blobUnknown(err) {
		// The journal said the blobs were in; the registry says not.
		if rerr := in.repairBlobs(ctx, p); rerr != nil {
			return false, rerr
		}
		err = in.reg.PutManifest(ctx, p.repo, ref, pf.mediaType, pf.data)
	}
	if err != nil {
		if refusal := manifestRefusal(err, pf.mediaType, in.opts.ConvertAdvice); refusal != "" {
			at := p.repo + "@" + ref
			if byTag && p.a.Dest.Tag != "" {
				at = p.repo + ":" + ref
			}
			p.res.State, p.res.Cause = StateRefused, CauseRegistry
			p.res.Reason = fmt.Sprintf("the registry refused manifest %s (%s) for %s: %s", pf.digest, pf.mediaType, at, refusal)
			return false, nil
		}
		return false, classify(in.dest.host, fmt.Errorf("PUT manifest %s:%s: %w", p.repo, ref, err))
	}
	in.mu.Lock()
	if count {
		in.report.Blobs.Manifests++
	}
	if byTag {
		// The registry's 201 for these bytes under the tag is the answer
		// validation would otherwise ask for again.
		in.tagged[p] = pf.digest
	}
	in.mu.Unlock()
	if in.jw != nil {
		rec := store.ManifestRecord{Archive: in.vs.bom.ArchiveID, At: in.opts.Now(), MediaType: pf.mediaType}
		if byTag && p.a.Dest.Tag != "" {
			rec.Tag = p.a.Dest.Tag
		}
		dest, repo, d := in.dest.key(), p.repo, pf.digest
		in.jw.add(func(w *store.JournalWriter) error { return w.PutManifest(dest, repo, d, rec) })
		if rec.Tag != "" {
			recordTag(in.jw, dest, repo, rec.Tag, d, in.vs.bom, rec.At)
		}
	}
	return true, nil
}

// manifestRefusal explains a registry's "no" to a manifest, or returns ""
// when the error is not a refusal of this manifest (credentials, a server
// error, the network) and so concerns the whole run.
func manifestRefusal(err error, mediaType, advice string) string {
	var se *registry.StatusError
	if !errors.As(err, &se) || se.Code < 400 || se.Code >= 500 || se.Code == http.StatusUnauthorized || se.Code == http.StatusForbidden || se.Code == http.StatusTooManyRequests {
		return ""
	}
	if msg, ok := dockerRefusal(err, mediaType); ok {
		return dockerAdvice(msg, advice)
	}
	return se.Error()
}

// blobUnknown reports whether a manifest PUT was refused for a blob the
// registry does not hold.
func blobUnknown(err error) bool {
	var te *transport.Error
	if err == nil || !errors.As(err, &te) {
		return false
	}
	for _, d := range te.Errors {
		if d.Code == transport.BlobUnknownErrorCode || d.Code == transport.ManifestBlobUnknownErrorCode {
			return true
		}
	}
	return false
}

// dockerRefusal reports whether err is a registry refusing a manifest for
// its Docker media type, the way a default Zot does (MANIFEST_INVALID or
// UNSUPPORTED with 400 or 415), with the registry's answer.
func dockerRefusal(err error, mediaType string) (string, bool) {
	if !manifest.IsDocker(mediaType) {
		return "", false
	}
	var se *registry.StatusError
	var te *transport.Error
	if !errors.As(err, &se) || se.Code != http.StatusBadRequest && se.Code != http.StatusUnsupportedMediaType || !errors.As(err, &te) {
		return "", false
	}
	for _, d := range te.Errors {
		if d.Code == transport.ManifestInvalidErrorCode || d.Code == transport.UnsupportedErrorCode {
			return se.Error(), true
		}
	}
	return "", false
}

// dockerAdvice is what to do about a refused Docker manifest: both ways
// out, and the last resort; convert (CopyOptions.ConvertAdvice) replaces the
// conversion ways, in the caller's words.
func dockerAdvice(msg, convert string) string {
	if convert == "" {
		convert = "convert them to OCI when collecting, so the archive signs the converted form (as a last resort, the push converts them with ConvertOCI, which changes the manifests' digests)"
	}
	return fmt.Sprintf("%v: %s. Either enable Docker media types in Zot (\"http\": {\"compat\": [\"docker2s2\"]}) or %s", ErrDockerMediaType, msg, convert)
}

func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
