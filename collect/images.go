package collect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/ferrytool/ferry/internal/digestio"
	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/registry"
)

// blobRef is a blob and where to fetch it from: the cache already, a source
// repository, or a local file.
type blobRef struct {
	blob manifest.Blob
	// repo is the source repository of a blob to download; nil when the
	// blob is a local file or was put into the cache while resolving.
	repo *name.Repository
	// file is a local file holding exactly the blob.
	file string
}

// resolved is an artifact with everything needed to fetch its blobs, in
// archive order (children before parents).
type resolved struct {
	artifact manifest.Artifact
	blobs    []blobRef
	// warnings say what resolving found but could not check.
	warnings []string
}

func (r *resolved) closure() []string {
	out := make([]string, 0, len(r.blobs))
	for _, b := range r.blobs {
		out = append(out, b.blob.Digest)
	}
	return out
}

// ParseImageRef parses a user-given image reference, normalised the way
// Docker does (nginx -> docker.io/library/nginx:latest).
func ParseImageRef(s string, plainHTTP bool) (name.Reference, error) {
	var opts []name.Option
	if plainHTTP {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(strings.TrimSpace(s), opts...)
	if err != nil {
		return nil, fmt.Errorf("image reference %q: %w", s, err)
	}
	return ref, nil
}

// DisplayName renders a reference with docker.io rather than the index host.
func DisplayName(ref name.Reference) string {
	s := ref.Name()
	if rest, ok := strings.CutPrefix(s, name.DefaultRegistry+"/"); ok {
		return "docker.io/" + rest
	}
	return s
}

// NormalizeImage returns the canonical form of an image reference, the one
// every reason and artifact name uses: docker.io/library/nginx:latest for
// nginx. A reference holding both tag and digest keeps both.
func NormalizeImage(s string) (string, error) {
	ref, err := name.ParseReference(strings.TrimSpace(s))
	if err != nil {
		return "", fmt.Errorf("image reference %q: %w", s, err)
	}
	out := DisplayName(ref)
	if d, ok := ref.(name.Digest); ok {
		if tag := tagOfDigestRef(s); tag != "" {
			out = strings.TrimSuffix(out, "@"+d.DigestStr()) + ":" + tag + "@" + d.DigestStr()
		}
	}
	return out, nil
}

// tagOfDigestRef returns the tag of "repo:tag@sha256:...", "" when none.
func tagOfDigestRef(s string) string {
	base, _, ok := strings.Cut(strings.TrimSpace(s), "@")
	if !ok {
		return ""
	}
	slash := strings.LastIndex(base, "/")
	if i := strings.LastIndex(base, ":"); i > slash {
		return base[i+1:]
	}
	return ""
}

// imageResolver reads manifests from source registries, through the cache.
type imageResolver struct {
	puller    *remote.Puller
	raw       *registry.Reader
	cache     *Cache
	plainHTTP bool
	platforms []v1.Platform
	mirrors   mirrors
	// sources checks mirrored tags against their source registries.
	sources *sourceChecks
	// convert stores Docker schema 2 manifests and lists as OCI.
	convert bool
}

// resolveImage fetches the manifest (and for an index, every child manifest)
// of ref; layer and config blobs are only listed, not downloaded. A tag is
// resolved with a HEAD request; manifests already in the cache are not
// fetched again.
func (ir *imageResolver) resolveImage(ctx context.Context, src string) (*resolved, error) {
	ref, err := ParseImageRef(src, ir.plainHTTP)
	if err != nil {
		return nil, err
	}
	display, _ := NormalizeImage(src)
	r := &resolved{}
	// repo is the artifact's identity; from is where its content comes from.
	repo := ref.Context()
	from := repo
	var desc manifest.Blob
	var data []byte
	mirror, viaMirror := ir.mirrors.match(repo)
	if viaMirror {
		var warning string
		desc, data, warning, err = ir.viaMirror(ctx, ref, mirror)
		if warning != "" {
			r.warnings = append(r.warnings, warning)
		}
		from = mirror
	} else {
		desc, data, err = ir.manifest(ctx, ref)
	}
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	art := manifest.Artifact{
		Kind:      manifest.KindImage,
		Name:      display,
		Source:    display,
		Digest:    desc.Digest,
		Size:      desc.Size,
		MediaType: desc.MediaType,
		Dest:      manifest.Destination{Repository: "images/" + repo.RepositoryStr(), Tag: imageTag(ref, src)},
	}
	if manifest.IsIndex(desc.MediaType) && len(ir.platforms) > 0 {
		sub, kept, err := ir.subset(ctx, data, desc.MediaType)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", display, err)
		}
		if sub != nil {
			b, err := ir.cache.PutBytes(ctx, desc.MediaType, sub)
			if err != nil {
				return nil, err
			}
			art.Annotations = map[string]string{
				manifest.AnnotationSourceDigest: desc.Digest,
				manifest.AnnotationPlatforms:    strings.Join(kept, ","),
			}
			desc, data = b, sub
			art.Digest, art.Size = b.Digest, b.Size
		}
	}
	if viaMirror {
		art.Mirror = mirror.Name()
	}
	if err := ir.addManifest(ctx, from, desc, data, r, seen, 0); err != nil {
		return nil, fmt.Errorf("image %s: %w", display, err)
	}
	if ir.convert {
		warning, err := ir.convertOCI(ctx, r, &art)
		if err != nil {
			return nil, err
		}
		if warning != "" {
			r.warnings = append(r.warnings, warning)
		}
	}
	art.Blobs = r.closure()
	r.artifact = art
	return r, nil
}

