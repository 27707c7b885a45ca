package manifest

import (
	"errors"
	"strings"
	"testing"
)

const testSubject = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestLegacyTagRoundTrip(t *testing.T) {
	for _, s := range LegacyTagSuffixes {
		tag := LegacyTag(testSubject, s.Suffix)
		if want := "sha256-" + strings.TrimPrefix(testSubject, "sha256:") + s.Suffix; tag != want {
			t.Fatalf("LegacyTag(%s) = %q, want %q", s.Suffix, tag, want)
		}
		subject, kind, ok := ParseLegacyTag(tag)
		if !ok || subject != testSubject || kind != s.Kind {
			t.Fatalf("ParseLegacyTag(%q) = %q, %q, %v; want %q, %q, true", tag, subject, kind, ok, testSubject, s.Kind)
		}
	}
	for _, tag := range []string{
		"latest",
		ReferrersTag(testSubject), // the referrers index is not a legacy tag
		"sha256-0123.sig",
		"sha512-" + strings.Repeat("a", 64) + ".sig",
		"sha256-" + strings.Repeat("A", 64) + ".att",
	} {
		if _, _, ok := ParseLegacyTag(tag); ok {
			t.Errorf("ParseLegacyTag(%q) accepted a tag that is not cosign's", tag)
		}
	}
	if LegacyTag("sha256:short", LegacyTagSignature) != "" || ReferrersTag("latest") != "" {
		t.Fatalf("a malformed digest gave a tag")
	}
}

func TestClassifyReferrer(t *testing.T) {
	for _, c := range []struct {
		artifactType, predicate string
		want                    ReferrerKind
	}{
		{MediaTypeCosignSimpleSigning, "", ReferrerSignature},
		{MediaTypeNotarySignature, "", ReferrerSignature},
		{MediaTypeSigstoreBundle03, PredicateCosignSign, ReferrerSignature},
		{MediaTypeSigstoreBundle03, "https://spdx.dev/Document", ReferrerAttestation},
		{"application/vnd.dev.sigstore.bundle+json;version=0.3", "https://slsa.dev/provenance/v1", ReferrerAttestation},
		{MediaTypeDSSEEnvelope, "https://cyclonedx.org/bom", ReferrerAttestation},
		{MediaTypeInToto, "", ReferrerAttestation},
		{MediaTypeSPDX, "", ReferrerSBOM},
		{"text/spdx+json", "", ReferrerSBOM},
		{"application/vnd.cyclonedx+json;version=1.5", "", ReferrerSBOM},
		{"application/vnd.example.readme", "", ReferrerOther},
		{"", "", ReferrerOther},
	} {
		if got := ClassifyReferrer(c.artifactType, c.predicate); got != c.want {
			t.Errorf("ClassifyReferrer(%q, %q) = %s, want %s", c.artifactType, c.predicate, got, c.want)
		}
	}
}

func TestReferrerManifestArtifactType(t *testing.T) {
	for _, c := range []struct{ name, doc, want, predicate string }{
		{"artifactType wins", `{"mediaType":"` + MediaTypeOCIManifest + `","artifactType":"application/spdx+json",
			"config":{"mediaType":"` + MediaTypeOCIEmpty + `","digest":"` + testSubject + `","size":2}}`, MediaTypeSPDX, ""},
		{"cosign legacy: layer type", `{"mediaType":"` + MediaTypeOCIManifest + `",
			"config":{"mediaType":"` + MediaTypeOCIConfig + `","digest":"` + testSubject + `","size":2},
			"layers":[{"mediaType":"` + MediaTypeDSSEEnvelope + `","digest":"` + testSubject + `","size":9,
				"annotations":{"predicateType":"https://spdx.dev/Document"}}]}`, MediaTypeDSSEEnvelope, "https://spdx.dev/Document"},
		{"custom config", `{"config":{"mediaType":"application/vnd.example.config","digest":"` + testSubject + `","size":2}}`, "application/vnd.example.config", ""},
		{"bundle annotation", `{"artifactType":"` + MediaTypeSigstoreBundle03 + `","annotations":{"` + AnnotationBundlePredicateType + `":"` + PredicateCosignSign + `"}}`,
			MediaTypeSigstoreBundle03, PredicateCosignSign},
	} {
		m, err := ParseReferrerManifest([]byte(c.doc))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := m.EffectiveArtifactType(); got != c.want {
			t.Errorf("%s: artifact type %q, want %q", c.name, got, c.want)
		}
		if got := m.PredicateType(); got != c.predicate {
			t.Errorf("%s: predicate type %q, want %q", c.name, got, c.predicate)
		}
	}
	if _, err := ParseReferrerManifest([]byte(`{"layers":[{"digest":"sha256:nothex"}]}`)); err == nil {
		t.Fatalf("a layer with a malformed digest parsed")
	}
	if _, err := ParseReferrerManifest([]byte(`{"subject":{"digest":"md5:00"}}`)); err == nil {
		t.Fatalf("a malformed subject digest parsed")
	}
}

