package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// ReferrerKind says what an artifact attached to an image is for.
type ReferrerKind string

const (
	// ReferrerSignature is a signature over its subject: a cosign
	// simple-signing manifest or a sigstore bundle with cosign's signing
	// predicate, or a Notary signature.
	ReferrerSignature ReferrerKind = "signature"
	// ReferrerAttestation is a signed in-toto statement about its subject
	// (provenance, vulnerability scan, an SBOM wrapped in a statement).
	ReferrerAttestation ReferrerKind = "attestation"
	// ReferrerSBOM is a bare software bill of materials (SPDX, CycloneDX).
	ReferrerSBOM ReferrerKind = "sbom"
	// ReferrerOther is any other artifact that names the image as its subject.
	ReferrerOther ReferrerKind = "other"
)

// ReferrerAttachment says how an artifact was attached at the source, and so
// how the destination must be told about it.
type ReferrerAttachment string

const (
	// AttachedBySubject is an OCI 1.1 referrer: its manifest's subject field
	// names the image. The source listed it through the referrers API or the
	// referrers tag schema (`sha256-<hex>`); the destination learns of it the
	// same way.
	AttachedBySubject ReferrerAttachment = "subject"
	// AttachedByTag is cosign's older scheme: a manifest tagged
	// `sha256-<hex>.sig`, `.att` or `.sbom` in the image's repository.
	AttachedByTag ReferrerAttachment = "tag"
)

// Media types, artifact types and annotations of the supply-chain artifacts
// ferry recognises.
const (
	// MediaTypeCosignSimpleSigning is the layer of a cosign signature
	// manifest: the signed JSON payload naming the image digest.
	MediaTypeCosignSimpleSigning = "application/vnd.dev.cosign.simplesigning.v1+json"
	// MediaTypeDSSEEnvelope is the layer of a cosign attestation manifest.
	MediaTypeDSSEEnvelope = "application/vnd.dsse.envelope.v1+json"
	// MediaTypeInToto is the payload type of a DSSE envelope that holds an
	// in-toto statement, and the artifact type cosign gives attestation
	// referrers.
	MediaTypeInToto = "application/vnd.in-toto+json"
	// MediaTypeSigstoreBundlePrefix starts the media type of every sigstore
	// bundle version, such as MediaTypeSigstoreBundle03.
	MediaTypeSigstoreBundlePrefix = "application/vnd.dev.sigstore.bundle"
	// MediaTypeSigstoreBundle03 is the bundle cosign writes as a referrer.
	MediaTypeSigstoreBundle03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
	// MediaTypeNotarySignature is the artifact type of a Notary Project
	// signature.
	MediaTypeNotarySignature = "application/vnd.cncf.notary.signature"
	// MediaTypeSPDX and the others below are SBOM document types.
	MediaTypeSPDX          = "application/spdx+json"
	MediaTypeSPDXText      = "text/spdx"
	MediaTypeCycloneDX     = "application/vnd.cyclonedx+json"
	MediaTypeCycloneDXXML  = "application/vnd.cyclonedx+xml"
	MediaTypeSyftJSON      = "application/vnd.syft+json"
	MediaTypeOCIEmpty      = "application/vnd.oci.empty.v1+json"
	mediaTypeSigstorePlain = MediaTypeSigstoreBundlePrefix + "+json"

	// AnnotationCosignSignature holds the base64 signature on a layer of a
	// cosign signature manifest.
	AnnotationCosignSignature = "dev.cosignproject.cosign/signature"
	// AnnotationBundlePredicateType names the predicate type of the in-toto
	// statement inside a sigstore bundle referrer.
	AnnotationBundlePredicateType = "dev.sigstore.bundle.predicateType"
	// AnnotationBundleContent says what a sigstore bundle holds:
	// "dsse-envelope" or "message-signature".
	AnnotationBundleContent = "dev.sigstore.bundle.content"

	// PredicateCosignSign is the predicate type of the statement cosign signs
	// in place of a simple-signing payload when it writes a bundle: a bundle
	// with it is a signature, any other predicate makes an attestation.
	PredicateCosignSign = "https://sigstore.dev/cosign/sign/v1"
)

// Suffixes of cosign's legacy tags, after `sha256-<hex>`.
const (
	LegacyTagSignature   = ".sig"
	LegacyTagAttestation = ".att"
	LegacyTagSBOM        = ".sbom"
)

// LegacyTagSuffixes lists cosign's legacy tag suffixes with the kind each
// one carries.
var LegacyTagSuffixes = []struct {
	Suffix string
	Kind   ReferrerKind
}{
	{LegacyTagSignature, ReferrerSignature},
	{LegacyTagAttestation, ReferrerAttestation},
	{LegacyTagSBOM, ReferrerSBOM},
}

