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

// IngestOptions configure Ingest: the copy of an archive into the registry,
// and how its volumes are read.
type IngestOptions struct {
	CopyOptions
	// Verifier checks the bill of materials' signature. Required.
	Verifier archive.Verifier
	// WorkDir holds the parts of blobs split across volumes until all parts
	// have been seen; empty means a folder in the system temporary folder.
	WorkDir string
}

// ReadOptions configure the verbs that read an archive, and the registry it
// went into, without pushing: ReadClusterInput, Bundles and Validate.
type ReadOptions struct {
	// Client is how the registry is reached.
	Client registry.Options
	// Verifier checks the bill of materials' signature. Required when
	// volumes are given; the archives a journal recorded are checked again
	// with it when it is set.
	Verifier archive.Verifier
	// Journal knows what earlier runs pushed; nil means none.
	Journal *store.Journal
	// Mappings rewrite destination repositories as the push did.
	Mappings []Mapping
	// WorkDir holds the parts of split blobs, as IngestOptions.WorkDir.
	WorkDir string
}

// ValidateOptions configure Validate.
type ValidateOptions struct {
	ReadOptions
	// ConvertOCI says the push converted Docker manifests to OCI
	// (CopyOptions.ConvertOCI), so the registry holds those digests.
	ConvertOCI bool
}

// config is what a run works from once a verb's options are read: the
// copy's options flattened, with the destination as the journal names it.
type config struct {
	Registry      string
	Verifier      archive.Verifier
	Auth          authn.Authenticator
	Keychain      authn.Keychain
	Transport     http.RoundTripper
	PlainHTTP     bool
	Jobs          int
	Retry         RetryPolicy
	ChunkSize     int64
	Journal       *store.Journal
	WorkDir       string
	Mappings      []Mapping
	Atomic        bool
	DryRun        bool
	PackVerifier  PackVerifier
	PacksDir      string
	Images        ImageVerifier
	ConvertOCI    bool
	ConvertAdvice string
	Validate      bool
	AllowRollback bool
	Now           func() time.Time
	Logger        *slog.Logger
	Progress      Progress
}

// config returns the run configuration of a read of dst.
func (o ReadOptions) config(dst registry.Destination) config {
	c := o.Client
	cfg := config{
		Registry: dst.String(), Verifier: o.Verifier, Auth: c.Auth, Keychain: c.Keychain, Transport: c.Transport,
		PlainHTTP: c.PlainHTTP, Retry: c.Retry, ChunkSize: c.ChunkSize, Logger: c.Logger,
		Journal: o.Journal, Mappings: o.Mappings, WorkDir: o.WorkDir,
	}
	cfg.defaults()
	return cfg
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

func (o *config) defaults() {
	if o.Jobs <= 0 {
		o.Jobs = 4
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.WorkDir = workDir(o.WorkDir)
}

// workDir is the folder for split blobs' parts: dir, else one in the system
// temporary folder.
func workDir(dir string) string {
	if dir == "" {
		return filepath.Join(os.TempDir(), "ferry-ingest-work")
	}
	return dir
}

// destination is a parsed config.Registry, with the two forms the
// package's code and the journal use.
type destination struct {
	registry.Destination
	host string // HOST[:PORT]
	base string // may be empty
}

// parseDestination parses and checks config.Registry once
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
