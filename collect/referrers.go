package collect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sort"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/ferrytool/ferry/manifest"
)

// ErrNoReferrersAPI is returned by a ReferrerSource whose registry does not
// serve the OCI 1.1 referrers API; discovery then reads the referrers tag
// schema instead.
var ErrNoReferrersAPI = errors.New("registry does not serve the referrers API")

// ReferrerMode selects which artifacts attached to an image collect carries.
type ReferrerMode string

const (
	// ReferrersAll carries everything attached: signatures, attestations,
	// SBOMs and other referrers. It is the default.
	ReferrersAll ReferrerMode = "all"
	// ReferrersSignatures carries signatures only.
	ReferrersSignatures ReferrerMode = "signatures"
	// ReferrersNone carries nothing attached and asks the source nothing.
	ReferrersNone ReferrerMode = "none"
)

// ParseReferrerMode reads a mode by name; "" is ReferrersAll.
func ParseReferrerMode(s string) (ReferrerMode, error) {
	switch m := ReferrerMode(s); m {
	case "":
		return ReferrersAll, nil
	case ReferrersAll, ReferrersSignatures, ReferrersNone:
		return m, nil
	}
	return "", fmt.Errorf("%w: referrer mode %q: want all, signatures or none", ErrUsage, s)
}

// keeps reports whether the mode carries an artifact of kind.
func (m ReferrerMode) keeps(kind manifest.ReferrerKind) bool {
	switch m {
	case ReferrersAll, "":
		return true
	case ReferrersSignatures:
		return kind == manifest.ReferrerSignature
	}
	return false
}

// ReferrerSource is what discovering attached artifacts needs of a registry.
type ReferrerSource interface {
	// FetchManifest returns the manifest that reference (a tag or digest)
	// names in repo, with its media type and digest. A manifest that does
	// not exist gives an error wrapping ErrNotFound.
	FetchManifest(ctx context.Context, repo name.Repository, reference string) (SourceManifest, error)
	// ListReferrers returns the descriptors the referrers API lists for
	// digest in repo, or an error wrapping ErrNoReferrersAPI when the
	// registry does not serve that API.
	ListReferrers(ctx context.Context, repo name.Repository, digest string) ([]manifest.ReferrerDescriptor, error)
}

// SourceManifest is a manifest as a source served it.
type SourceManifest struct {
	MediaType string
	Digest    string
	Data      []byte
}

// Found says where discovery found an attached artifact.
type Found string

const (
	FoundReferrersAPI Found = "referrers API"
	FoundReferrersTag Found = "referrers tag schema"
	FoundCosignTag    Found = "cosign tag"
)

// Attachment is one artifact attached to an image at the source.
type Attachment struct {
	// Descriptor is the attached manifest's: digest, media type, size,
	// artifact type and annotations as far as the source listed them.
	Descriptor manifest.ReferrerDescriptor
	// Referrer is what the bill of materials records about it.
	Referrer manifest.Referrer
	Found    Found
}

