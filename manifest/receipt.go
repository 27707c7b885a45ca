package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// KindReceipt identifies a receipt document.
const KindReceipt = "Receipt"

// MaxReceiptSize caps how much of a receipt document a reader holds in
// memory. A destination holding a hundred thousand blobs takes about eight
// megabytes.
const MaxReceiptSize = 64 << 20

// ErrInvalidReceipt is returned for a receipt that does not parse or is
// inconsistent.
var ErrInvalidReceipt = errors.New("invalid receipt")

// Receipt is what the air-gapped side says it holds: every manifest and blob
// of ferry's destination, with the repositories and tags they sit under, and
// the archives that brought them. The connected side trusts it once its
// signature checks, and leaves out of the next archive what it lists.
//
// The JSON field tags give a readable form for reports; Marshal gives the
// compact form that is signed and carried.
type Receipt struct {
	// Destination names the registry and base path the receipt describes;
	// repositories are relative to it, as in a bill of materials.
	Destination string    `json:"destination"`
	Created     time.Time `json:"created"`
	// Tool names the ferry build that wrote the receipt.
	Tool string `json:"tool,omitempty"`
	// SignedBy is the id of the key that signs the receipt, set by the
	// signer. It is covered by the signature, so once that checks it tells
	// an auditor which key vouched for the content.
	SignedBy string `json:"signedBy,omitempty"`
	// Archives are the archives ingested into the destination.
	Archives []ReceivedArchive `json:"archives,omitempty"`
	// Blobs lists every manifest and blob held once, sorted by digest.
	Blobs []HeldBlob `json:"blobs,omitempty"`
	// Artifacts lists every root manifest held, sorted by repository, tag
	// and digest.
	Artifacts []HeldArtifact `json:"artifacts,omitempty"`
}

// ReceivedArchive names an archive that went into the destination.
type ReceivedArchive struct {
	ArchiveID string `json:"archiveID"`
	BOMDigest string `json:"bomDigest"`
}

// HeldBlob is one content-addressed blob of the destination.
type HeldBlob struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
	// Manifest is set for manifests and indexes, which a registry serves
	// from its manifest endpoint rather than its blob endpoint.
	Manifest bool `json:"manifest,omitempty"`
}

// HeldArtifact is one root manifest in one repository of the destination.
type HeldArtifact struct {
	Repository string `json:"repository"`
	// Tag is empty for a manifest held by digest only.
	Tag    string `json:"tag,omitempty"`
	Digest string `json:"digest"`
	// Blobs is the artifact's closure, sorted: every manifest and blob
	// needed to pull it, its own manifest included.
	Blobs []string `json:"blobs"`
}

// Key names what the artifact occupies at the destination, as
// Destination.Key does.
func (a HeldArtifact) Key() string {
	return Destination{Repository: a.Repository, Tag: a.Tag}.Key(a.Digest)
}

// Holding is what a caller found at the destination for one tag (or one
// manifest held by digest): its root manifest, any child manifests of an
// index, and the configs and layers of them all.
type Holding struct {
	Repository string
	Tag        string
	Manifest   Blob
	Manifests  []Blob
	Blobs      []Blob
}

