package collect

import (
	"context"
	"fmt"
	"sort"

	"github.com/google/go-containerregistry/pkg/name"
	"golang.org/x/sync/errgroup"

	"github.com/ferrytool/ferry/manifest"
)

// Carrying what is attached to the images of a plan: signatures,
// attestations, SBOMs and other referrers become artifacts of their own
// (manifest.KindReferrer), each linked to the manifest it is attached to.

// cachedReferrerSource is the ReferrerSource collect uses: tags resolve with
// a HEAD request and manifests come from the cache when they are there, as
// for images, so a second collect of the same content fetches no manifest;
// the referrers API is asked every time, since what is attached can change.
type cachedReferrerSource struct {
	ir  *imageResolver
	api *RemoteReferrerSource
}

// FetchManifest implements ReferrerSource.
func (s *cachedReferrerSource) FetchManifest(ctx context.Context, repo name.Repository, reference string) (SourceManifest, error) {
	digest := reference
	if manifest.CheckDigest(reference) != nil {
		desc, err := s.ir.puller.Head(ctx, repo.Tag(reference))
		if err != nil {
			return SourceManifest{}, sourceErr(repo.Name()+":"+reference, err)
		}
		digest = desc.Digest.String()
	}
	b, data, err := s.ir.manifestByDigest(ctx, repo, digest, repo.Name()+"@"+digest)
	if err != nil {
		return SourceManifest{}, err
	}
	return SourceManifest{MediaType: b.MediaType, Digest: b.Digest, Data: data}, nil
}

// ListReferrers implements ReferrerSource.
func (s *cachedReferrerSource) ListReferrers(ctx context.Context, repo name.Repository, digest string) ([]manifest.ReferrerDescriptor, error) {
	return s.api.ListReferrers(ctx, repo, digest)
}

// attachedTo is what one image of the plan carries attached: the referrer
// artifacts, in discovery order, for each of its manifests.
type attachedTo struct {
	image *resolved
	refs  []*resolved
	// manifests holds the bytes of each referrer's root manifest, by
	// digest, for checking signatures.
	manifests map[string][]byte
	// from is where the image's content, and so its attachments, came from.
	from     name.Repository
	warnings []string
}