// DiscoverReferrers lists what is attached to the manifest subject (an image
// or index digest) in repo, filtered by mode: the OCI 1.1 referrers, through
// the referrers API where the source serves it and else through the
// referrers tag schema (`sha256-<hex>`), then cosign's legacy tags
// (`sha256-<hex>.sig`, `.att`, `.sbom`). Referrers come first, ordered by
// kind then digest; legacy tags follow in that suffix order. Referrers of
// referrers are not followed. With ReferrersNone it returns nothing without a
// request.
func DiscoverReferrers(ctx context.Context, src ReferrerSource, repo name.Repository, subject string, mode ReferrerMode) ([]Attachment, error) {
	if mode == ReferrersNone {
		return nil, nil
	}
	if err := manifest.CheckDigest(subject); err != nil {
		return nil, fmt.Errorf("%w: referrers of %s: %v", ErrUsage, repo, err)
	}
	subjectRef := repo.String() + "@" + subject
	// cosign's tags are asked at once, beside the referrers listing: each
	// is a round trip that usually answers "not found", for every image.
	legacy := make([]struct {
		m   SourceManifest
		err error
	}, len(manifest.LegacyTagSuffixes))
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // before the wait: an early return stops the lookups
	for i, s := range manifest.LegacyTagSuffixes {
		if mode.keeps(s.Kind) {
			wg.Go(func() {
				legacy[i].m, legacy[i].err = src.FetchManifest(ctx, repo, manifest.LegacyTag(subject, s.Suffix))
			})
		}
	}
	descs, found, err := listReferrers(ctx, src, repo, subject)
	if err != nil {
		return nil, fmt.Errorf("referrers of %s: %w", subjectRef, err)
	}
	var out []Attachment
	seen := map[string]bool{}
	for _, d := range descs {
		if seen[d.Digest] {
			continue
		}
		seen[d.Digest] = true
		a, err := describeReferrer(ctx, src, repo, subject, d)
		if err != nil {
			return nil, fmt.Errorf("referrer %s of %s: %w", d.Digest, subjectRef, err)
		}
		if mode.keeps(a.Referrer.Kind) {
			a.Found = found
			out = append(out, a)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Referrer.Kind != out[j].Referrer.Kind {
			return referrerKindOrder(out[i].Referrer.Kind) < referrerKindOrder(out[j].Referrer.Kind)
		}
		return out[i].Descriptor.Digest < out[j].Descriptor.Digest
	})
	wg.Wait()
	for i, s := range manifest.LegacyTagSuffixes {
		if !mode.keeps(s.Kind) {
			continue
		}
		tag := manifest.LegacyTag(subject, s.Suffix)
		m, err := legacy[i].m, legacy[i].err
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("cosign tag %s:%s: %w", repo, tag, err)
		}
		rm, err := manifest.ParseReferrerManifest(m.Data)
		if err != nil {
			return nil, fmt.Errorf("cosign tag %s:%s (%s): %w", repo, tag, m.Digest, err)
		}
		out = append(out, Attachment{
			Descriptor: manifest.ReferrerDescriptor{MediaType: m.MediaType, Digest: m.Digest, Size: int64(len(m.Data)),
				ArtifactType: rm.ArtifactType, Annotations: rm.Annotations},
			Referrer: manifest.Referrer{Subject: subject, Kind: s.Kind, ArtifactType: rm.EffectiveArtifactType(),
				Attachment: manifest.AttachedByTag, Tag: tag, PredicateType: rm.PredicateType()},
			Found: FoundCosignTag,
		})
	}
	return out, nil
}

// listReferrers asks the referrers API and falls back to the tag schema's
// index, which is absent when nothing was ever attached.
func listReferrers(ctx context.Context, src ReferrerSource, repo name.Repository, subject string) ([]manifest.ReferrerDescriptor, Found, error) {
	descs, err := src.ListReferrers(ctx, repo, subject)
	if err == nil {
		return descs, FoundReferrersAPI, nil
	}
	if !errors.Is(err, ErrNoReferrersAPI) {
		return nil, "", err
	}
	tag := manifest.ReferrersTag(subject)
	m, err := src.FetchManifest(ctx, repo, tag)
	if errors.Is(err, ErrNotFound) {
		return nil, FoundReferrersTag, nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("referrers tag %s: %w", tag, err)
	}
	if m.MediaType != manifest.MediaTypeOCIIndex {
		return nil, "", fmt.Errorf("%w: referrers tag %s:%s is a %s, not an OCI index", ErrSource, repo, tag, m.MediaType)
	}
	descs, err = parseReferrersIndex(m.Data)
	if err != nil {
		return nil, "", fmt.Errorf("%w: referrers tag %s:%s: %v", ErrSource, repo, tag, err)
	}
	return descs, FoundReferrersTag, nil
}

