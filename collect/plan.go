package collect

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sync/errgroup"

	"github.com/ferrytool/ferry/archive"
	"github.com/ferrytool/ferry/internal/digestio"
	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/registry"
)

// Plan is what a collect would put into the archive.
type Plan struct {
	BOM *manifest.BOM
	// Packs is the pack report of the spec's bundles: every pack their
	// ClusterProfiles need and the file that provides it.
	Packs []PackNeed
	// Warnings name what was found but not collected: Palette macros,
	// values that are not image references, packs missing but allowed.
	Warnings []string
	// Gaps are what was found named but is not carried, also in the bill
	// of materials.
	Gaps []manifest.Gap
	// Delta says what receipts (Options.Since) left out of the archive and
	// why; nil for a full archive.
	Delta *manifest.DeltaPlan

	resolved []*resolved
	// get is the source client resolution used; downloads reuse its
	// authenticated clients.
	get *registry.Reader
}

// Stats sums the plan.
func (p *Plan) Stats() manifest.Stats { return p.BOM.Stats() }

// Volumes is how many volumes Collect writes for this plan, counted by the
// archive writer's own placement.
func (p *Plan) Volumes(volumeSize int64) (int, error) {
	return archive.CountVolumes(p.BOM, volumeSize)
}

// MissingPacks lists the needed packs no file provides.
func (p *Plan) MissingPacks() []PackNeed {
	var out []PackNeed
	for _, n := range p.Packs {
		if n.Provided == "" {
			out = append(out, n)
		}
	}
	return out
}

// imageWant is an image some source asked for.
type imageWant struct {
	ref     string // normalised
	reasons []manifest.Reason
}

// planner resolves one spec.
type planner struct {
	opts   Options
	spec   *manifest.TransferSpec
	cache  *Cache
	images *imageResolver

	mu       sync.Mutex
	indexes  map[string]*chartIndex
	wants    map[string]*imageWant
	order    []string
	warnings []string
	arts     []*resolved
	gaps     gapBook
	// attached holds what is attached to each image, by image name, and
	// verifications the outcome of checking image signatures.
	attached      map[string]*attachedTo
	verifications []manifest.ImageVerification
	// prefetch, when set, is told about each image as it is resolved, so
	// that its downloads start before the plan is done.
	prefetch func(*resolved)
}

func (p *planner) warn(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.mu.Lock()
	for _, w := range p.warnings {
		if w == msg {
			p.mu.Unlock()
			return
		}
	}
	p.warnings = append(p.warnings, msg)
	p.mu.Unlock()
	p.opts.Logger.Warn(msg)
	if p.opts.Progress.OnWarning != nil {
		p.opts.Progress.OnWarning(msg)
	}
}

