package collect

import (
	"fmt"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/repo"
	"sigs.k8s.io/yaml"
)

// chartIndex picks versions and resolves URLs as helm's repo package does:
// the same index.yaml and request must give the same answer from both.
func TestChartIndexAgreesWithHelm(t *testing.T) {
	versions := []string{"1.2.3", "v1.10.0", "1.2.10", "2.0.0-rc.1", "not-a-version", "0.9.0", "1.10.0-alpha", "2.0.0+build.7"}
	// Versions of equal precedence, more than a sort handles by insertion:
	// the order among them is the sort's, and must be helm's.
	for i := range 14 {
		versions = append(versions, fmt.Sprintf("3.0.0+b%d", i))
	}
	theirs := repo.NewIndexFile()
	for _, v := range versions {
		theirs.Entries["app"] = append(theirs.Entries["app"], &repo.ChartVersion{
			Metadata: &chart.Metadata{Name: "app", Version: v}, URLs: []string{"charts/app-" + v + ".tgz"}})
	}
	data, err := yaml.Marshal(theirs)
	if err != nil {
		t.Fatal(err)
	}
	ours, err := parseChartIndex(data)
	if err != nil {
		t.Fatal(err)
	}
	theirs.SortEntries()
	ours.sortEntries()
	for i, cv := range theirs.Entries["app"] {
		if got := ours.Entries["app"][i].Version; got != cv.Version {
			t.Errorf("sorted, version %d is %s for helm and %s for ferry", i, cv.Version, got)
		}
	}
	for _, want := range []string{"", "1.2.3", "v1.10.0", "not-a-version", "~1.2", "^1", ">=2.0.0-0", "<1", "1.x", ">5", "!!", "2.0.0+build.7"} {
		cv, herr := theirs.Get("app", want)
		v, oerr := ours.get("app", want)
		switch {
		case (herr == nil) != (oerr == nil):
			t.Errorf("version %q: helm says %v, ferry says %v", want, herr, oerr)
		case herr == nil && cv.Version != v.Version:
			t.Errorf("version %q: helm picks %s, ferry picks %s", want, cv.Version, v.Version)
		}
	}
	if _, err := ours.get("other", ""); err == nil {
		t.Error("a chart the index does not list was found")
	}
	for _, c := range []struct{ base, ref string }{
		{"https://charts.example.com/stable", "app-1.0.0.tgz"},
		{"https://charts.example.com/stable/", "sub/app-1.0.0.tgz"},
		{"https://charts.example.com/stable?token=abc", "app-1.0.0.tgz"},
		{"https://charts.example.com/a%2Fb/", "app.tgz"},
		{"https://charts.example.com/stable", "https://cdn.example.com/app-1.0.0.tgz"},
		{"https://charts.example.com/stable", "/root/app.tgz"},
	} {
		want, herr := repo.ResolveReferenceURL(c.base, c.ref)
		got, oerr := resolveChartURL(c.base, c.ref)
		if (herr == nil) != (oerr == nil) || got != want {
			t.Errorf("%s + %s: helm %q (%v), ferry %q (%v)", c.base, c.ref, want, herr, got, oerr)
		}
	}
}

// An index.yaml is read as helm reads it: an unquoted version that YAML
// takes for a number is refused rather than turned into another version
// (1.10 is not 1.1), and an empty item in a chart's list is dropped.
func TestParseChartIndex(t *testing.T) {
	if _, err := parseChartIndex([]byte("entries:\n  app:\n  - name: app\n    version: 1.10\n    urls: [app-1.10.tgz]\n")); err == nil {
		t.Error("an unquoted version 1.10 was taken")
	}
	idx, err := parseChartIndex([]byte("entries:\n  app:\n  - null\n  - name: app\n    version: \"1.10\"\n    urls: [app-1.10.tgz]\n"))
	if err != nil {
		t.Fatal(err)
	}
	idx.sortEntries()
	if v, err := idx.get("app", ""); err != nil || v.Version != "1.10" {
		t.Errorf("got %+v, %v; want version 1.10", v, err)
	}
}
