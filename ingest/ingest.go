package ingest

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/registry"
	"github.com/ferrytool/ferry/store"
)

// Ingest pushes the artifacts of an archive's volumes into the registry.
//
// The bill of materials' signature is checked before any network traffic.
// Then every blob the volumes hold goes to each repository that needs it
// (HEAD first, a mount when another repository has it, else an upload read
// and verified straight from the volume), and every artifact whose blobs are
// all in gets its manifests, children first. Artifacts that need volumes not
// given wait for a later run (the journal remembers), and an artifact with a
// blob that fails verification is refused.
//
// The error is for what stops the whole run (signature, registry
// unreachable, credentials, journal); per-artifact outcomes are in the
// report, and Report.Err summarises them.
func Ingest(ctx context.Context, volumes []string, dst registry.Destination, opts IngestOptions) (*Report, error) {
	vs, err := openVolumes(ctx, volumes, opts.Verifier, workDir(opts.WorkDir))
	if err != nil {
		return nil, err
	}
	defer vs.close()
	if l := opts.Client.Logger; l != nil {
		l.Debug("volumes open, signature checked", "volumes", len(vs.vols))
	}
	return copyFrom(ctx, vs, dst, opts.CopyOptions)
}

func run(ctx context.Context, vs *volumeSet, opts config) (_ *Report, err error) {
	start := time.Now()
	phase := func(name string) {
		opts.Logger.Debug("phase done", "phase", name, "elapsed", time.Since(start).Round(time.Millisecond))
	}
	dest, err := parseDestination(opts.Registry)
	if err != nil {
		return nil, err
	}
	if err := checkDeltaDestination(vs.bom, dest); err != nil {
		return nil, err
	}
	plans, err := planArtifacts(vs.bom, dest, opts.Mappings)
	if err != nil {
		return nil, err
	}
	if err := checkRepositories(plans); err != nil {
		return nil, err
	}
	tagDigestOnly(plans, dest)
	in := &ingester{
		opts: &opts, dest: dest, vs: vs, plans: plans,
		report:    &Report{ArchiveID: vs.bom.ArchiveID, BOMDigest: vs.bomDigest, Registry: dest.key(), DryRun: opts.DryRun, Atomic: opts.Atomic},
		bad:       map[string]string{},
		manifests: map[string][]byte{},
		present:   map[string]map[string]bool{},
		tags:      map[*artifactPlan]string{},
		tagged:    map[*artifactPlan]string{},
		subjects:  subjectPlans(plans),
		blobs:     map[string]manifest.Blob{},
	}
	for _, b := range vs.bom.Blobs {
		in.blobs[b.Digest] = b
	}
	if opts.Journal != nil {
		in.journal = opts.Journal
		if !opts.DryRun {
			in.jw = newJournalWriter(opts.Journal, opts.Logger)
			defer func() {
				// Records lost on the way make the run fail: --status and
				// the next run rely on them.
				if jerr := in.jw.close(); jerr != nil && err == nil {
					err = jerr
				}
			}()
		}
	}
	for _, v := range vs.vols {
		in.report.Volumes = append(in.report.Volumes, VolumeSeen{Path: v.path, Number: v.number, Final: v.final})
	}
	in.report.Tampering = vs.problems
	if err := in.readManifests(ctx); err != nil {
		return nil, err
	}
	if err := in.recordArchive(); err != nil {
		return nil, err
	}
	if opts.ConvertOCI {
		in.report.ConvertOCI = true
		if err := convertPlans(plans, in.manifestData); err != nil {
			return nil, err
		}
	} else {
		noteOCIForms(plans, in.manifestData)
	}
	phase("read manifests, record the archive")
	var repos []string
	for _, p := range plans {
		repos = append(repos, p.repo)
	}
	repos = append(repos, expectedRepos(plans, dest)...)
	// A real run probes only when it would push Docker manifests as they
	// are: a refusing registry then refuses them before their blobs go up.
	docker, convert := dockerCounts(plans, opts.ConvertOCI)
	probeRepo := probeRepository(plans, opts.ConvertOCI)
	probe := (opts.DryRun || docker > 0) && probeRepo != ""
	reg, err := connect(ctx, &opts, dest, repos)
	if err != nil {
		return nil, err
	}
	in.reg = reg
	defer func() {
		if in.report != nil {
			in.report.Requests = reg.Requests()
		}
	}()
	phase("connect")
	// Before anything is sent; the registry only lends back signature
	// blobs an earlier run put there.
	if err := in.checkImages(ctx); err != nil {
		return nil, err
	}
	phase("image signatures")
	// What each artifact's tag holds, asked once: an artifact in already
	// needs none of its blobs looked at.
	if err := in.checkTags(ctx); err != nil {
		return nil, err
	}
	phase("tags")
	if probe {
		pr := probeDocker(ctx, reg, probeRepo)
		pr.DockerArtifacts, pr.ConvertedArtifacts = docker, convert
		if !opts.DryRun && pr.Result == ProbeRefuses {
			if err := in.refuseDocker(ctx, &pr); err != nil {
				return nil, err
			}
		}
		in.report.DockerProbe = &pr
		if opts.Progress.OnDockerProbe != nil {
			opts.Progress.OnDockerProbe(pr)
		}
		phase("docker probe")
	}
	if err := in.checkExpected(ctx); err != nil {
		return nil, err
	}
	if err := in.pushBlobs(ctx); err != nil {
		in.saveDestArchive()
		return nil, err
	}
	phase("blobs")
	if err := in.pushManifests(ctx); err != nil {
		in.saveDestArchive()
		return nil, err
	}
	phase("manifests")
	if err := in.saveDestArchive(); err != nil {
		return nil, err
	}
	for _, p := range plans {
		in.report.Artifacts = append(in.report.Artifacts, p.res)
		if p.warning != "" && opts.ConvertOCI {
			in.report.Warnings = append(in.report.Warnings, p.warning)
		}
	}
	in.report.StaleReferences = staleReferences(plans)
	in.report.SupplyChain = supplyChain(plans, in.report.Images)
	in.report.Blobs.BytesSent = in.sent.Load()
	if opts.Validate && !opts.DryRun {
		v, err := validate(ctx, reg, plans, in.settled, in.tagged)
		if err != nil {
			return in.report, err
		}
		in.report.Validation = v
		phase("validation")
	}
	return in.report, nil
}

