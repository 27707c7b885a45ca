package collect

import (
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
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

// sortEntries orders each chart's versions newest first by semantic
// version; versions that do not parse go last.
func (idx *chartIndex) sortEntries() {
	for _, vs := range idx.Entries {
		sort.SliceStable(vs, func(a, b int) bool {
			va, err := semver.NewVersion(vs[a].Version)
			if err != nil {
				return false
			}
			vb, err := semver.NewVersion(vs[b].Version)
			if err != nil {
				return true
			}
			return vb.LessThan(va)
		})
	}
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
