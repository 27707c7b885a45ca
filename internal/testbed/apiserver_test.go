package testbed

import (
	"context"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// TestAPIServer starts one API server and checks what other packages rely
// on: the spectrocloud.com CRDs are served, a written kubeconfig connects
// through its named context, and an added user holds exactly its rules.
func TestAPIServer(t *testing.T) {
	s := StartAPIServer(t, APIServerOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	cs := s.Clientset(t)
	resources, err := cs.Discovery().ServerResourcesForGroupVersion("spectrocloud.com/v1alpha1")
	if err != nil {
		t.Fatalf("discovery of spectrocloud.com/v1alpha1: %v", err)
	}
	served := map[string]bool{}
	for _, r := range resources.APIResources {
		served[r.Kind] = true
	}
	for _, kind := range []string{"Project", "VariableSet", "ProfileBundle", "WorkloadProfile", "Settings", "Tenant"} {
		if !served[kind] {
			t.Errorf("kind %s is not served; served: %v", kind, served)
		}
	}

	path := s.WriteKubeconfig(t, "hub")
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: path},
		&clientcmd.ConfigOverrides{CurrentContext: "hub"}).ClientConfig()
	if err != nil {
		t.Fatalf("loading the written kubeconfig: %v", err)
	}
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kc.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err != nil {
		t.Fatalf("admin through the kubeconfig: %v", err)
	}

	s.CreateNamespace(t, "team")
	s.CreateNamespace(t, "team") // a second call is harmless
	u := s.AddUser(t, UserOptions{
		Name:           "reader",
		NamespaceRules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list"}}},
		Namespaces:     []string{"team"},
	})
	uc, err := kubernetes.NewForConfig(u.Config())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := uc.CoreV1().ConfigMaps("team").List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("reader listing configmaps in team: %v", err)
	}
	if _, err := uc.CoreV1().Secrets("team").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("reader listing secrets: got %v, want Forbidden", err)
	}
}
