package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// KindTransferSpec identifies a transfer spec document; its apiVersion is
// APIVersion.
const KindTransferSpec = "TransferSpec"

// MaxSpecSize caps a transfer spec held in memory.
const MaxSpecSize = 4 << 20

// ErrInvalidSpec is returned for a transfer spec that does not parse or
// says something impossible.
var ErrInvalidSpec = errors.New("invalid transfer spec")

// Origins of a spec entry, recorded as the From of the artifacts' reasons.
const (
	OriginSpec = "spec"
	OriginFlag = "flag"
)

// TransferSpec lists what one collect carries across the gap. Unlike the
// PaletteAI objects, it is ferry's own format: an unknown field is a typo
// and an error. docs/transfer-spec.md documents every field.
type TransferSpec struct {
	APIVersion string       `json:"apiVersion"`
	Kind       string       `json:"kind"`
	Metadata   SpecMetadata `json:"metadata,omitempty"`
	// Platforms, when set, keeps only these platforms ("os/arch" or
	// "os/arch/variant") of every multi-platform image index. Empty keeps
	// every index whole.
	Platforms []string `json:"platforms,omitempty"`
	// KubeVersion renders every chart whose entry sets none; empty means a
	// version the chart's kubeVersion constraint accepts.
	KubeVersion string `json:"kubeVersion,omitempty"`
	// PackKey is the vendor public key (PEM, RSA or ECDSA) that every
	// Artifact Studio pack signature must verify against.
	PackKey string `json:"packKey,omitempty"`
	// AllowMissingPacks turns a pack a bundle needs but the spec does not
	// provide from an error into a warning.
	AllowMissingPacks bool `json:"allowMissingPacks,omitempty"`
	// Repositories are named chart repositories that chart entries may
	// refer to by name.
	Repositories []RepositorySpec `json:"repositories,omitempty"`
	// UpstreamRepositories maps a chart name to the repository to collect it
	// from when a bundle's WorkloadProfile points at an internal registry
	// (or a macro) that cannot be reached from here.
	UpstreamRepositories map[string]string `json:"upstreamRepositories,omitempty"`
	// RegistryMirrors pull images through mirrors; the longest matching
	// source wins.
	RegistryMirrors []RegistryMirror `json:"registryMirrors,omitempty"`
	// ConvertOCI stores Docker schema 2 manifests and manifest lists as OCI
	// manifests and indexes, for registries that refuse Docker media types.
	ConvertOCI bool         `json:"convertOCI,omitempty"`
	Bundles    []BundleSpec `json:"bundles,omitempty"`
	Packs      []PackSpec   `json:"packs,omitempty"`
	Charts     []ChartSpec  `json:"charts,omitempty"`
	Images     []ImageSpec  `json:"images,omitempty"`

	// Dir is the folder that relative file names are resolved against: the
	// spec file's folder. It is not part of the document.
	Dir string `json:"-"`
}

// SpecMetadata names a transfer spec.
type SpecMetadata struct {
	Name string `json:"name,omitempty"`
}

// RepositorySpec is a named Helm chart repository: an HTTP(S) repository
// with an index.yaml, or an oci:// registry path.
type RepositorySpec struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	// CAFile is a PEM bundle of extra certificate authorities to trust.
	CAFile string `json:"caFile,omitempty"`
	// InsecureSkipTLSVerify accepts any server certificate.
	InsecureSkipTLSVerify bool `json:"insecureSkipTLSVerify,omitempty"`
	// Username and PasswordFile give HTTP basic credentials; the password is
	// read from the file so it never sits in the spec.
	Username     string `json:"username,omitempty"`
	PasswordFile string `json:"passwordFile,omitempty"`
}

// BundleSpec is a Profile Bundle archive, <bundle>-<version>.tar.gz.
type BundleSpec struct {
	File string `json:"file"`
	// Name and Version override what the file name says; they form the
	// destination bundles/<name>:<version>.
	Name    string `json:"name,omitempty"`
	Version string `json:"version,omitempty"`
	Origin  string `json:"-"`
}

// PackSpec is a Palette pack: an Artifact Studio `<name>.zst` with its
// detached signature, or a pack tarball (a .tar.gz or a folder holding
// pack.json and values.yaml).
type PackSpec struct {
	File string `json:"file"`
	// Signature is the .sig.bin of a .zst pack; empty means the file beside
	// it with the same base name.
	Signature string `json:"signature,omitempty"`
	// Name and Version identify the pack; empty means what pack.json or the
	// file name (<name>-<version>.zst) says.
	Name    string `json:"name,omitempty"`
	Version string `json:"version,omitempty"`
	Origin  string `json:"-"`
}