// ReferrersTag returns the referrers tag schema's tag for subject,
// "sha256-<hex>", under which a registry without the referrers API keeps the
// index of the subject's referrers. It is "" for a malformed digest.
func ReferrersTag(subject string) string {
	if CheckDigest(subject) != nil {
		return ""
	}
	return strings.Replace(subject, ":", "-", 1)
}

// LegacyTag returns cosign's tag for subject with suffix (LegacyTagSignature
// and the like), such as "sha256-<hex>.sig". It is "" for a malformed digest.
func LegacyTag(subject, suffix string) string {
	t := ReferrersTag(subject)
	if t == "" {
		return ""
	}
	return t + suffix
}

// ParseLegacyTag reports the subject digest and kind a cosign legacy tag
// names, and whether tag is one.
func ParseLegacyTag(tag string) (subject string, kind ReferrerKind, ok bool) {
	for _, s := range LegacyTagSuffixes {
		base, found := strings.CutSuffix(tag, s.Suffix)
		if !found {
			continue
		}
		algo, hex, found := strings.Cut(base, "-")
		if !found {
			return "", "", false
		}
		d := algo + ":" + hex
		if CheckDigest(d) != nil {
			return "", "", false
		}
		return d, s.Kind, true
	}
	return "", "", false
}

// Referrer links an artifact of the archive to the image it is attached to.
// An artifact with a Referrer is pushed after its subject, into the subject's
// destination repository.
type Referrer struct {
	// Subject is the digest of the image manifest or index the artifact is
	// attached to, as the archive holds it.
	Subject string `json:"subject"`
	// Kind is what the artifact is for.
	Kind ReferrerKind `json:"kind"`
	// ArtifactType is the manifest's artifactType, else its config media
	// type, else its first layer's media type: what `oras discover` shows.
	ArtifactType string `json:"artifactType,omitempty"`
	// Attachment is how the source attached it, and how ingest attaches it.
	Attachment ReferrerAttachment `json:"attachment"`
	// Tag is the legacy cosign tag ("sha256-<hex>.sig") when Attachment is
	// AttachedByTag, and empty otherwise.
	Tag string `json:"tag,omitempty"`
	// PredicateType is the in-toto predicate type of an attestation or a
	// bundle, when the manifest announces it.
	PredicateType string `json:"predicateType,omitempty"`
}

// Validate checks that r names a well-formed subject and a known kind, and
// that a tag attachment carries the legacy tag of that same subject.
func (r *Referrer) Validate() error {
	if err := CheckDigest(r.Subject); err != nil {
		return fmt.Errorf("%w: referrer subject: %v", ErrInvalidBOM, err)
	}
	switch r.Kind {
	case ReferrerSignature, ReferrerAttestation, ReferrerSBOM, ReferrerOther:
	default:
		return fmt.Errorf("%w: referrer of %s has unknown kind %q", ErrInvalidBOM, r.Subject, r.Kind)
	}
	switch r.Attachment {
	case AttachedBySubject:
		if r.Tag != "" {
			return fmt.Errorf("%w: referrer of %s attached by subject carries tag %q", ErrInvalidBOM, r.Subject, r.Tag)
		}
	case AttachedByTag:
		subject, _, ok := ParseLegacyTag(r.Tag)
		if !ok || subject != r.Subject {
			return fmt.Errorf("%w: referrer of %s: %q is not a legacy tag of that digest", ErrInvalidBOM, r.Subject, r.Tag)
		}
	default:
		return fmt.Errorf("%w: referrer of %s has unknown attachment %q", ErrInvalidBOM, r.Subject, r.Attachment)
	}
	return nil
}

// SignatureStatus is the outcome of checking an image's signatures against
// the keys an operator gave.
type SignatureStatus string

const (
	// SignatureVerified: a signature over the image verified with one of
	// the keys.
	SignatureVerified SignatureStatus = "verified"
	// SignatureUnsigned: no signature is attached to the image.
	SignatureUnsigned SignatureStatus = "unsigned"
	// SignatureFailed: signatures are attached, but none verified with any
	// of the keys (tampered, or signed by another key).
	SignatureFailed SignatureStatus = "failed"
)

// Signature formats an ImageVerification can name.
const (
	// SignatureFormatCosign is a cosign simple-signing payload with the
	// signature in a layer annotation.
	SignatureFormatCosign = "cosign"
	// SignatureFormatBundle is a sigstore bundle.
	SignatureFormatBundle = "sigstore-bundle"
)