// describeReferrer classifies a listed referrer. The listing's artifact type
// and annotations often say enough; when they do not (no artifact type or the
// config's, or a sigstore bundle without its predicate type, which decides
// signature or attestation), the manifest itself is read.
func describeReferrer(ctx context.Context, src ReferrerSource, repo name.Repository, subject string, d manifest.ReferrerDescriptor) (Attachment, error) {
	if err := manifest.CheckDigest(d.Digest); err != nil {
		return Attachment{}, fmt.Errorf("%w: %v", ErrSource, err)
	}
	r := manifest.Referrer{Subject: subject, Attachment: manifest.AttachedBySubject, ArtifactType: d.ArtifactType,
		PredicateType: d.Annotations[manifest.AnnotationBundlePredicateType]}
	if vagueArtifactType(r.ArtifactType) || (manifest.IsSigstoreBundle(r.ArtifactType) && r.PredicateType == "") {
		m, err := src.FetchManifest(ctx, repo, d.Digest)
		if err != nil {
			return Attachment{}, err
		}
		if m.Digest != d.Digest {
			return Attachment{}, fmt.Errorf("%w: the source served %s for it", ErrSource, m.Digest)
		}
		rm, err := manifest.ParseReferrerManifest(m.Data)
		if err != nil {
			return Attachment{}, fmt.Errorf("%w: %v", ErrSource, err)
		}
		if rm.Subject == nil || rm.Subject.Digest != subject {
			return Attachment{}, fmt.Errorf("%w: listed as a referrer but its subject is not %s", ErrSource, subject)
		}
		r.ArtifactType, r.PredicateType = rm.EffectiveArtifactType(), rm.PredicateType()
	}
	r.Kind = manifest.ClassifyReferrer(r.ArtifactType, r.PredicateType)
	return Attachment{Descriptor: d, Referrer: r}, nil
}

// vagueArtifactType reports whether a listed artifact type says nothing: some
// registries (go-containerregistry's among them) and the referrers tag index
// that go-containerregistry writes list the config's media type, which for
// an OCI 1.1 artifact is the empty descriptor's.
func vagueArtifactType(t string) bool {
	switch t {
	case "", manifest.MediaTypeOCIEmpty, manifest.MediaTypeOCIConfig:
		return true
	}
	return false
}

func referrerKindOrder(k manifest.ReferrerKind) int {
	switch k {
	case manifest.ReferrerSignature:
		return 0
	case manifest.ReferrerAttestation:
		return 1
	case manifest.ReferrerSBOM:
		return 2
	}
	return 3
}

func parseReferrersIndex(data []byte) ([]manifest.ReferrerDescriptor, error) {
	var idx struct {
		Manifests []manifest.ReferrerDescriptor `json:"manifests"`
	}
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("parse referrers index: %w", err)
	}
	return idx.Manifests, nil
}

// RemoteReferrerSource is a ReferrerSource over go-containerregistry's
// remote and transport packages. The zero value reaches registries over
// HTTPS with the default transport and anonymous access.
type RemoteReferrerSource struct {
	// Transport carries every request; nil means http.DefaultTransport.
	Transport http.RoundTripper
	// Keychain finds credentials per registry; nil means anonymous.
	Keychain authn.Keychain
	// UserAgent is sent with every request when set.
	UserAgent string

	mu     sync.Mutex
	byRepo map[string]http.RoundTripper // authenticated transports
}

// FetchManifest implements ReferrerSource.
func (s *RemoteReferrerSource) FetchManifest(ctx context.Context, repo name.Repository, reference string) (SourceManifest, error) {
	ref := refIn(repo, reference)
	opts := []remote.Option{remote.WithContext(ctx), remote.WithTransport(s.transport()), remote.WithAuthFromKeychain(s.keychain())}
	if s.UserAgent != "" {
		opts = append(opts, remote.WithUserAgent(s.UserAgent))
	}
	d, err := remote.Get(ref, opts...)
	if err != nil {
		var terr *transport.Error
		if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
			return SourceManifest{}, fmt.Errorf("manifest %s: %w", ref, ErrNotFound)
		}
		return SourceManifest{}, fmt.Errorf("%w: manifest %s: %w", ErrSource, ref, err)
	}
	return SourceManifest{MediaType: string(d.MediaType), Digest: d.Digest.String(), Data: d.Manifest}, nil
}

