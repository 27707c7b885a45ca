package testbed

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
)

// APIServerOptions configures [StartAPIServer]. The zero value starts an API
// server with the CRDs in <repository root>/testdata/crds.
type APIServerOptions struct {
	// CRDDirs lists directories of CRD manifests to install; nil means
	// testdata/crds in the repository root. An empty, non-nil slice installs
	// none.
	CRDDirs []string
	// StartTimeout bounds the start of etcd and kube-apiserver; zero means
	// 90 seconds, which leaves room for a loaded two-core machine.
	StartTimeout time.Duration
}

// APIServer is a real etcd and kube-apiserver started by envtest, with an
// admin user (group system:masters).
type APIServer struct {
	env    *envtest.Environment
	config *rest.Config
}

// controller-runtime logs through a global logr sink and warns on stderr when
// none was set; the test bed has nothing to say through it.
var silenceControllerRuntime sync.Once

// StartAPIServer starts etcd and kube-apiserver from [BinDir] with
// controller-runtime's envtest, installs the CRDs, and stops both when the
// test ends. Missing binaries fail the test and name `make testbin`.
func StartAPIServer(t testing.TB, opts APIServerOptions) *APIServer {
	t.Helper()
	silenceControllerRuntime.Do(func() { logf.SetLogger(logr.Discard()) })

	bin := BinDir(t)
	// Binary fails the test with the `make testbin` hint when one is missing;
	// envtest's own error would only say that a process did not start.
	Binary(t, "etcd")
	Binary(t, "kube-apiserver")

	dirs := opts.CRDDirs
	if dirs == nil {
		root, err := repoRoot()
		if err != nil {
			t.Fatalf("testbed: %v", err)
		}
		dirs = []string{filepath.Join(root, "testdata", "crds")}
	}
	timeout := opts.StartTimeout
	if timeout == 0 {
		timeout = 90 * time.Second
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory:    bin,
		CRDDirectoryPaths:        dirs,
		ErrorIfCRDPathMissing:    len(dirs) > 0,
		ControlPlaneStartTimeout: timeout,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	// Each API server gets its own etcd data and certificates; envtest puts
	// them in temporary directories it removes on Stop.
	cfg, err := env.Start()
	if err != nil {
		_ = env.Stop()
		t.Fatalf("testbed: starting kube-apiserver and etcd from %s: %v", bin, err)
	}
	s := &APIServer{env: env, config: cfg}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("testbed: stopping kube-apiserver: %v", err)
		}
	})
	return s
}

// Config returns a copy of the admin user's client configuration.
func (s *APIServer) Config() *rest.Config {
	return rest.CopyConfig(s.config)
}

// Clientset returns a typed client acting as the admin user.
func (s *APIServer) Clientset(t testing.TB) *kubernetes.Clientset {
	t.Helper()
	cs, err := kubernetes.NewForConfig(s.Config())
	if err != nil {
		t.Fatalf("testbed: kubernetes client: %v", err)
	}
	return cs
}

// WriteKubeconfig writes a kubeconfig file for the admin user into a new
// temporary directory and returns its path. Its cluster, user and context are
// all named context, which is also the current context.
func (s *APIServer) WriteKubeconfig(t testing.TB, context string) string {
	t.Helper()
	return writeKubeconfig(t, s.config, context)
}

// UserOptions describes a user added by [APIServer.AddUser].
type UserOptions struct {
	// Name is the user name the API server sees.
	Name string
	// Groups the user belongs to; "system:authenticated" is added by the
	// API server itself.
	Groups []string
	// ClusterRules are granted cluster-wide through a ClusterRole and
	// ClusterRoleBinding; nil grants nothing.
	ClusterRules []rbacv1.PolicyRule
	// NamespaceRules are granted in each namespace of Namespaces through a
	// Role and RoleBinding.
	NamespaceRules []rbacv1.PolicyRule
	Namespaces     []string
}

// User is a client identity on an [APIServer] with the permissions its
// [UserOptions] granted and nothing more.
type User struct {
	Name   string
	config *rest.Config
}

// Config returns a copy of the user's client configuration.
func (u *User) Config() *rest.Config { return rest.CopyConfig(u.config) }

// WriteKubeconfig writes a kubeconfig for the user, as
// [APIServer.WriteKubeconfig] does for the admin.
func (u *User) WriteKubeconfig(t testing.TB, context string) string {
	t.Helper()
	return writeKubeconfig(t, u.config, context)
}

// AddUser provisions a client certificate for a new user (envtest's AddUser)
// and grants it exactly the RBAC rules in opts, so tests can check what ferry
// does when the API server forbids a verb.
func (s *APIServer) AddUser(t testing.TB, opts UserOptions) *User {
	t.Helper()
	if opts.Name == "" {
		t.Fatalf("testbed: AddUser needs a user name")
	}
	au, err := s.env.AddUser(envtest.User{Name: opts.Name, Groups: opts.Groups}, &rest.Config{QPS: 1000, Burst: 2000})
	if err != nil {
		t.Fatalf("testbed: adding user %s: %v", opts.Name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs := s.Clientset(t)
	subject := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: opts.Name}}
	roleName := "testbed-" + opts.Name
	if opts.ClusterRules != nil {
		role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: roleName}, Rules: opts.ClusterRules}
		if _, err := cs.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
			t.Fatalf("testbed: creating ClusterRole %s: %v", roleName, err)
		}
		binding := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: roleName},
			Subjects:   subject,
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: roleName},
		}
		if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
			t.Fatalf("testbed: creating ClusterRoleBinding %s: %v", roleName, err)
		}
	}
	for _, ns := range opts.Namespaces {
		role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: roleName, Namespace: ns}, Rules: opts.NamespaceRules}
		if _, err := cs.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
			t.Fatalf("testbed: creating Role %s/%s: %v", ns, roleName, err)
		}
		binding := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: roleName, Namespace: ns},
			Subjects:   subject,
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: roleName},
		}
		if _, err := cs.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
			t.Fatalf("testbed: creating RoleBinding %s/%s: %v", ns, roleName, err)
		}
	}
	return &User{Name: opts.Name, config: au.Config()}
}

// CreateNamespace creates namespace name if it does not exist yet.
func (s *APIServer) CreateNamespace(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	_, err := s.Clientset(t).CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("testbed: creating namespace %s: %v", name, err)
	}
}

// writeKubeconfig serialises cfg as a kubeconfig whose cluster, user and
// context are all named name.
func writeKubeconfig(t testing.TB, cfg *rest.Config, name string) string {
	t.Helper()
	if name == "" {
		name = "envtest"
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters[name] = &clientcmdapi.Cluster{
		Server:                   cfg.Host,
		CertificateAuthorityData: cfg.CAData,
	}
	kc.AuthInfos[name] = &clientcmdapi.AuthInfo{
		ClientCertificateData: cfg.CertData,
		ClientKeyData:         cfg.KeyData,
		Token:                 cfg.BearerToken,
	}
	kc.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	kc.CurrentContext = name
	data, err := clientcmd.Write(*kc)
	if err != nil {
		t.Fatalf("testbed: writing kubeconfig: %v", err)
	}
	path := filepath.Join(t.TempDir(), name+".kubeconfig")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatalf("testbed: %v", fmt.Errorf("writing kubeconfig: %w", err))
	}
	return path
}
