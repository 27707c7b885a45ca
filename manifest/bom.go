package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// APIVersion identifies ferry's documents (the transfer spec); a bill of
// materials has its own, BOMAPIVersion, with KindBOM.
const (
	APIVersion = "ferry.dev/v1alpha1"
	KindBOM    = "BillOfMaterials"
	// BOMAPIVersion is the bill of materials' apiVersion. v1alpha2 archives
	// seal every volume index with the archive's key; v1alpha1 archives,
	// whose indexes are not signed, are refused.
	BOMAPIVersion = "ferry.dev/v1alpha2"
	// bomAPIVersionUnsealed is the version before sealed indexes.
	bomAPIVersionUnsealed = "ferry.dev/v1alpha1"
)

// Limits on what a bill of materials may list, far above any real archive;
// a reader refuses more, naming the limit.
const (
	MaxArtifacts = 100_000
	MaxBlobs     = 1_000_000
)

// MaxBOMSize caps how much of manifest.json a reader holds in memory. A bill of
// materials for thousands of images stays far below it.
const MaxBOMSize = 64 << 20

// ArtifactKind says what an artifact is and so where it lands in the registry.
type ArtifactKind string

const (
	KindImage  ArtifactKind = "image"
	KindChart  ArtifactKind = "chart"
	KindPack   ArtifactKind = "pack"
	KindBundle ArtifactKind = "bundle"
	// KindReferrer is a signature, attestation, SBOM or other artifact
	// attached to an image of the archive (Artifact.Referrer says which). It
	// goes into its subject's destination repository, after the subject.
	KindReferrer ArtifactKind = "referrer"
)

// BOM is the bill of materials: the first entry of every volume and the one
// thing the archive signature covers. Everything in it is known before a single
// layer is downloaded.
type BOM struct {
	APIVersion string    `json:"apiVersion"`
	Kind       string    `json:"kind"`
	ArchiveID  string    `json:"archiveID"`
	Created    time.Time `json:"created"`
	// Tool names the ferry build that wrote the archive.
	Tool      string     `json:"tool,omitempty"`
	Artifacts []Artifact `json:"artifacts"`
	// Blobs lists every blob once, in archive order: children before the
	// manifests that reference them.
	Blobs []Blob `json:"blobs"`
	// Gaps lists what collect found named but did not carry.
	Gaps []Gap `json:"gaps,omitempty"`
	// Verifications records the check of each image's signatures at
	// collect, when it was given keys to check them with.
	Verifications []ImageVerification `json:"verifications,omitempty"`
	// Since names the receipts a delta archive was collected against;
	// empty for a full archive.
	Since []ReceiptRef `json:"since,omitempty"`
	// Expected lists, sorted by digest, the blobs and manifests artifacts
	// need that the archive leaves out because a receipt of Since says the
	// destination holds them.
	Expected []ExpectedBlob `json:"expected,omitempty"`
}