// ListReferrers implements ReferrerSource with GET /v2/<name>/referrers/<digest>.
// Following the distribution spec, anything but an OCI index in a 200 answer
// means the registry does not serve the API.
func (s *RemoteReferrerSource) ListReferrers(ctx context.Context, repo name.Repository, digest string) ([]manifest.ReferrerDescriptor, error) {
	rt, err := s.repoTransport(ctx, repo)
	if err != nil {
		return nil, err
	}
	u := fmt.Sprintf("%s://%s/v2/%s/referrers/%s", repo.Registry.Scheme(), repo.RegistryStr(), repo.RepositoryStr(), digest)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSource, err)
	}
	req.Header.Set("Accept", manifest.MediaTypeOCIIndex)
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: referrers of %s@%s: %w", ErrSource, repo, digest, err)
	}
	defer func() {
		// A short error page read to its end keeps the connection for the
		// next request: every image asks this once.
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) //nolint:errcheck // best effort
		resp.Body.Close()
	}()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound, http.StatusBadRequest, http.StatusNotAcceptable, http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return nil, fmt.Errorf("%s: %w", repo.RegistryStr(), ErrNoReferrersAPI)
	default:
		return nil, fmt.Errorf("%w: referrers of %s@%s: %w", ErrSource, repo, digest, transport.CheckError(resp, http.StatusOK))
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != manifest.MediaTypeOCIIndex {
		return nil, fmt.Errorf("%s: %w", repo.RegistryStr(), ErrNoReferrersAPI)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, manifest.MaxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: referrers of %s@%s: %w", ErrSource, repo, digest, err)
	}
	if len(data) > manifest.MaxManifestSize {
		return nil, fmt.Errorf("%w: referrers of %s@%s: index larger than %d bytes", ErrSource, repo, digest, manifest.MaxManifestSize)
	}
	descs, err := parseReferrersIndex(data)
	if err != nil {
		return nil, fmt.Errorf("%w: referrers of %s@%s: %v", ErrSource, repo, digest, err)
	}
	return descs, nil
}

func (s *RemoteReferrerSource) transport() http.RoundTripper {
	if s.Transport != nil {
		return s.Transport
	}
	return http.DefaultTransport
}

func (s *RemoteReferrerSource) keychain() authn.Keychain {
	if s.Keychain != nil {
		return s.Keychain
	}
	return anonymousKeychain{}
}

// repoTransport returns a transport that authenticates pulls from repo,
// built once per repository (the token exchange costs a round trip).
func (s *RemoteReferrerSource) repoTransport(ctx context.Context, repo name.Repository) (http.RoundTripper, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rt, ok := s.byRepo[repo.String()]; ok {
		return rt, nil
	}
	auth, err := authn.Resolve(ctx, s.keychain(), repo)
	if err != nil {
		return nil, fmt.Errorf("%w: credentials for %s: %w", ErrSource, repo, err)
	}
	base := s.transport()
	if s.UserAgent != "" {
		base = transport.NewUserAgent(base, s.UserAgent)
	}
	rt, err := transport.NewWithContext(ctx, repo.Registry, auth, base, []string{repo.Scope(transport.PullScope)})
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrSource, repo, err)
	}
	if s.byRepo == nil {
		s.byRepo = map[string]http.RoundTripper{}
	}
	s.byRepo[repo.String()] = rt
	return rt, nil
}

// refIn names reference (a tag or digest) in repo, keeping repo's registry
// options (plain HTTP).
func refIn(repo name.Repository, reference string) name.Reference {
	if manifest.CheckDigest(reference) == nil {
		return repo.Digest(reference)
	}
	return repo.Tag(reference)
}

type anonymousKeychain struct{}

func (anonymousKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return authn.Anonymous, nil
}