// wantImage queues an image; a reference that does not parse, or holds a
// macro, becomes a warning naming where it was found.
func (p *planner) wantImage(ref string, why manifest.Reason) {
	if isPaletteMacro(ref) {
		p.warn("%s: %s: image %q holds a macro only the platform can expand; not collected", why.From, why.Detail, ref)
		return
	}
	norm, err := NormalizeImage(ref)
	if err != nil {
		p.warn("%s: %s: %q is not an image reference; not collected", why.From, why.Detail, ref)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	w, ok := p.wants[norm]
	if !ok {
		w = &imageWant{ref: norm}
		p.wants[norm] = w
		p.order = append(p.order, norm)
	}
	w.reasons = appendReason(w.reasons, why)
}

func appendReason(rs []manifest.Reason, r manifest.Reason) []manifest.Reason {
	for _, x := range rs {
		if x == r {
			return rs
		}
	}
	return append(rs, r)
}

// newPlanner plans with get as the source reader; nil makes one.
func newPlanner(opts Options, cache *Cache, get *registry.Reader) (*planner, error) {
	if opts.Spec == nil || opts.Spec.Empty() {
		return nil, ErrNothing
	}
	if err := opts.Spec.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if err := checkReferrerOptions(opts); err != nil {
		return nil, err
	}
	var platforms []v1.Platform
	for _, s := range opts.Spec.Platforms {
		pl, err := v1.ParsePlatform(s)
		if err != nil {
			return nil, fmt.Errorf("%w: platform %q: %v", ErrUsage, s, err)
		}
		platforms = append(platforms, *pl)
	}
	// One reader for the plan and the downloads, and the puller shares
	// its transport: each source registry's version check is answered
	// once, not once per repository and client.
	raw := get
	if raw == nil {
		raw = newSourceReader(opts)
	}
	puller, err := remote.NewPuller(remote.WithTransport(raw.Transport()), remote.WithAuthFromKeychain(opts.Keychain), remote.WithUserAgent(userAgent(opts.Tool)))
	if err != nil {
		return nil, err
	}
	ms, err := newMirrors(opts.Spec.RegistryMirrors, opts.PlainHTTP)
	if err != nil {
		return nil, err
	}
	return &planner{
		opts:  opts,
		spec:  opts.Spec,
		cache: cache,
		images: &imageResolver{puller: puller, raw: raw, cache: cache, plainHTTP: opts.PlainHTTP, platforms: platforms,
			mirrors: ms, sources: newSourceChecks(opts.SourceCheckTimeout), convert: opts.Spec.ConvertOCI},
		indexes: map[string]*chartIndex{},
		wants:   map[string]*imageWant{},
	}, nil
}

// plan resolves everything, in the order that fails cheapest and safest:
// pack signatures before anything else, then bundles and their pack report,
// then pack tarballs, charts and images.
func (p *planner) plan(ctx context.Context) (*Plan, error) {
	spec := p.spec
	if why := p.cache.Rebuilt(); why != "" {
		p.warn("%s", why)
	}
	// 1. Artifact Studio packs: verify every signature first.
	var packs []*pack
	var tarballs []manifest.PackSpec
	for _, ps := range spec.Packs {
		if packFormat(ps.File) != "zst" {
			tarballs = append(tarballs, ps)
			continue
		}
		pk, err := p.verifyZstPack(ctx, ps)
		if err != nil {
			return nil, err
		}
		pk.res.artifact.Reasons = []manifest.Reason{packReason(ps)}
		packs = append(packs, pk)
		p.progressResolved(pk.res.artifact)
	}
	// 2. Pack tarballs: read pack.json for name and version.
	var contents []*packContent
	var tpacks []*pack
	for _, ps := range tarballs {
		pk, c, err := p.tarballPack(ctx, ps)
		if err != nil {
			return nil, err
		}
		pk.res.artifact.Reasons = []manifest.Reason{packReason(ps)}
		packs = append(packs, pk)
		tpacks = append(tpacks, pk)
		contents = append(contents, c)
		p.progressResolved(pk.res.artifact)
	}
	// 3. Bundles: the pack report, then chart requests.
	var needs []PackNeed
	var charts []chartRequest
	for _, bs := range spec.Bundles {
		bd, err := p.readBundle(ctx, bs)
		if err != nil {
			return nil, err
		}
		bd.res.artifact.Reasons = []manifest.Reason{{From: bd.origin, Detail: "bundle " + bs.File}}
		p.arts = append(p.arts, bd.res)
		p.progressResolved(bd.res.artifact)
		needs = append(needs, p.bundleNeeds(bd)...)
		reqs, err := p.bundleCharts(bd)
		if err != nil {
			return nil, err
		}
		charts = append(charts, reqs...)
	}
	if err := p.matchPacks(needs, packs); err != nil {
		return nil, err
	}
	for _, pk := range packs {
		p.arts = append(p.arts, pk.res)
	}
	for i, pk := range tpacks {
		where := "pack " + pk.name + " " + pk.version
		refs, warns := packImages(contents[i].values, where+": values.yaml")
		for _, w := range warns {
			p.warn("%s", w)
		}
		for _, fi := range refs {
			p.wantImage(fi.Ref, manifest.Reason{From: "pack", Detail: pk.name + " " + pk.version + ": values.yaml " + fi.Where})
		}
		if err := p.packCharts(ctx, pk, contents[i], "pack"); err != nil {
			return nil, err
		}
	}
	// 4. Charts named by the spec, then those of bundles.
	for i, c := range spec.Charts {
		req, err := p.specChartRequest(i, c)
		if err != nil {
			return nil, err
		}
		charts = append([]chartRequest{req}, charts...)
	}
	if err := p.collectCharts(ctx, charts); err != nil {
		return nil, err
	}
	// 5. Images named by the spec, then resolve every image.
	for i, im := range spec.Images {
		detail := fmt.Sprintf("images[%d]", i)
		if originOf(im.Origin) == manifest.OriginFlag {
			detail = "image " + im.Ref
		}
		if _, err := NormalizeImage(im.Ref); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrUsage, err)
		}
		p.wantImage(im.Ref, manifest.Reason{From: originOf(im.Origin), Detail: detail})
	}
	if err := p.resolveImages(ctx); err != nil {
		return nil, err
	}
	if err := p.resolveReferrers(ctx); err != nil {
		return nil, err
	}
	if err := p.verifyImages(ctx); err != nil {
		return nil, err
	}
	return p.build(needs)
}

