package ingest

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/ferrytool/ferry/archive"
	"github.com/ferrytool/ferry/ingest/cluster"
	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/store"
)

// Artifact states in a report.
const (
	// StatePushed: the artifact's tag (or digest) resolves in the registry,
	// and this run pushed some of it.
	StatePushed = "pushed"
	// StatePresent: everything was there already.
	StatePresent = "present"
	// StateWaiting: some blobs or manifests are in volumes not given yet.
	StateWaiting = "waiting"
	// StateRefused: a blob failed verification, a pack signature did not
	// verify, or the registry refused a manifest; nothing of the artifact
	// reached a manifest in the registry.
	StateRefused = "refused"
	// StateWouldPush: a dry run found something to push.
	StateWouldPush = "would push"
)

// Causes of a refusal (ArtifactResult.Cause), which decide ferry's exit
// code: content that did not verify is not the registry's saying no.
const (
	// CauseVerification: a blob failed its digest or a pack signature did
	// not verify.
	CauseVerification = "verification"
	// CauseRegistry: the registry refused a manifest (or, probed, would).
	CauseRegistry = "registry"
	// CauseAtomic: nothing wrong with the artifact; --atomic held it back
	// because another was refused.
	CauseAtomic = "atomic"
	// CauseExpected: a delta archive left out blobs or manifests its
	// receipts said the destination holds, and the destination does not.
	CauseExpected = "expected"
)

// Report is the outcome of one ingest run.
type Report struct {
	ArchiveID string `json:"archiveID"`
	BOMDigest string `json:"bomDigest"`
	// Registry is HOST[:PORT][/BASE].
	Registry  string           `json:"registry"`
	DryRun    bool             `json:"dryRun,omitempty"`
	Atomic    bool             `json:"atomic,omitempty"`
	Volumes   []VolumeSeen     `json:"volumes"`
	Artifacts []ArtifactResult `json:"artifacts"`
	Blobs     BlobCounts       `json:"blobs"`
	// Requests counts the requests sent to the registry, retries included.
	Requests int64 `json:"requests"`
	// PackSignatures says whether vendor pack signatures were checked again.
	PackSignatures string `json:"packSignatures,omitempty"`
	// PacksWritten lists the pack files written to CopyOptions.PacksDir.
	PacksWritten []string    `json:"packsWritten,omitempty"`
	Validation   *Validation `json:"validation,omitempty"`
	// ConvertOCI says Docker manifests were converted to OCI on the way
	// (CopyOptions.ConvertOCI); each artifact lists its changed digests.
	ConvertOCI bool `json:"convertOCI,omitempty"`
	// StaleReferences are digest-pinned references whose digest the
	// conversion changed.
	StaleReferences []StaleReference `json:"staleReferences,omitempty"`
	// DockerProbe is what the run found out about the registry and
	// Docker media types; nil when it did not probe.
	DockerProbe *DockerProbe `json:"dockerProbe,omitempty"`
	// Tampering lists what the volumes given hold that the signed archive
	// does not account for, one message per volume; nothing of such a
	// volume is read, the artifacts that verify from the others go in.
	Tampering []string `json:"tampering,omitempty"`
	// ImageSignatures is "checked" when every image's signatures were
	// checked again (Options.Images), empty when they were not; Images has
	// each image's outcome.
	ImageSignatures string                       `json:"imageSignatures,omitempty"`
	Images          []manifest.ImageVerification `json:"images,omitempty"`
	// SupplyChain lists, per image with anything attached or checked, what
	// is attached and what became of it.
	SupplyChain []SupplyChainImage `json:"supplyChain,omitempty"`
	// Warnings are things the run chose not to do and why, e.g. an OCI
	// index over Docker manifests that --convert-oci left as it is.
	Warnings []string `json:"warnings,omitempty"`
	// Cluster is the outcome of the cluster steps a caller ran after the
	// push (cluster.Apply); Ingest never sets it.
	Cluster *cluster.Result `json:"cluster,omitempty"`
}

// VolumeSeen is a volume given to this run.
type VolumeSeen struct {
	Path   string `json:"path"`
	Number int    `json:"number"`
	Final  bool   `json:"final,omitempty"`
}