// NewReceipt builds a receipt from holdings. A digest listed with two sizes,
// or once as a manifest and once as a blob, is an error; so is a repository
// and tag listed twice with different manifests. Holdings listed twice are
// merged.
func NewReceipt(destination string, created time.Time, archives []ReceivedArchive, holdings []Holding) (*Receipt, error) {
	r := &Receipt{Destination: destination, Created: created.UTC()}
	if len(archives) > 0 {
		r.Archives = append([]ReceivedArchive{}, archives...)
	}
	blobs := map[string]HeldBlob{}
	add := func(b Blob, isManifest bool) error {
		if err := CheckDigest(b.Digest); err != nil {
			return err
		}
		if b.Size < 0 {
			return fmt.Errorf("blob %s has negative size %d", b.Digest, b.Size)
		}
		held := HeldBlob{Digest: b.Digest, Size: b.Size, Manifest: isManifest}
		if prev, ok := blobs[b.Digest]; ok && prev != held {
			return fmt.Errorf("blob %s listed as %s and as %s", b.Digest, prev.describe(), held.describe())
		}
		blobs[b.Digest] = held
		return nil
	}
	arts := map[string]*HeldArtifact{}
	for _, h := range holdings {
		closure := map[string]bool{h.Manifest.Digest: true}
		err := add(h.Manifest, true)
		for _, m := range h.Manifests {
			if err == nil {
				err = add(m, true)
			}
			closure[m.Digest] = true
		}
		for _, b := range h.Blobs {
			if err == nil {
				err = add(b, false)
			}
			closure[b.Digest] = true
		}
		if err == nil && h.Repository == "" {
			err = errors.New("no repository")
		}
		a := HeldArtifact{Repository: h.Repository, Tag: h.Tag, Digest: h.Manifest.Digest, Blobs: sortedSet(closure)}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrInvalidReceipt, a.Key(), err)
		}
		if prev, ok := arts[a.Key()]; ok {
			if prev.Digest != a.Digest {
				return nil, fmt.Errorf("%w: %s listed with manifests %s and %s", ErrInvalidReceipt, a.Key(), prev.Digest, a.Digest)
			}
			a.Blobs = mergeSorted(prev.Blobs, a.Blobs)
		}
		arts[a.Key()] = &a
	}
	for _, b := range blobs {
		r.Blobs = append(r.Blobs, b)
	}
	sort.Slice(r.Blobs, func(i, j int) bool { return r.Blobs[i].Digest < r.Blobs[j].Digest })
	for _, a := range arts {
		r.Artifacts = append(r.Artifacts, *a)
	}
	sortHeld(r.Artifacts)
	sort.Slice(r.Archives, func(i, j int) bool { return r.Archives[i].ArchiveID < r.Archives[j].ArchiveID })
	return r, nil
}

// BOMHoldings is what an archive puts at its destination once every
// artifact is in: one holding per artifact, its child manifests told from
// its blobs by media type. Artifacts without a destination repository hold
// nothing in the registry and are left out.
func BOMHoldings(b *BOM) []Holding {
	blobs := make(map[string]Blob, len(b.Blobs))
	for _, bl := range b.Blobs {
		blobs[bl.Digest] = bl
	}
	// A delta archive's expected blobs are held too, once it is in.
	expectedManifest := map[string]bool{}
	for _, e := range b.Expected {
		blobs[e.Digest] = Blob{Digest: e.Digest, Size: e.Size}
		expectedManifest[e.Digest] = e.Manifest
	}
	var out []Holding
	for _, a := range b.Artifacts {
		if a.Dest.Repository == "" {
			continue
		}
		h := Holding{Repository: a.Dest.Repository, Tag: a.Dest.Tag, Manifest: Blob{Digest: a.Digest, Size: a.Size}}
		for _, d := range a.Blobs {
			bl := blobs[d]
			switch {
			case d == a.Digest:
			case IsManifest(bl.MediaType) || expectedManifest[d]:
				h.Manifests = append(h.Manifests, Blob{Digest: d, Size: bl.Size})
			default:
				h.Blobs = append(h.Blobs, Blob{Digest: d, Size: bl.Size})
			}
		}
		out = append(out, h)
	}
	return out
}

func (b HeldBlob) describe() string {
	kind := "blob"
	if b.Manifest {
		kind = "manifest"
	}
	return fmt.Sprintf("%s of %d bytes", kind, b.Size)
}

func sortHeld(as []HeldArtifact) {
	sort.Slice(as, func(i, j int) bool {
		if as[i].Repository != as[j].Repository {
			return as[i].Repository < as[j].Repository
		}
		if as[i].Tag != as[j].Tag {
			return as[i].Tag < as[j].Tag
		}
		return as[i].Digest < as[j].Digest
	})
}

// Blob returns the held blob with the given digest.
func (r *Receipt) Blob(digest string) (HeldBlob, bool) {
	i := sort.Search(len(r.Blobs), func(i int) bool { return r.Blobs[i].Digest >= digest })
	if i < len(r.Blobs) && r.Blobs[i].Digest == digest {
		return r.Blobs[i], true
	}
	return HeldBlob{}, false
}

// Repositories returns, sorted, the repositories where an artifact's closure
// holds digest: where a registry can mount it from.
func (r *Receipt) Repositories(digest string) []string {
	var out []string
	for _, a := range r.Artifacts {
		if containsSorted(a.Blobs, digest) && (len(out) == 0 || out[len(out)-1] != a.Repository) {
			out = append(out, a.Repository)
		}
	}
	return out
}

// Stats sums the receipt: artifacts, blobs and the bytes the blobs take
// stored once.
func (r *Receipt) Stats() Stats {
	s := Stats{Artifacts: len(r.Artifacts), Blobs: len(r.Blobs)}
	for _, b := range r.Blobs {
		s.StoredBytes += b.Size
	}
	size := r.sizes()
	for _, a := range r.Artifacts {
		for _, d := range a.Blobs {
			s.LogicalBytes += size[d]
		}
	}
	return s
}