// ChartSpec is one Helm chart to collect, with what it needs to render for
// image discovery.
type ChartSpec struct {
	// Name is the chart name, or a whole oci:// reference without version.
	Name string `json:"name"`
	// Version is an exact version or a semver range; empty means the latest
	// stable version.
	Version string `json:"version,omitempty"`
	// Repo is an https:// repository URL, an oci:// registry path, or the
	// name of an entry of repositories.
	Repo string `json:"repo,omitempty"`
	// ReleaseName and Namespace render the chart; empty means the chart
	// name and "default".
	ReleaseName string `json:"releaseName,omitempty"`
	Namespace   string `json:"namespace,omitempty"`
	// Values and ValuesFiles are user values, merged over the chart's own
	// in the order: values files, then Values.
	Values      map[string]any `json:"values,omitempty"`
	ValuesFiles []string       `json:"valuesFiles,omitempty"`
	// KubeVersion overrides the spec's for this chart.
	KubeVersion string `json:"kubeVersion,omitempty"`
	Origin      string `json:"-"`
}

// ImageSpec is an image reference as a user types it. In YAML it is a plain
// string or {ref: ...}.
type ImageSpec struct {
	Ref    string `json:"ref"`
	Origin string `json:"-"`
}

// UnmarshalJSON accepts a plain string as well as the object form.
func (i *ImageSpec) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err == nil {
		i.Ref = s
		return nil
	}
	type plain ImageSpec
	var p plain
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return err
	}
	*i = ImageSpec(p)
	return nil
}

// NewTransferSpec returns an empty spec with its header set, the start of a
// spec made from flags alone.
func NewTransferSpec() *TransferSpec {
	return &TransferSpec{APIVersion: APIVersion, Kind: KindTransferSpec}
}

// ParseTransferSpec decodes and validates a transfer spec document. dir is
// the folder relative file names in it are resolved against.
func ParseTransferSpec(data []byte, dir string) (*TransferSpec, error) {
	if len(data) > MaxSpecSize {
		return nil, fmt.Errorf("%w: %d bytes exceeds the %d byte limit", ErrInvalidSpec, len(data), MaxSpecSize)
	}
	data = bytes.ReplaceAll(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")), []byte("\r\n"), []byte("\n"))
	if line := secondDocument(data); line > 0 {
		return nil, fmt.Errorf("%w: line %d starts a second YAML document; a transfer spec is one document (put every entry in one, or use one file per collect)", ErrInvalidSpec, line)
	}
	var s TransferSpec
	if err := yaml.UnmarshalStrict(data, &s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSpec, err)
	}
	if s.APIVersion != APIVersion || s.Kind != KindTransferSpec {
		return nil, fmt.Errorf("%w: apiVersion %q kind %q, want %q %q", ErrInvalidSpec, s.APIVersion, s.Kind, APIVersion, KindTransferSpec)
	}
	s.Dir = dir
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// secondDocument returns the line (from 1) of a document marker that starts
// a second YAML document with content, or 0 when data holds one document.
// A marker is "---" or "..." at the start of a line followed by nothing
// or by blanks; YAML ends even a block scalar there, so a plain scan finds
// every boundary a parser would.
func secondDocument(data []byte) int {
	content, marker := false, 0
	for i, line := range strings.Split(string(data), "\n") {
		if isDocMarker(line, "---") || isDocMarker(line, "...") {
			if content && marker == 0 {
				marker = i + 1
			}
			if rest := strings.TrimSpace(line[3:]); strings.HasPrefix(line, "---") && rest != "" && !strings.HasPrefix(rest, "#") {
				// "--- value" holds content on the marker line itself.
				if marker > 0 {
					return marker
				}
				content = true
			}
			continue
		}
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "#") || !content && strings.HasPrefix(t, "%") {
			continue
		}
		if marker > 0 {
			return marker
		}
		content = true
	}
	return 0
}

func isDocMarker(line, m string) bool {
	if !strings.HasPrefix(line, m) {
		return false
	}
	rest := line[len(m):]
	return rest == "" || rest[0] == ' ' || rest[0] == '\t'
}

var platformPattern = regexp.MustCompile(`^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$`)

// Validate checks what can be checked without touching any file or server.
func (s *TransferSpec) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidSpec}, args...)...))
	}
	for _, p := range s.Platforms {
		if !platformPattern.MatchString(p) {
			bad("platform %q is not os/arch or os/arch/variant", p)
		}
	}
	repos := map[string]bool{}
	for i, r := range s.Repositories {
		switch {
		case r.Name == "":
			bad("repositories[%d] has no name", i)
		case repos[r.Name]:
			bad("repository %q is defined twice", r.Name)
		case !isRepoURL(r.URL):
			bad("repository %q: url %q is not http://, https:// or oci://", r.Name, r.URL)
		case r.Username != "" && r.PasswordFile == "":
			bad("repository %q: username without passwordFile", r.Name)
		}
		repos[r.Name] = true
	}
	for name, u := range s.UpstreamRepositories {
		if !isRepoURL(u) && !repos[u] {
			bad("upstreamRepositories[%s]: %q is not a repository URL or the name of one", name, u)
		}
	}
	// Two spellings of one source (docker.io and index.docker.io, case)
	// would leave which mirror wins to the longest-match order.
	mirrors := map[string]string{}
	for _, m := range s.RegistryMirrors {
		if err := m.validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		key := m.SourceKey()
		if prev, ok := mirrors[key]; ok {
			if prev == m.Source {
				bad("registry mirror for %s is given twice", m.Source)
			} else {
				bad("registry mirror for %s is given twice (as %s and %s)", key, prev, m.Source)
			}
			continue
		}
		mirrors[key] = m.Source
	}
	for i, b := range s.Bundles {
		if b.File == "" {
			bad("bundles[%d] has no file", i)
		}
	}
	for i, p := range s.Packs {
		if p.File == "" {
			bad("packs[%d] has no file", i)
		}
	}
	for i, c := range s.Charts {
		switch {
		case c.Name == "":
			bad("charts[%d] has no name", i)
		case strings.HasPrefix(c.Name, "oci://"):
			if c.Repo != "" {
				bad("chart %s: give either a full oci:// name or repo, not both", c.Name)
			}
		case c.Repo == "":
			bad("chart %s has no repo", c.Name)
		case !isRepoURL(c.Repo) && !repos[c.Repo]:
			bad("chart %s: repo %q is not a URL nor the name of a repository", c.Name, c.Repo)
		}
	}
	for i, im := range s.Images {
		if strings.TrimSpace(im.Ref) == "" {
			bad("images[%d] is empty", i)
		}
	}
	return errors.Join(errs...)
}