func packReason(ps manifest.PackSpec) manifest.Reason {
	return manifest.Reason{From: originOf(ps.Origin), Detail: "pack " + ps.File}
}

func (p *planner) progressResolved(a manifest.Artifact) {
	if p.opts.Progress.OnResolved != nil {
		p.opts.Progress.OnResolved(a)
	}
}

// matchPacks fills the pack report and fails on a missing pack unless the
// spec allows it. A provided pack also carries the bundle's reason.
func (p *planner) matchPacks(needs []PackNeed, packs []*pack) error {
	var missing []PackNeed
	for i := range needs {
		n := &needs[i]
		for _, pk := range packs {
			if pk.name == n.Name && (n.Version == "" || pk.version == n.Version) {
				n.Provided = pk.file
				pk.res.artifact.Reasons = appendReason(pk.res.artifact.Reasons, manifest.Reason{From: "bundle", Detail: fmt.Sprintf("bundle %s: ClusterProfile %s", n.Bundle, n.Profile)})
				break
			}
		}
		if n.Provided == "" {
			missing = append(missing, *n)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if p.spec.AllowMissingPacks {
		for _, m := range missing {
			p.warn("pack %s is needed but not provided; collected without it, as missing packs are allowed", packNeedText(m))
		}
		return nil
	}
	return &MissingPacksError{Packs: missing}
}

// MissingPacksError is a collect of bundles whose profiles need packs the
// spec does not provide, when missing packs are not allowed
// (TransferSpec.AllowMissingPacks). It is ErrMissingPack.
type MissingPacksError struct {
	Packs []PackNeed
}

func (e *MissingPacksError) Error() string {
	names := make([]string, len(e.Packs))
	for i, n := range e.Packs {
		names[i] = packNeedText(n)
	}
	return fmt.Sprintf("%v: %s; add them to the spec's packs, or allow them to be missing with allowMissingPacks in the spec",
		ErrMissingPack, strings.Join(names, "; "))
}

func (e *MissingPacksError) Unwrap() error { return ErrMissingPack }

// packNeedText names a needed pack and who needs it.
func packNeedText(n PackNeed) string {
	return fmt.Sprintf("%s %s (bundle %s, ClusterProfile %s)", n.Name, n.Version, n.Bundle, n.Profile)
}

// resolveImages resolves every wanted image in parallel.
func (p *planner) resolveImages(ctx context.Context) error {
	results := make([]*resolved, len(p.order))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.opts.Jobs)
	for i, ref := range p.order {
		w := p.wants[ref]
		g.Go(func() error {
			r, err := p.images.resolveImage(gctx, w.ref)
			if err != nil {
				return p.unresolved(w, err)
			}
			r.artifact.Reasons = w.reasons
			for _, warning := range r.warnings {
				p.warn("%s", warning)
			}
			results[i] = r
			p.progressResolved(r.artifact)
			if p.prefetch != nil {
				p.prefetch(r)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	// Two references to one destination: the same content merges, other
	// content is a conflict.
	// Without a tag the digest is the key, so two digests in one repository
	// are two manifests side by side, not a conflict.
	byDest := map[string]*resolved{}
	for _, r := range results {
		if r == nil { // a gap
			continue
		}
		d := r.artifact.Dest.Key(r.artifact.Digest)
		if prev, ok := byDest[d]; ok {
			if prev.artifact.Digest != r.artifact.Digest {
				return fmt.Errorf("%w: %s (%s) and %s (%s) both go to %s", ErrConflict, prev.artifact.Source, prev.artifact.Digest, r.artifact.Source, r.artifact.Digest, d)
			}
			for _, why := range r.artifact.Reasons {
				prev.artifact.Reasons = appendReason(prev.artifact.Reasons, why)
			}
			continue
		}
		byDest[d] = r
		p.arts = append(p.arts, r)
	}
	return nil
}

func reasonText(rs []manifest.Reason) string {
	var s []string
	for _, r := range rs {
		s = append(s, strings.TrimSpace(r.From+" "+r.Detail))
	}
	return strings.Join(s, "; ")
}

// build assembles the bill of materials: artifacts sorted by kind and name,
// every blob once, children before parents.
func (p *planner) build(needs []PackNeed) (*Plan, error) {
	created := p.opts.Created
	if created.IsZero() {
		created = p.opts.Now()
	}
	bom := manifest.NewBOM("", created)
	bom.Tool = p.opts.Tool
	sort.SliceStable(p.arts, func(i, j int) bool {
		a, b := p.arts[i].artifact, p.arts[j].artifact
		if a.Kind != b.Kind {
			return kindOrder(a.Kind) < kindOrder(b.Kind)
		}
		return a.Name < b.Name
	})
	dests := map[string]string{}
	inBOM := map[string]bool{}
	for _, r := range p.arts {
		d := r.artifact.Dest.Key(r.artifact.Digest)
		if other, ok := dests[d]; ok {
			return nil, fmt.Errorf("%w: %s and %s both go to %s", ErrConflict, other, r.artifact.Source, d)
		}
		dests[d] = r.artifact.Source
		for _, b := range r.blobs {
			if !inBOM[b.blob.Digest] {
				inBOM[b.blob.Digest] = true
				bom.Blobs = append(bom.Blobs, b.blob)
			}
		}
		bom.Artifacts = append(bom.Artifacts, r.artifact)
	}
	bom.Gaps = p.gaps.list()
	bom.Verifications = p.verifications
	// The id comes from the content, so the same content collected twice
	// at the same time gets the same id, and so the same volumes.
	id, err := manifest.ContentArchiveID(bom)
	if err != nil {
		return nil, err
	}
	bom.ArchiveID = id
	if err := bom.Validate(); err != nil {
		return nil, err
	}
	return &Plan{BOM: bom, Packs: needs, Warnings: p.warnings, Gaps: bom.Gaps, resolved: p.arts, get: p.images.raw}, nil
}

// kindOrder puts what an operator checks first at the top.
func kindOrder(k manifest.ArtifactKind) int {
	switch k {
	case manifest.KindBundle:
		return 0
	case manifest.KindPack:
		return 1
	case manifest.KindChart:
		return 2
	case manifest.KindReferrer:
		return 4
	}
	return 3
}

func newDigester() *digestio.Digester { return digestio.NewDigester() }