func (r *Receipt) sizes() map[string]int64 {
	m := make(map[string]int64, len(r.Blobs))
	for _, b := range r.Blobs {
		m[b.Digest] = b.Size
	}
	return m
}

// receiptDoc is the encoded form: one sorted table of digests, as hex
// without the algorithm (every digest is sha256), and artifacts that name
// their blobs by position in it. zstd then shrinks the hex to about the size
// of the binary digests.
type receiptDoc struct {
	APIVersion  string            `json:"apiVersion"`
	Kind        string            `json:"kind"`
	Destination string            `json:"destination"`
	Created     time.Time         `json:"created"`
	Tool        string            `json:"tool,omitempty"`
	SignedBy    string            `json:"signedBy,omitempty"`
	Archives    []ReceivedArchive `json:"archives"`
	// Digests are the sha256 hex of every blob, sorted; Sizes are their
	// sizes in the same order; Manifests are the positions of the blobs
	// that are manifests, ascending.
	Digests      []string      `json:"digests"`
	Sizes        []int64       `json:"sizes"`
	Manifests    []int         `json:"manifests"`
	Repositories []receiptRepo `json:"repositories"`
}

type receiptRepo struct {
	Name      string        `json:"name"`
	Artifacts []receiptHeld `json:"artifacts"`
}

type receiptHeld struct {
	Tag      string `json:"tag,omitempty"`
	Manifest int    `json:"manifest"`
	// Blobs are the positions of the closure's other blobs, ascending.
	Blobs []int `json:"blobs"`
}

// Marshal returns the canonical bytes of the receipt: the exact bytes that
// are signed. The same receipt always gives the same bytes.
func (r *Receipt) Marshal() ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	doc := receiptDoc{
		APIVersion: APIVersion, Kind: KindReceipt, Destination: r.Destination, Created: r.Created.UTC(),
		Tool: r.Tool, SignedBy: r.SignedBy, Archives: r.Archives,
		Digests: make([]string, len(r.Blobs)), Sizes: make([]int64, len(r.Blobs)), Manifests: []int{},
		Repositories: []receiptRepo{},
	}
	if doc.Archives == nil {
		doc.Archives = []ReceivedArchive{}
	}
	pos := make(map[string]int, len(r.Blobs))
	for i, b := range r.Blobs {
		doc.Digests[i] = strings.TrimPrefix(b.Digest, "sha256:")
		doc.Sizes[i] = b.Size
		if b.Manifest {
			doc.Manifests = append(doc.Manifests, i)
		}
		pos[b.Digest] = i
	}
	for _, a := range r.Artifacts {
		if n := len(doc.Repositories); n == 0 || doc.Repositories[n-1].Name != a.Repository {
			doc.Repositories = append(doc.Repositories, receiptRepo{Name: a.Repository})
		}
		repo := &doc.Repositories[len(doc.Repositories)-1]
		h := receiptHeld{Tag: a.Tag, Manifest: pos[a.Digest], Blobs: make([]int, 0, len(a.Blobs)-1)}
		for _, d := range a.Blobs {
			if d != a.Digest {
				h.Blobs = append(h.Blobs, pos[d])
			}
		}
		sort.Ints(h.Blobs)
		repo.Artifacts = append(repo.Artifacts, h)
	}
	data, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encode receipt: %w", err)
	}
	return append(data, '\n'), nil
}