// ImageVerification records, in the signed bill of materials, the check of
// one image's signatures at collect: which key verified which image.
type ImageVerification struct {
	// Image is the Name of the image's artifact in the bill of materials.
	Image string `json:"image"`
	// Subject is the digest that was signed: the image manifest or index.
	Subject string          `json:"subject"`
	Status  SignatureStatus `json:"status"`
	// KeyID is the ID of the key that verified (sha256 of its PKIX DER),
	// and KeyName the name the operator gave it, such as its file name.
	KeyID   string `json:"keyID,omitempty"`
	KeyName string `json:"keyName,omitempty"`
	// Signature is the digest of the signature artifact's manifest that
	// verified, and Format its form (SignatureFormatCosign or
	// SignatureFormatBundle).
	Signature string `json:"signature,omitempty"`
	Format    string `json:"format,omitempty"`
	// Reason says why a check failed; empty otherwise.
	Reason string `json:"reason,omitempty"`
}

// Validate checks the record's fields fit its status: a verified image names
// its key and signature, the others name neither.
func (v *ImageVerification) Validate() error {
	if err := CheckDigest(v.Subject); err != nil {
		return fmt.Errorf("%w: verification of %s: %v", ErrInvalidBOM, v.Image, err)
	}
	switch v.Status {
	case SignatureVerified:
		if v.KeyID == "" || CheckDigest(v.Signature) != nil {
			return fmt.Errorf("%w: verification of %s: verified without a key ID and signature digest", ErrInvalidBOM, v.Image)
		}
	case SignatureUnsigned, SignatureFailed:
		if v.KeyID != "" || v.Signature != "" {
			return fmt.Errorf("%w: verification of %s: status %s names a key or signature", ErrInvalidBOM, v.Image, v.Status)
		}
	default:
		return fmt.Errorf("%w: verification of %s has unknown status %q", ErrInvalidBOM, v.Image, v.Status)
	}
	return nil
}

// ReferrerDescriptor is an OCI descriptor with the fields referrers use.
type ReferrerDescriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

// ReferrerManifest is the part of an image manifest that tells what an
// attached artifact is.
type ReferrerManifest struct {
	MediaType    string               `json:"mediaType"`
	ArtifactType string               `json:"artifactType,omitempty"`
	Config       ReferrerDescriptor   `json:"config"`
	Layers       []ReferrerDescriptor `json:"layers"`
	Subject      *ReferrerDescriptor  `json:"subject,omitempty"`
	Annotations  map[string]string    `json:"annotations,omitempty"`
}

// ParseReferrerManifest decodes an image manifest that is attached to an
// image, checking the digests it names.
func ParseReferrerManifest(data []byte) (*ReferrerManifest, error) {
	if len(data) > MaxManifestSize {
		return nil, fmt.Errorf("referrer manifest of %d bytes exceeds the %d byte limit", len(data), MaxManifestSize)
	}
	var m ReferrerManifest
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(&m); err != nil {
		return nil, fmt.Errorf("parse referrer manifest: %w", err)
	}
	if m.Config.Digest != "" {
		if err := CheckDigest(m.Config.Digest); err != nil {
			return nil, fmt.Errorf("referrer manifest config: %w", err)
		}
	}
	for i, l := range m.Layers {
		if err := CheckDigest(l.Digest); err != nil {
			return nil, fmt.Errorf("referrer manifest layer %d: %w", i, err)
		}
	}
	if m.Subject != nil {
		if err := CheckDigest(m.Subject.Digest); err != nil {
			return nil, fmt.Errorf("referrer manifest subject: %w", err)
		}
	}
	return &m, nil
}

// EffectiveArtifactType is what the referrers API reports for m: its
// artifactType, else its config's media type. Where that is a plain image
// config or the empty descriptor, as cosign's legacy manifests have, the first
// layer's media type says more and is returned instead.
func (m *ReferrerManifest) EffectiveArtifactType() string {
	if m.ArtifactType != "" {
		return m.ArtifactType
	}
	switch m.Config.MediaType {
	case "", MediaTypeOCIEmpty, MediaTypeOCIConfig, MediaTypeDockerConfig:
		if len(m.Layers) > 0 {
			return m.Layers[0].MediaType
		}
	}
	return m.Config.MediaType
}

// PredicateType returns the in-toto predicate type the manifest announces in
// its annotations, or "".
func (m *ReferrerManifest) PredicateType() string {
	if p := m.Annotations[AnnotationBundlePredicateType]; p != "" {
		return p
	}
	for _, l := range m.Layers {
		if p := l.Annotations[AnnotationBundlePredicateType]; p != "" {
			return p
		}
		// cosign's legacy attestation layers name it here.
		if p := l.Annotations["predicateType"]; p != "" {
			return p
		}
	}
	return ""
}