// resolveReferrers discovers what is attached to every image of the plan and
// to every platform manifest an index carries, and adds each attachment as
// an artifact. The same attachment reached through two images (two tags of
// one digest) is carried once with both reasons. Referrers of referrers are
// not followed.
func (p *planner) resolveReferrers(ctx context.Context) error {
	mode := p.opts.Referrers
	if mode == ReferrersNone {
		return nil
	}
	images := p.imagesByName()
	src := &cachedReferrerSource{ir: p.images, api: &RemoteReferrerSource{Transport: p.images.raw.Transport(), Keychain: p.opts.Keychain, UserAgent: userAgent(p.opts.Tool)}}
	found := make([]*attachedTo, len(images))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.opts.Jobs)
	for i, im := range images {
		g.Go(func() error {
			at, err := p.attachmentsOf(gctx, src, im, mode)
			if err != nil {
				return err
			}
			found[i] = at
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	byName := map[string]*resolved{}
	byDest := map[string]*resolved{}
	for _, r := range p.arts {
		byDest[r.artifact.Dest.Key(r.artifact.Digest)] = r
	}
	p.attached = map[string]*attachedTo{}
	for _, at := range found {
		for _, w := range at.warnings {
			p.warn("%s", w)
		}
		var kept []*resolved
		for _, r := range at.refs {
			a := &r.artifact
			if prev, ok := byName[a.Name]; ok {
				for _, why := range a.Reasons {
					prev.artifact.Reasons = appendReason(prev.artifact.Reasons, why)
				}
				kept = append(kept, prev)
				continue
			}
			key := a.Dest.Key(a.Digest)
			if prev, ok := byDest[key]; ok {
				p.warn("%s of %s (%s) is not carried: %s (%s) goes to %s already", a.Referrer.Kind, at.image.artifact.Name, a.Digest, prev.artifact.Name, prev.artifact.Digest, key)
				continue
			}
			byName[a.Name], byDest[key] = r, r
			p.arts = append(p.arts, r)
			p.progressResolved(r.artifact)
			kept = append(kept, r)
		}
		at.refs = kept
		p.attached[at.image.artifact.Name] = at
	}
	return nil
}

// attachmentsOf discovers and resolves what is attached to one image's
// manifests: the root first, then each platform manifest in the order the
// archive holds them. A manifest collect rewrote (a platform subset of an
// index, a conversion to OCI) is not what the source's attachments name, so
// they are left behind with a warning.
func (p *planner) attachmentsOf(ctx context.Context, src ReferrerSource, im *resolved, mode ReferrerMode) (*attachedTo, error) {
	art := im.artifact
	from, err := p.sourceRepo(art)
	if err != nil {
		return nil, err
	}
	at := &attachedTo{image: im, from: from, manifests: map[string][]byte{}}
	rewritten := map[string]string{} // archive digest -> the source's
	for _, c := range art.Converted {
		rewritten[c.To] = c.From
	}
	if src := art.Annotations[manifest.AnnotationSourceDigest]; src != "" {
		rewritten[art.Digest] = src
	}
	subjects := []string{art.Digest}
	for _, b := range im.blobs {
		if b.blob.Digest != art.Digest && manifest.IsManifest(b.blob.MediaType) {
			subjects = append(subjects, b.blob.Digest)
		}
	}
	for _, subject := range subjects {
		if src, ok := rewritten[subject]; ok {
			at.warnings = append(at.warnings, fmt.Sprintf("image %s: what is attached to manifest %s at the source is not carried: collect rewrote that manifest (it is %s in the archive), so no attachment names it", art.Name, src, subject))
			continue
		}
		atts, err := DiscoverReferrers(ctx, src, from, subject, mode)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", art.Name, err)
		}
		for _, a := range atts {
			r, data, err := p.resolveAttachment(ctx, at, subject, a)
			if err != nil {
				return nil, fmt.Errorf("image %s: %w", art.Name, err)
			}
			if r == nil {
				continue
			}
			at.refs = append(at.refs, r)
			at.manifests[r.artifact.Digest] = data
		}
	}
	return at, nil
}

// sourceRepo is the repository an image's content was read from: its
// registry mirror when it came through one, else its own.
func (p *planner) sourceRepo(art manifest.Artifact) (name.Repository, error) {
	if art.Mirror != "" {
		var opts []name.Option
		if p.opts.PlainHTTP {
			opts = append(opts, name.Insecure)
		}
		repo, err := name.NewRepository(art.Mirror, opts...)
		if err != nil {
			return name.Repository{}, fmt.Errorf("image %s: mirror %q: %w", art.Name, art.Mirror, err)
		}
		return repo, nil
	}
	ref, err := ParseImageRef(art.Source, p.opts.PlainHTTP)
	if err != nil {
		return name.Repository{}, err
	}
	return ref.Context(), nil
}

// resolveAttachment reads an attachment's manifest and the manifests under
// it (a referrer may be an index), and lists its blobs. It returns nil, with
// a warning, for an attachment whose media type is not a manifest ferry
// carries.
func (p *planner) resolveAttachment(ctx context.Context, at *attachedTo, subject string, a Attachment) (*resolved, []byte, error) {
	img := at.image.artifact
	if mt := a.Descriptor.MediaType; mt != "" && !manifest.IsManifest(mt) {
		at.warnings = append(at.warnings, fmt.Sprintf("image %s: %s %s has media type %s, which is not an image manifest or index; not carried", img.Name, a.Referrer.Kind, a.Descriptor.Digest, mt))
		return nil, nil, nil
	}
	what := at.from.Name() + "@" + a.Descriptor.Digest
	mb, data, err := p.images.manifestByDigest(ctx, at.from, a.Descriptor.Digest, what)
	if err != nil {
		return nil, nil, err
	}
	r := &resolved{}
	if err := p.images.addManifest(ctx, at.from, mb, data, r, map[string]bool{}, 0); err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", a.Referrer.Kind, what, err)
	}
	repo, err := ParseImageRef(img.Source, p.opts.PlainHTTP)
	if err != nil {
		return nil, nil, err
	}
	ref := a.Referrer
	source := DisplayName(repo.Context().Digest(mb.Digest))
	dest := manifest.Destination{Repository: img.Dest.Repository}
	if ref.Attachment == manifest.AttachedByTag {
		source = DisplayName(repo.Context().Tag(ref.Tag))
		dest.Tag = ref.Tag
	}
	detail := string(ref.Kind) + " of " + img.Name
	if subject != img.Digest {
		detail += ", platform manifest " + subject
	}
	r.artifact = manifest.Artifact{
		Kind:      manifest.KindReferrer,
		Name:      source,
		Source:    source,
		Dest:      dest,
		Digest:    mb.Digest,
		Size:      mb.Size,
		MediaType: mb.MediaType,
		Blobs:     r.closure(),
		Reasons:   []manifest.Reason{{From: "image", Detail: detail}},
		Mirror:    img.Mirror,
		Referrer:  &ref,
	}
	return r, data, nil
}

// imagesByName lists the plan's images in name order, the order attachments
// are looked up and signatures checked in.
func (p *planner) imagesByName() []*resolved {
	var images []*resolved
	for _, r := range p.arts {
		if r.artifact.Kind == manifest.KindImage {
			images = append(images, r)
		}
	}
	sort.SliceStable(images, func(i, j int) bool { return images[i].artifact.Name < images[j].artifact.Name })
	return images
}