// Artifact is one thing the operator asked for (or that a bundle needs), with
// its identity at the source and its place at the destination.
type Artifact struct {
	Kind ArtifactKind `json:"kind"`
	// Name is unique in the archive and is the org.opencontainers.image.ref.name
	// of the artifact's entry in index.json.
	Name      string      `json:"name"`
	Source    string      `json:"source"`
	Dest      Destination `json:"destination"`
	Digest    string      `json:"digest"`
	Size      int64       `json:"size"`
	MediaType string      `json:"mediaType"`
	// Blobs is the artifact's closure: every blob (child manifests, configs,
	// layers and the root manifest itself) needed to push it.
	Blobs []string `json:"blobs"`
	// Reasons say why the artifact is in the archive (a chart template, a
	// pack, the command line).
	Reasons     []Reason          `json:"reasons,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// Converted lists every manifest of the artifact that collect rewrote
	// from Docker schema 2 to OCI (--convert-oci), root and child manifests
	// alike. It is signed with the rest, so the air-gapped side pushes what
	// was signed and can still name the source's digests.
	Converted []Conversion `json:"converted,omitempty"`
	// Mirror is the repository the artifact was pulled from when a registry
	// mirror stood in for its source; Source stays the original reference.
	Mirror string `json:"mirror,omitempty"`
	// Referrer links an artifact of KindReferrer to its subject; nil for
	// every other kind.
	Referrer *Referrer `json:"referrer,omitempty"`
}

// Conversion records one manifest whose media types changed, and so whose
// digest changed, from what the source serves to what the archive holds.
type Conversion struct {
	// From and FromMediaType are the source's digest and media type.
	From          string `json:"from"`
	FromMediaType string `json:"fromMediaType"`
	// To and MediaType are the digest and media type in the archive.
	To        string `json:"to"`
	MediaType string `json:"mediaType"`
}

// Destination is where an artifact goes, relative to the registry base path.
type Destination struct {
	Repository string `json:"repository"`
	Tag        string `json:"tag,omitempty"`
}

// Reason records why an artifact was collected.
type Reason struct {
	// From is what asked for it: "flag", "spec", "chart", "pack", "bundle".
	From string `json:"from"`
	// Detail names the chart, template file and field path, or pack.
	Detail string `json:"detail,omitempty"`
	// Hint is set when only a chart's Chart.yaml annotation names the
	// image: what the chart renders does not use it.
	Hint bool `json:"hint,omitempty"`
}

// Gap kinds.
const (
	// GapImage is an image only chart annotations name that the source
	// does not have.
	GapImage = "image"
	// GapChart is a chart that does not load or render.
	GapChart = "chart"
	// GapDocument is a bundle document that does not parse.
	GapDocument = "document"
)

// Gap is something collect found named but did not carry, and why: an
// air-gapped install that needs it will miss it.
type Gap struct {
	// Kind is GapImage, GapChart or GapDocument.
	Kind string `json:"kind"`
	// Name is the image reference, the chart, or the file and document.
	Name string `json:"name"`
	// Reason says why it is not carried.
	Reason string `json:"reason"`
	// WantedBy says what named it.
	WantedBy []Reason `json:"wantedBy,omitempty"`
}

// Blob is one content-addressed blob of the archive.
type Blob struct {
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
	MediaType string `json:"mediaType,omitempty"`
}

// NewBOM returns an empty bill of materials with its header filled in.
func NewBOM(archiveID string, created time.Time) *BOM {
	return &BOM{APIVersion: BOMAPIVersion, Kind: KindBOM, ArchiveID: archiveID, Created: created.UTC()}
}

// Marshal returns the canonical bytes of the bill of materials: the exact
// bytes that are written to manifest.json and signed.
func (b *BOM) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(b); err != nil {
		return nil, fmt.Errorf("encode bill of materials: %w", err)
	}
	return buf.Bytes(), nil
}

// ParseBOM decodes and validates a bill of materials. Unknown fields are an
// error: a reader that silently ignored them could push something unsigned.
func ParseBOM(data []byte) (*BOM, error) {
	if len(data) > MaxBOMSize {
		return nil, fmt.Errorf("%w: %d bytes exceeds the %d byte limit (MaxBOMSize)", ErrInvalidBOM, len(data), MaxBOMSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var b BOM
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidBOM, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data after the document", ErrInvalidBOM)
	}
	if err := b.Validate(); err != nil {
		return nil, err
	}
	return &b, nil
}

// Validate checks the internal consistency of a bill of materials: known
// header, well-formed digests, unique names and destinations, and every
// artifact's closure made of listed blobs.
func (b *BOM) Validate() error {
	if b.Kind == KindBOM && b.APIVersion == bomAPIVersionUnsealed {
		return fmt.Errorf("%w: apiVersion %s: the archive was written by an older ferry, whose volume indexes are not signed; collect it again with this one", ErrInvalidBOM, b.APIVersion)
	}
	if b.APIVersion != BOMAPIVersion || b.Kind != KindBOM {
		return fmt.Errorf("%w: apiVersion %q kind %q, want %q %q", ErrInvalidBOM, b.APIVersion, b.Kind, BOMAPIVersion, KindBOM)
	}
	if !safeArchiveID(b.ArchiveID) {
		return fmt.Errorf("%w: archiveID %q: want 1 to 128 letters, digits, '.', '_' or '-', not . or ..", ErrInvalidBOM, b.ArchiveID)
	}
	if len(b.Artifacts) > MaxArtifacts {
		return fmt.Errorf("%w: %d artifacts, over the limit of %d (MaxArtifacts)", ErrInvalidBOM, len(b.Artifacts), MaxArtifacts)
	}
	if len(b.Blobs) > MaxBlobs {
		return fmt.Errorf("%w: %d blobs, over the limit of %d (MaxBlobs)", ErrInvalidBOM, len(b.Blobs), MaxBlobs)
	}
	blobs := make(map[string]bool, len(b.Blobs)+len(b.Expected))
	for i, bl := range b.Blobs {
		if err := CheckDigest(bl.Digest); err != nil {
			return fmt.Errorf("%w: blob %d: %v", ErrInvalidBOM, i, err)
		}
		if bl.Size < 0 {
			return fmt.Errorf("%w: blob %s has negative size %d", ErrInvalidBOM, bl.Digest, bl.Size)
		}
		if blobs[bl.Digest] {
			return fmt.Errorf("%w: blob %s listed twice", ErrInvalidBOM, bl.Digest)
		}
		blobs[bl.Digest] = true
	}
	// An artifact's blob is carried or expected at the destination.
	if err := b.validateDelta(blobs); err != nil {
		return err
	}
	names := make(map[string]bool, len(b.Artifacts))
	dests := make(map[string]string, len(b.Artifacts))
	for _, a := range b.Artifacts {
		if a.Name == "" {
			return fmt.Errorf("%w: artifact from %q has no name", ErrInvalidBOM, a.Source)
		}
		if names[a.Name] {
			return fmt.Errorf("%w: artifact name %q used twice", ErrInvalidBOM, a.Name)
		}
		names[a.Name] = true
		if err := CheckDigest(a.Digest); err != nil {
			return fmt.Errorf("%w: artifact %s: %v", ErrInvalidBOM, a.Name, err)
		}
		if d := a.Dest.Key(a.Digest); a.Dest.Repository != "" {
			if other, ok := dests[d]; ok {
				return fmt.Errorf("%w: %s and %s both go to %s", ErrInvalidBOM, other, a.Name, d)
			}
			dests[d] = a.Name
		}
		for _, d := range a.Blobs {
			if !blobs[d] {
				return fmt.Errorf("%w: artifact %s needs blob %s, which is neither listed nor expected at the destination", ErrInvalidBOM, a.Name, d)
			}
		}
		if !contains(a.Blobs, a.Digest) {
			return fmt.Errorf("%w: artifact %s: its own manifest %s is not in its blob list", ErrInvalidBOM, a.Name, a.Digest)
		}
		for _, c := range a.Converted {
			if err := c.validate(a.Blobs); err != nil {
				return fmt.Errorf("%w: artifact %s: %v", ErrInvalidBOM, a.Name, err)
			}
		}
	}
	return b.validateSupplyChain(blobs)
}

// validateSupplyChain checks what links artifacts to the images they are
// attached to: each referrer names a manifest of the archive as its subject
// and goes into the repository of an image holding that manifest; each
// image's signature check is recorded once, for a manifest of that image.
func (b *BOM) validateSupplyChain(blobs map[string]bool) error {
	repos := map[string]map[string]bool{} // manifest digest -> repositories of the images holding it
	byName := make(map[string]*Artifact, len(b.Artifacts))
	for i := range b.Artifacts {
		a := &b.Artifacts[i]
		byName[a.Name] = a
		if a.Kind == KindReferrer {
			continue
		}
		for _, d := range a.Blobs {
			if repos[d] == nil {
				repos[d] = map[string]bool{}
			}
			repos[d][a.Dest.Repository] = true
		}
	}
	for i := range b.Artifacts {
		a := &b.Artifacts[i]
		if (a.Kind == KindReferrer) != (a.Referrer != nil) {
			return fmt.Errorf("%w: artifact %s: kind %s with referrer %v", ErrInvalidBOM, a.Name, a.Kind, a.Referrer != nil)
		}
		if a.Referrer == nil {
			continue
		}
		subject := a.Referrer.Subject
		if err := a.Referrer.Validate(); err != nil {
			return fmt.Errorf("artifact %s: %w", a.Name, err)
		}
		if !blobs[subject] {
			return fmt.Errorf("%w: referrer %s: its subject %s is not in the archive", ErrInvalidBOM, a.Name, subject)
		}
		if bl, _ := b.Blob(subject); bl.MediaType != "" && !IsManifest(bl.MediaType) {
			return fmt.Errorf("%w: referrer %s: its subject %s is a %s, not a manifest", ErrInvalidBOM, a.Name, subject, bl.MediaType)
		}
		if r := repos[subject]; len(r) > 0 && !r[a.Dest.Repository] {
			return fmt.Errorf("%w: referrer %s goes to %s, where no image holding its subject %s goes", ErrInvalidBOM, a.Name, a.Dest.Repository, subject)
		}
	}
	checked := make(map[string]bool, len(b.Verifications))
	for i := range b.Verifications {
		v := &b.Verifications[i]
		a := byName[v.Image]
		if a == nil {
			return fmt.Errorf("%w: verification of %q names no artifact", ErrInvalidBOM, v.Image)
		}
		if checked[v.Image] {
			return fmt.Errorf("%w: image %s has two signature checks", ErrInvalidBOM, v.Image)
		}
		checked[v.Image] = true
		if err := v.Validate(); err != nil {
			return err
		}
		if !contains(a.Blobs, v.Subject) {
			return fmt.Errorf("%w: verification of %s names %s, which is not a manifest of that image", ErrInvalidBOM, v.Image, v.Subject)
		}
	}
	return nil
}

func (c Conversion) validate(closure []string) error {
	if err := CheckDigest(c.From); err != nil {
		return fmt.Errorf("conversion from: %v", err)
	}
	if err := CheckDigest(c.To); err != nil {
		return fmt.Errorf("conversion to: %v", err)
	}
	if !contains(closure, c.To) {
		return fmt.Errorf("converted manifest %s (from %s) is not in its blob list", c.To, c.From)
	}
	return nil
}

// ConvertedFrom returns the source digest of a manifest of the artifact that
// collect converted, and whether it was converted.
func (a *Artifact) ConvertedFrom(digest string) (string, bool) {
	for _, c := range a.Converted {
		if c.To == digest {
			return c.From, true
		}
	}
	return "", false
}

// Blob returns the listed blob with the given digest.
func (b *BOM) Blob(digest string) (Blob, bool) {
	for _, bl := range b.Blobs {
		if bl.Digest == digest {
			return bl, true
		}
	}
	return Blob{}, false
}

// Stats sums the bill of materials: what the artifacts would take stored one
// by one, and what they take with each blob stored once.
func (b *BOM) Stats() Stats {
	size := make(map[string]int64, len(b.Blobs))
	var s Stats
	for _, bl := range b.Blobs {
		size[bl.Digest] = bl.Size
		s.StoredBytes += bl.Size
	}
	for _, a := range b.Artifacts {
		for _, d := range a.Blobs {
			s.LogicalBytes += size[d]
		}
	}
	s.Artifacts = len(b.Artifacts)
	s.Blobs = len(b.Blobs)
	return s
}

// Stats is a summary of a bill of materials.
type Stats struct {
	Artifacts    int   `json:"artifacts"`
	Blobs        int   `json:"blobs"`
	LogicalBytes int64 `json:"logicalBytes"`
	StoredBytes  int64 `json:"storedBytes"`
}

// Saved is how many bytes storing each blob once saves.
func (s Stats) Saved() int64 { return s.LogicalBytes - s.StoredBytes }

// Key names what an artifact occupies at its destination, for finding two
// artifacts that would overwrite each other: the tag, or without one the
// manifest's digest, since distinct digests in one repository are distinct
// manifests that never collide.
func (d Destination) Key(digest string) string {
	if d.Tag == "" {
		return d.Repository + "@" + digest
	}
	return d.Repository + ":" + d.Tag
}

// String renders a destination as repository:tag.
func (d Destination) String() string {
	if d.Tag == "" {
		return d.Repository
	}
	return d.Repository + ":" + d.Tag
}

// SortArtifacts orders artifacts by kind then name, for stable output.
func SortArtifacts(as []Artifact) {
	sort.SliceStable(as, func(i, j int) bool {
		if as[i].Kind != as[j].Kind {
			return as[i].Kind < as[j].Kind
		}
		return as[i].Name < as[j].Name
	})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// CheckDigest accepts only sha256 digests in canonical form, the one algorithm
// the archive uses, so a digest can safely become a file name.
func CheckDigest(d string) error {
	hex, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(hex) != 64 {
		return fmt.Errorf("digest %q is not sha256:<64 hex>", d)
	}
	for _, c := range hex {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return fmt.Errorf("digest %q is not sha256:<64 lowercase hex>", d)
		}
	}
	return nil
}

// safeArchiveID reports whether id can name a folder of its own: the air-gapped
// side stages split blobs under it.
func safeArchiveID(id string) bool {
	if id == "" || len(id) > 128 || id == "." || id == ".." {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}
