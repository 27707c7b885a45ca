package testbed

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// SBOM and attestation types the supply-chain fixtures attach.
const (
	// SPDXPredicateType is the predicate type `cosign attest --type spdxjson`
	// writes.
	SPDXPredicateType = "https://spdx.dev/Document"
	// SPDXMediaType is the artifact type of a bare SPDX JSON SBOM referrer.
	SPDXMediaType = "application/spdx+json"
	// BundleMediaType is the media type cosign gives the sigstore bundles it
	// writes as referrers.
	BundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"
)

// Subject is an image or index of a fixture, by the repository it lives in.
type Subject struct {
	// Repo is the repository path, Tag the tag it was pushed under.
	Repo, Tag string
	// Descriptor is the manifest's (digest, media type and size).
	Descriptor v1.Descriptor
}

// Digest returns "sha256:<hex>".
func (s Subject) Digest() string { return s.Descriptor.Digest.String() }

// RepoDigest returns "repo@sha256:<hex>", for Registry.Ref.
func (s Subject) RepoDigest() string { return s.Repo + "@" + s.Digest() }

// SignedSource is a Distribution registry (no referrers API) holding images
// signed with the real cosign CLI, offline, with one ECDSA P-256 key.
type SignedSource struct {
	*Registry
	Cosign *Cosign
	// Image is signed the legacy way (tag sha256-<hex>.sig) and carries an
	// SPDX SBOM as a signed attestation (.att) and as a plain cosign SBOM
	// attachment (.sbom).
	Image Subject
	// Index is a linux/amd64 + linux/arm64 index signed at the index only;
	// Children are its platform manifests, which carry nothing.
	Index    Subject
	Children []Subject
	// Bundled is signed as a sigstore bundle (`--new-bundle-format`), which
	// cosign writes as an OCI 1.1 referrer; the registry has no referrers
	// API, so it is listed under the referrers tag schema (sha256-<hex>).
	Bundled Subject
	// Unsigned has nothing attached.
	Unsigned Subject
}

// StartSignedSource starts a plain-HTTP source registry and fills it with
// the fixtures of SignedSource, signed by c. About eight cosign commands run,
// each under a second.
func StartSignedSource(t testing.TB, c *Cosign) *SignedSource {
	t.Helper()
	reg := StartSourceRegistry(t)
	s := &SignedSource{Registry: reg, Cosign: c}
	regArgs := c.RegistryArgs(t, reg)

	PushRandomImage(t, reg, "signed/app:v1", 1, 4<<10)
	s.Image = subjectOf(t, reg, "signed/app", "v1")
	ref := reg.Host + "/" + s.Image.RepoDigest()
	sign(t, c, regArgs, ref)
	sbom := writeSPDX(t, "signed/app")
	c.Run(t, join([]string{"attest"}, regArgs, c.SignKeyArgs(), []string{"--type", "spdxjson", "--predicate", sbom, ref})...)
	c.Run(t, join([]string{"attach", "sbom"}, regArgs, []string{"--sbom", sbom, "--type", "spdx", "--input-format", "json", ref})...)

	idx := PushIndex(t, reg, "signed/multi:v1")
	s.Index = subjectOf(t, reg, "signed/multi", "v1")
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatalf("testbed: %v", err)
	}
	for _, m := range im.Manifests {
		s.Children = append(s.Children, Subject{Repo: "signed/multi", Descriptor: m})
	}
	sign(t, c, regArgs, reg.Host+"/"+s.Index.RepoDigest())

	PushRandomImage(t, reg, "signed/bundled:v1", 1, 4<<10)
	s.Bundled = subjectOf(t, reg, "signed/bundled", "v1")
	sign(t, c, join(regArgs, []string{"--new-bundle-format"}), reg.Host+"/"+s.Bundled.RepoDigest())

	PushRandomImage(t, reg, "signed/plain:v1", 1, 4<<10)
	s.Unsigned = subjectOf(t, reg, "signed/plain", "v1")
	return s
}