func TestReferrerValidate(t *testing.T) {
	good := []Referrer{
		{Subject: testSubject, Kind: ReferrerSBOM, Attachment: AttachedBySubject, ArtifactType: MediaTypeSPDX},
		{Subject: testSubject, Kind: ReferrerSignature, Attachment: AttachedByTag, Tag: LegacyTag(testSubject, LegacyTagSignature)},
	}
	for _, r := range good {
		if err := r.Validate(); err != nil {
			t.Errorf("%+v: %v", r, err)
		}
	}
	other := "sha256:" + strings.Repeat("f", 64)
	bad := []Referrer{
		{Subject: "latest", Kind: ReferrerSBOM, Attachment: AttachedBySubject},
		{Subject: testSubject, Kind: "picture", Attachment: AttachedBySubject},
		{Subject: testSubject, Kind: ReferrerSBOM, Attachment: "magic"},
		{Subject: testSubject, Kind: ReferrerSBOM, Attachment: AttachedBySubject, Tag: "x"},
		{Subject: testSubject, Kind: ReferrerSignature, Attachment: AttachedByTag, Tag: LegacyTag(other, LegacyTagSignature)},
		{Subject: testSubject, Kind: ReferrerSignature, Attachment: AttachedByTag},
	}
	for _, r := range bad {
		if err := r.Validate(); !errors.Is(err, ErrInvalidBOM) {
			t.Errorf("%+v: got %v, want ErrInvalidBOM", r, err)
		}
	}
}

func TestImageVerificationValidate(t *testing.T) {
	ok := []ImageVerification{
		{Image: "a", Subject: testSubject, Status: SignatureVerified, KeyID: "sha256:k", Signature: testSubject, Format: SignatureFormatCosign},
		{Image: "b", Subject: testSubject, Status: SignatureUnsigned},
		{Image: "c", Subject: testSubject, Status: SignatureFailed, Reason: "signature does not verify"},
	}
	for _, v := range ok {
		if err := v.Validate(); err != nil {
			t.Errorf("%+v: %v", v, err)
		}
	}
	bad := []ImageVerification{
		{Image: "a", Subject: testSubject, Status: SignatureVerified},
		{Image: "b", Subject: testSubject, Status: SignatureFailed, KeyID: "sha256:k"},
		{Image: "c", Subject: testSubject, Status: "maybe"},
		{Image: "d", Subject: "", Status: SignatureUnsigned},
	}
	for _, v := range bad {
		if err := v.Validate(); !errors.Is(err, ErrInvalidBOM) {
			t.Errorf("%+v: got %v, want ErrInvalidBOM", v, err)
		}
	}
}

// SupplyChain lists an image's attachments, its own and its platform
// manifests', signatures first, and leaves out what belongs to another
// repository holding the same digest.
func TestSupplyChain(t *testing.T) {
	d := func(c string) string { return "sha256:" + strings.Repeat(c, 64) }
	index, child, other := d("1"), d("2"), d("3")
	ref := func(name, digest, repo, subject string, kind ReferrerKind) Artifact {
		return Artifact{Kind: KindReferrer, Name: name, Digest: digest, Dest: Destination{Repository: repo},
			Referrer: &Referrer{Subject: subject, Kind: kind, Attachment: AttachedBySubject}}
	}
	b := &BOM{
		Artifacts: []Artifact{
			{Kind: KindImage, Name: "reg/multi:v1", Digest: index, Dest: Destination{Repository: "images/multi", Tag: "v1"}, Blobs: []string{child, index}},
			{Kind: KindImage, Name: "reg/plain:v1", Digest: other, Dest: Destination{Repository: "images/plain", Tag: "v1"}, Blobs: []string{other}},
			ref("a-sbom", d("4"), "images/multi", index, ReferrerSBOM),
			ref("b-child-sig", d("5"), "images/multi", child, ReferrerSignature),
			ref("c-sig", d("6"), "images/multi", index, ReferrerSignature),
			ref("d-elsewhere", d("7"), "images/copy", index, ReferrerSignature),
		},
		Verifications: []ImageVerification{{Image: "reg/plain:v1", Subject: other, Status: SignatureUnsigned}},
	}
	sc := b.SupplyChain()
	if len(sc) != 2 || sc[0].Image != "reg/multi:v1" || sc[1].Image != "reg/plain:v1" {
		t.Fatalf("supply chain %+v, want both images", sc)
	}
	var names []string
	for _, a := range sc[0].Attached {
		names = append(names, a.Name)
	}
	if got := strings.Join(names, " "); got != "b-child-sig c-sig a-sbom" {
		t.Errorf("attached to the index: %s, want b-child-sig c-sig a-sbom", got)
	}
	if sc[0].Verification != nil || sc[1].Verification == nil || sc[1].Verification.Status != SignatureUnsigned || len(sc[1].Attached) != 0 {
		t.Errorf("verifications: %+v / %+v", sc[0].Verification, sc[1])
	}
	if got := (&BOM{Artifacts: b.Artifacts[1:2]}).SupplyChain(); got != nil {
		t.Errorf("an image with nothing attached and no check: %+v, want nothing", got)
	}
}