// imageTag is the destination tag: the source tag, also for tag@digest.
func imageTag(ref name.Reference, src string) string {
	if t, ok := ref.(name.Tag); ok {
		return t.TagStr()
	}
	return tagOfDigestRef(src)
}

// manifest returns the descriptor and bytes of what ref points at. A tag
// this cache resolved before is asked about with a HEAD, which registries
// that count pulls do not count, and its manifest comes from the cache
// when it did not move; any other tag's manifest is fetched at once, one
// request instead of two.
func (ir *imageResolver) manifest(ctx context.Context, ref name.Reference) (manifest.Blob, []byte, error) {
	if d, ok := ref.(name.Digest); ok {
		return ir.manifestByDigest(ctx, ref.Context(), d.DigestStr(), DisplayName(ref))
	}
	key := "image " + ref.Name()
	var digest string
	if last, ok := ir.cache.Ref(key); ok {
		if _, cached := ir.cache.Lookup(last.Digest); cached {
			desc, err := ir.puller.Head(ctx, ref)
			if err != nil {
				return manifest.Blob{}, nil, sourceErr(DisplayName(ref), err)
			}
			digest = desc.Digest.String()
		}
	}
	var b manifest.Blob
	var data []byte
	var err error
	if digest != "" {
		b, data, err = ir.manifestByDigest(ctx, ref.Context(), digest, DisplayName(ref))
	} else {
		b, data, err = ir.manifestByTag(ctx, ref)
	}
	if err == nil {
		ir.cache.PutRef(key, b)
	}
	return b, data, err
}

// manifestByTag fetches the manifest a tag points at and caches it under
// the digest of its bytes.
func (ir *imageResolver) manifestByTag(ctx context.Context, ref name.Reference) (manifest.Blob, []byte, error) {
	what := DisplayName(ref)
	data, mediaType, err := ir.raw.Manifest(ctx, ref.Context(), ref.Identifier())
	if err != nil {
		return manifest.Blob{}, nil, sourceErr(what, err)
	}
	b := manifest.Blob{Digest: digestio.FromBytes(data), Size: int64(len(data)), MediaType: mediaType}
	if !manifest.IsManifest(b.MediaType) {
		return b, nil, fmt.Errorf("%s: manifest %s has media type %q, which is not an image manifest or index", what, b.Digest, b.MediaType)
	}
	if err := ir.cache.Put(ctx, b, bytes.NewReader(data)); err != nil {
		return b, nil, err
	}
	return b, data, nil
}

// manifestByDigest reads a manifest from the cache, or fetches and caches it.
func (ir *imageResolver) manifestByDigest(ctx context.Context, repo name.Repository, digest, what string) (manifest.Blob, []byte, error) {
	if b, ok := ir.cache.Lookup(digest); ok && manifest.IsManifest(b.MediaType) {
		if data, err := ir.cache.ReadSmall(b, manifest.MaxManifestSize); err == nil {
			return b, data, nil
		}
	}
	desc, err := ir.puller.Get(ctx, repo.Digest(digest))
	if err != nil {
		return manifest.Blob{}, nil, sourceErr(what, err)
	}
	b := manifest.Blob{Digest: desc.Digest.String(), Size: desc.Size, MediaType: string(desc.MediaType)}
	if b.Digest != digest {
		return b, nil, fmt.Errorf("%w: %s: registry served manifest %s for %s", ErrSource, what, b.Digest, digest)
	}
	if !manifest.IsManifest(b.MediaType) {
		return b, nil, fmt.Errorf("%s: manifest %s has media type %q, which is not an image manifest or index", what, digest, b.MediaType)
	}
	if err := ir.cache.Put(ctx, b, strings.NewReader(string(desc.Manifest))); err != nil {
		return b, nil, err
	}
	return b, desc.Manifest, nil
}

