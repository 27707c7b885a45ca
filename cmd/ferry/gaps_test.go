package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrytool/ferry/internal/testbed"
	"github.com/ferrytool/ferry/manifest"
)

// mongoChart is shaped like ClearML 7.14.4: a mongodb subchart whose
// Chart.yaml `images` annotation lists images the chart never renders
// with its values, and which the source no longer has.
func mongoChart(reg string) map[string]string {
	return map[string]string{
		"clearml/Chart.yaml": "apiVersion: v2\nname: clearml\nversion: 7.14.4\ndependencies:\n  - name: mongodb\n    version: 16.5.0\n",
		"clearml/values.yaml": "server:\n  image:\n    repository: " + reg + "/allegroai/clearml\n    tag: \"2.0\"\n" +
			"mongodb:\n  image:\n    registry: " + reg + "\n    repository: bitnami/mongodb\n    tag: \"8.0\"\n",
		"clearml/templates/server.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: server
spec:
  template:
    spec:
      containers:
        - name: server
          image: {{ .Values.server.image.repository }}:{{ .Values.server.image.tag }}
`,
		"clearml/charts/mongodb/Chart.yaml": `apiVersion: v2
name: mongodb
version: 16.5.0
annotations:
  images: |
    - name: kubectl
      image: ` + reg + `/bitnami/kubectl:1.33
    - name: mongodb
      image: ` + reg + `/bitnami/mongodb:8.0
    - name: mongodb-exporter
      image: ` + reg + `/bitnami/mongodb-exporter:0.44
    - name: nginx
      image: ` + reg + `/bitnami/nginx:1.29
    - name: os-shell
      image: ` + reg + `/bitnami/os-shell:12
`,
		"clearml/charts/mongodb/values.yaml": "image:\n  registry: docker.io\n  repository: bitnami/mongodb\n  tag: \"8.0\"\n",
		"clearml/charts/mongodb/templates/sts.yaml": `apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: mongodb
spec:
  template:
    spec:
      containers:
        - name: mongodb
          image: {{ .Values.image.registry }}/{{ .Values.image.repository }}:{{ .Values.image.tag }}
`,
	}
}

var mongoHints = []string{"bitnami/kubectl:1.33", "bitnami/mongodb-exporter:0.44", "bitnami/nginx:1.29", "bitnami/os-shell:12"}

// TestCollectAnnotationImagesAreHints: the rendered images are carried;
// images only the subchart's annotation names, absent at the source, are
// gaps in the output, the plan, the report and the bill of materials;
// --strict refuses them; a rendered image that is missing fails with the
// values path to change.
func TestCollectAnnotationImagesAreHints(t *testing.T) {
	dir := t.TempDir()
	reg := testbed.StartSourceRegistry(t)
	pushImages(t, reg, "allegroai/clearml:2.0", "bitnami/mongodb:8.0")
	repo := startChartRepo(t, tgz(t, mongoChart(reg.Host)))
	mustFerry(t, "key", "generate", "-o", filepath.Join(dir, "k"))
	cache := filepath.Join(dir, "cache")
	chart := []string{"--chart-url", "clearml", "--repo-url", repo.URL, "--chart-version", "7.14.4", "--plain-http", "--cache-dir", cache, "-q"}

	plan := mustFerry(t, append([]string{"collect", "--plan", "--report", filepath.Join(dir, "plan.json")}, chart...)...)
	out := filepath.Join(dir, "out")
	os.MkdirAll(out, 0o755)
	r := mustFerry(t, append([]string{"collect", "--key", filepath.Join(dir, "k.key"), "-o", filepath.Join(out, "clearml"), "--report", filepath.Join(dir, "report.json")}, chart...)...)
	vols, _ := filepath.Glob(filepath.Join(out, "clearml.tar.zst*"))
	// The signed bill of materials, as the archive holds it.
	set := openSetForTest(t, filepath.Join(dir, "k.pub"), vols[0])
	data, _ := set.SignedBOM()
	var bom manifest.BOM
	if err := json.Unmarshal(data, &bom); err != nil {
		t.Fatal(err)
	}
	for _, h := range mongoHints {
		for what, text := range map[string]string{"plan": plan.stdout, "collect output": r.stdout} {
			if !strings.Contains(text, h) || !strings.Contains(text, "gap") {
				t.Errorf("%s does not list gap %s:\n%s", what, h, text)
			}
		}
		for _, f := range []string{"plan.json", "report.json"} {
			data, _ := os.ReadFile(filepath.Join(dir, f))
			if !strings.Contains(string(data), h) {
				t.Errorf("%s does not list gap %s", f, h)
			}
		}
		found := false
		for _, g := range bom.Gaps {
			found = found || g.Kind == manifest.GapImage && strings.HasSuffix(g.Name, h) && g.Reason != "" && len(g.WantedBy) > 0
		}
		if !found {
			t.Errorf("bill of materials lacks gap %s: %+v", h, bom.Gaps)
		}
	}
	carried := map[string]bool{}
	for _, a := range bom.Artifacts {
		carried[a.Name] = true
	}
	for _, img := range []string{"allegroai/clearml:2.0", "bitnami/mongodb:8.0"} {
		if !carried[reg.Host+"/"+img] {
			t.Errorf("rendered image %s not carried: %v", img, carried)
		}
	}
	if strings.Contains(r.stdout+plan.stdout, "chart chart") {
		t.Errorf("a reason says chart twice:\n%s", plan.stdout)
	}

	// --strict: the same gaps are fatal, and no archive is written.
	wantFail(t, ExitIncomplete, []string{"gap", "bitnami/nginx:1.29"}, append([]string{"collect", "--strict", "--key", filepath.Join(dir, "k.key"), "-o", filepath.Join(out, "strict")}, chart...)...)
	if m, _ := filepath.Glob(filepath.Join(out, "strict.tar.zst*")); len(m) > 0 {
		t.Errorf("--strict left %v", m)
	}

	// A rendered image the source lacks: fatal, with the values path.
	wantFail(t, ExitIncomplete, []string{"bitnami/mongodb:9.9", "--set mongodb.image.repository=", "--registry-mirror"},
		append([]string{"collect", "--plan", "--set", "mongodb.image.tag=9.9"}, chart...)...)
}

// TestCollectBrokenCharts: a pack chart that does not load or render fails
// collect naming the file and the reason, unless --allow-broken-charts,
// which records it as a gap.
func TestCollectBrokenCharts(t *testing.T) {
	dir := t.TempDir()
	pack := chartPack(t, dir, "loop", `{{ template "x" . }}{{ define "x" }}{{ template "x" . }}{{ end }}`)
	args := []string{"collect", "--plan", "-q", "--pack", pack, "--cache-dir", filepath.Join(dir, "cache")}
	wantFail(t, ExitIncomplete, []string{"loop-1.0.0.tar.gz", "charts/loop-1.0.0.tgz"}, args...)
	r := mustFerry(t, append(args, "--allow-broken-charts")...)
	if !strings.Contains(r.stdout, "gap") || !strings.Contains(r.stdout, "charts/loop-1.0.0.tgz") {
		t.Errorf("--allow-broken-charts does not list the chart as a gap:\n%s", r.stdout)
	}
}
