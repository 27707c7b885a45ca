package collect

import (
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
	"sigs.k8s.io/yaml"
)

// chartIndex is what collect reads of a chart repository's index.yaml:
// each chart's versions and where to download them. helm's repo package
// parses the same file, but linking it brings in helm's Kubernetes client
// through its command-line settings, and that client's package set-up
// cost every ferry command, whatever it does, about 20 ms of start-up.
// Versions are chosen by the rules helm applies (get).
type chartIndex struct {
	Entries map[string][]*chartIndexVersion `json:"entries"`
}

// chartIndexVersion is one version of a chart in an index.
type chartIndexVersion struct {
	Name    string   `json:"name"`
	Version string   `json:"version"`
	URLs    []string `json:"urls"`
	Digest  string   `json:"digest,omitempty"`
}

// parseChartIndex reads an index.yaml (or JSON). The YAML is turned into
// JSON without looking at the target struct, so an unquoted version such
// as 1.10 stays a number and is refused, as helm's IndexFile refuses it,
// rather than becoming the string "1.1". Null items, which helm's loader
// drops, are dropped.
func parseChartIndex(data []byte) (*chartIndex, error) {
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, err
	}
	idx := &chartIndex{}
	if err := json.Unmarshal(j, idx); err != nil {
		return nil, err
	}
	for name, vs := range idx.Entries {
		kept := vs[:0]
		for _, v := range vs {
			if v != nil {
				kept = append(kept, v)
			}
		}
		idx.Entries[name] = kept
	}
	return idx, nil
}

// sortEntries orders each chart's versions newest first by semantic
// version; versions that do not parse go last. It sorts exactly as helm's
// SortEntries (same comparator, same unstable sort.Sort), so versions of
// equal precedence (1.0.0+a, 1.0.0+b) end up in helm's order too.
func (idx *chartIndex) sortEntries() {
	for _, vs := range idx.Entries {
		sort.Sort(sort.Reverse(byVersion(vs)))
	}
}

// byVersion is helm's ChartVersions ordering: a version that does not
// parse is less than any other.
type byVersion []*chartIndexVersion

func (c byVersion) Len() int      { return len(c) }
func (c byVersion) Swap(i, j int) { c[i], c[j] = c[j], c[i] }
func (c byVersion) Less(a, b int) bool {
	i, err := semver.NewVersion(c[a].Version)
	if err != nil {
		return true
	}
	j, err := semver.NewVersion(c[b].Version)
	if err != nil {
		return false
	}
	return i.LessThan(j)
}

// get picks a version of a chart as helm does: version is a semantic
// version constraint ("" means any), a version written exactly as in the
// index wins, and otherwise the newest version meeting the constraint is
// chosen. The entries must be sorted.
func (idx *chartIndex) get(name, version string) (*chartIndexVersion, error) {
	vs := idx.Entries[name]
	if len(vs) == 0 {
		return nil, fmt.Errorf("no chart %s in the index", name)
	}
	constraint := version
	if constraint == "" {
		constraint = "*"
	}
	c, err := semver.NewConstraint(constraint)
	if err != nil {
		return nil, fmt.Errorf("version %q: %w", version, err)
	}
	if version != "" {
		for _, v := range vs {
			if v.Version == version {
				return v, nil
			}
		}
	}
	for _, v := range vs {
		if sv, err := semver.NewVersion(v.Version); err == nil && c.Check(sv) {
			return v, nil
		}
	}
	return nil, fmt.Errorf("no version of chart %s meets %q", name, version)
}

// resolveChartURL resolves a chart's URL from an index against the
// repository's URL, as helm does: a relative one is taken below the
// repository's path, with the repository's query (which may carry an
// access token) kept.
func resolveChartURL(repoURL, ref string) (string, error) {
	r, err := url.Parse(ref)
	if err != nil {
		return "", fmt.Errorf("chart URL %q: %w", ref, err)
	}
	if r.IsAbs() {
		return ref, nil
	}
	base, err := url.Parse(repoURL)
	if err != nil {
		return "", fmt.Errorf("repository URL %q: %w", repoURL, err)
	}
	base.Path = strings.TrimSuffix(base.Path, "/") + "/"
	base.RawPath = strings.TrimSuffix(base.RawPath, "/") + "/"
	u := base.ResolveReference(r)
	u.RawQuery = base.RawQuery
	return u.String(), nil
}
