package collect

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/ferrytool/ferry/internal/digestio"
	"github.com/ferrytool/ferry/manifest"
)

// mirrorRule is a manifest.RegistryMirror with its source in the form
// go-containerregistry names repositories (docker.io is index.docker.io).
type mirrorRule struct {
	spec   manifest.RegistryMirror
	source string // registry[/path], normalised
	mirror name.Registry
	prefix string // path under the mirror, "" for none
}

type mirrors []mirrorRule

func newMirrors(specs []manifest.RegistryMirror, plainHTTP bool) (mirrors, error) {
	var opts []name.Option
	if plainHTTP {
		opts = append(opts, name.Insecure)
	}
	var out mirrors
	for _, s := range specs {
		srcHost, srcPath, _ := strings.Cut(s.Source, "/")
		src, err := name.NewRegistry(srcHost, opts...)
		if err != nil {
			return nil, fmt.Errorf("%w: registry mirror %s: source: %v", ErrUsage, s, err)
		}
		host, prefix, _ := strings.Cut(s.Mirror, "/")
		reg, err := name.NewRegistry(host, opts...)
		if err != nil {
			return nil, fmt.Errorf("%w: registry mirror %s: mirror: %v", ErrUsage, s, err)
		}
		if prefix != "" {
			if _, err := name.NewRepository(reg.RegistryStr()+"/"+prefix+"/x", opts...); err != nil {
				return nil, fmt.Errorf("%w: registry mirror %s: prefix: %v", ErrUsage, s, err)
			}
		}
		r := mirrorRule{spec: s, source: src.RegistryStr(), mirror: reg, prefix: prefix}
		if srcPath != "" {
			r.source += "/" + srcPath
		}
		out = append(out, r)
	}
	return out, nil
}

// match returns the mirror repository for a source repository, by the
// longest source that covers it on path boundaries.
func (ms mirrors) match(repo name.Repository) (name.Repository, bool) {
	full := repo.RegistryStr() + "/" + repo.RepositoryStr()
	best := -1
	for i, m := range ms {
		if (full == m.source || strings.HasPrefix(full, m.source+"/")) && (best < 0 || len(m.source) > len(ms[best].source)) {
			best = i
		}
	}
	if best < 0 {
		return name.Repository{}, false
	}
	m := ms[best]
	path := strings.Trim(strings.TrimPrefix(full, m.source), "/")
	if m.prefix != "" {
		path = strings.Trim(m.prefix+"/"+path, "/")
	}
	return m.mirror.Repo(path), true
}

// viaMirror reads what ref points at from its mirror. The mirror is taken
// at its word only when nothing can check it: a digest-pinned reference is
// checked against the pin, a tag against what the source resolves it to
// when the source answers. The returned warning says when neither could.
func (ir *imageResolver) viaMirror(ctx context.Context, ref name.Reference, mirror name.Repository) (manifest.Blob, []byte, string, error) {
	display := DisplayName(ref)
	want, identifier := "", ref.Identifier()
	var headErr error
	if d, ok := ref.(name.Digest); ok {
		want = d.DigestStr()
		if b, data, ok := ir.cachedManifest(want); ok {
			return b, data, "", nil // verified by its digest when it was cached
		}
	} else if desc, err := ir.puller.Head(ctx, ref); err == nil {
		want = desc.Digest.String()
	} else {
		headErr = sourceErr(display, err)
	}
	data, mediaType, err := ir.raw.manifest(ctx, mirror, identifier)
	what := mirror.Name() + ":" + identifier
	if _, ok := ref.(name.Digest); ok {
		what = mirror.Name() + "@" + identifier
	}
	if err != nil {
		return manifest.Blob{}, nil, "", sourceErr(what+" (mirror of "+display+")", err)
	}
	got := digestio.FromBytes(data)
	if want != "" && got != want {
		source := "its source resolves it to"
		if _, ok := ref.(name.Digest); ok {
			source = "the reference pins"
		}
		return manifest.Blob{}, nil, "", fmt.Errorf("%w: image %s: mirror %s serves %s, but %s %s; refusing the mirror's content",
			ErrMirrorMismatch, display, what, got, source, want)
	}
	warning := ""
	if headErr != nil {
		warning = fmt.Sprintf("image %s: its source could not be asked which digest tag %s has (%v), so what mirror %s serves (%s) is taken on trust; pin the reference by digest to have it checked",
			display, identifier, headErr, mirror.Name(), got)
	}
	if !manifest.IsManifest(mediaType) {
		return manifest.Blob{}, nil, "", fmt.Errorf("%w: %s: manifest %s has media type %q, which is not an image manifest or index", ErrSource, what, got, mediaType)
	}
	b := manifest.Blob{Digest: got, Size: int64(len(data)), MediaType: mediaType}
	if err := ir.cache.Put(ctx, b, strings.NewReader(string(data))); err != nil {
		return manifest.Blob{}, nil, "", err
	}
	return b, data, warning, nil
}

// cachedManifest returns a manifest from the cache, if it is there.
func (ir *imageResolver) cachedManifest(digest string) (manifest.Blob, []byte, bool) {
	b, ok := ir.cache.Lookup(digest)
	if !ok || !manifest.IsManifest(b.MediaType) {
		return manifest.Blob{}, nil, false
	}
	data, err := ir.cache.ReadSmall(b, manifest.MaxManifestSize)
	if err != nil {
		return manifest.Blob{}, nil, false
	}
	return b, data, true
}
