package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/ferrytool/ferry/ingest"
	"github.com/ferrytool/ferry/internal/testbed"
	"github.com/ferrytool/ferry/manifest"
)

// bundleTgz packs one YAML file as a Profile Bundle archive.
func bundleTgz(t *testing.T, name, body string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: name + "/all.yaml", Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte(body))
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// TestIngestRunsClusterSteps pushes an archive holding a Docker image and
// a Profile Bundle into the Zot-rule registry with --convert-oci, then runs
// the cluster steps against a hub and a spoke API server: the bundle is
// imported with the converted digest rewritten, the Project allows the
// workload namespace, the variables point at the registry and the spoke
// holds the Zot CA.
func TestIngestRunsClusterSteps(t *testing.T) {
	hub := testbed.StartAPIServer(t, testbed.APIServerOptions{})
	spoke := testbed.StartAPIServer(t, testbed.APIServerOptions{CRDDirs: []string{}})
	dyn, err := dynamic.NewForConfig(hub.Config())
	if err != nil {
		t.Fatal(err)
	}
	cliHub(t, hub, dyn, "team", true)
	spokeCS := spoke.Clientset(t)
	spoke.CreateNamespace(t, "mural-system")
	ca := testbed.NewCA(t)
	crt, key := ca.Issue(t)
	if _, err := spokeCS.CoreV1().Secrets("mural-system").Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "oci-tls-hub", Namespace: "mural-system"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{"ca.crt": ca.CertPEM(), "tls.crt": crt, "tls.key": key}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", hub.WriteKubeconfig(t, "hub")+string(os.PathListSeparator)+spoke.WriteKubeconfig(t, "spoke"))

	// The archive: a Docker image that a default Zot refuses, and the
	// bundle, whose WorkloadProfile pins that image by its Docker digest.
	b := newZotIngestBed(t)
	pinned := b.src.Host + "/bitnami/mongodb:6.0@" + b.docker.root().digest()
	bundleYAML := strings.Replace(cliBundleYAML, `repository: "https://clearml.github.io/clearml-helm-charts"}`,
		`repository: "https://clearml.github.io/clearml-helm-charts", values: "mongodb:\n  image: `+pinned+`\n"}`, 1)
	if bundleYAML == cliBundleYAML {
		t.Fatal("fixture: the WorkloadProfile did not get its pinned image")
	}
	bundle := ociArtifact(manifest.KindBundle, "bundle clearml v1", manifest.Destination{Repository: "bundles/clearml", Tag: "v1"},
		manifest.MediaTypeFerryBundleConfig, []byte(`{"name":"clearml","version":"v1"}`),
		map[string]fxBlob{"clearml-v1.tar.gz": {mediaType: manifest.MediaTypeTarGzip, data: bundleTgz(t, "clearml-v1", bundleYAML)}})
	b.fx = &fixtureArchive{dir: t.TempDir(), artifacts: []fixtureArtifact{b.docker, b.chart, bundle}}
	b.fx.write(t, 64<<20)

	clusterArgs := []string{"--convert-oci", "--hub-context", "hub", "--project-namespace", "team", "--workload-namespace", "clearml",
		"--spoke-context", "spoke", "--wait-timeout", "30s", "--poll-interval", "200ms", "--rewrite-digests"}
	r := mustFerry(t, b.args(append(append([]string{}, clusterArgs...), b.fx.volumes...)...)...)
	t.Logf("ingest with cluster steps:\n%s%s", r.stdout, r.stderr)
	for _, want := range []string{"cluster steps:", "bundle-import (hub): changed", "project-admission (hub): changed",
		"mural-variables (hub): changed", "spoke-zot-ca (spoke): changed", "image digest " + b.docker.root().digest() + " -> "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q", want)
		}
	}

	// Project: the namespace allowed, the rest untouched.
	p, err := dyn.Resource(cliProjectGVR).Namespace("team").Get(context.Background(), "team", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dn := []string{"spec", "admissionConfiguration", "workloadConfiguration", "deploymentNamespaces"}
	allow, _, _ := unstructured.NestedStringSlice(p.Object, append(dn, "allow")...)
	disallow, _, _ := unstructured.NestedStringSlice(p.Object, append(dn, "disallow")...)
	if strings.Join(allow, ",") != "default,clearml" || strings.Join(disallow, ",") != "*" {
		t.Errorf("allow %v, disallow %v", allow, disallow)
	}

	// Variables: the registry ferry pushed to, and the unrelated one kept.
	host, port, _ := net.SplitHostPort(b.host)
	want := map[string]string{
		"zot-cert-secret":    "zot-ca",
		"zot-auth-secret":    strings.ReplaceAll(host, ".", "-") + "-" + port + "-pull-secret",
		"internal-zot-url":   b.host,
		"unrelated-existing": "keep-me",
	}
	vs, err := dyn.Resource(cliVariableSetGVR).Namespace("team").Get(context.Background(), "mural-variables", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	vars, _, _ := unstructured.NestedSlice(vs.Object, "spec", "variables")
	got := map[string]string{}
	for _, v := range vars {
		m, _ := v.(map[string]any)
		name, _ := m["name"].(string)
		s, _, _ := unstructured.NestedString(m, "value", "string")
		got[name] = s
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("variable %s = %q, want %q", k, got[k], v)
		}
	}

	// Spoke: Secret zot-ca in the workload namespace, ca.crt only.
	sec, err := spokeCS.CoreV1().Secrets("clearml").Get(context.Background(), "zot-ca", metav1.GetOptions{})
	if err != nil || sec.Type != corev1.SecretTypeOpaque || len(sec.Data) != 1 || !bytes.Equal(sec.Data["ca.crt"], ca.CertPEM()) {
		t.Errorf("spoke zot-ca = %+v, %v", sec, err)
	}

	// The imported WorkloadProfile: chart from the registry, the pinned
	// image at its converted digest.
	wp, err := dyn.Resource(schema.GroupVersionResource{Group: "spectrocloud.com", Version: "v1alpha1", Resource: "workloadprofiles"}).
		Namespace("team").Get(context.Background(), "clearml", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(wp.Object)
	var rep ingest.Report
	r = mustFerry(t, b.args(append([]string{"--convert-oci", "--output", "json"}, b.fx.volumes...)...)...)
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	newDigest := rep.DigestMap()[b.docker.root().digest()]
	if newDigest == "" || !strings.Contains(string(raw), "@"+newDigest) || strings.Contains(string(raw), b.docker.root().digest()) {
		t.Errorf("WorkloadProfile does not pin the converted digest %s:\n%s", newDigest, raw)
	}
	if !strings.Contains(string(raw), "oci://"+b.host+"/"+ingestBase+"/charts/clearml") {
		t.Errorf("WorkloadProfile chart not pointed at the registry:\n%s", raw)
	}

	// Again with --dry-run, which feeds both halves: nothing to push,
	// nothing to change.
	r = mustFerry(t, b.args(append(append([]string{"--dry-run"}, clusterArgs...), b.fx.volumes...)...)...)
	for _, want := range []string{"cluster steps:", "project-admission (hub): unchanged", "spoke-zot-ca (spoke): unchanged", "dry run: nothing was changed"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, r.stdout)
		}
	}

	// Cluster flags without the project namespace are a usage error.
	wantFail(t, ExitUsage, []string{"--project-namespace"}, b.args("--workload-namespace", "clearml", b.fx.volumes[0])...)

	// `ferry cluster` reads the bundle from the archive too, after checking
	// its signature: validate finds the imported objects, and apply imports
	// them again (without --rewrite-digests the WorkloadProfile gets its
	// archived pin back) and changes nothing else.
	clusterOnly := []string{"--registry", b.host + "/" + ingestBase, "--key", b.fx.pub, "--hub-context", "hub", "--project-namespace", "team",
		"--workload-namespace", "clearml", "--spoke-context", "spoke", "--wait-timeout", "30s"}
	r = mustFerry(t, append(append([]string{"cluster", "validate"}, clusterOnly...), b.fx.volumes...)...)
	if !strings.Contains(r.stdout, "WorkloadProfile team/clearml") {
		t.Errorf("cluster validate from the archive does not check the imported WorkloadProfile:\n%s", r.stdout)
	}
	r = mustFerry(t, append(append([]string{"cluster", "apply", "--quiet"}, clusterOnly...), b.fx.volumes...)...)
	for _, want := range []string{"WorkloadProfile team/clearml", "project-admission (hub): unchanged", "mural-variables (hub): unchanged", "spoke-zot-ca (spoke): unchanged"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("cluster apply from the archive lacks %q:\n%s", want, r.stdout)
		}
	}
	other := filepath.Join(t.TempDir(), "other")
	mustFerry(t, "key", "generate", "--output", other)
	wantFail(t, ExitVerify, []string{"signature"}, append(append([]string{"cluster", "apply"}, append(clusterOnly, "--key", other+".pub")...), b.fx.volumes...)...)
	wantFail(t, ExitUsage, []string{"--key"}, append([]string{"cluster", "apply", "--registry", b.host + "/" + ingestBase, "--project-namespace", "team", "--workload-namespace", "clearml"}, b.fx.volumes...)...)
}