func isRepoURL(u string) bool {
	for _, p := range []string{"http://", "https://", "oci://"} {
		if strings.HasPrefix(strings.ToLower(u), p) && len(u) > len(p) {
			return true
		}
	}
	return false
}

// Path resolves a file name of the spec against its folder.
func (s *TransferSpec) Path(file string) string {
	if file == "" || filepath.IsAbs(file) || s.Dir == "" {
		return file
	}
	return filepath.Join(s.Dir, file)
}

// Repository returns the repository entry named name.
func (s *TransferSpec) Repository(name string) (RepositorySpec, bool) {
	for _, r := range s.Repositories {
		if r.Name == name {
			return r, true
		}
	}
	return RepositorySpec{}, false
}

// Empty reports whether the spec asks for nothing.
func (s *TransferSpec) Empty() bool {
	return len(s.Bundles)+len(s.Packs)+len(s.Charts)+len(s.Images) == 0
}

// Merge adds other's entries to s, as when flags extend a spec file. Scalar
// settings of other win when set; file names of other are resolved against
// other's folder first, so both keep meaning what they said.
func (s *TransferSpec) Merge(other *TransferSpec) {
	abs := func(f string) string {
		if f == "" || filepath.IsAbs(f) || other.Dir == "" || other.Dir == s.Dir {
			return f
		}
		return filepath.Join(other.Dir, f)
	}
	s.Platforms = appendNew(s.Platforms, other.Platforms...)
	if other.KubeVersion != "" {
		s.KubeVersion = other.KubeVersion
	}
	if other.PackKey != "" {
		s.PackKey = abs(other.PackKey)
	}
	s.AllowMissingPacks = s.AllowMissingPacks || other.AllowMissingPacks
	s.ConvertOCI = s.ConvertOCI || other.ConvertOCI
	// A flag's mirror for a source replaces the spec file's.
	for _, m := range other.RegistryMirrors {
		replaced := false
		for i := range s.RegistryMirrors {
			if s.RegistryMirrors[i].SourceKey() == m.SourceKey() {
				s.RegistryMirrors[i], replaced = m, true
			}
		}
		if !replaced {
			s.RegistryMirrors = append(s.RegistryMirrors, m)
		}
	}
	for _, r := range other.Repositories {
		r.CAFile, r.PasswordFile = abs(r.CAFile), abs(r.PasswordFile)
		s.Repositories = append(s.Repositories, r)
	}
	if len(other.UpstreamRepositories) > 0 && s.UpstreamRepositories == nil {
		s.UpstreamRepositories = map[string]string{}
	}
	for k, v := range other.UpstreamRepositories {
		s.UpstreamRepositories[k] = v
	}
	for _, b := range other.Bundles {
		b.File = abs(b.File)
		s.Bundles = append(s.Bundles, b)
	}
	for _, p := range other.Packs {
		p.File, p.Signature = abs(p.File), abs(p.Signature)
		s.Packs = append(s.Packs, p)
	}
	for _, c := range other.Charts {
		vf := make([]string, len(c.ValuesFiles))
		for i, f := range c.ValuesFiles {
			vf[i] = abs(f)
		}
		c.ValuesFiles = vf
		s.Charts = append(s.Charts, c)
	}
	s.Images = append(s.Images, other.Images...)
}

func appendNew(list []string, more ...string) []string {
	for _, m := range more {
		found := false
		for _, l := range list {
			found = found || l == m
		}
		if !found {
			list = append(list, m)
		}
	}
	return list
}

// Marshal renders the spec as YAML with its fields in a stable order.
func (s *TransferSpec) Marshal() ([]byte, error) {
	return yaml.Marshal(s)
}

// UpstreamNames returns the chart names of UpstreamRepositories, sorted.
func (s *TransferSpec) UpstreamNames() []string {
	out := make([]string, 0, len(s.UpstreamRepositories))
	for k := range s.UpstreamRepositories {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