// ReferrerSource is an in-process registry with the referrers API, holding
// an image with two OCI 1.1 referrers (subject field): a bare SPDX SBOM and
// a cosign signature in a sigstore bundle.
type ReferrerSource struct {
	*Registry
	Image Subject
	// SBOM is the SBOM referrer's descriptor, as the referrers API lists it.
	SBOM v1.Descriptor
	// SBOMDocument is the SBOM's content, the referrer's one layer.
	SBOMDocument []byte
}

// StartReferrerSource starts [StartReferrersRegistry] and fills it with the
// fixtures of ReferrerSource, the bundle signed by c.
func StartReferrerSource(t testing.TB, c *Cosign) *ReferrerSource {
	t.Helper()
	reg := StartReferrersRegistry(t)
	s := &ReferrerSource{Registry: reg}
	PushRandomImage(t, reg, "oci/app:v1", 1, 4<<10)
	s.Image = subjectOf(t, reg, "oci/app", "v1")
	s.SBOMDocument = spdxDocument("oci/app")
	s.SBOM = PushReferrer(t, reg, "oci/app", s.Image.Descriptor, SPDXMediaType, SPDXMediaType, s.SBOMDocument,
		map[string]string{"org.opencontainers.image.created": "2026-01-01T00:00:00Z"})
	sign(t, c, join(c.RegistryArgs(t, reg), []string{"--new-bundle-format"}), reg.Host+"/"+s.Image.RepoDigest())
	return s
}

// Referrers lists the referrers of subject through the registry's referrers
// API, falling back to the referrers tag schema as go-containerregistry does.
func Referrers(t testing.TB, reg *Registry, s Subject) []v1.Descriptor {
	t.Helper()
	ref := reg.Ref(t, s.RepoDigest())
	d, ok := ref.(name.Digest)
	if !ok {
		t.Fatalf("testbed: %s is not a digest reference", ref)
	}
	idx, err := remote.Referrers(d, append(reg.Options(), remote.WithContext(t.Context()))...)
	if err != nil {
		t.Fatalf("testbed: listing referrers of %s: %v", ref, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatalf("testbed: referrers of %s: %v", ref, err)
	}
	return im.Manifests
}

func sign(t testing.TB, c *Cosign, regArgs []string, ref string) {
	t.Helper()
	c.Run(t, join([]string{"sign"}, regArgs, c.SignKeyArgs(), []string{ref})...)
}

func subjectOf(t testing.TB, reg *Registry, repo, tag string) Subject {
	t.Helper()
	return Subject{Repo: repo, Tag: tag, Descriptor: Descriptor(t, reg, repo+":"+tag)}
}

// spdxDocument returns a minimal SPDX 2.3 JSON document naming one package.
func spdxDocument(name string) []byte {
	doc := map[string]any{
		"spdxVersion":       "SPDX-2.3",
		"dataLicense":       "CC0-1.0",
		"SPDXID":            "SPDXRef-DOCUMENT",
		"name":              name,
		"documentNamespace": "https://ferry.invalid/spdx/" + name,
		"creationInfo":      map[string]any{"created": "2026-01-01T00:00:00Z", "creators": []string{"Tool: ferry-testbed"}},
		"packages": []map[string]any{{
			"name": name, "SPDXID": "SPDXRef-Package", "versionInfo": "1.0.0",
			"downloadLocation": "NOASSERTION", "licenseConcluded": "NOASSERTION",
		}},
	}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		panic(fmt.Sprintf("testbed: encoding a fixed SPDX document: %v", err))
	}
	return data
}

func writeSPDX(t testing.TB, name string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sbom.spdx.json")
	if err := os.WriteFile(path, spdxDocument(name), 0o644); err != nil {
		t.Fatalf("testbed: %v", err)
	}
	return path
}

func join(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// SignChild signs the platform manifest Children[i] of Index the legacy way
// (tag sha256-<hex>.sig), for tests of attachments on platform manifests;
// the fixture itself signs only the index.
func (s *SignedSource) SignChild(t testing.TB, i int) Subject {
	t.Helper()
	child := s.Children[i]
	sign(t, s.Cosign, s.Cosign.RegistryArgs(t, s.Registry), s.Host+"/"+child.RepoDigest())
	return child
}
