package collect

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/ferrytool/ferry/internal/testbed"
	"github.com/ferrytool/ferry/manifest"
)

// found is what a test expects discovery to report for one attachment.
type found struct {
	kind       manifest.ReferrerKind
	attachment manifest.ReferrerAttachment
	via        Found
	tag        string
	artifact   string // artifact type; "" to skip the check
}

func TestDiscoverReferrers(t *testing.T) {
	t.Parallel()
	c := testbed.NewCosign(t)
	signed := testbed.StartSignedSource(t, c)
	oci := testbed.StartReferrerSource(t, c)
	src := &RemoteReferrerSource{Transport: signed.HTTPClient().Transport}
	ociSrc := &RemoteReferrerSource{Transport: oci.HTTPClient().Transport}
	repo := func(reg *testbed.Registry, s testbed.Subject) name.Repository {
		return reg.Ref(t, s.RepoDigest()).Context()
	}
	tag := func(s testbed.Subject, suffix string) string { return manifest.LegacyTag(s.Digest(), suffix) }

	for _, tc := range []struct {
		name    string
		src     ReferrerSource
		reg     *testbed.Registry
		subject testbed.Subject
		mode    ReferrerMode
		want    []found
	}{
		{"legacy tags, all", src, signed.Registry, signed.Image, ReferrersAll, []found{
			{manifest.ReferrerSignature, manifest.AttachedByTag, FoundCosignTag, tag(signed.Image, ".sig"), manifest.MediaTypeCosignSimpleSigning},
			{manifest.ReferrerAttestation, manifest.AttachedByTag, FoundCosignTag, tag(signed.Image, ".att"), manifest.MediaTypeDSSEEnvelope},
			{manifest.ReferrerSBOM, manifest.AttachedByTag, FoundCosignTag, tag(signed.Image, ".sbom"), ""},
		}},
		{"legacy tags, signatures", src, signed.Registry, signed.Image, ReferrersSignatures, []found{
			{manifest.ReferrerSignature, manifest.AttachedByTag, FoundCosignTag, tag(signed.Image, ".sig"), ""},
		}},
		{"none asks nothing", failingSource{}, signed.Registry, signed.Image, ReferrersNone, nil},
		{"index signed at the index", src, signed.Registry, signed.Index, ReferrersAll, []found{
			{manifest.ReferrerSignature, manifest.AttachedByTag, FoundCosignTag, tag(signed.Index, ".sig"), ""},
		}},
		{"platform child carries nothing", src, signed.Registry, signed.Children[0], ReferrersAll, nil},
		{"bundle under the referrers tag schema", src, signed.Registry, signed.Bundled, ReferrersSignatures, []found{
			{manifest.ReferrerSignature, manifest.AttachedBySubject, FoundReferrersTag, "", manifest.MediaTypeSigstoreBundle03},
		}},
		{"unsigned", src, signed.Registry, signed.Unsigned, ReferrersAll, nil},
		{"referrers API, all", ociSrc, oci.Registry, oci.Image, ReferrersAll, []found{
			{manifest.ReferrerSignature, manifest.AttachedBySubject, FoundReferrersAPI, "", manifest.MediaTypeSigstoreBundle03},
			{manifest.ReferrerSBOM, manifest.AttachedBySubject, FoundReferrersAPI, "", manifest.MediaTypeSPDX},
		}},
		{"referrers API, signatures", ociSrc, oci.Registry, oci.Image, ReferrersSignatures, []found{
			{manifest.ReferrerSignature, manifest.AttachedBySubject, FoundReferrersAPI, "", manifest.MediaTypeSigstoreBundle03},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DiscoverReferrers(t.Context(), tc.src, repo(tc.reg, tc.subject), tc.subject.Digest(), tc.mode)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("found %d attachments, want %d: %+v", len(got), len(tc.want), got)
			}
			for i, w := range tc.want {
				g := got[i]
				r := g.Referrer
				if r.Subject != tc.subject.Digest() || r.Kind != w.kind || r.Attachment != w.attachment || g.Found != w.via || r.Tag != w.tag ||
					(w.artifact != "" && r.ArtifactType != w.artifact) {
					t.Errorf("attachment %d: %+v found by %s; want %+v", i, r, g.Found, w)
				}
				if err := r.Validate(); err != nil {
					t.Errorf("attachment %d: %v", i, err)
				}
				if manifest.CheckDigest(g.Descriptor.Digest) != nil || g.Descriptor.Size <= 0 {
					t.Errorf("attachment %d: descriptor %+v", i, g.Descriptor)
				}
			}
		})
	}

	t.Run("the SBOM referrer is the one pushed", func(t *testing.T) {
		got, err := DiscoverReferrers(t.Context(), ociSrc, repo(oci.Registry, oci.Image), oci.Image.Digest(), ReferrersAll)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[1].Descriptor.Digest != oci.SBOM.Digest.String() {
			t.Fatalf("attachments %+v, want the SBOM %s second", got, oci.SBOM.Digest)
		}
	})
	t.Run("a source without the API says so", func(t *testing.T) {
		_, err := src.ListReferrers(t.Context(), repo(signed.Registry, signed.Image), signed.Image.Digest())
		if !errors.Is(err, ErrNoReferrersAPI) {
			t.Fatalf("Distribution registry: %v, want ErrNoReferrersAPI", err)
		}
	})
}

func TestDiscoverReferrersErrors(t *testing.T) {
	repo, err := name.NewRepository("registry.invalid/app")
	if err != nil {
		t.Fatal(err)
	}
	subject := "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	if _, err := DiscoverReferrers(t.Context(), failingSource{}, repo, subject, ReferrersAll); !errors.Is(err, ErrSource) {
		t.Fatalf("a failing source gave %v, want ErrSource", err)
	}
	if _, err := DiscoverReferrers(t.Context(), failingSource{}, repo, "latest", ReferrersAll); !errors.Is(err, ErrUsage) {
		t.Fatalf("a tag as subject gave %v, want ErrUsage", err)
	}
	for in, want := range map[string]ReferrerMode{"": ReferrersAll, "all": ReferrersAll, "signatures": ReferrersSignatures, "none": ReferrersNone} {
		if got, err := ParseReferrerMode(in); err != nil || got != want {
			t.Errorf("ParseReferrerMode(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseReferrerMode("sboms"); !errors.Is(err, ErrUsage) {
		t.Errorf("ParseReferrerMode(sboms): %v, want ErrUsage", err)
	}
}

// failingSource fails every request, to show what asks nothing and what
// passes a source's failure on.
type failingSource struct{}

func (failingSource) FetchManifest(context.Context, name.Repository, string) (SourceManifest, error) {
	return SourceManifest{}, ErrSource
}

func (failingSource) ListReferrers(context.Context, name.Repository, string) ([]manifest.ReferrerDescriptor, error) {
	return nil, ErrSource
}