// ParseReceipt decodes and validates a receipt document. Unknown fields are
// an error, as in a bill of materials.
func ParseReceipt(data []byte) (*Receipt, error) {
	if len(data) > MaxReceiptSize {
		return nil, fmt.Errorf("%w: %d bytes exceeds the %d byte limit", ErrInvalidReceipt, len(data), MaxReceiptSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var doc receiptDoc
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidReceipt, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data after the document", ErrInvalidReceipt)
	}
	if doc.APIVersion != APIVersion || doc.Kind != KindReceipt {
		return nil, fmt.Errorf("%w: apiVersion %q kind %q, want %q %q", ErrInvalidReceipt, doc.APIVersion, doc.Kind, APIVersion, KindReceipt)
	}
	if len(doc.Sizes) != len(doc.Digests) {
		return nil, fmt.Errorf("%w: %d digests but %d sizes", ErrInvalidReceipt, len(doc.Digests), len(doc.Sizes))
	}
	// Empty lists are nil, as NewReceipt leaves them, so a receipt reads
	// back equal to the one written.
	r := &Receipt{Destination: doc.Destination, Created: doc.Created, Tool: doc.Tool, SignedBy: doc.SignedBy}
	if len(doc.Archives) > 0 {
		r.Archives = doc.Archives
	}
	for i, h := range doc.Digests {
		r.Blobs = append(r.Blobs, HeldBlob{Digest: "sha256:" + h, Size: doc.Sizes[i]})
	}
	for _, i := range doc.Manifests {
		if i < 0 || i >= len(r.Blobs) {
			return nil, fmt.Errorf("%w: manifest position %d outside the %d digests", ErrInvalidReceipt, i, len(r.Blobs))
		}
		r.Blobs[i].Manifest = true
	}
	at := func(i int) (string, error) {
		if i < 0 || i >= len(r.Blobs) {
			return "", fmt.Errorf("%w: blob position %d outside the %d digests", ErrInvalidReceipt, i, len(r.Blobs))
		}
		return r.Blobs[i].Digest, nil
	}
	for _, repo := range doc.Repositories {
		for _, h := range repo.Artifacts {
			root, err := at(h.Manifest)
			if err != nil {
				return nil, err
			}
			a := HeldArtifact{Repository: repo.Name, Tag: h.Tag, Digest: root, Blobs: []string{root}}
			for _, i := range h.Blobs {
				d, err := at(i)
				if err != nil {
					return nil, err
				}
				a.Blobs = append(a.Blobs, d)
			}
			sort.Strings(a.Blobs)
			r.Artifacts = append(r.Artifacts, a)
		}
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return r, nil
}

// Validate checks that the receipt is in canonical form: well-formed sorted
// unique digests, sizes not negative, artifacts sorted and unique with root
// manifests that are manifests and closures made of listed blobs.
func (r *Receipt) Validate() error {
	if r.Destination == "" {
		return fmt.Errorf("%w: no destination", ErrInvalidReceipt)
	}
	for i, b := range r.Blobs {
		if err := CheckDigest(b.Digest); err != nil {
			return fmt.Errorf("%w: blob %d: %v", ErrInvalidReceipt, i, err)
		}
		if b.Size < 0 {
			return fmt.Errorf("%w: blob %s has negative size %d", ErrInvalidReceipt, b.Digest, b.Size)
		}
		if i > 0 && r.Blobs[i-1].Digest >= b.Digest {
			return fmt.Errorf("%w: blob %s out of order or listed twice", ErrInvalidReceipt, b.Digest)
		}
	}
	for i, a := range r.Artifacts {
		if a.Repository == "" {
			return fmt.Errorf("%w: artifact %s has no repository", ErrInvalidReceipt, a.Digest)
		}
		if i > 0 {
			p := r.Artifacts[i-1]
			if p.Repository > a.Repository || p.Repository == a.Repository && (p.Tag > a.Tag || p.Tag == a.Tag && p.Digest >= a.Digest) {
				return fmt.Errorf("%w: artifact %s out of order or listed twice", ErrInvalidReceipt, a.Key())
			}
			if a.Tag != "" && p.Repository == a.Repository && p.Tag == a.Tag {
				return fmt.Errorf("%w: %s listed with manifests %s and %s", ErrInvalidReceipt, a.Key(), p.Digest, a.Digest)
			}
		}
		if root, ok := r.Blob(a.Digest); !ok || !root.Manifest {
			return fmt.Errorf("%w: artifact %s: root %s is not a listed manifest", ErrInvalidReceipt, a.Key(), a.Digest)
		}
		if !containsSorted(a.Blobs, a.Digest) {
			return fmt.Errorf("%w: artifact %s: its own manifest %s is not in its blob list", ErrInvalidReceipt, a.Key(), a.Digest)
		}
		for j, d := range a.Blobs {
			if _, ok := r.Blob(d); !ok {
				return fmt.Errorf("%w: artifact %s needs blob %s, which is not listed", ErrInvalidReceipt, a.Key(), d)
			}
			if j > 0 && a.Blobs[j-1] >= d {
				return fmt.Errorf("%w: artifact %s: blob %s out of order or listed twice", ErrInvalidReceipt, a.Key(), d)
			}
		}
	}
	return nil
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func mergeSorted(a, b []string) []string {
	m := make(map[string]bool, len(a)+len(b))
	for _, s := range a {
		m[s] = true
	}
	for _, s := range b {
		m[s] = true
	}
	return sortedSet(m)
}

func containsSorted(list []string, s string) bool {
	i := sort.SearchStrings(list, s)
	return i < len(list) && list[i] == s
}