// ingester is one run.
type ingester struct {
	opts    *config
	dest    destination
	vs      *volumeSet
	plans   []*artifactPlan
	reg     *registry.Client
	journal *store.Journal
	jw      *journalWriter // nil without a journal or in a dry run
	report  *Report
	sent    atomic.Int64

	mu sync.Mutex
	// bad maps digests that failed verification to the reason.
	bad map[string]string
	// manifests holds verified manifest bytes by digest.
	manifests map[string][]byte
	// present records, per digest, the repositories known to hold it.
	present map[string]map[string]bool
	// previous is the journal's record of earlier runs of this archive.
	previous store.DestArchive
	// touched records artifacts this run pushed something of.
	touched map[string]bool
	// tags holds what each artifact's tag resolved to when the run asked
	// ("" for nothing); tagged what this run put under it (201).
	tags, tagged map[*artifactPlan]string
	// subjects maps repo@digest to the artifacts that push that manifest,
	// for the artifacts attached to it (subjectPlans).
	subjects map[string][]*artifactPlan
	// blobs lists the bill of materials' blobs by digest.
	blobs map[string]manifest.Blob
}

// checkTags asks what every artifact's tag resolves to, in parallel. A
// tag in a repository the registry does not have resolves to nothing:
// with several artifacts to ask about, one catalog request first spares a
// HEAD (and the registry a password check) for each artifact whose
// repository is new.
func (in *ingester) checkTags(ctx context.Context) error {
	ask := in.plans
	if len(ask) >= catalogFirst {
		ask = in.absentFromCatalog(ctx, ask)
	}
	return fanOut(ctx, in.opts.Jobs, len(ask), func(ctx context.Context, i int) error {
		_, err := in.tagDigest(ctx, ask[i])
		return err
	})
}

// catalogFirst is how many tags to ask about make a catalog request first
// worth it: it costs one request, and saves one per new repository.
const catalogFirst = 4

// absentFromCatalog records an empty tag for the artifacts whose
// repository a complete first page of the catalog does not list, and
// returns the others. A registry that keeps its catalog to itself, or
// lists more than a page, leaves every tag to be asked.
func (in *ingester) absentFromCatalog(ctx context.Context, plans []*artifactPlan) []*artifactPlan {
	repos, complete, err := in.reg.CatalogPage(ctx)
	if err != nil || !complete {
		if err != nil {
			in.opts.Logger.Debug("catalog not read; asking every tag", "err", err)
		}
		return plans
	}
	listed := make(map[string]bool, len(repos))
	for _, r := range repos {
		listed[r] = true
	}
	var ask []*artifactPlan
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, p := range plans {
		if _, known := in.tags[p]; known || listed[p.repo] {
			ask = append(ask, p)
			continue
		}
		in.tags[p] = ""
	}
	return ask
}

// manifestData returns a manifest's verified bytes, nil when neither the
// volumes given nor the journal hold them.
func (in *ingester) manifestData(digest string) []byte { return in.manifests[digest] }

func (in *ingester) now() string { return in.opts.Now().UTC().Format("2006-01-02T15:04:05Z") }

func (in *ingester) markBad(digest, why string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if _, ok := in.bad[digest]; !ok {
		in.bad[digest] = why
		in.report.Blobs.Bad++
	}
}

