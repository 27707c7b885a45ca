package manifest

import (
	"reflect"
	"testing"
)

func objectFrom(t *testing.T, yamlDoc string) *Object {
	t.Helper()
	b := readFixture(t, makeTar(t, true, tarFile{name: "o.yaml", body: yamlDoc}))
	if len(b.Objects) != 1 {
		t.Fatalf("%d objects in %q", len(b.Objects), yamlDoc)
	}
	return b.Objects[0]
}

func TestChartRefSpellings(t *testing.T) {
	tests := []struct {
		name, doc      string
		want           ChartRef
		oci, templated bool
	}{
		{
			name: "chartName chartVersion repoURL",
			doc:  "kind: WorkloadProfile\nspec: {components: [{properties: {chartName: clearml, chartVersion: 7.14.7, repoURL: 'https://x/charts'}}]}\n",
			want: ChartRef{Name: "clearml", Version: "7.14.7", Repository: "https://x/charts",
				Path: Path{"spec", "components", "0", "properties"}, NamePath: Path{"spec", "components", "0", "properties", "chartName"},
				VersionPath:    Path{"spec", "components", "0", "properties", "chartVersion"},
				RepositoryPath: Path{"spec", "components", "0", "properties", "repoURL"}},
		},
		{
			name: "url, oci",
			doc:  "kind: WorkloadProfile\nspec: {chart: redis, version: '18.1.0', url: 'oci://registry-1.docker.io/bitnamicharts'}\n",
			want: ChartRef{Name: "redis", Version: "18.1.0", Repository: "oci://registry-1.docker.io/bitnamicharts",
				Path: Path{"spec"}, NamePath: Path{"spec", "chart"}, VersionPath: Path{"spec", "version"}, RepositoryPath: Path{"spec", "url"}},
			oci: true,
		},
		{
			name: "macro-templated internal registry",
			doc:  "kind: WorkloadProfile\nspec: {chart: clearml, version: 7.14.7, repository: 'oci://{{ internal-zot-url }}/spectro-content/charts/clearml'}\n",
			want: ChartRef{Name: "clearml", Version: "7.14.7", Repository: "oci://{{ internal-zot-url }}/spectro-content/charts/clearml",
				Path: Path{"spec"}, NamePath: Path{"spec", "chart"}, VersionPath: Path{"spec", "version"}, RepositoryPath: Path{"spec", "repository"}},
			oci: true, templated: true,
		},
		{
			name: "nested chart map, repository beside it",
			doc:  "kind: WorkloadProfile\nspec: {release: {chart: {name: clearml, version: 7.14.7}, repository: 'https://x'}}\n",
			want: ChartRef{Name: "clearml", Version: "7.14.7", Repository: "https://x",
				Path: Path{"spec", "release", "chart"}, NamePath: Path{"spec", "release", "chart", "name"},
				VersionPath: Path{"spec", "release", "chart", "version"}, RepositoryPath: Path{"spec", "release", "repository"}},
		},
		{
			name: "flux-style chart.spec.chart, no repository",
			doc:  "kind: WorkloadProfile\nspec: {chart: {spec: {chart: podinfo, version: 6.5.0}}}\n",
			want: ChartRef{Name: "podinfo", Version: "6.5.0",
				Path: Path{"spec", "chart", "spec"}, NamePath: Path{"spec", "chart", "spec", "chart"}, VersionPath: Path{"spec", "chart", "spec", "version"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			refs := ChartRefs(objectFrom(t, tc.doc))
			if len(refs) != 1 {
				t.Fatalf("refs = %+v", refs)
			}
			if !reflect.DeepEqual(refs[0], tc.want) {
				t.Errorf("ref =\n %+v\nwant\n %+v", refs[0], tc.want)
			}
			if refs[0].IsOCI() != tc.oci || refs[0].Templated() != tc.templated {
				t.Errorf("IsOCI %v Templated %v", refs[0].IsOCI(), refs[0].Templated())
			}
		})
	}
}

func TestChartRefRewrite(t *testing.T) {
	o := objectFrom(t, fixtureWorkloadProfile)
	c := o.DeepCopy()
	ref := ChartRefs(c)[0]
	if err := ref.RepositoryPath.Set(c.Content, "oci://10.10.233.0:30003/spectro-content/charts/clearml"); err != nil {
		t.Fatal(err)
	}
	if got := ChartRefs(c)[0].Repository; got != "oci://10.10.233.0:30003/spectro-content/charts/clearml" {
		t.Errorf("rewritten repository = %q", got)
	}
	if got := ChartRefs(o)[0].Repository; got != "https://clearml.github.io/clearml-helm-charts" {
		t.Errorf("the original changed: %q", got)
	}
}

func TestPath(t *testing.T) {
	obj := map[string]any{"spec": map[string]any{"list": []any{map[string]any{"a/b": "x"}}}}
	p := Path{"spec", "list", "0", "a/b"}
	if p.String() != "/spec/list/0/a~1b" {
		t.Errorf("String = %s", p)
	}
	if v, ok := p.Get(obj); !ok || v != "x" {
		t.Errorf("Get = %v %v", v, ok)
	}
	if err := p.Set(obj, "y"); err != nil {
		t.Fatal(err)
	}
	if err := (Path{"spec", "new", "deep"}).Set(obj, int64(1)); err != nil {
		t.Fatal(err)
	}
	if v, _ := (Path{"spec", "new", "deep"}).Get(obj); v != int64(1) {
		t.Errorf("created = %v", v)
	}
	if err := (Path{"spec", "list", "5", "x"}).Set(obj, 1); err == nil {
		t.Errorf("set past a list's end succeeded")
	}
	if err := (Path{"spec", "list", "0", "a/b", "x"}).Set(obj, 1); err == nil {
		t.Errorf("set below a string succeeded")
	}
	if _, ok := (Path{"spec", "list", "x"}).Get(obj); ok {
		t.Errorf("non-numeric index found")
	}
	base := Path{"a"}
	c1, c2 := base.Child("b"), base.Child("c")
	if c1.String() != "/a/b" || c2.String() != "/a/c" {
		t.Errorf("Child shares storage: %s %s", c1, c2)
	}
}

func TestMacroNames(t *testing.T) {
	got := MacroNames("oci://{{ internal-zot-url }}/x/{{zot_auth}} {{.spectro.pack.x}} {{ .Values.a }} {{ internal-zot-url }}")
	if !reflect.DeepEqual(got, []string{"internal-zot-url", "zot_auth"}) {
		t.Errorf("MacroNames = %v", got)
	}
}

func TestRegistryUIDSpellings(t *testing.T) {
	o := objectFrom(t, `kind: ClusterProfile
metadata: {name: p}
spec:
  template:
    type: cluster
    packs:
      - {name: a, registryUid: u1}
      - {name: b, registry: {metadata: {uid: u2, name: r2}}}
      - {name: c, tag: 1.0}
`)
	cp := ClusterProfileOf(o)
	if cp.Type != "cluster" || len(cp.Packs) != 3 {
		t.Fatalf("profile = %+v", cp)
	}
	if p := cp.Packs[0]; p.RegistryUID != "u1" || p.RegistryUIDPath.String() != "/spec/template/packs/0/registryUid" {
		t.Errorf("a = %+v", p)
	}
	if p := cp.Packs[1]; p.RegistryUID != "u2" || p.RegistryName != "r2" || p.RegistryUIDPath.String() != "/spec/template/packs/1/registry/metadata/uid" {
		t.Errorf("b = %+v", p)
	}
	if p := cp.Packs[2]; p.Tag != "1" {
		t.Errorf("c tag = %q", p.Tag)
	}
}
