package collect

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chart"
	"sigs.k8s.io/yaml"

	"github.com/ferrytool/ferry/manifest"
)

func TestNormalizeImage(t *testing.T) {
	for in, want := range map[string]string{
		"nginx":                                        "docker.io/library/nginx:latest",
		"nginx:1.27":                                   "docker.io/library/nginx:1.27",
		"docker.io/nginx:1.27":                         "docker.io/library/nginx:1.27",
		"index.docker.io/bitnami/redis:7":              "docker.io/bitnami/redis:7",
		"bitnami/redis:7":                              "docker.io/bitnami/redis:7",
		"quay.io/metallb/speaker:v0.15.2":              "quay.io/metallb/speaker:v0.15.2",
		"127.0.0.1:5000/a/b:1":                         "127.0.0.1:5000/a/b:1",
		"nginx@sha256:" + strings.Repeat("a", 64):      "docker.io/library/nginx@sha256:" + strings.Repeat("a", 64),
		"nginx:1.27@sha256:" + strings.Repeat("a", 64): "docker.io/library/nginx:1.27@sha256:" + strings.Repeat("a", 64),
	} {
		got, err := NormalizeImage(in)
		if err != nil || got != want {
			t.Errorf("NormalizeImage(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "UPPER/case:1", "a b"} {
		if _, err := NormalizeImage(bad); err == nil {
			t.Errorf("NormalizeImage(%q) accepted", bad)
		}
	}
}

func TestFindImages(t *testing.T) {
	doc := `
apiVersion: batch/v1
kind: CronJob
spec:
  jobTemplate:
    spec:
      template:
        spec:
          initContainers: [{name: i, image: "init:1"}]
          containers: [{name: c, image: app:2, env: [{name: image, value: not-an-image}]}]
          ephemeralContainers: [{name: e, image: debug:3}]
operator:
  image: {registry: quay.io, repository: org/op, tag: "4"}
driver:
  repository: nvcr.io/nvidia
  image: driver
  version: "550.54"
blank: {image: ""}
`
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, fi := range FindImages(obj) {
		got[fi.Ref] = fi.Where
	}
	want := map[string]string{
		"init:1":                       "spec.jobTemplate.spec.template.spec.initContainers[0].image",
		"app:2":                        "spec.jobTemplate.spec.template.spec.containers[0].image",
		"debug:3":                      "spec.jobTemplate.spec.template.spec.ephemeralContainers[0].image",
		"quay.io/org/op:4":             "operator.image",
		"nvcr.io/nvidia/driver:550.54": "driver.image",
	}
	if len(got) != len(want) {
		t.Errorf("found %v", got)
	}
	for ref, where := range want {
		if got[ref] != where {
			t.Errorf("%s at %q, want %q (all: %v)", ref, got[ref], where, got)
		}
	}
}

func TestChooseKubeVersion(t *testing.T) {
	for _, c := range []struct{ constraint, given, want, err string }{
		{"", "", DefaultKubeVersion, ""},
		{">=1.25.0-0", "", DefaultKubeVersion, ""},
		{"<1.30.0", "", "v1.29.0", ""},
		{">=1.19.0 <1.22.0", "", "v1.21.0", ""},
		{"~1.35.0", "", "v1.35.0", ""},
		{">=1.25.0-0", "1.28.3", "v1.28.3", ""},
		{">=1.25.0-0", "v1.20.0", "", "does not accept"},
		{">=2.0.0", "", "", "accepts no Kubernetes version"},
	} {
		got, err := chooseKubeVersion(c.constraint, c.given)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("chooseKubeVersion(%q, %q) = %q, %v; want error %q", c.constraint, c.given, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("chooseKubeVersion(%q, %q) = %q, %v; want %q", c.constraint, c.given, got, err, c.want)
		}
	}
}

// testChart builds a chart in memory: a parent with an enabled and a
// disabled subchart, a hook, NOTES.txt and an annotation.
func testChart() *chart.Chart {
	tpl := func(name, body string) *chart.File { return &chart.File{Name: "templates/" + name, Data: []byte(body)} }
	sub := &chart.Chart{Metadata: &chart.Metadata{APIVersion: "v2", Name: "sub", Version: "1.0.0"},
		Templates: []*chart.File{tpl("pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: sub}\nspec:\n  containers: [{name: s, image: \"{{ .Values.image }}\"}]\n")},
		Values:    map[string]any{"image": "sub:1"}}
	off := &chart.Chart{Metadata: &chart.Metadata{APIVersion: "v2", Name: "off", Version: "1.0.0"},
		Templates: []*chart.File{tpl("pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: off}\nspec:\n  containers: [{name: o, image: never:1}]\n")}}
	parent := &chart.Chart{
		Metadata: &chart.Metadata{APIVersion: "v2", Name: "parent", Version: "2.0.0", KubeVersion: "<1.30.0-0",
			Annotations:  map[string]string{"images": "- name: x\n  image: annotated:1\n"},
			Dependencies: []*chart.Dependency{{Name: "sub", Version: "1.0.0"}, {Name: "off", Version: "1.0.0", Condition: "off.enabled"}}},
		Templates: []*chart.File{
			tpl("NOTES.txt", "image: notes:1\n"),
			tpl("_helpers.tpl", `{{ define "x" }}image: helper:1{{ end }}`),
			tpl("job.yaml", "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {{ .Release.Name }}\n  annotations: {helm.sh/hook: pre-install}\nspec:\n  template:\n    spec:\n      containers: [{name: j, image: \"job:{{ .Capabilities.KubeVersion.Minor }}\"}]\n"),
		},
		Values: map[string]any{"off": map[string]any{"enabled": false}},
	}
	parent.AddDependency(sub, off)
	return parent
}

func TestRenderImages(t *testing.T) {
	r, err := RenderImages(testChart(), RenderOptions{ReleaseName: "rel", Values: map[string]any{"sub": map[string]any{"image": "sub:2"}}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, fi := range r.Images {
		got[fi.Ref] = fi.Where
	}
	if r.KubeVersion != "v1.29.0" {
		t.Errorf("kube version %s", r.KubeVersion)
	}
	want := map[string]string{
		"job:29":      "parent/templates/job.yaml Job/rel spec.template.spec.containers[0].image",
		"sub:2":       "parent/charts/sub/templates/pod.yaml Pod/sub spec.containers[0].image",
		"annotated:1": "parent Chart.yaml annotation images[0]",
	}
	if len(got) != len(want) {
		t.Errorf("images %v", got)
	}
	for ref, where := range want {
		if got[ref] != where {
			t.Errorf("%s at %q, want %q", ref, got[ref], where)
		}
	}
	_, err = RenderImages(testChart(), RenderOptions{KubeVersion: "1.31.0"})
	if !errors.Is(err, ErrChart) {
		t.Errorf("a kube version the chart refuses: %v", err)
	}
}

func TestPackImages(t *testing.T) {
	values := "pack:\n  content:\n    images:\n      - image: quay.io/a:1\n      - image: '{{.spectro.pack.x.options.uri}}'\n      - b:2\n"
	refs, warns := packImages([]byte(values), "pack x 1.0")
	if len(refs) != 2 || refs[0].Ref != "quay.io/a:1" || refs[1].Where != "pack.content.images[2].image" {
		t.Errorf("refs %+v", refs)
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "{{.spectro.pack.x.options.uri}}") || !strings.Contains(warns[0], "pack.content.images[1].image") {
		t.Errorf("warnings %v", warns)
	}
}

func TestSplitNameVersion(t *testing.T) {
	for in, want := range map[string][2]string{
		"edge-k8s-1.33.5": {"edge-k8s", "1.33.5"}, "cni-cilium-oss-v1.17": {"cni-cilium-oss", "v1.17"}, "noversion": {"noversion", ""},
	} {
		if n, v := splitNameVersion(in); n != want[0] || v != want[1] {
			t.Errorf("splitNameVersion(%q) = %q %q", in, n, v)
		}
	}
}

func TestPackFolderIsReproducible(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "metallb")
	os.MkdirAll(filepath.Join(dir, "charts"), 0o755)
	os.WriteFile(filepath.Join(dir, "pack.json"), []byte(`{"name":"metallb","version":"0.15.2"}`), 0o644)
	os.WriteFile(filepath.Join(dir, "values.yaml"), []byte("pack:\n  content:\n    images: [{image: quay.io/m:1}]\n"), 0o644)
	cache, err := OpenCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	spec := manifest.NewTransferSpec()
	p := &planner{spec: spec, cache: cache}
	pk, c, err := p.tarballPack(context.Background(), manifest.PackSpec{File: dir})
	if err != nil {
		t.Fatal(err)
	}
	os.Chtimes(filepath.Join(dir, "pack.json"), time.Unix(1, 0), time.Unix(1, 0)) // times must not change the digest
	pk2, _, err := p.tarballPack(context.Background(), manifest.PackSpec{File: dir})
	if err != nil {
		t.Fatal(err)
	}
	if pk.res.artifact.Digest != pk2.res.artifact.Digest || pk.name != "metallb" || pk.version != "0.15.2" {
		t.Errorf("pack %s %s: digests %s, %s", pk.name, pk.version, pk.res.artifact.Digest, pk2.res.artifact.Digest)
	}
	if !bytes.Contains(c.values, []byte("quay.io/m:1")) {
		t.Errorf("values %q", c.values)
	}
	if pk.res.artifact.Dest.String() != "spectro-packs/archive/metallb:0.15.2" {
		t.Errorf("dest %s", pk.res.artifact.Dest)
	}
}

func TestInflightFollower(t *testing.T) {
	dir := t.TempDir()
	in := newInflight()
	want := bytes.Repeat([]byte("0123456789abcdef"), 64<<10)
	var got []byte
	var rerr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r, err := in.follow(context.Background(), nil)
		if err != nil {
			rerr = err
			return
		}
		defer r.Close()
		got, rerr = io.ReadAll(r)
	}()
	f, _ := os.Create(filepath.Join(dir, "blob"))
	in.started(f.Name())
	w := in.writer(f)
	for off := 0; off < len(want); off += 7777 {
		w.Write(want[off:min(off+7777, len(want))])
	}
	f.Close()
	in.finish(nil)
	wg.Wait()
	if rerr != nil || !bytes.Equal(got, want) {
		t.Fatalf("follower read %d bytes (%v), want %d", len(got), rerr, len(want))
	}

	// A failed download fails the follower.
	in = newInflight()
	f, _ = os.Create(filepath.Join(dir, "blob2"))
	in.started(f.Name())
	in.writer(f).Write([]byte("partial"))
	r, err := in.follow(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("connection reset")
	go in.finish(boom)
	if _, err := io.ReadAll(r); !errors.Is(err, boom) {
		t.Errorf("follower of a failed download: %v", err)
	}
	r.Close()
	f.Close()
	// A cancelled writer stops waiting.
	in = newInflight()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := in.follow(ctx, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("follow with a cancelled context: %v", err)
	}
}