// BlobCounts sums what happened to blobs, one count per blob and repository.
type BlobCounts struct {
	Uploaded int `json:"uploaded"`
	// Resumed counts uploads continued from an earlier run or a lost
	// connection rather than started over.
	Resumed int `json:"resumed"`
	Mounted int `json:"mounted"`
	Found   int `json:"found"`
	// Missing counts blobs in volumes not given.
	Missing int `json:"missing"`
	Bad     int `json:"bad"`
	// BytesSent counts content bytes sent, retries included.
	BytesSent int64 `json:"bytesSent"`
	// Manifests counts manifests pushed.
	Manifests int `json:"manifests"`
}

// ArtifactResult is one artifact's state after the run.
type ArtifactResult struct {
	Name   string                `json:"name"`
	Kind   manifest.ArtifactKind `json:"kind"`
	Source string                `json:"source,omitempty"`
	// Destination is HOST/REPOSITORY:TAG (or @DIGEST without a tag).
	Destination string `json:"destination"`
	Digest      string `json:"digest"`
	State       string `json:"state"`
	Reason      string `json:"reason,omitempty"`
	// Cause is, for a refused artifact, one of the Cause* constants; empty
	// otherwise (and in a status read from the journal).
	Cause string `json:"cause,omitempty"`
	// MissingBlobs and MissingBytes count what a waiting artifact lacks.
	MissingBlobs int   `json:"missingBlobs,omitempty"`
	MissingBytes int64 `json:"missingBytes,omitempty"`
	// WaitingFor names the volumes that hold what is missing.
	WaitingFor string `json:"waitingFor,omitempty"`
	// ToSend is what a dry run would send for the artifact.
	ToSend int64 `json:"toSend,omitempty"`
	// PushedDigest is the digest the tag points at when conversion changed
	// it; empty when it is Digest.
	PushedDigest string `json:"pushedDigest,omitempty"`
	// Converted lists the manifests pushed in OCI form, old digest to new.
	Converted []DigestChange `json:"converted,omitempty"`
	// ConvertedByCollect lists the manifests `collect --convert-oci`
	// converted, source digest to the one in the archive, as the signed
	// bill of materials records them.
	ConvertedByCollect []DigestChange `json:"convertedByCollect,omitempty"`
}

// Err summarises the report: ErrRefused when artifacts were refused,
// ErrIncomplete when some wait for volumes, ErrValidation when the final
// check failed; nil when everything is in.
func (r *Report) Err() error {
	var refused, waiting []string
	reasons := map[string]bool{}
	for _, a := range r.Artifacts {
		switch a.State {
		case StateRefused:
			refused = append(refused, a.Name)
			reasons[a.Reason] = true
		case StateWaiting:
			waiting = append(waiting, fmt.Sprintf("%s (%s)", a.Name, a.WaitingFor))
		}
	}
	switch {
	case len(r.Tampering) > 0:
		return fmt.Errorf("%w: the media were tampered with: %s; %d of %d artifacts refused", ErrRefused, strings.Join(r.Tampering, "; "), len(refused), len(r.Artifacts))
	case len(refused) > 0:
		// One short line: the report lists each reason once, with its
		// artifacts.
		return fmt.Errorf("%w: %d of %d, for %d distinct reason(s); the report lists them", ErrRefused, len(refused), len(r.Artifacts), len(reasons))
	case len(waiting) > 0:
		return fmt.Errorf("%w: %d of %d artifacts wait: %s", ErrIncomplete, len(waiting), len(r.Artifacts), strings.Join(waiting, "; "))
	case r.Validation != nil:
		return r.Validation.Err()
	}
	return nil
}

// artifactPlan is one artifact with its destination and its closure split
// into blobs and manifests.
type artifactPlan struct {
	a    manifest.Artifact
	repo string // repository path in the registry, base included
	ref  string // tag, or the digest when there is none
	// layers are the blobs that are not manifests (configs, layers).
	layers []manifest.Blob
	// manifests are the manifests in the closure, children first, the
	// artifact's own manifest last.
	manifests []manifest.Blob
	res       ArtifactResult
	// digest is the root manifest's digest as pushed: a.Digest, or its
	// OCI form's with CopyOptions.ConvertOCI.
	digest string
	// pushAs holds the converted form of Docker manifests, by original
	// digest; nil without conversion.
	pushAs map[string]converted
	// ociDigest is the root digest of the artifact's OCI form when it has
	// Docker manifests and their bytes were at hand; validation accepts it
	// as well as the archive's.
	ociDigest string
	// warning says why conversion left the artifact as it is; empty when
	// it did not.
	warning string
	// expected are the blobs and manifests of the closure a delta archive
	// leaves out, which the destination must hold.
	expected []manifest.ExpectedBlob
}

