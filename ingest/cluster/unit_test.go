package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"

	"github.com/ferrytool/ferry/internal/testbed"
)

func TestParseRegistry(t *testing.T) {
	tests := []struct {
		in                     string
		host, port, base, repo string
		authSecret             string
	}{
		{"10.10.233.0:30003/spectro-content", "10.10.233.0", "30003", "spectro-content", "oci://10.10.233.0:30003/spectro-content/charts/clearml", "10-10-233-0-30003-pull-secret"},
		{"oci://zot.example.com:443/a/b/", "zot.example.com", "443", "a/b", "oci://zot.example.com:443/a/b/charts/clearml", "zot-example-com-443-pull-secret"},
		{"[fd00::1]:30003/base", "fd00::1", "30003", "base", "oci://[fd00::1]:30003/base/charts/clearml", "fd00--1-30003-pull-secret"},
		{"registry.local", "registry.local", "", "", "oci://registry.local/charts/clearml", ""},
	}
	for _, tc := range tests {
		r, err := ParseRegistry(tc.in)
		if err != nil {
			t.Fatalf("ParseRegistry(%q): %v", tc.in, err)
		}
		if r.Host != tc.host || r.Port != tc.port || r.Base != tc.base || r.ChartRepository("clearml") != tc.repo {
			t.Errorf("ParseRegistry(%q) = %+v, chart %s", tc.in, r, r.ChartRepository("clearml"))
		}
		v, err := r.DefaultVariables()
		if tc.authSecret == "" {
			if !errors.Is(err, ErrInvalidOptions) {
				t.Errorf("%q: no port but err = %v", tc.in, err)
			}
			continue
		}
		if err != nil || v.ZotAuthSecret != tc.authSecret || v.ZotCertSecret != "zot-ca" || v.InternalZotURL != r.HostPort() {
			t.Errorf("%q: variables = %+v, %v", tc.in, v, err)
		}
	}
	for _, bad := range []string{"", "/base", "a:b:c/x", ":30003/x", "host:/x", "us er@host:1/x"} {
		if _, err := ParseRegistry(bad); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("ParseRegistry(%q) err = %v", bad, err)
		}
	}
}

func TestParseRegistryMap(t *testing.T) {
	m, err := ParseRegistryMap([]string{"a=b", " c = d ", "a=b"})
	if err != nil || !reflect.DeepEqual(m, map[string]string{"a": "b", "c": "d"}) {
		t.Errorf("= %v, %v", m, err)
	}
	for _, bad := range [][]string{{"a"}, {"=b"}, {"a="}, {"a=b", "a=c"}} {
		if _, err := ParseRegistryMap(bad); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("%v: err = %v", bad, err)
		}
	}
}

func TestResolveOptions(t *testing.T) {
	cfg := &rest.Config{Host: "https://127.0.0.1:1"}
	bad := []Options{
		{},
		{Hub: cfg, ProjectNamespace: "p"},
		{Hub: cfg, WorkloadNamespace: "w"},
		{Hub: cfg, ProjectNamespace: "p", WorkloadNamespace: "w"},                          // no registry for the variables
		{Hub: cfg, ProjectNamespace: "p", WorkloadNamespace: "w", Registry: "zot.local/x"}, // no port for the pull secret
		{Hub: cfg, ProjectNamespace: "p", WorkloadNamespace: "w", Registry: "a:b:c"},
	}
	for i, o := range bad {
		if _, err := o.resolve(); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("case %d: err = %v", i, err)
		}
	}
	s, err := Options{Hub: cfg, ProjectNamespace: "p", WorkloadNamespace: "w",
		Variables: Variables{ZotAuthSecret: "a", InternalZotURL: "b"}, Registry: "zot.local/x"}.resolve()
	if err != nil {
		t.Fatal(err)
	}
	if s.Project != "p" || s.VariableSet != "mural-variables" || s.CASourceNamespace != "mural-system" ||
		s.WaitTimeout != DefaultWaitTimeout || s.FieldManager != "ferry" || s.variables != (Variables{"zot-ca", "a", "b"}) {
		t.Errorf("defaults = %+v", s)
	}
	if _, err := (Options{Spoke: cfg, WorkloadNamespace: "w"}).resolve(); err != nil {
		t.Errorf("spoke-only options: %v", err)
	}
}