// addManifest appends a manifest's children, then the manifest itself.
func (ir *imageResolver) addManifest(ctx context.Context, repo name.Repository, m manifest.Blob, data []byte, r *resolved, seen map[string]bool, depth int) error {
	if depth > 4 {
		return fmt.Errorf("manifest %s: indexes nested too deep", m.Digest)
	}
	children, err := manifest.Children(m.MediaType, data)
	if err != nil {
		return fmt.Errorf("manifest %s: %w", m.Digest, err)
	}
	for _, c := range children {
		if seen[c.Digest] {
			continue
		}
		if manifest.IsManifest(c.MediaType) {
			cb, cdata, err := ir.manifestByDigest(ctx, repo, c.Digest, repo.Name()+"@"+c.Digest)
			if err != nil {
				return err
			}
			if err := ir.addManifest(ctx, repo, cb, cdata, r, seen, depth+1); err != nil {
				return err
			}
			continue
		}
		seen[c.Digest] = true
		rp := repo
		r.blobs = append(r.blobs, blobRef{blob: manifest.Blob{Digest: c.Digest, Size: c.Size, MediaType: c.MediaType}, repo: &rp})
	}
	if !seen[m.Digest] {
		seen[m.Digest] = true
		r.blobs = append(r.blobs, blobRef{blob: m}) // in the cache already
	}
	return nil
}

// subset cuts an index down to the requested platforms. It returns nil when
// the index holds exactly those already, and an error when it holds none.
func (ir *imageResolver) subset(ctx context.Context, data []byte, mediaType string) ([]byte, []string, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, nil, fmt.Errorf("parse %s: %w", mediaType, err)
	}
	var entries []json.RawMessage
	if err := json.Unmarshal(doc["manifests"], &entries); err != nil {
		return nil, nil, fmt.Errorf("parse %s manifests: %w", mediaType, err)
	}
	var kept []json.RawMessage
	var keptNames, all []string
	for _, e := range entries {
		var d struct {
			Platform *v1.Platform `json:"platform"`
		}
		if err := json.Unmarshal(e, &d); err != nil {
			return nil, nil, err
		}
		if d.Platform == nil {
			continue
		}
		all = append(all, d.Platform.String())
		for _, want := range ir.platforms {
			if platformMatches(want, *d.Platform) {
				kept = append(kept, e)
				keptNames = append(keptNames, d.Platform.String())
				break
			}
		}
	}
	if len(kept) == 0 {
		return nil, nil, fmt.Errorf("%w: no manifest for platform %s (the index has %s)", ErrNotFound, platformList(ir.platforms), strings.Join(all, ", "))
	}
	if len(kept) == len(entries) {
		return nil, keptNames, nil
	}
	raw, err := json.Marshal(kept)
	if err != nil {
		return nil, nil, err
	}
	doc["manifests"] = raw
	out, err := json.Marshal(doc)
	return out, keptNames, err
}

func platformMatches(want, have v1.Platform) bool {
	return want.OS == have.OS && want.Architecture == have.Architecture &&
		(want.Variant == "" || want.Variant == have.Variant)
}

func platformList(ps []v1.Platform) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	sort.Strings(s)
	return strings.Join(s, ", ")
}

// sourceErr classifies a registry error so the operator sees whether the
// thing is missing or the registry is.
func sourceErr(what string, err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch terr.StatusCode {
		case http.StatusNotFound:
			return fmt.Errorf("%w: %s: %v", ErrNotFound, what, err)
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("%w: %s: access denied: %v", ErrSource, what, err)
		}
		for _, d := range terr.Errors {
			if d.Code == transport.ManifestUnknownErrorCode || d.Code == transport.NameUnknownErrorCode || d.Code == transport.BlobUnknownErrorCode {
				return fmt.Errorf("%w: %s: %v", ErrNotFound, what, err)
			}
		}
	}
	return fmt.Errorf("%w: %s: %v", ErrSource, what, err)
}
