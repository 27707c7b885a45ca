package cluster

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"sort"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/ferrytool/ferry/internal/testbed"
	"github.com/ferrytool/ferry/manifest"
)

// testRegistry is the appliance registry of the air-gap guide's examples.
const testRegistry = "10.10.233.0:30003/spectro-content"

var (
	projectGVR     = schema.GroupVersionResource{Group: "spectrocloud.com", Version: "v1alpha1", Resource: "projects"}
	variableSetGVR = schema.GroupVersionResource{Group: "spectrocloud.com", Version: "v1alpha1", Resource: "variablesets"}
	bundleGVR      = schema.GroupVersionResource{Group: "spectrocloud.com", Version: "v1alpha1", Resource: "profilebundles"}
	workloadGVR    = schema.GroupVersionResource{Group: "spectrocloud.com", Version: "v1alpha1", Resource: "workloadprofiles"}
)

// Bundle documents, from PALETTEAI.md F2-F5.
const (
	bundleProfileBundle = `apiVersion: spectrocloud.com/v1alpha1
kind: ProfileBundle
metadata:
  name: clearml
  namespace: default
spec:
  type: Fullstack
  version: v1
  clusterProfiles:
    - {name: edge-infra, version: 1.0.0}
  workloadProfiles:
    - {name: clearml, revision: v1}
  workloadProfileDependencies:
    helmRepositories:
      - {name: clearml, url: https://clearml.github.io/clearml-helm-charts}
`
	bundleClusterProfile = `apiVersion: spectrocloud.com/v1alpha1
kind: ClusterProfile
metadata:
  name: edge-infra
spec:
  version: 1.0.0
  type: infra
  packs:
    - {name: edge-k8s, version: 1.33.5, layer: k8s, type: spectro, registry: {uid: 5f1a2b3c4d5e6f7a8b9c0d1e}}
`
	bundleWorkloadProfile = `apiVersion: spectrocloud.com/v1alpha1
kind: WorkloadProfile
metadata:
  name: clearml
  namespace: default
spec:
  type: Application
  workload:
    components:
      - name: clearml
        type: helm-release
        properties:
          chart: clearml
          version: 7.14.7
          repository: https://clearml.github.io/clearml-helm-charts
          releaseName: clearml
          namespace: "{{ clearml-namespace }}"
          values:
            imageCredentials: {existingSecret: "{{ zot-auth-secret }}"}
      - name: sidecar
        properties:
          chartName: helper
          chartVersion: 1.0.0
          repoURL: "oci://{{ internal-zot-url }}/spectro-content/charts/helper"
`
	bundleVariableSet = `apiVersion: spectrocloud.com/v1alpha1
kind: VariableSet
metadata:
  name: clearml-vars
  namespace: default
spec:
  variables:
    - {name: clearml-namespace, variableType: string, value: {string: clearml}}
`
)