func TestAllowListOps(t *testing.T) {
	obj := func(js string) map[string]any {
		m := map[string]any{}
		if err := json.Unmarshal([]byte(js), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	tests := []struct {
		name, project, want string
		present             bool
	}{
		{"no spec", `{}`, `[{"op":"add","path":"/spec","value":{"admissionConfiguration":{"workloadConfiguration":{"deploymentNamespaces":{"allow":["w"]}}}}}]`, false},
		{"no admissionConfiguration", `{"spec":{"x":1}}`, `[{"op":"add","path":"/spec/admissionConfiguration","value":{"workloadConfiguration":{"deploymentNamespaces":{"allow":["w"]}}}}]`, false},
		{"null allow", `{"spec":{"admissionConfiguration":{"workloadConfiguration":{"deploymentNamespaces":{"allow":null,"disallow":["*"]}}}}}`, `[{"op":"add","path":"/spec/admissionConfiguration/workloadConfiguration/deploymentNamespaces/allow","value":["w"]}]`, false},
		{"append", `{"spec":{"admissionConfiguration":{"workloadConfiguration":{"deploymentNamespaces":{"allow":["default"]}}}}}`, `[{"op":"add","path":"/spec/admissionConfiguration/workloadConfiguration/deploymentNamespaces/allow/-","value":"w"}]`, false},
		{"present", `{"spec":{"admissionConfiguration":{"workloadConfiguration":{"deploymentNamespaces":{"allow":["w"]}}}}}`, `null`, true},
	}
	for _, tc := range tests {
		ops, present, err := allowListOps(obj(tc.project), "w")
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got, _ := json.Marshal(ops)
		if string(got) != tc.want || present != tc.present {
			t.Errorf("%s: ops %s present %v", tc.name, got, present)
		}
	}
	if _, _, err := allowListOps(obj(`{"spec":{"admissionConfiguration":"x"}}`), "w"); err == nil {
		t.Errorf("a string admissionConfiguration was accepted")
	}
	if _, _, err := allowListOps(obj(`{"spec":{"admissionConfiguration":{"workloadConfiguration":{"deploymentNamespaces":{"allow":"w"}}}}}`), "w"); err == nil {
		t.Errorf("a string allow was accepted")
	}
	data, _ := guardedPatch("42", []patchOp{{Op: "add", Path: "/a", Value: 1}})
	if string(data) != `[{"op":"replace","path":"/metadata/resourceVersion","value":"42"},{"op":"add","path":"/a","value":1}]` {
		t.Errorf("guarded patch = %s", data)
	}
}

func TestVariableOps(t *testing.T) {
	want := Variables{"zot-ca", "pull", "h:1"}.list()
	obj := map[string]any{"spec": map[string]any{"other": true, "variables": []any{
		map[string]any{"name": "keep", "value": map[string]any{"string": "k"}},
		map[string]any{"name": "zot-cert-secret", "variableType": "string", "value": map[string]any{"string": "zot-ca"}},
		map[string]any{"name": "zot-auth-secret", "variableType": "secret", "value": map[string]any{"string": "pull"}},
		map[string]any{"name": "internal-zot-url", "value": map[string]any{"string": "old"}, "extra": 1},
	}}}
	ops, notes, err := variableOps(obj, want)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(ops)
	const wantOps = `[{"op":"add","path":"/spec/variables/2/variableType","value":"string"},` +
		`{"op":"add","path":"/spec/variables/3/variableType","value":"string"},` +
		`{"op":"add","path":"/spec/variables/3/value","value":{"string":"h:1"}}]`
	if string(got) != wantOps {
		t.Errorf("ops = %s", got)
	}
	if !reflect.DeepEqual(notes, []string{"zot-auth-secret variableType -> string", `internal-zot-url "old" -> h:1`}) {
		t.Errorf("notes = %q", notes)
	}
	ops, _, _ = variableOps(map[string]any{"spec": map[string]any{}}, want)
	if len(ops) != 1 || ops[0].Path != "/spec/variables" || len(ops[0].Value.([]any)) != 3 {
		t.Errorf("no variables list: %+v", ops)
	}
	ops, _, _ = variableOps(map[string]any{}, want)
	if len(ops) != 1 || ops[0].Path != "/spec" {
		t.Errorf("no spec: %+v", ops)
	}
	ops, _, _ = variableOps(map[string]any{"spec": map[string]any{"variables": []any{}}}, want)
	if len(ops) != 3 || ops[0].Path != "/spec/variables/-" {
		t.Errorf("empty list: %+v", ops)
	}
	if _, _, err := variableOps(map[string]any{"spec": map[string]any{"variables": "x"}}, want); err == nil {
		t.Errorf("a string variables list was accepted")
	}
}

func TestCAFromSource(t *testing.T) {
	ca := testbed.NewCA(t)
	crt, key := ca.Issue(t)
	sec := func(data []byte) *corev1.Secret {
		s := &corev1.Secret{Data: map[string][]byte{}}
		s.Namespace, s.Name = "mural-system", "oci-tls-hub"
		if data != nil {
			s.Data["ca.crt"] = data
		}
		return s
	}
	if got, err := caFromSource(sec(append(ca.CertPEM(), crt...))); err != nil || len(got) == 0 {
		t.Errorf("a bundle of two certificates: %v", err)
	}
	for name, data := range map[string][]byte{
		"missing":     nil,
		"private key": key,
		"cert+key":    append(append([]byte{}, ca.CertPEM()...), key...),
		"not PEM":     []byte("hello"),
		"other PEM":   []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
	} {
		if _, err := caFromSource(sec(data)); !errors.Is(err, ErrUnusableCA) || !strings.Contains(err.Error(), "mural-system/oci-tls-hub") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestUnifiedDiff(t *testing.T) {
	a := "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\n"
	b := "a\nB\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\n"
	want := "--- a/x\n+++ b/x\n@@ -1,5 +1,5 @@\n a\n-b\n+B\n c\n d\n e\n@@ -9,3 +9,4 @@\n i\n j\n k\n+l\n"
	if got := unifiedDiff("x", a, b); got != want {
		t.Errorf("diff =\n%s\nwant\n%s", got, want)
	}
	if got := unifiedDiff("x", a, a); got != "" {
		t.Errorf("equal inputs: %q", got)
	}
	if got := unifiedDiff("x", "", "a\n"); got != "--- /dev/null\n+++ b/x\n@@ -0,0 +1,1 @@\n+a\n" {
		t.Errorf("creation diff = %q", got)
	}
	obj := map[string]any{"metadata": map[string]any{"name": "web", "resourceVersion": "1", "managedFields": []any{}}, "spec": 1}
	if y := objectYAML(obj); strings.Contains(y, "resourceVersion") || strings.Contains(y, "managedFields") || !strings.Contains(y, "name: web") {
		t.Errorf("objectYAML = %s", y)
	}
	if _, ok := obj["metadata"].(map[string]any)["resourceVersion"]; !ok {
		t.Errorf("objectYAML changed its input")
	}
}

func TestRewriteRegistryUIDs(t *testing.T) {
	obj := map[string]any{"spec": map[string]any{"packs": []any{
		map[string]any{"registry": map[string]any{"uid": "old"}},
		map[string]any{"registryUid": "old"},
		map[string]any{"registry": map[string]any{"metadata": map[string]any{"uid": "other"}}},
	}}}
	notes := rewriteRegistryUIDs(obj, map[string]string{"old": "new", "other": "x"})
	if !reflect.DeepEqual(notes, []string{"registry UID old -> new (2)", "registry UID other -> x (1)"}) {
		t.Errorf("notes = %v", notes)
	}
	packs := obj["spec"].(map[string]any)["packs"].([]any)
	if packs[0].(map[string]any)["registry"].(map[string]any)["uid"] != "new" || packs[1].(map[string]any)["registryUid"] != "new" {
		t.Errorf("packs = %v", packs)
	}
}

func TestRewriteDigests(t *testing.T) {
	old, to := "sha256:"+strings.Repeat("a", 64), "sha256:"+strings.Repeat("b", 64)
	obj := map[string]any{"spec": map[string]any{
		"values":   "image: reg/x:1@" + old + "\nsidecar: reg/y@" + old + "\n",
		"images":   []any{"reg/z@" + old, "reg/keep@sha256:" + strings.Repeat("c", 64)},
		"checksum": old, // not after "@": not an image reference
	}}
	notes := rewriteDigests(obj, map[string]string{old: to})
	if !reflect.DeepEqual(notes, []string{"image digest " + old + " -> " + to + " (3)"}) {
		t.Errorf("notes = %v", notes)
	}
	spec := obj["spec"].(map[string]any)
	if v := spec["values"].(string); strings.Contains(v, old) || strings.Count(v, "@"+to) != 2 {
		t.Errorf("values = %q", v)
	}
	if imgs := spec["images"].([]any); imgs[0] != "reg/z@"+to || !strings.HasSuffix(imgs[1].(string), strings.Repeat("c", 64)) {
		t.Errorf("images = %v", imgs)
	}
	if spec["checksum"] != old {
		t.Errorf("checksum rewritten: %v", spec["checksum"])
	}
	if rewriteDigests(obj, nil) != nil {
		t.Error("notes without a map")
	}
}

func TestAPIErrorClassification(t *testing.T) {
	gr := schema.GroupResource{Group: "spectrocloud.com", Resource: "projects"}
	tests := []struct {
		err  error
		want error
	}{
		{apierrors.NewForbidden(gr, "p", fmt.Errorf("no")), ErrForbidden},
		{apierrors.NewNotFound(gr, "p"), ErrNotFound},
		{apierrors.NewConflict(gr, "p", fmt.Errorf("changed")), ErrConflict},
		{apierrors.NewInvalid(schema.GroupKind{Group: "spectrocloud.com", Kind: "Project"}, "p", nil), ErrRejected},
		{apierrors.NewServiceUnavailable("down"), ErrUnavailable},
		{fmt.Errorf("dial tcp: connection refused"), ErrUnavailable},
	}
	for _, tc := range tests {
		err := error(&APIError{Cluster: "hub", Verb: "patch", Resource: "projects.spectrocloud.com", Namespace: "ns", Name: "p", Err: tc.err})
		if !errors.Is(err, tc.want) {
			t.Errorf("%v: not %v", tc.err, tc.want)
		}
		if !strings.HasPrefix(err.Error(), "hub: patch projects.spectrocloud.com ns/p: ") {
			t.Errorf("message = %q", err)
		}
	}
	if !apierrors.IsForbidden(&APIError{Err: apierrors.NewForbidden(gr, "p", fmt.Errorf("no"))}) {
		t.Errorf("the status error is not reachable through APIError")
	}
}

func TestRESTConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	hub := write("hub", `apiVersion: v1
kind: Config
clusters: [{name: hub, cluster: {server: "https://hub.example:6443"}}]
users: [{name: hub, user: {token: hub-token}}]
contexts: [{name: hub, context: {cluster: hub, user: hub}}]
current-context: hub
`)
	spoke := write("spoke", `apiVersion: v1
kind: Config
clusters: [{name: spoke, cluster: {server: "https://spoke.example:6443"}}]
users: [{name: spoke, user: {token: spoke-token}}]
contexts: [{name: spoke, context: {cluster: spoke, user: spoke}}]
current-context: spoke
`)
	// Several files merged, the first to set current-context winning, and a
	// context picked from the second.
	paths := []string{hub, filepath.Join(dir, "missing"), spoke}
	cfg, err := RESTConfig(KubeconfigSource{Paths: paths})
	if err != nil || cfg.Host != "https://hub.example:6443" || cfg.BearerToken != "hub-token" {
		t.Fatalf("current context: %+v, %v", cfg, err)
	}
	cfg, err = RESTConfig(KubeconfigSource{Paths: paths, Context: "spoke"})
	if err != nil || cfg.Host != "https://spoke.example:6443" {
		t.Fatalf("context spoke: %+v, %v", cfg, err)
	}
	cfg, err = RESTConfig(KubeconfigSource{Explicit: spoke, Paths: []string{hub}})
	if err != nil || cfg.Host != "https://spoke.example:6443" {
		t.Fatalf("explicit file: %+v, %v", cfg, err)
	}
	for name, src := range map[string]KubeconfigSource{
		"unknown context": {Paths: paths, Context: "nope"},
		"missing file":    {Explicit: filepath.Join(dir, "missing")},
		"nothing":         {Paths: []string{filepath.Join(dir, "missing")}},
	} {
		if _, err := RESTConfig(src); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}
