package ingest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/ferrytool/ferry/archive"
	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/registry"
	"github.com/ferrytool/ferry/store"
)

// Options configure Ingest, Validate and Status. The zero value of each
// optional field is documented beside it.
type Options struct {
	// Registry is the destination, HOST[:PORT][/BASE] without a scheme, e.g.
	// 10.10.233.0:30003/spectro-content. Required.
	Registry string
	// Verifier checks the bill of materials' signature. Required.
	Verifier archive.Verifier
	// Auth is the registry credential. Nil means Keychain, and anonymous
	// without one.
	Auth authn.Authenticator
	// Keychain resolves credentials by registry host (the docker config).
	Keychain authn.Keychain
	// Transport carries every request (TLS settings, proxies). Nil means a
	// clone of http.DefaultTransport without proxy.
	Transport http.RoundTripper
	// PlainHTTP talks HTTP instead of HTTPS. Without it ferry never falls
	// back to HTTP, whatever the host.
	PlainHTTP bool
	// Jobs bounds parallel blob uploads; zero means 4.
	Jobs int
	// Retry is the policy for requests that fail for a passing reason.
	Retry RetryPolicy
	// ChunkSize bounds one upload request's body: larger blobs go in PATCH
	// chunks of at most this size; zero means registry.DefaultChunkSize.
	ChunkSize int64
	// Journal records what is in and upload sessions; nil means none: no
	// resume across runs, and manifests only from the volumes given.
	Journal *store.Journal
	// WorkDir holds the parts of blobs split across volumes until all parts
	// have been seen; empty means a folder in the system temporary folder.
	WorkDir string
	// TmpDir holds volume index databases while they are read; empty means
	// the system default.
	TmpDir string
	// Mappings rewrite destination repositories (prefix FROM becomes TO)
	// before the base path is added.
	Mappings []Mapping
	// Atomic is all-or-nothing: no tag is set unless every artifact can go
	// in. Every manifest is first stored by digest alone, since a registry
	// may refuse one only when it is PUT; a refusal then leaves manifests
	// stored by digest, but no tag, and every artifact refused.
	Atomic bool
	// DryRun reports what would go where and what the registry already has.
	// It uploads no artifact's blob or manifest, records nothing in the
	// journal and stages nothing. It does write to the registry once: the
	// Docker media type probe stores a two-byte config blob and a tiny
	// manifest by digest (never a tag) in one of the archive's destination
	// repositories and deletes them again (a registry that refuses deletion
	// keeps them, see DockerProbe.Cleanup).
	DryRun bool
	// PackVerifier checks Artifact Studio pack signatures again with the
	// vendor's key; nil skips that check (the archive signature still
	// covers the packs), and the report says so.
	PackVerifier PackVerifier
	// PacksDir, when set, receives each verified Artifact Studio pack
	// (<name>.zst and <name>.sig.bin), ready for upload through Palette.
	PacksDir string
	// ConvertOCI pushes Docker schema 2 manifests and manifest lists in
	// their OCI form, for a registry that refuses Docker media types (a
	// default Zot): media types change, so do the manifests' digests (the
	// report lists every change), layer and config bytes do not. A last
	// resort: `collect --convert-oci` signs the converted form instead.
	// Off pushes exactly what the archive holds.
	ConvertOCI bool
	// ConvertAdvice is how a refusal of Docker media types names the way
	// to convert before the push, beside enabling Zot's compat setting; a
	// caller that is not ingest names its own command. Empty means
	// collecting again with --convert-oci, and ingest --convert-oci as the
	// last resort.
	ConvertAdvice string
	// Validate checks the registry at the end of the run (catalog and tags);
	// Ingest sets the report's Validation. Off means no check.
	Validate bool
	// AllowRollback lets an archive set tags that a newer archive set
	// before (by the journal's record); false refuses those artifacts.
	AllowRollback bool
	// Now stamps journal records; nil means time.Now.
	Now func() time.Time
	// Logger receives debug records (retries, resumed uploads); nil
	// discards. Credentials never reach it.
	Logger *slog.Logger
	// Progress receives progress events; nil fields are not called.
	Progress Progress
}

// Progress callbacks. They may be called from several goroutines at once.
type Progress struct {
	// OnStart is called once what this run may send is known.
	OnStart func(t Totals)
	// OnBytes reports content bytes sent for a blob read from a volume
	// (named by its path; "" for a blob joined from staged parts).
	OnBytes func(volume string, n int64)
	// OnBlob is called when a blob is settled in a repository; outcome is
	// one of the Blob* constants.
	OnBlob func(b manifest.Blob, repo, outcome string)
	// OnArtifact is called when an artifact is settled for this run.
	OnArtifact func(r ArtifactResult)
	// OnDockerProbe is called when the run has probed the registry's
	// Docker media type rules, before any blob is looked at.
	OnDockerProbe func(p DockerProbe)
}

// Totals is the most a run sends, before HEAD requests find what the
// registry already has.
type Totals struct {
	Artifacts int
	Blobs     int
	Bytes     int64
	// VolumeBytes is, per volume path, the bytes of the blobs read from it.
	VolumeBytes map[string]int64
}

// Blob outcomes.
const (
	BlobUploaded = "uploaded"
	BlobResumed  = "resumed"
	BlobMounted  = "mounted"
	BlobFound    = "found"
	BlobMissing  = "missing"
	BlobBad      = "bad"
)

// PackVerifier checks a pack's content against its detached vendor
// signature (the .sig.bin bytes), reading content to its end.
type PackVerifier interface {
	VerifyPack(ctx context.Context, content io.Reader, sig []byte) error
}

// Mapping rewrites destination repositories that start with From.
type Mapping struct {
	From, To string
}

// ParseMapping reads FROM=TO.
func ParseMapping(s string) (Mapping, error) {
	from, to, ok := strings.Cut(s, "=")
	from, to = strings.Trim(from, "/ "), strings.Trim(to, "/ ")
	if !ok || from == "" || to == "" {
		return Mapping{}, fmt.Errorf("mapping %q: want FROM=TO, e.g. images/docker.io=images", s)
	}
	return Mapping{From: from, To: to}, nil
}

func (m Mapping) String() string { return m.From + "=" + m.To }

func (m Mapping) apply(repo string) (string, bool) {
	if repo == m.From {
		return m.To, true
	}
	if rest, ok := strings.CutPrefix(repo, m.From+"/"); ok {
		return m.To + "/" + rest, true
	}
	return repo, false
}

func (o *Options) defaults() {
	if o.Jobs <= 0 {
		o.Jobs = 4
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.WorkDir == "" {
		o.WorkDir = filepath.Join(os.TempDir(), "ferry-ingest-work")
	}
}

// destination is a parsed Options.Registry, with the two forms the
// package's code and the journal use.
type destination struct {
	registry.Destination
	host string // HOST[:PORT]
	base string // may be empty
}

// parseDestination parses and checks Options.Registry once
// (registry.ParseDestination); errors wrap registry.ErrDestination.
func parseDestination(s string) (destination, error) {
	d, err := registry.ParseDestination(s)
	if err != nil {
		return destination{}, err
	}
	return destination{Destination: d, host: d.HostPort(), base: d.Base}, nil
}

// key names the destination in the journal.
func (d destination) key() string {
	if d.base == "" {
		return d.host
	}
	return d.host + "/" + d.base
}

// repo is the repository path (without host) of a destination repository.
func (d destination) repo(rel string) string {
	if d.base == "" {
		return rel
	}
	return d.base + "/" + rel
}