// planArtifacts computes each artifact's destination and refuses two
// artifacts with one destination before anything is pushed.
func planArtifacts(bom *manifest.BOM, dest destination, mappings []Mapping) ([]*artifactPlan, error) {
	blobs := make(map[string]manifest.Blob, len(bom.Blobs))
	pos := make(map[string]int, len(bom.Blobs))
	for i, b := range bom.Blobs {
		blobs[b.Digest] = b
		pos[b.Digest] = i
	}
	var plans []*artifactPlan
	seen := map[string]string{}
	for _, a := range bom.Artifacts {
		rel := a.Dest.Repository
		if rel == "" {
			return nil, fmt.Errorf("%w: artifact %s has no destination repository", ErrConflict, a.Name)
		}
		for _, m := range mappings {
			if out, ok := m.apply(rel); ok {
				rel = out
				break
			}
		}
		p := &artifactPlan{a: a, repo: dest.repo(rel), ref: a.Dest.Tag, digest: a.Digest}
		if p.ref == "" {
			p.ref = a.Digest
		}
		key := p.repo + ":" + p.ref
		if other, dup := seen[key]; dup {
			return nil, fmt.Errorf("%w: %s and %s both go to %s/%s; nothing was pushed (change a mapping or the transfer spec)", ErrConflict, other, a.Name, dest.host, key)
		}
		seen[key] = a.Name
		closure := append([]string(nil), a.Blobs...)
		sort.SliceStable(closure, func(i, j int) bool { return pos[closure[i]] < pos[closure[j]] })
		var root manifest.Blob
		for _, d := range closure {
			if e, ok := bom.ExpectedBlob(d); ok {
				// A delta left it out: the destination holds it (checkExpected).
				p.expected = append(p.expected, e)
				if d == a.Digest {
					root = manifest.Blob{Digest: d, Size: e.Size, MediaType: a.MediaType}
				}
				continue
			}
			b := blobs[d]
			switch {
			case d == a.Digest:
				if b.MediaType == "" {
					b.MediaType = a.MediaType
				}
				root = b
			case manifest.IsManifest(b.MediaType):
				p.manifests = append(p.manifests, b)
			default:
				p.layers = append(p.layers, b)
			}
		}
		p.manifests = append(p.manifests, root)
		sep := ":"
		if a.Dest.Tag == "" {
			sep = "@"
		}
		p.res = ArtifactResult{Name: a.Name, Kind: a.Kind, Source: a.Source, Destination: dest.host + "/" + p.repo + sep + p.ref, Digest: a.Digest}
		for _, c := range a.Converted {
			p.res.ConvertedByCollect = append(p.res.ConvertedByCollect, DigestChange{From: c.From, To: c.To, MediaType: c.MediaType, Root: c.To == a.Digest})
		}
		plans = append(plans, p)
	}
	return plans, nil
}

// manifestMediaType is the Content-Type to push a manifest with: the one
// listed, else the one the document declares.
func manifestMediaType(listed string, data []byte) string {
	if listed != "" {
		return listed
	}
	var m struct {
		MediaType string            `json:"mediaType"`
		Manifests []json.RawMessage `json:"manifests"`
	}
	if json.Unmarshal(data, &m) == nil {
		if m.MediaType != "" {
			return m.MediaType
		}
		if m.Manifests != nil {
			return manifest.MediaTypeOCIIndex
		}
	}
	return manifest.MediaTypeOCIManifest
}

// locator places blobs in volumes: archive.Locator over the volumes of this
// run and those the journal recorded.
type locator struct{ l *archive.Locator }

// volumeRange is the volumes that may hold a blob.
type volumeRange = archive.VolumeRange

func newLocator(bom *manifest.BOM, vols map[int]store.VolumeRecord) *locator {
	contents := make([]archive.VolumeContents, 0, len(vols))
	for n, v := range vols {
		contents = append(contents, archive.VolumeContents{Number: n, Final: v.Final, Blobs: v.Blobs, Parts: v.Parts})
	}
	return &locator{l: archive.NewLocator(bom, contents)}
}

func (l *locator) where(digest string) []volumeRange { return l.l.Where(digest) }

// describeVolumes renders the volumes that hold a set of blobs.
func describeVolumes(rs []volumeRange) string { return archive.DescribeVolumes(rs) }
