package ingest

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/ferrytool/ferry/manifest"
)

// A delta archive leaves out what receipts said the destination holds. Before
// any of an artifact goes up, each blob and manifest it expects is looked
// for in the artifact's repository, then in the repositories the receipts
// named; what sits only elsewhere is mounted (a blob) or copied within the
// registry (a manifest). An artifact that expects something the destination
// lacks is refused, naming the digests and the receipt that listed them,
// and nothing of it is pushed.

// checkDeltaDestination refuses, before anything is sent, a delta archive
// collected against receipts of another destination.
func checkDeltaDestination(bom *manifest.BOM, dest destination) error {
	want := bom.Destination()
	if want == "" || want == dest.key() {
		return nil
	}
	return fmt.Errorf("%w: archive %s leaves out what %s listed for %s; it can go only there, not into %s (collect a full archive, or one against a receipt of %s)",
		ErrWrongDestination, bom.ArchiveID, bom.Since[0], want, dest.key(), dest.key())
}

// expectedRepos lists the repositories expected content may be mounted or
// copied from, for the registry's credentials.
func expectedRepos(plans []*artifactPlan, dest destination) []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range plans {
		for _, e := range p.expected {
			for _, r := range e.Repositories {
				if full := dest.repo(r); !seen[full] {
					seen[full] = true
					out = append(out, full)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// expectedAt is an expected blob or manifest and the repository of the
// destination that holds it ("" when the artifact's own does).
type expectedAt struct {
	e    manifest.ExpectedBlob
	from string
}

// checkExpected makes sure every artifact of a delta archive finds what it
// expects at the destination, and refuses those that do not.
func (in *ingester) checkExpected(ctx context.Context) error {
	return fanOut(ctx, in.opts.Jobs, len(in.plans), func(ctx context.Context, i int) error {
		p := in.plans[i]
		if len(p.expected) == 0 || p.res.State == StateRefused {
			return nil
		}
		in.mu.Lock()
		got := in.tags[p]
		in.mu.Unlock()
		if p.isAt(got) {
			return nil // in already, and so is all it needs
		}
		return in.settleExpected(ctx, p)
	})
}

func (in *ingester) settleExpected(ctx context.Context, p *artifactPlan) error {
	var found []expectedAt
	var missing []manifest.ExpectedBlob
	for _, e := range p.expected {
		from, ok, err := in.findExpected(ctx, p.repo, e)
		if err != nil {
			return err
		}
		if !ok {
			missing = append(missing, e)
			continue
		}
		found = append(found, expectedAt{e: e, from: from})
	}
	if len(missing) == 0 && !in.opts.DryRun {
		var err error
		if missing, err = in.bringExpected(ctx, p, found); err != nil {
			return err
		}
	}
	if len(missing) > 0 {
		p.res.State, p.res.Cause, p.res.Reason = StateRefused, CauseExpected, in.missingReason(missing)
	}
	return nil
}

// findExpected looks for an expected blob or manifest in repo, then in the
// other repositories the receipts and the journal name.
func (in *ingester) findExpected(ctx context.Context, repo string, e manifest.ExpectedBlob) (string, bool, error) {
	if in.isPresent(repo, e.Digest) {
		return "", true, nil
	}
	candidates := []string{repo}
	for _, r := range e.Repositories {
		if full := in.dest.repo(r); !contains(candidates, full) {
			candidates = append(candidates, full)
		}
	}
	if !e.Manifest {
		for _, r := range in.presentRepos(e.Digest) {
			if !contains(candidates, r) {
				candidates = append(candidates, r)
			}
		}
	}
	for _, r := range candidates {
		ok, err := in.holds(ctx, r, e)
		if err != nil {
			return "", false, err
		}
		if !ok {
			continue
		}
		if r == repo {
			if !e.Manifest {
				in.setPresent(repo, e.Digest)
			}
			return "", true, nil
		}
		return r, true, nil
	}
	return "", false, nil
}

func (in *ingester) holds(ctx context.Context, repo string, e manifest.ExpectedBlob) (bool, error) {
	if e.Manifest {
		got, err := in.reg.ManifestDigest(ctx, repo, e.Digest)
		if err != nil {
			return false, classify(in.dest.host, fmt.Errorf("HEAD manifest %s@%s: %w", repo, e.Digest, err))
		}
		return got == e.Digest, nil
	}
	ok, err := in.reg.BlobExists(ctx, repo, e.Digest)
	if err != nil {
		return false, classify(in.dest.host, fmt.Errorf("HEAD %s@%s: %w", repo, e.Digest, err))
	}
	return ok, nil
}

// bringExpected puts what the artifact expects into its repository: blobs
// mounted from where they are, then manifests copied, indexes last so
// their children are there first. The artifact's own manifest is only
// read: it goes under its tag with the others'. It returns what the
// registry would not mount or serve.
func (in *ingester) bringExpected(ctx context.Context, p *artifactPlan, found []expectedAt) ([]manifest.ExpectedBlob, error) {
	var missing []manifest.ExpectedBlob
	type copied struct {
		e         manifest.ExpectedBlob
		data      []byte
		mediaType string
	}
	var puts []copied
	for _, f := range found {
		d := f.e.Digest
		if !f.e.Manifest {
			if f.from == "" {
				continue
			}
			ok, err := in.reg.MountBlob(ctx, p.repo, d, f.from)
			if err != nil {
				return nil, classify(in.dest.host, fmt.Errorf("mount %s from %s into %s: %w", d, f.from, p.repo, err))
			}
			if !ok {
				missing = append(missing, f.e)
				continue
			}
			in.setPresent(p.repo, d)
			in.recordBlob(p.repo, manifest.Blob{Digest: d, Size: f.e.Size}, BlobMounted)
			in.outcome(manifest.Blob{Digest: d, Size: f.e.Size}, p.repo, BlobMounted)
			continue
		}
		root := d == p.a.Digest
		if f.from == "" && !root {
			continue
		}
		in.mu.Lock()
		have := in.manifests[d]
		in.mu.Unlock()
		if root && have != nil && f.from == "" {
			continue
		}
		src := f.from
		if src == "" {
			src = p.repo
		}
		data, mt, err := in.reg.FetchManifest(ctx, src, d)
		if err != nil {
			return nil, classify(in.dest.host, fmt.Errorf("GET manifest %s@%s: %w", src, d, err))
		}
		if digestOf(data) != d {
			// The registry serves other bytes under the digest: treat it
			// as not there rather than push what was not signed for.
			missing = append(missing, f.e)
			continue
		}
		puts = append(puts, copied{e: f.e, data: data, mediaType: manifestMediaType(mt, data)})
	}
	if len(missing) > 0 {
		return missing, nil
	}
	sort.SliceStable(puts, func(i, j int) bool {
		return !manifest.IsIndex(puts[i].mediaType) && manifest.IsIndex(puts[j].mediaType)
	})
	for _, c := range puts {
		d := c.e.Digest
		if d == p.a.Digest {
			// Its bytes and media type join the artifact's manifests, so
			// it goes under the tag as the last of them.
			in.mu.Lock()
			in.manifests[d] = c.data
			in.mu.Unlock()
			p.manifests[len(p.manifests)-1].MediaType = c.mediaType
			continue
		}
		if err := in.reg.PutManifest(ctx, p.repo, d, c.mediaType, c.data); err != nil {
			return nil, classify(in.dest.host, fmt.Errorf("PUT manifest %s@%s copied within the registry: %w", p.repo, d, err))
		}
	}
	return nil, nil
}

// missingReason names what the destination lacks, by the receipt that
// said it was there.
func (in *ingester) missingReason(missing []manifest.ExpectedBlob) string {
	byReceipt := map[int][]string{}
	var order []int
	for _, e := range missing {
		if _, ok := byReceipt[e.Receipt]; !ok {
			order = append(order, e.Receipt)
		}
		kind := "blob"
		if e.Manifest {
			kind = "manifest"
		}
		byReceipt[e.Receipt] = append(byReceipt[e.Receipt], fmt.Sprintf("%s %s (%s)", kind, e.Digest, humanSize(e.Size)))
	}
	sort.Ints(order)
	var parts []string
	for _, i := range order {
		parts = append(parts, fmt.Sprintf("%s, which %s listed", strings.Join(byReceipt[i], ", "), in.vs.bom.ExpectedFrom(manifest.ExpectedBlob{Receipt: i})))
	}
	return fmt.Sprintf("the destination lacks %d blob(s) and manifest(s) this delta archive left out: %s; nothing of the artifact was pushed (ingest a full archive, or collect a delta against a current receipt)",
		len(missing), strings.Join(parts, "; "))
}
