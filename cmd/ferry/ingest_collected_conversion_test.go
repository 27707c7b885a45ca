package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/ferrytool/ferry/ingest"
	"github.com/ferrytool/ferry/internal/testbed"
)

// pinnedAppBundle is a Profile Bundle whose WorkloadProfile deploys chart
// app from repoURL with the image pinned by digest in its values.
func pinnedAppBundle(t *testing.T, dir, repoURL, pinned string) string {
	t.Helper()
	body := `apiVersion: spectrocloud.com/v1alpha1
kind: ProfileBundle
metadata: {name: app}
spec: {type: Application, version: v1}
---
apiVersion: spectrocloud.com/v1alpha1
kind: WorkloadProfile
metadata: {name: app}
spec:
  components:
    - properties: {chart: app, version: 1.0.0, repository: "` + repoURL + `", values: {image: "` + pinned + `"}}
`
	path := filepath.Join(dir, "app-v1.tar.gz")
	if err := os.WriteFile(path, bundleTgz(t, "app-v1", body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// An image pinned by its Docker digest in a bundle's WorkloadProfile,
// collected with --convert-oci: the bill of materials signs the new
// digest, ingest reports the pin as stale from that record alone (no
// ingest-time conversion), naming the chart template the WorkloadProfile's
// values render it into, and its cluster import rewrites the pin with
// --rewrite-digests.
func TestIngestCollectedConversionStaleReferences(t *testing.T) {
	b := newConvertBed(t)
	pinned := b.src.Host + "/docker/app@" + b.digests[dockerImage]
	chart := tgz(t, map[string]string{
		"app/Chart.yaml":  "apiVersion: v2\nname: app\nversion: 1.0.0\n",
		"app/values.yaml": "image: none\n",
		"app/templates/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: app}
spec:
  template:
    spec:
      containers:
        - name: app
          image: {{ .Values.image }}
`,
	})
	repo := startChartRepo(t, chart)
	bundle := pinnedAppBundle(t, b.dir, repo.URL, pinned)
	out := filepath.Join(b.dir, "out", "pinned")
	os.MkdirAll(filepath.Dir(out), 0o755)
	mustFerry(t, "collect", "--quiet", "--plain-http", "--key", b.key, "--output", out, "--cache-dir", filepath.Join(b.dir, "cache-pinned"),
		"--bundle", bundle, "--convert-oci")
	vols, _ := filepath.Glob(out + ".tar.zst*")
	var converted string
	for _, a := range inspectJSON(t, b.pub, vols...).Artifacts {
		if a.Source == pinned && len(a.Converted) == 1 && a.Converted[0].From == b.digests[dockerImage] {
			converted = a.Converted[0].To
		}
	}
	if converted == "" {
		t.Fatalf("the archive holds no converted %s", pinned)
	}

	r := mustFerry(t, append(b.ingestArgs("pinned", "--output", "json"), vols...)...)
	var rep ingest.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, r.stdout)
	}
	if len(rep.StaleReferences) != 1 {
		t.Fatalf("stale references: %+v", rep.StaleReferences)
	}
	if s := rep.StaleReferences[0]; s.Reference != pinned || s.From != b.digests[dockerImage] || s.To != converted || !strings.Contains(strings.Join(s.Where, ";"), "chart: app 1.0.0: app/templates/deployment.yaml") {
		t.Errorf("stale reference %+v, want %s -> %s from the chart the WorkloadProfile renders", s, b.digests[dockerImage], converted)
	}
	if got := rep.DigestMap()[b.digests[dockerImage]]; got != converted {
		t.Errorf("digest map gives %q for the Docker digest, want %s", got, converted)
	}
	r = mustFerry(t, b.ingestArgs("pinned", vols...)...)
	if !strings.Contains(r.stdout, "no longer match") || !strings.Contains(r.stdout, pinned+": now @"+converted) {
		t.Errorf("the table does not list the stale reference:\n%s", r.stdout)
	}

	// The cluster import rewrites the pin in the imported WorkloadProfile.
	hub := testbed.StartAPIServer(t, testbed.APIServerOptions{})
	dyn, err := dynamic.NewForConfig(hub.Config())
	if err != nil {
		t.Fatal(err)
	}
	cliHub(t, hub, dyn, "team", true)
	t.Setenv("KUBECONFIG", hub.WriteKubeconfig(t, "hub"))
	mustFerry(t, append(b.ingestArgs("pinned", "--hub-context", "hub", "--project-namespace", "team",
		"--workload-namespace", "app", "--rewrite-digests"), vols...)...)
	wp, err := dyn.Resource(schema.GroupVersionResource{Group: "spectrocloud.com", Version: "v1alpha1", Resource: "workloadprofiles"}).
		Namespace("team").Get(context.Background(), "app", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(wp.Object)
	if !strings.Contains(string(raw), "@"+converted) || strings.Contains(string(raw), b.digests[dockerImage]) {
		t.Errorf("WorkloadProfile does not pin the converted digest %s:\n%s", converted, raw)
	}

	// `ferry cluster apply VOLUME...` knows the signed conversions without
	// a report: without --rewrite-digests the archived pin comes back, with
	// it the converted one.
	pinOf := func() string {
		t.Helper()
		wp, err := dyn.Resource(schema.GroupVersionResource{Group: "spectrocloud.com", Version: "v1alpha1", Resource: "workloadprofiles"}).
			Namespace("team").Get(context.Background(), "app", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := json.Marshal(wp.Object)
		switch {
		case strings.Contains(string(raw), "@"+converted):
			return converted
		case strings.Contains(string(raw), "@"+b.digests[dockerImage]):
			return b.digests[dockerImage]
		}
		return ""
	}
	apply := []string{"cluster", "apply", "--quiet", "--registry", b.zot.Host + "/pinned", "--key", b.pub, "--hub-context", "hub",
		"--project-namespace", "team", "--workload-namespace", "app"}
	mustFerry(t, append(append([]string{}, apply...), vols...)...)
	if got := pinOf(); got != b.digests[dockerImage] {
		t.Errorf("cluster apply without --rewrite-digests: WorkloadProfile pins %q, want the archived %s", got, b.digests[dockerImage])
	}
	mustFerry(t, append(append(apply, "--rewrite-digests"), vols...)...)
	if got := pinOf(); got != converted {
		t.Errorf("cluster apply --rewrite-digests: WorkloadProfile pins %q, want the converted %s", got, converted)
	}
}
