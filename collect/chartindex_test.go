package collect

import (
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/repo"
	"sigs.k8s.io/yaml"
)

// chartIndex picks versions and resolves URLs as helm's repo package does:
// the same index.yaml and request must give the same answer from both.
func TestChartIndexAgreesWithHelm(t *testing.T) {
	versions := []string{"1.2.3", "v1.10.0", "1.2.10", "2.0.0-rc.1", "not-a-version", "0.9.0", "1.10.0-alpha", "2.0.0+build.7"}
	var ours chartIndex
	theirs := repo.NewIndexFile()
	for _, v := range versions {
		theirs.Entries["app"] = append(theirs.Entries["app"], &repo.ChartVersion{
			Metadata: &chart.Metadata{Name: "app", Version: v}, URLs: []string{"charts/app-" + v + ".tgz"}})
	}
	data, err := yaml.Marshal(theirs)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &ours); err != nil {
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
