package collect

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

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
		// The key, not the raw source: Docker.IO and index.docker.io name
		// the registry image references call index.docker.io.
		srcHost, srcPath, _ := strings.Cut(s.SourceKey(), "/")
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
	} else if desc, err := ir.sources.head(ctx, ir.puller, ref); err == nil {
		want = desc.Digest.String()
	} else {
		headErr = err
	}
	data, mediaType, err := ir.raw.Manifest(ctx, mirror, identifier)
	what := mirror.Name() + ":" + identifier
	if _, ok := ref.(name.Digest); ok {
		what = mirror.Name() + "@" + identifier
	}
	if err != nil {
		return manifest.Blob{}, nil, "", sourceErr(what+" (mirror of "+display+")", err)
	}
	got := digestio.FromBytes(data)
	warning := ""
	if headErr != nil {
		var err error
		if warning, err = sourceSilence(display, identifier, what, got, headErr); err != nil {
			return manifest.Blob{}, nil, "", err
		}
	}
	if want != "" && got != want {
		source := "its source resolves it to"
		if _, ok := ref.(name.Digest); ok {
			source = "the reference pins"
		}
		return manifest.Blob{}, nil, "", fmt.Errorf("%w: image %s: mirror %s serves %s, but %s %s; refusing the mirror's content",
			ErrMirrorMismatch, display, what, got, source, want)
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

// sourceSilence decides what a failed check of a mirrored tag at its source
// means, given what the mirror serves (what, got). Only a source that could
// not be asked lets the mirror's content in on trust, with the returned
// warning: no answer at all (the usual reason for a mirror), an answer that
// says to come back later (408, 429, 5xx: go-containerregistry retries
// those until the check's timeout, so when they come back is a matter of
// timing, and either way the source could not say), or a refusal of our
// credentials, which are often configured for the mirror alone. A source
// that answers that the tag does not exist cannot vouch for the mirror, so
// its content is refused, and so is any other answer.
func sourceSilence(display, tag, what, got string, headErr error) (string, error) {
	var terr *transport.Error
	if !errors.As(headErr, &terr) {
		return fmt.Sprintf("image %s: its source could not be asked which digest tag %s has (%v), so what mirror %s serves (%s) is taken on trust; pin the reference by digest to have it checked",
			display, tag, headErr, what, got), nil
	}
	switch code := terr.StatusCode; {
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return fmt.Sprintf("image %s: its source could not say which digest tag %s has (HTTP %d), so what mirror %s serves (%s) is taken on trust; pin the reference by digest to have it checked",
			display, tag, code, what, got), nil
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return fmt.Sprintf("image %s: its source refused to say which digest tag %s has (HTTP %d: the credentials in the docker config, if any, are not accepted there; often they are set up for the mirror only), so what mirror %s serves (%s) is taken on trust; give credentials for the source or pin the reference by digest to have it checked",
			display, tag, terr.StatusCode, what, got), nil
	}
	if errors.Is(sourceErr(display, headErr), ErrNotFound) {
		return "", fmt.Errorf("%w: image %s: mirror %s serves %s, but its source says tag %s does not exist (%v); refusing the mirror's content",
			ErrMirrorMismatch, display, what, got, tag, headErr)
	}
	return "", fmt.Errorf("%w: image %s: asking its source which digest tag %s has, to check what mirror %s serves (%s): %v",
		ErrSource, display, tag, what, got, headErr)
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

// defaultSourceCheckTimeout bounds asking a mirrored image's source which
// digest a tag has. The answer is only a check of the mirror, so a
// workstation that reaches nothing but the mirror should not wait a full
// dial timeout and its retries for it.
const defaultSourceCheckTimeout = 10 * time.Second

// sourceChecks asks source registries what a mirrored tag resolves to, and
// remembers for the rest of one collect which registries did not answer at
// all, so every later image of theirs goes straight to trusting the mirror
// (still with a warning) instead of waiting for the same timeout again.
type sourceChecks struct {
	timeout time.Duration

	mu    sync.Mutex
	hosts map[string]*hostCheck
}

// hostCheck is the first check of a registry; the others wait for it, so an
// unreachable registry is dialled by one check, not by every parallel job.
type hostCheck struct {
	done chan struct{} // closed once the first check has an answer
	err  error         // why the registry did not answer; nil when it did
}

func newSourceChecks(timeout time.Duration) *sourceChecks {
	if timeout <= 0 {
		timeout = defaultSourceCheckTimeout
	}
	return &sourceChecks{timeout: timeout, hosts: map[string]*hostCheck{}}
}

// head resolves ref at its source within the timeout, or fails at once
// when its registry did not answer earlier in this collect.
func (s *sourceChecks) head(ctx context.Context, puller *remote.Puller, ref name.Reference) (*v1.Descriptor, error) {
	host := ref.Context().RegistryStr()
	s.mu.Lock()
	hc, seen := s.hosts[host]
	if !seen {
		hc = &hostCheck{done: make(chan struct{})}
		s.hosts[host] = hc
	}
	s.mu.Unlock()
	if seen {
		select {
		case <-hc.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if hc.err != nil {
			return nil, fmt.Errorf("registry %s did not answer an earlier check in this collect, so it was not asked again: %w", host, hc.err)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, s.timeout)
	desc, err := puller.Head(cctx, ref)
	cancel()
	if !seen {
		// Only the registry's silence is remembered: a refusal (404, 401)
		// is about this repository, and a cancelled collect about nothing.
		if err != nil && ctx.Err() == nil && !answered(err) {
			hc.err = err
		}
		close(hc.done)
	}
	if err != nil && errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		err = fmt.Errorf("no answer within %s: %w", s.timeout, err)
	}
	return desc, err
}

// answered reports whether err carries a registry's HTTP response, as
// opposed to a failure to reach it at all.
func answered(err error) bool {
	var terr *transport.Error
	return errors.As(err, &terr)
}
