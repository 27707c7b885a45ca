package testbed_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ferrytool/ferry/internal/testbed"
)

// The supply-chain fixtures are what ferry's referrer handling is tested
// against, so this checks them with the same tools an operator would use:
// the tags the Distribution registry holds, the real cosign verifying
// offline, and the referrers API of the in-process registry.
func TestSignedSourceFixtures(t *testing.T) {
	t.Parallel()
	c := testbed.NewCosign(t)
	if !strings.Contains(string(c.PublicKeyPEM), "BEGIN PUBLIC KEY") {
		t.Fatalf("cosign public key is not PKIX PEM:\n%s", c.PublicKeyPEM)
	}
	s := testbed.StartSignedSource(t, c)
	reg := c.RegistryArgs(t, s.Registry)

	tagOf := func(sub testbed.Subject, suffix string) string {
		return strings.Replace(sub.Digest(), ":", "-", 1) + suffix
	}
	t.Run("legacy tags", func(t *testing.T) {
		tags := listTags(t, s.Registry, "signed/app")
		for _, want := range []string{tagOf(s.Image, ".sig"), tagOf(s.Image, ".att"), tagOf(s.Image, ".sbom")} {
			if !slices.Contains(tags, want) {
				t.Errorf("signed/app has tags %v, missing %s", tags, want)
			}
		}
		tags = listTags(t, s.Registry, "signed/multi")
		if !slices.Contains(tags, tagOf(s.Index, ".sig")) {
			t.Errorf("signed/multi has tags %v, missing the index signature %s", tags, tagOf(s.Index, ".sig"))
		}
		for _, child := range s.Children {
			if slices.Contains(tags, tagOf(child, ".sig")) {
				t.Errorf("platform child %s was signed too; the index alone should be", child.Digest())
			}
		}
		if tags := listTags(t, s.Registry, "signed/plain"); len(tags) != 1 {
			t.Errorf("unsigned image's repository has tags %v, want only v1", tags)
		}
	})

	t.Run("bundle under the referrers tag schema", func(t *testing.T) {
		tags := listTags(t, s.Registry, "signed/bundled")
		if !slices.Contains(tags, tagOf(s.Bundled, "")) {
			t.Fatalf("signed/bundled has tags %v, missing the referrers tag %s", tags, tagOf(s.Bundled, ""))
		}
		refs := testbed.Referrers(t, s.Registry, s.Bundled)
		if len(refs) != 1 {
			t.Fatalf("referrers of the bundled image: %+v, want one", refs)
		}
		if at := artifactType(t, s.Registry, s.Bundled.Repo, refs[0]); at != testbed.BundleMediaType {
			t.Fatalf("bundle referrer has artifact type %q, want %s", at, testbed.BundleMediaType)
		}
	})

	t.Run("cosign verify offline", func(t *testing.T) {
		for _, sub := range []testbed.Subject{s.Image, s.Index, s.Bundled} {
			out := c.Run(t, join([]string{"verify"}, reg, c.VerifyKeyArgs(), []string{s.Host + "/" + sub.RepoDigest()})...)
			if !strings.Contains(string(out), sub.Digest()) {
				t.Errorf("cosign verify %s printed no payload naming the digest:\n%s", sub.RepoDigest(), out)
			}
		}
		out := c.Run(t, join([]string{"verify-attestation"}, reg, c.VerifyKeyArgs(),
			[]string{"--type", "spdxjson", s.Host + "/" + s.Image.RepoDigest()})...)
		var env struct {
			PayloadType string `json:"payloadType"`
		}
		if err := json.Unmarshal([]byte(strings.SplitN(string(out), "\n", 2)[0]), &env); err != nil || env.PayloadType != "application/vnd.in-toto+json" {
			t.Errorf("cosign verify-attestation printed %q (%v), want an in-toto DSSE envelope", out, err)
		}
		if out, err := c.RunErr(t, join([]string{"verify"}, reg, c.VerifyKeyArgs(), []string{s.Host + "/" + s.Unsigned.RepoDigest()})...); err == nil {
			t.Errorf("cosign verify passed for the unsigned image:\n%s", out)
		}
	})
}

func TestReferrerSourceFixtures(t *testing.T) {
	t.Parallel()
	c := testbed.NewCosign(t)
	s := testbed.StartReferrerSource(t, c)

	// The API itself, not a fallback: a 200 with an OCI index.
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL()+"/v2/oci/app/referrers/"+s.Image.Digest(), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/vnd.oci.image.index.v1+json" {
		t.Fatalf("GET referrers: %s %q, want 200 with an OCI index", resp.Status, resp.Header.Get("Content-Type"))
	}
	if tags := listTags(t, s.Registry, "oci/app"); len(tags) != 1 {
		t.Errorf("oci/app has tags %v; a registry with the referrers API needs no referrers tag", tags)
	}

	refs := testbed.Referrers(t, s.Registry, s.Image)
	var types []string
	for _, r := range refs {
		types = append(types, artifactType(t, s.Registry, "oci/app", r))
	}
	slices.Sort(types)
	want := []string{testbed.SPDXMediaType, testbed.BundleMediaType}
	slices.Sort(want)
	if !slices.Equal(types, want) {
		t.Fatalf("referrers list artifact types %v, want %v", types, want)
	}
	if !slices.ContainsFunc(refs, func(r v1.Descriptor) bool { return r.Digest == s.SBOM.Digest }) {
		t.Errorf("referrers %+v do not list the SBOM %s", refs, s.SBOM.Digest)
	}
}

// artifactType reads the artifactType of the referrer manifest d: listings
// from go-containerregistry give the config's media type instead.
func artifactType(t *testing.T, reg *testbed.Registry, repo string, d v1.Descriptor) string {
	t.Helper()
	desc, err := remote.Get(reg.Ref(t, repo+"@"+d.Digest.String()), append(reg.Options(), remote.WithContext(t.Context()))...)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		ArtifactType string `json:"artifactType"`
	}
	if err := json.Unmarshal(desc.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	return m.ArtifactType
}

func listTags(t *testing.T, reg *testbed.Registry, repo string) []string {
	t.Helper()
	tags, err := remote.List(reg.Ref(t, repo+":x").Context(), append(reg.Options(), remote.WithContext(t.Context()))...)
	if err != nil {
		t.Fatalf("listing tags of %s: %v", repo, err)
	}
	return tags
}

func join(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
