//go:build demo

package demo

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/ferrytool/ferry/internal/testbed"
)

// What PaletteAI would have put on the hub and the spoke before the
// operator runs the cluster steps.

var (
	projectGVR     = schema.GroupVersionResource{Group: "spectrocloud.com", Version: "v1alpha1", Resource: "projects"}
	variableSetGVR = schema.GroupVersionResource{Group: "spectrocloud.com", Version: "v1alpha1", Resource: "variablesets"}
)

// seedHub creates the project namespace with its Project (only the default
// namespace allowed) and VariableSet mural-variables holding one variable
// that has nothing to do with Zot and must survive.
func seedHub(t *testing.T, hub *testbed.APIServer, ns string) {
	t.Helper()
	hub.CreateNamespace(t, ns)
	dyn, err := dynamic.NewForConfig(hub.Config())
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []struct {
		gvr schema.GroupVersionResource
		doc string
	}{
		{projectGVR, `apiVersion: spectrocloud.com/v1alpha1
kind: Project
metadata: {name: ` + ns + `, namespace: ` + ns + `}
spec:
  displayName: Data science
  admissionConfiguration:
    workloadConfiguration:
      deploymentNamespaces: {allow: [default], disallow: ["*"]}
`},
		{variableSetGVR, `apiVersion: spectrocloud.com/v1alpha1
kind: VariableSet
metadata: {name: mural-variables, namespace: ` + ns + `}
spec:
  variables: [{name: gpu-class, variableType: string, value: {string: a100}}]
`},
	} {
		obj := map[string]any{}
		if err := yaml.Unmarshal([]byte(o.doc), &obj); err != nil {
			t.Fatal(err)
		}
		if _, err := dyn.Resource(o.gvr).Namespace(ns).Create(context.Background(), &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{}); err != nil {
			t.Fatalf("hub: creating %s: %v", o.gvr.Resource, err)
		}
	}
}

// seedSpoke creates Secret oci-tls-hub in mural-system, the way PaletteAI
// hands the hub's registry CA to a Compute Pool cluster.
func seedSpoke(t *testing.T, spoke *testbed.APIServer, ca *testbed.CA) {
	t.Helper()
	spoke.CreateNamespace(t, "mural-system")
	crt, key := ca.Issue(t)
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "oci-tls-hub", Namespace: "mural-system"},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{"ca.crt": ca.CertPEM(), "tls.crt": crt, "tls.key": key},
	}
	if _, err := spoke.Clientset(t).CoreV1().Secrets("mural-system").Create(context.Background(), sec, metav1.CreateOptions{}); err != nil {
		t.Fatalf("spoke: creating Secret oci-tls-hub: %v", err)
	}
}

// kubeconfig writes the API server's admin kubeconfig as dir/name.kubeconfig,
// so the commands the demo shows have short paths.
func kubeconfig(t *testing.T, s *testbed.APIServer, dir, name string) string {
	t.Helper()
	data, err := os.ReadFile(s.WriteKubeconfig(t, name))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".kubeconfig")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return name + ".kubeconfig"
}