// ClassifyReferrer says what an attached artifact is from its artifact type
// (EffectiveArtifactType) and in-toto predicate type, which may be empty.
func ClassifyReferrer(artifactType, predicateType string) ReferrerKind {
	switch {
	case artifactType == MediaTypeCosignSimpleSigning, artifactType == MediaTypeNotarySignature:
		return ReferrerSignature
	case IsSigstoreBundle(artifactType):
		if predicateType == PredicateCosignSign {
			return ReferrerSignature
		}
		return ReferrerAttestation
	case artifactType == MediaTypeDSSEEnvelope, artifactType == MediaTypeInToto:
		return ReferrerAttestation
	case isSBOMType(artifactType):
		return ReferrerSBOM
	}
	return ReferrerOther
}

// IsSigstoreBundle reports whether a media type is a sigstore bundle, of any
// version.
// Bundle versions appear as "bundle.v0.3+json" and as "bundle+json;version=0.3".
func IsSigstoreBundle(mediaType string) bool {
	base, _, _ := strings.Cut(mediaType, ";")
	return base == mediaTypeSigstorePlain || strings.HasPrefix(base, MediaTypeSigstoreBundlePrefix+".v")
}

func isSBOMType(t string) bool {
	switch t {
	case MediaTypeSPDX, MediaTypeSPDXText, MediaTypeCycloneDX, MediaTypeCycloneDXXML, MediaTypeSyftJSON:
		return true
	}
	// Parameters and vendor variants: "text/spdx+json", "application/vnd.cyclonedx+json;version=1.5".
	base, _, _ := strings.Cut(t, ";")
	return strings.Contains(base, "spdx") || strings.Contains(base, "cyclonedx")
}

// ImageSupplyChain is one image of a bill of materials with what is attached
// to it, its own manifest or its platform manifests, and the check of its
// signatures at collect.
type ImageSupplyChain struct {
	// Image is the image artifact's Name, and Digest its manifest or index.
	Image  string `json:"image"`
	Digest string `json:"digest"`
	// Attached lists the referrer artifacts whose subject is the image or
	// one of its platform manifests: signatures, attestations, SBOMs, then
	// the others, each in bill-of-materials order.
	Attached []AttachedArtifact `json:"attached,omitempty"`
	// Verification is the signature check recorded at collect, nil when
	// none was made.
	Verification *ImageVerification `json:"verification,omitempty"`
}

// AttachedArtifact is a referrer artifact as listed under its image.
type AttachedArtifact struct {
	// Name and Digest are the referrer artifact's.
	Name   string `json:"name"`
	Digest string `json:"digest"`
	Referrer
}

// kindRank puts signatures first: what an operator checks first.
func kindRank(k ReferrerKind) int {
	switch k {
	case ReferrerSignature:
		return 0
	case ReferrerAttestation:
		return 1
	case ReferrerSBOM:
		return 2
	}
	return 3
}

// SupplyChain lists, per image artifact, what the archive carries attached
// to it and the signature check recorded for it. Images with neither are
// left out; so it is empty for an archive collected without referrers or
// keys.
func (b *BOM) SupplyChain() []ImageSupplyChain {
	verified := map[string]*ImageVerification{}
	for i := range b.Verifications {
		verified[b.Verifications[i].Image] = &b.Verifications[i]
	}
	var out []ImageSupplyChain
	for _, im := range b.Artifacts {
		if im.Kind != KindImage {
			continue
		}
		sc := ImageSupplyChain{Image: im.Name, Digest: im.Digest, Verification: verified[im.Name]}
		for _, a := range b.Artifacts {
			if a.Referrer == nil || a.Dest.Repository != im.Dest.Repository || !contains(im.Blobs, a.Referrer.Subject) {
				continue
			}
			sc.Attached = append(sc.Attached, AttachedArtifact{Name: a.Name, Digest: a.Digest, Referrer: *a.Referrer})
		}
		sort.SliceStable(sc.Attached, func(i, j int) bool {
			return kindRank(sc.Attached[i].Kind) < kindRank(sc.Attached[j].Kind)
		})
		if len(sc.Attached) > 0 || sc.Verification != nil {
			out = append(out, sc)
		}
	}
	return out
}

// RewrittenRoot says why no signature made at the source can cover the
// image's root manifest as the archive holds it (collect cut its index to
// some platforms, or converted it to OCI), or "" when it is the source's
// own.
func (a *Artifact) RewrittenRoot() string {
	if src := a.Annotations[AnnotationSourceDigest]; src != "" {
		return fmt.Sprintf("the index was cut to a subset of its platforms, so no signature covers it (the source's index is %s)", src)
	}
	if from, ok := a.ConvertedFrom(a.Digest); ok {
		return fmt.Sprintf("the manifest was converted to OCI, so no signature covers it (the source's manifest is %s)", from)
	}
	return ""
}