// makeBundle packs YAML files into a .tar.gz and reads it back the way the
// command does, so the import sees exactly what a real archive gives.
func makeBundle(t testing.TB, files map[string]string) *manifest.Bundle {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, name := range sortedStrings(files) {
		body := files[name]
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := manifest.ReadBundle(&buf)
	if err != nil {
		t.Fatalf("reading the generated bundle: %v", err)
	}
	return b
}

func sortedStrings(m map[string]string) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func clearmlBundle(t testing.TB) *manifest.Bundle {
	return makeBundle(t, map[string]string{
		"clearml-bundle-v1/bundle.yaml":                     bundleProfileBundle,
		"clearml-bundle-v1/profiles/cluster/edge-infra.yml": bundleClusterProfile,
		"clearml-bundle-v1/profiles/workload/clearml.yaml":  bundleWorkloadProfile,
		"clearml-bundle-v1/variables/clearml-vars.yaml":     bundleVariableSet,
	})
}

// env is a hub and a spoke API server shared by the subtests; each subtest
// works in namespaces of its own.
type env struct {
	hub, spoke         *testbed.APIServer
	hubDyn             dynamic.Interface
	hubCore, spokeCore kubernetes.Interface
	ca                 *testbed.CA
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{hub: testbed.StartAPIServer(t, testbed.APIServerOptions{})}
	e.spoke = testbed.StartAPIServer(t, testbed.APIServerOptions{CRDDirs: []string{}})
	var err error
	if e.hubDyn, err = dynamic.NewForConfig(e.hub.Config()); err != nil {
		t.Fatal(err)
	}
	e.hubCore = e.hub.Clientset(t)
	e.spokeCore = e.spoke.Clientset(t)
	e.ca = testbed.NewCA(t)
	return e
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func fromYAML(t testing.TB, doc string) *unstructured.Unstructured {
	t.Helper()
	m := map[string]any{}
	if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatalf("fixture YAML: %v", err)
	}
	return &unstructured.Unstructured{Object: m}
}

// createHub creates a fixture object on the hub.
func (e *env) createHub(t *testing.T, gvr schema.GroupVersionResource, doc string) *unstructured.Unstructured {
	t.Helper()
	u := fromYAML(t, doc)
	out, err := e.hubDyn.Resource(gvr).Namespace(u.GetNamespace()).Create(testCtx(t), u, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating %s %s: %v", u.GetKind(), u.GetName(), err)
	}
	return out
}

func (e *env) getHub(t *testing.T, gvr schema.GroupVersionResource, ns, name string) *unstructured.Unstructured {
	t.Helper()
	u, err := e.hubDyn.Resource(gvr).Namespace(ns).Get(testCtx(t), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("getting %s %s/%s: %v", gvr.Resource, ns, name, err)
	}
	return u
}

// projectDoc is F6 in namespace ns, with optional admission YAML (indented
// under spec).
func projectDoc(ns, admission string) string {
	return `apiVersion: spectrocloud.com/v1alpha1
kind: Project
metadata:
  name: ` + ns + `
  namespace: ` + ns + `
  labels: {palette.ai/tenant-name: default}
spec:
  displayName: Default Project
  tenantRef: {name: default}
  settingsRef: {name: default}
  computeConfigRef: {name: default, namespace: default}
  roleMapping: {admin: [admin], editor: [editor], viewer: [viewer]}
` + admission
}

const admissionDefault = `  admissionConfiguration:
    workloadConfiguration:
      deploymentNamespaces:
        allow: [default]
        disallow: ["*"]
`

// variableSetDoc is F5 with an unrelated variable and unknown fields, and
// stale values for two of ferry's variables.
func variableSetDoc(ns string) string {
	return `apiVersion: spectrocloud.com/v1alpha1
kind: VariableSet
metadata:
  name: mural-variables
  namespace: ` + ns + `
spec:
  futureSetting: {keep: me}
  variables:
    - {name: unrelated-existing, variableType: string, value: {string: keep-me}, description: unknown field}
    - {name: zot-cert-secret, variableType: string, value: {string: zot-ca}}
    - {name: internal-zot-url, variableType: string, value: {string: "10.0.0.1:5000"}, note: kept}
`
}

// hubProject creates namespace ns with the Project and VariableSet fixtures.
func (e *env) hubProject(t *testing.T, ns, admission string, withVariableSet bool) {
	t.Helper()
	e.hub.CreateNamespace(t, ns)
	e.createHub(t, projectGVR, projectDoc(ns, admission))
	if withVariableSet {
		e.createHub(t, variableSetGVR, variableSetDoc(ns))
	}
}

// spokeSecret creates a Secret on the spoke, creating its namespace.
func (e *env) spokeSecret(t *testing.T, ns, name string, typ corev1.SecretType, data map[string][]byte) {
	t.Helper()
	e.spoke.CreateNamespace(t, ns)
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Type: typ, Data: data}
	if _, err := e.spokeCore.CoreV1().Secrets(ns).Create(context.Background(), sec, metav1.CreateOptions{}); err != nil {
		t.Errorf("creating spoke Secret %s/%s: %v", ns, name, err)
	}
}

// ociTLSHub is the oci-tls-hub shape: ca.crt beside a server key pair.
func (e *env) ociTLSHub(t *testing.T) map[string][]byte {
	crt, key := e.ca.Issue(t, "zot.local")
	return map[string][]byte{"ca.crt": e.ca.CertPEM(), "tls.crt": crt, "tls.key": key}
}

func spokeNamespaceExists(t *testing.T, cs kubernetes.Interface, ns string) bool {
	t.Helper()
	_, err := cs.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}
