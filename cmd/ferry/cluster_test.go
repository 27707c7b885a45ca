package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/ferrytool/ferry/ingest/cluster"
	"github.com/ferrytool/ferry/internal/testbed"
)

// clusterFerry runs the CLI in-process like ferry() does. Until
// clusterCommand is listed in commands.go it adds the command itself, with
// the same usage-error handling, so the test runs either way.
func clusterFerry(t testing.TB, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	app := newApp(strings.NewReader(""), &out, &errb)
	registered := false
	for _, c := range app.Commands {
		registered = registered || c.Name == "cluster"
	}
	if registered {
		return ferry(t, "", args...)
	}
	cmd := clusterCommand(&environment{stdin: strings.NewReader(""), stdout: &out, stderr: &errb})
	markUsageErrors([]*cli.Command{cmd})
	app.Commands = append(app.Commands, cmd)
	code := ExitOK
	if err := app.RunContext(context.Background(), append([]string{"ferry"}, args...)); err != nil {
		code = exitCode(err)
		errb.WriteString("ferry: " + err.Error() + "\n")
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

func clusterWant(t *testing.T, code int, names []string, args ...string) result {
	t.Helper()
	r := clusterFerry(t, args...)
	all := r.stdout + r.stderr
	if r.code != code {
		t.Fatalf("ferry %s: exit %d, want %d\n%s", strings.Join(args, " "), r.code, code, all)
	}
	t.Logf("ferry %s: exit %d\n%s", strings.Join(args, " "), r.code, all)
	// Table columns are padded; compare with runs of spaces collapsed.
	flat := strings.Join(strings.Fields(all), " ")
	for _, n := range names {
		if !strings.Contains(all, n) && !strings.Contains(flat, strings.Join(strings.Fields(n), " ")) {
			t.Errorf("ferry %s: output does not name %q:\n%s", strings.Join(args, " "), n, all)
		}
	}
	return r
}

var (
	cliProjectGVR     = schema.GroupVersionResource{Group: "spectrocloud.com", Version: "v1alpha1", Resource: "projects"}
	cliVariableSetGVR = schema.GroupVersionResource{Group: "spectrocloud.com", Version: "v1alpha1", Resource: "variablesets"}
)

const cliBundleYAML = `apiVersion: spectrocloud.com/v1alpha1
kind: ProfileBundle
metadata: {name: clearml}
spec: {type: Application, version: v1}
---
apiVersion: spectrocloud.com/v1alpha1
kind: ClusterProfile
metadata: {name: edge-infra}
spec:
  packs: [{name: edge-k8s, version: 1.33.5, registry: {uid: aaa}}]
---
apiVersion: spectrocloud.com/v1alpha1
kind: WorkloadProfile
metadata: {name: clearml}
spec:
  components:
    - properties: {chart: clearml, version: 7.14.7, repository: "https://clearml.github.io/clearml-helm-charts"}
`

func writeBundleFile(t *testing.T, dir string) string {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	body := strings.ReplaceAll(cliBundleYAML, "\n", "\r\n") // a bundle written on Windows
	if err := tw.WriteHeader(&tar.Header{Name: "clearml-v1/all.yaml", Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte(body))
	tw.Close()
	zw.Close()
	path := filepath.Join(dir, "clearml-v1.tar.gz")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// cliHub creates a project namespace with a Project and, optionally, the
// VariableSet holding one unrelated variable.
func cliHub(t *testing.T, hub *testbed.APIServer, dyn dynamic.Interface, ns string, withVariableSet bool) {
	t.Helper()
	hub.CreateNamespace(t, ns)
	create := func(gvr schema.GroupVersionResource, doc string) {
		m := map[string]any{}
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatal(err)
		}
		if _, err := dyn.Resource(gvr).Namespace(ns).Create(context.Background(), &unstructured.Unstructured{Object: m}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	create(cliProjectGVR, `apiVersion: spectrocloud.com/v1alpha1
kind: Project
metadata: {name: `+ns+`, namespace: `+ns+`}
spec:
  displayName: Team
  admissionConfiguration:
    workloadConfiguration:
      deploymentNamespaces: {allow: [default], disallow: ["*"]}
`)
	if withVariableSet {
		create(cliVariableSetGVR, `apiVersion: spectrocloud.com/v1alpha1
kind: VariableSet
metadata: {name: mural-variables, namespace: `+ns+`}
spec:
  variables: [{name: unrelated-existing, variableType: string, value: {string: keep-me}}]
`)
	}
}

// TestClusterCommand runs `ferry cluster apply` and `ferry cluster validate`
// in-process against a hub and a spoke API server.
func TestClusterCommand(t *testing.T) {
	hub := testbed.StartAPIServer(t, testbed.APIServerOptions{})
	spoke := testbed.StartAPIServer(t, testbed.APIServerOptions{CRDDirs: []string{}})
	dyn, err := dynamic.NewForConfig(hub.Config())
	if err != nil {
		t.Fatal(err)
	}
	spokeCS := spoke.Clientset(t)
	ca := testbed.NewCA(t)
	dir := t.TempDir()
	bundle := writeBundleFile(t, dir)
	// KUBECONFIG with two files, as kubectl merges them; contexts pick the
	// cluster.
	hubKC, spokeKC := hub.WriteKubeconfig(t, "hub"), spoke.WriteKubeconfig(t, "spoke")
	t.Setenv("KUBECONFIG", hubKC+string(os.PathListSeparator)+spokeKC)
	base := []string{"--hub-context", "hub", "--registry", "10.10.233.0:30003/spectro-content", "--poll-interval", "200ms"}

	t.Run("ApplyThenUnchanged", func(t *testing.T) {
		cliHub(t, hub, dyn, "team", true)
		crt, key := ca.Issue(t)
		appeared := make(chan struct{})
		defer func() { <-appeared }()
		go func() {
			defer close(appeared)
			time.Sleep(time.Second)
			ctx := context.Background()
			if _, err := spokeCS.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "mural-system"}}, metav1.CreateOptions{}); err != nil {
				t.Errorf("mural-system: %v", err)
				return
			}
			sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "oci-tls-hub", Namespace: "mural-system"}, Type: corev1.SecretTypeTLS,
				Data: map[string][]byte{"ca.crt": ca.CertPEM(), "tls.crt": crt, "tls.key": key}}
			if _, err := spokeCS.CoreV1().Secrets("mural-system").Create(ctx, sec, metav1.CreateOptions{}); err != nil {
				t.Errorf("oci-tls-hub: %v", err)
			}
		}()
		args := append([]string{"cluster", "apply", "--spoke-context", "spoke", "--project-namespace", "team", "--workload-namespace", "clearml",
			"--bundle", bundle, "--wait-timeout", "30s"}, base...)
		r := clusterWant(t, ExitOK, []string{
			"bundle-import (hub): changed", "created    WorkloadProfile team/clearml", "skipped    ClusterProfile edge-infra",
			"-> oci://10.10.233.0:30003/spectro-content/charts/clearml",
			"project-admission (hub): changed", "mural-variables (hub): changed", "spoke-zot-ca (spoke): changed",
			"spoke: waiting for Secret zot-ca or oci-tls-hub in namespace mural-system",
		}, args...)
		if strings.Contains(r.stdout, "waiting") {
			t.Errorf("progress went to stdout:\n%s", r.stdout)
		}
		sec, err := spokeCS.CoreV1().Secrets("clearml").Get(context.Background(), "zot-ca", metav1.GetOptions{})
		if err != nil || sec.Type != corev1.SecretTypeOpaque || len(sec.Data) != 1 || !bytes.Equal(sec.Data["ca.crt"], ca.CertPEM()) {
			t.Errorf("spoke zot-ca = %+v, %v", sec, err)
		}

		// Again, as JSON: every step unchanged.
		r = clusterWant(t, ExitOK, nil, append(args, "--output", "json")...)
		var res cluster.Result
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
			t.Fatalf("JSON output: %v\n%s", err, r.stdout)
		}
		if len(res.Steps) != 4 || res.Changed() {
			t.Errorf("second run: %+v", res)
		}
		for _, s := range res.Steps {
			if s.Status != cluster.StatusUnchanged {
				t.Errorf("second run: %s %s", s.Step, s.Status)
			}
		}
		if r.stderr != "" {
			t.Errorf("JSON run wrote to stderr: %s", r.stderr)
		}

		// A dry run plans nothing; validate agrees, as table and JSON.
		clusterWant(t, ExitOK, []string{"dry run: nothing was changed"}, append(args, "--dry-run")...)
		vargs := append([]string{"cluster", "validate", "--spoke-context", "spoke", "--project-namespace", "team", "--workload-namespace", "clearml", "--bundle", bundle}, base...)
		clusterWant(t, ExitOK, []string{"CHECK", "Project team/team allows namespace clearml", "zot-auth-secret = 10-10-233-0-30003-pull-secret"}, vargs...)
		r = clusterWant(t, ExitOK, nil, append(vargs, "-o", "json")...)
		var rep cluster.Report
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || !rep.OK || len(rep.Checks) != 1+3+2+1 {
			t.Errorf("validate JSON = %+v, %v", rep, err)
		}
	})

	t.Run("DryRunShowsDiffs", func(t *testing.T) {
		cliHub(t, hub, dyn, "team-dry", true)
		clusterWant(t, ExitOK, []string{"+++ b/project/team-dry", "+        - wl-dry", "+      string: 10-10-233-0-30003-pull-secret", "dry run: nothing was changed"},
			append([]string{"cluster", "apply", "--project-namespace", "team-dry", "--workload-namespace", "wl-dry", "--dry-run"}, base...)...)
		p, err := dyn.Resource(cliProjectGVR).Namespace("team-dry").Get(context.Background(), "team-dry", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		allow, _, _ := unstructured.NestedStringSlice(p.Object, "spec", "admissionConfiguration", "workloadConfiguration", "deploymentNamespaces", "allow")
		if len(allow) != 1 {
			t.Errorf("dry run changed the allow-list: %v", allow)
		}
	})

	t.Run("TimeoutExitCode", func(t *testing.T) {
		cliHub(t, hub, dyn, "team-timeout", true)
		spoke.CreateNamespace(t, "empty-ca-ns")
		clusterWant(t, ExitTimeout, []string{"timed out", "zot-ca or oci-tls-hub", "empty-ca-ns"},
			append([]string{"cluster", "apply", "--spoke-kubeconfig", spokeKC, "--project-namespace", "team-timeout", "--workload-namespace", "wl-timeout",
				"--spoke-ca-namespace", "empty-ca-ns", "--wait-timeout", "1s", "-q"}, base...)...)
		if _, err := spokeCS.CoreV1().Namespaces().Get(context.Background(), "wl-timeout", metav1.GetOptions{}); err == nil {
			t.Errorf("workload namespace created despite the timeout")
		}
	})

	t.Run("ForbiddenExitCode", func(t *testing.T) {
		cliHub(t, hub, dyn, "team-rbac", true)
		u := hub.AddUser(t, testbed.UserOptions{Name: "cli-viewer", Namespaces: []string{"team-rbac"},
			NamespaceRules: []rbacv1.PolicyRule{{APIGroups: []string{"spectrocloud.com"}, Resources: []string{"projects", "variablesets"}, Verbs: []string{"get"}}}})
		clusterWant(t, ExitCluster, []string{"forbidden", "patch projects.spectrocloud.com team-rbac/team-rbac"},
			"cluster", "apply", "--hub-kubeconfig", u.WriteKubeconfig(t, "viewer"), "--project-namespace", "team-rbac", "--workload-namespace", "w",
			"--registry", "10.10.233.0:30003/spectro-content")
	})

	t.Run("MissingVariableSetExitCode", func(t *testing.T) {
		cliHub(t, hub, dyn, "team-novs", false)
		args := append([]string{"cluster", "apply", "--project-namespace", "team-novs", "--workload-namespace", "w"}, base...)
		clusterWant(t, ExitCluster, []string{"VariableSet not found", "team-novs/mural-variables", "--create-variableset"}, args...)
		clusterWant(t, ExitOK, []string{"created    VariableSet team-novs/mural-variables"}, append(args, "--create-variableset")...)
	})

	t.Run("ValidateFails", func(t *testing.T) {
		cliHub(t, hub, dyn, "team-unchecked", true)
		clusterWant(t, ExitFailure, []string{"FAILED", "allow-list is [default]", "checks failed"},
			append([]string{"cluster", "validate", "--project-namespace", "team-unchecked", "--workload-namespace", "w"}, base...)...)
	})

	t.Run("UsageAndInputErrors", func(t *testing.T) {
		bad := filepath.Join(dir, "bad.tar.gz")
		if err := os.WriteFile(bad, []byte("not a bundle"), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			code  int
			names []string
			args  []string
		}{
			{ExitUsage, []string{"--project-namespace"}, []string{"--workload-namespace", "w"}},
			{ExitUsage, []string{"--workload-namespace"}, []string{"--project-namespace", "team"}},
			{ExitUsage, []string{"--registry-map", "OLD=NEW"}, []string{"--project-namespace", "team", "--workload-namespace", "w", "--registry-map", "nonsense"}},
			{ExitUsage, []string{"--output"}, []string{"--project-namespace", "team", "--workload-namespace", "w", "-o", "xml"}},
			{ExitUsage, []string{"context \"nope\" does not exist"}, []string{"--project-namespace", "team", "--workload-namespace", "w", "--spoke-context", "nope"}},
			{ExitUsage, []string{"--bundle"}, []string{"--project-namespace", "team", "--workload-namespace", "w", "--bundle", filepath.Join(dir, "missing.tar.gz")}},
			{ExitVerify, []string{"invalid profile bundle", "bad.tar.gz"}, []string{"--project-namespace", "team", "--workload-namespace", "w", "--bundle", bad}},
			{ExitUsage, []string{"--digest-map needs --rewrite-digests"}, []string{"--project-namespace", "team", "--workload-namespace", "w", "--digest-map", "sha256:" + strings.Repeat("a", 64) + "=sha256:" + strings.Repeat("b", 64)}},
			{ExitUsage, []string{"--digest-map", "neither OLD=NEW nor a readable report"}, []string{"--project-namespace", "team", "--workload-namespace", "w", "--rewrite-digests", "--digest-map", filepath.Join(dir, "no-report.json")}},
			{ExitUsage, []string{"no port"}, []string{"--hub-context", "hub", "--project-namespace", "team", "--workload-namespace", "w", "--registry", "zot.local/base"}},
		} {
			args := append([]string{"cluster", "apply", "--registry", "10.10.233.0:30003/x"}, tc.args...)
			clusterWant(t, tc.code, tc.names, args...)
		}
	})
}