func (in *ingester) isBad(digest string) (string, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	why, ok := in.bad[digest]
	return why, ok
}

func (in *ingester) setPresent(repo, digest string) {
	in.mu.Lock()
	if in.present[digest] == nil {
		in.present[digest] = map[string]bool{}
	}
	in.present[digest][repo] = true
	in.mu.Unlock()
}

func (in *ingester) isPresent(repo, digest string) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.present[digest][repo]
}

// presentRepos lists repositories known to hold a digest: this run's and
// the journal's, for cross-repository mounts.
func (in *ingester) presentRepos(digest string) []string {
	in.mu.Lock()
	var out []string
	for repo := range in.present[digest] {
		out = append(out, repo)
	}
	in.mu.Unlock()
	if in.journal != nil {
		if more, err := in.journal.BlobRepos(in.dest.key(), digest); err == nil {
			for _, r := range more {
				if !contains(out, r) {
					out = append(out, r)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// readManifests reads every manifest the volumes hold, verified, and keeps
// them (in memory and in the journal): the run that completes an artifact
// may not have the volume its manifests are in.
func (in *ingester) readManifests(ctx context.Context) error {
	wanted := map[string]manifest.Blob{}
	for _, p := range in.plans {
		for _, m := range p.manifests {
			wanted[m.Digest] = m
		}
	}
	digests := make([]string, 0, len(wanted))
	for d := range wanted {
		digests = append(digests, d)
	}
	sort.Strings(digests)
	keep := map[string]store.ManifestData{}
	for _, d := range digests {
		b := wanted[d]
		if ok, _ := in.vs.available(b); !ok {
			if in.journal != nil {
				if m, ok, err := in.journal.ManifestData(d); err == nil && ok && digestOf(m.Data) == d {
					in.manifests[d] = m.Data
				}
			}
			continue
		}
		data, err := in.vs.readManifest(ctx, b)
		if err != nil {
			if isBadContent(err) {
				in.markBad(d, err.Error())
				continue
			}
			return err
		}
		in.manifests[d] = data
		keep[d] = store.ManifestData{MediaType: b.MediaType, Data: data}
	}
	if in.journal != nil && !in.opts.DryRun && len(keep) > 0 {
		if err := in.journal.PutManifestData(keep); err != nil {
			return fmt.Errorf("journal %s: %w", in.journal.Path(), err)
		}
	}
	return nil
}

// recordArchive keeps the signed bill of materials and what each volume
// holds, for later runs and --status.
func (in *ingester) recordArchive() error {
	if in.journal == nil || in.vs.bomRaw == nil {
		return nil
	}
	prev, _, err := in.journal.DestArchive(in.dest.key(), in.vs.bom.ArchiveID)
	if err != nil {
		return err
	}
	in.previous = prev
	if in.opts.DryRun {
		return nil
	}
	now := in.opts.Now()
	if err := in.journal.PutArchive(in.vs.bom.ArchiveID, in.vs.bomDigest, in.vs.bomRaw, in.vs.sig, now); err != nil {
		return fmt.Errorf("journal %s: %w", in.journal.Path(), err)
	}
	vols := map[int]store.VolumeRecord{}
	for _, v := range in.vs.vols {
		rec := volumeRecord(v)
		rec.Seen = now
		vols[v.number] = rec
	}
	if err := in.journal.AddVolumes(in.vs.bom.ArchiveID, vols); err != nil {
		return fmt.Errorf("journal %s: %w", in.journal.Path(), err)
	}
	return nil
}

// saveDestArchive records this run for the destination: when, with which
// mappings, and which blobs are bad.
func (in *ingester) saveDestArchive() error {
	if in.journal == nil || in.opts.DryRun || in.vs.bomRaw == nil {
		return nil
	}
	rec := in.previous
	now := in.opts.Now()
	if rec.ArchiveID == "" {
		rec = store.DestArchive{ArchiveID: in.vs.bom.ArchiveID, FirstRun: now}
	}
	rec.LastRun = now
	rec.Mappings = nil
	for _, m := range in.opts.Mappings {
		rec.Mappings = append(rec.Mappings, m.String())
	}
	in.mu.Lock()
	if rec.Bad == nil {
		rec.Bad = map[string]string{}
	}
	for d, why := range in.bad {
		rec.Bad[d] = why
	}
	for d := range in.present {
		delete(rec.Bad, d)
	}
	in.mu.Unlock()
	rec.Refused = map[string]string{}
	for _, p := range in.plans {
		if p.res.State == StateRefused {
			rec.Refused[p.a.Name] = p.res.Reason
		}
	}
	if err := in.journal.PutDestArchive(in.dest.key(), rec); err != nil {
		return fmt.Errorf("journal %s: %w", in.journal.Path(), err)
	}
	return nil
}
