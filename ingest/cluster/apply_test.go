package cluster

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ferrytool/ferry/internal/testbed"
)

// TestCluster runs the acceptance list of the cluster follow-through against
// a real hub and a real spoke: two separate API servers shared by the
// subtests, each subtest in namespaces of its own.
func TestCluster(t *testing.T) {
	e := newEnv(t)
	t.Run("FullRunThenUnchanged", e.testFullRun)
	t.Run("DryRunChangesNothing", e.testDryRun)
	t.Run("ProjectWithoutAdmissionConfiguration", func(t *testing.T) {
		e.testProjectVariant(t, "team-noadm", "", nil, []any{"wl-noadm"}, nil)
	})
	t.Run("ProjectAllowAbsent", func(t *testing.T) {
		e.testProjectVariant(t, "team-noallow", "  admissionConfiguration:\n    workloadConfiguration:\n      deploymentNamespaces:\n        disallow: [\"*\"]\n",
			nil, []any{"wl-noallow"}, []any{"*"})
	})
	t.Run("AllowListAlreadyHoldsNamespace", func(t *testing.T) {
		e.testProjectVariant(t, "team-held", "  admissionConfiguration:\n    workloadConfiguration:\n      deploymentNamespaces:\n        allow: [default, wl-held]\n        disallow: [\"*\"]\n",
			[]any{"default", "wl-held"}, []any{"default", "wl-held"}, []any{"*"})
	})
	t.Run("SourceSecretZotCA", e.testSourceZotCA)
	t.Run("StaleTargetSecretReplaced", e.testStaleTarget)
	t.Run("NoSourceSecretBeforeTimeout", e.testTimeout)
	t.Run("VariableSetMissing", e.testVariableSetMissing)
	t.Run("RBACForbidsPatch", e.testForbidden)
	t.Run("ConflictIsRetried", e.testConflict)
	t.Run("ServedKindsAndRegistryMap", e.testServedKinds) // installs a CRD: keep last
}

func stepStatuses(res *Result) map[Step]string {
	m := map[Step]string{}
	for _, s := range res.Steps {
		m[s.Step] = s.Status
	}
	return m
}

func findItem(t *testing.T, res *Result, step Step, kind, name string) Item {
	t.Helper()
	return findItemIn(t, res, step, kind, "", name)
}

// findItemIn is findItem for one namespace; "" matches any.
func findItemIn(t *testing.T, res *Result, step Step, kind, ns, name string) Item {
	t.Helper()
	sr, ok := res.Step(step)
	if !ok {
		t.Fatalf("step %s did not run", step)
	}
	for _, it := range sr.Items {
		if it.Kind == kind && it.Name == name && (ns == "" || it.Namespace == ns) {
			return it
		}
	}
	t.Fatalf("step %s has no item %s %s: %+v", step, kind, name, sr.Items)
	return Item{}
}

func nested(t *testing.T, obj map[string]any, path ...string) any {
	t.Helper()
	v, _, err := unstructured.NestedFieldNoCopy(obj, path...)
	if err != nil {
		t.Fatalf("%v: %v", path, err)
	}
	return v
}

func (e *env) testFullRun(t *testing.T) {
	const ns, wl = "team-full", "clearml"
	ctx := testCtx(t)
	e.hubProject(t, ns, admissionDefault, true)
	before := e.getHub(t, projectGVR, ns, ns)

	// oci-tls-hub appears only after the run has started waiting.
	source := e.ociTLSHub(t)
	appeared := make(chan struct{})
	go func() {
		defer close(appeared)
		time.Sleep(1500 * time.Millisecond)
		cs := e.spokeCore.CoreV1()
		if _, err := cs.Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "mural-system"}}, metav1.CreateOptions{}); err != nil {
			t.Errorf("creating mural-system: %v", err)
			return
		}
		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "oci-tls-hub", Namespace: "mural-system"}, Type: corev1.SecretTypeTLS, Data: source}
		if _, err := cs.Secrets("mural-system").Create(context.Background(), sec, metav1.CreateOptions{}); err != nil {
			t.Errorf("creating oci-tls-hub: %v", err)
		}
	}()

	var waits atomic.Int32
	var started, finished []Step
	opts := Options{
		Hub: e.hub.Config(), Spoke: e.spoke.Config(),
		ProjectNamespace: ns, WorkloadNamespace: wl,
		Registry:     testRegistry,
		Bundle:       clearmlBundle(t),
		WaitTimeout:  45 * time.Second,
		PollInterval: 200 * time.Millisecond,
		OnWait: func(w WaitStatus) {
			if w.Namespace != "mural-system" || w.Timeout != 45*time.Second {
				t.Errorf("wait status = %+v", w)
			}
			waits.Add(1)
		},
		OnStepStart: func(s Step) { started = append(started, s) },
		OnStep:      func(r StepResult) { finished = append(finished, r.Step) },
	}
	res, err := Apply(ctx, opts)
	<-appeared
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	want := map[Step]string{StepBundleImport: StatusChanged, StepProjectAdmission: StatusChanged, StepVariables: StatusChanged, StepSpokeCA: StatusChanged}
	if got := stepStatuses(res); !reflect.DeepEqual(got, want) {
		t.Errorf("statuses = %v, want %v", got, want)
	}
	if waits.Load() == 0 {
		t.Errorf("the spoke step never reported that it waits")
	}
	if !reflect.DeepEqual(started, Steps) || !reflect.DeepEqual(finished, Steps) {
		t.Errorf("callbacks: started %v, finished %v", started, finished)
	}

	// The Project: namespace appended, disallow and everything else intact.
	p := e.getHub(t, projectGVR, ns, ns)
	dn := []string{"spec", "admissionConfiguration", "workloadConfiguration", "deploymentNamespaces"}
	if got := nested(t, p.Object, append(dn, "allow")...); !reflect.DeepEqual(got, []any{"default", wl}) {
		t.Errorf("allow = %v", got)
	}
	if got := nested(t, p.Object, append(dn, "disallow")...); !reflect.DeepEqual(got, []any{"*"}) {
		t.Errorf("disallow = %v", got)
	}
	specBefore, specAfter := before.Object["spec"].(map[string]any), p.Object["spec"].(map[string]any)
	for k, v := range specBefore {
		if k != "admissionConfiguration" && !reflect.DeepEqual(specAfter[k], v) {
			t.Errorf("spec.%s changed: %v -> %v", k, v, specAfter[k])
		}
	}
	if !reflect.DeepEqual(p.GetLabels(), before.GetLabels()) {
		t.Errorf("labels changed: %v", p.GetLabels())
	}

	// The VariableSet: upserted by name, the rest untouched.
	vs := e.getHub(t, variableSetGVR, ns, "mural-variables")
	wantVars := []any{
		map[string]any{"name": "unrelated-existing", "variableType": "string", "value": map[string]any{"string": "keep-me"}, "description": "unknown field"},
		map[string]any{"name": "zot-cert-secret", "variableType": "string", "value": map[string]any{"string": "zot-ca"}},
		map[string]any{"name": "internal-zot-url", "variableType": "string", "value": map[string]any{"string": "10.10.233.0:30003"}, "note": "kept"},
		map[string]any{"name": "zot-auth-secret", "variableType": "string", "value": map[string]any{"string": "10-10-233-0-30003-pull-secret"}},
	}
	if got := nested(t, vs.Object, "spec", "variables"); !reflect.DeepEqual(got, wantVars) {
		t.Errorf("variables =\n%v\nwant\n%v", got, wantVars)
	}
	if got := nested(t, vs.Object, "spec", "futureSetting"); !reflect.DeepEqual(got, map[string]any{"keep": "me"}) {
		t.Errorf("unknown spec field = %v", got)
	}

	// The import: served kinds applied into the project namespace by
	// field manager ferry, chart pointed at the registry, ClusterProfile
	// skipped with the reason.
	wp := e.getHub(t, workloadGVR, ns, "clearml")
	comps := []string{"spec", "workload", "components"}
	list := nested(t, wp.Object, comps...).([]any)
	if got := list[0].(map[string]any)["properties"].(map[string]any)["repository"]; got != "oci://10.10.233.0:30003/spectro-content/charts/clearml" {
		t.Errorf("chart repository = %v", got)
	}
	if got := list[1].(map[string]any)["properties"].(map[string]any)["repoURL"]; got != "oci://{{ internal-zot-url }}/spectro-content/charts/helper" {
		t.Errorf("templated repository was touched: %v", got)
	}
	managers := map[string]bool{}
	for _, mf := range wp.GetManagedFields() {
		managers[mf.Manager] = true
	}
	if !managers["ferry"] {
		t.Errorf("field managers = %v", managers)
	}
	pb := e.getHub(t, bundleGVR, ns, "clearml")
	if got := nested(t, pb.Object, "spec", "type"); got != "Fullstack" {
		t.Errorf("ProfileBundle spec.type = %v", got)
	}
	e.getHub(t, variableSetGVR, ns, "clearml-vars")
	cp := findItem(t, res, StepBundleImport, "ClusterProfile", "edge-infra")
	if cp.Action != ActionSkipped || !strings.Contains(cp.Detail, "does not serve kind ClusterProfile") {
		t.Errorf("ClusterProfile item = %+v", cp)
	}
	if it := findItem(t, res, StepBundleImport, "WorkloadProfile", "clearml"); it.Action != ActionCreated ||
		!strings.Contains(it.Detail, "repository https://clearml.github.io/clearml-helm-charts -> oci://10.10.233.0:30003/spectro-content/charts/clearml") {
		t.Errorf("WorkloadProfile item = %+v", it)
	}
	sr, _ := res.Step(StepBundleImport)
	if last := sr.Items[len(sr.Items)-1]; last.Kind != "ProfileBundle" {
		t.Errorf("ProfileBundle not applied last: %+v", sr.Items)
	}

	// The spoke: namespace created, zot-ca Opaque with ca.crt only.
	sec, err := e.spokeCore.CoreV1().Secrets(wl).Get(ctx, "zot-ca", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("spoke zot-ca: %v", err)
	}
	if sec.Type != corev1.SecretTypeOpaque || !reflect.DeepEqual(sec.Data, map[string][]byte{"ca.crt": source["ca.crt"]}) {
		t.Errorf("spoke zot-ca = type %s, keys %v", sec.Type, keysOf(sec.Data))
	}

	// A second run changes nothing: every step unchanged, every
	// resourceVersion the same.
	rvs := func() map[string]string {
		out := map[string]string{}
		for name, u := range map[string]*unstructured.Unstructured{
			"project":       e.getHub(t, projectGVR, ns, ns),
			"mural":         e.getHub(t, variableSetGVR, ns, "mural-variables"),
			"bundle":        e.getHub(t, bundleGVR, ns, "clearml"),
			"workload":      e.getHub(t, workloadGVR, ns, "clearml"),
			"inline-varset": e.getHub(t, variableSetGVR, ns, "clearml-vars"),
		} {
			out[name] = u.GetResourceVersion()
		}
		s, err := e.spokeCore.CoreV1().Secrets(wl).Get(ctx, "zot-ca", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out["spoke-secret"] = s.ResourceVersion
		n, err := e.spokeCore.CoreV1().Namespaces().Get(ctx, wl, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out["spoke-namespace"] = n.ResourceVersion
		return out
	}
	rv1 := rvs()
	opts.OnWait, opts.OnStepStart, opts.OnStep = nil, nil, nil
	res2, err := Apply(ctx, opts)
	if err != nil {
		t.Fatalf("second Apply: %v", err)
	}
	unchanged := map[Step]string{StepBundleImport: StatusUnchanged, StepProjectAdmission: StatusUnchanged, StepVariables: StatusUnchanged, StepSpokeCA: StatusUnchanged}
	if got := stepStatuses(res2); !reflect.DeepEqual(got, unchanged) {
		t.Errorf("second run statuses = %v", got)
	}
	if res2.Changed() {
		t.Errorf("second run reports a change")
	}
	if rv2 := rvs(); !reflect.DeepEqual(rv1, rv2) {
		t.Errorf("resourceVersions changed:\n%v\n%v", rv1, rv2)
	}

	// A dry run now plans nothing either.
	opts.DryRun = true
	res3, err := Apply(ctx, opts)
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if got := stepStatuses(res3); !reflect.DeepEqual(got, unchanged) {
		t.Errorf("dry run after apply: %v %+v", got, res3)
	}

	// The validation report agrees.
	opts.DryRun = false
	rep, err := Validate(ctx, opts)
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if !rep.OK || len(rep.Checks) != 1+3+3+1 {
		t.Errorf("report = %+v", rep)
	}
}

func keysOf(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func (e *env) testDryRun(t *testing.T) {
	const ns, wl, src = "team-dry", "wl-dry", "src-dry"
	ctx := testCtx(t)
	e.hubProject(t, ns, admissionDefault, true)
	e.spokeSecret(t, src, "zot-ca", corev1.SecretTypeOpaque, map[string][]byte{"ca.crt": e.ca.CertPEM()})
	p0 := e.getHub(t, projectGVR, ns, ns)
	v0 := e.getHub(t, variableSetGVR, ns, "mural-variables")

	opts := Options{
		Hub: e.hub.Config(), Spoke: e.spoke.Config(), ProjectNamespace: ns, WorkloadNamespace: wl,
		Registry: testRegistry, Bundle: clearmlBundle(t), CASourceNamespace: src,
		WaitTimeout: 5 * time.Second, PollInterval: 100 * time.Millisecond, DryRun: true,
	}
	res, err := Apply(ctx, opts)
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if !res.DryRun || !res.Changed() {
		t.Fatalf("result = %+v", res)
	}
	for _, s := range res.Steps {
		if s.Status != StatusChanged || !s.DryRun {
			t.Errorf("step %s: %s", s.Step, s.Status)
		}
	}
	if it := findItem(t, res, StepProjectAdmission, "Project", ns); !strings.Contains(it.Diff, "+        - "+wl) {
		t.Errorf("project diff:\n%s", it.Diff)
	}
	if it := findItem(t, res, StepVariables, "VariableSet", "mural-variables"); !strings.Contains(it.Diff, "10-10-233-0-30003-pull-secret") ||
		!strings.Contains(it.Diff, "-      string: 10.0.0.1:5000") {
		t.Errorf("variables diff:\n%s", it.Diff)
	}
	if it := findItem(t, res, StepBundleImport, "WorkloadProfile", "clearml"); it.Action != ActionCreated || !strings.Contains(it.Diff, "+++ b/workloadprofile/clearml") {
		t.Errorf("workload item = %+v", it)
	}
	if it := findItem(t, res, StepSpokeCA, "Namespace", wl); it.Action != ActionCreated {
		t.Errorf("namespace item = %+v", it)
	}
	if it := findItemIn(t, res, StepSpokeCA, "Secret", wl, "zot-ca"); it.Action != ActionCreated || !strings.Contains(it.Diff, "ca.crt: '<redacted: ") || strings.Contains(it.Diff, "BEGIN") {
		t.Errorf("secret item = %+v", it)
	}

	// Nothing changed anywhere.
	if p := e.getHub(t, projectGVR, ns, ns); p.GetResourceVersion() != p0.GetResourceVersion() {
		t.Errorf("dry run changed the Project")
	}
	if v := e.getHub(t, variableSetGVR, ns, "mural-variables"); v.GetResourceVersion() != v0.GetResourceVersion() {
		t.Errorf("dry run changed the VariableSet")
	}
	if l, err := e.hubDyn.Resource(workloadGVR).Namespace(ns).List(ctx, metav1.ListOptions{}); err != nil || len(l.Items) != 0 {
		t.Errorf("dry run imported: %v %v", l, err)
	}
	if spokeNamespaceExists(t, e.spokeCore, wl) {
		t.Errorf("dry run created the spoke namespace")
	}

	// Without a source Secret a dry run does not wait; it says what a real
	// run would wait for.
	opts.Hub, opts.CASourceNamespace = nil, "src-dry-none"
	res, err = Apply(ctx, opts)
	if err != nil {
		t.Fatalf("dry run without source: %v", err)
	}
	if it := findItem(t, res, StepSpokeCA, "Secret", "zot-ca|oci-tls-hub"); it.Action != ActionWaited {
		t.Errorf("wait item = %+v", it)
	}
}

// testProjectVariant runs the hub steps against a Project with the given
// admission YAML and checks allow and disallow afterwards; unchanged when
// initialAllow already equals wantAllow.
func (e *env) testProjectVariant(t *testing.T, ns, admission string, initialAllow, wantAllow, wantDisallow []any) {
	wl := wantAllow[len(wantAllow)-1].(string)
	e.hubProject(t, ns, admission, true)
	p0 := e.getHub(t, projectGVR, ns, ns)
	res, err := Apply(testCtx(t), Options{Hub: e.hub.Config(), ProjectNamespace: ns, WorkloadNamespace: wl, Registry: testRegistry})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	sr, _ := res.Step(StepProjectAdmission)
	p := e.getHub(t, projectGVR, ns, ns)
	dn := []string{"spec", "admissionConfiguration", "workloadConfiguration", "deploymentNamespaces"}
	if got := nested(t, p.Object, append(dn, "allow")...); !reflect.DeepEqual(got, wantAllow) {
		t.Errorf("allow = %v, want %v", got, wantAllow)
	}
	if got, _ := nested(t, p.Object, append(dn, "disallow")...).([]any); !reflect.DeepEqual(got, wantDisallow) {
		t.Errorf("disallow = %v, want %v", got, wantDisallow)
	}
	if initialAllow != nil && reflect.DeepEqual(initialAllow, wantAllow) {
		if sr.Status != StatusUnchanged || p.GetResourceVersion() != p0.GetResourceVersion() {
			t.Errorf("already allowed: status %s, resourceVersion %s -> %s", sr.Status, p0.GetResourceVersion(), p.GetResourceVersion())
		}
	} else if sr.Status != StatusChanged {
		t.Errorf("status = %s", sr.Status)
	}
	if st, _ := res.Step(StepSpokeCA); st.Status != StatusSkipped {
		t.Errorf("spoke step without a spoke: %+v", st)
	}
	if !reflect.DeepEqual(p.Object["spec"].(map[string]any)["roleMapping"], p0.Object["spec"].(map[string]any)["roleMapping"]) {
		t.Errorf("roleMapping changed")
	}
}

func (e *env) testSourceZotCA(t *testing.T) {
	const src, wl = "src-zotca", "wl-zotca"
	e.spokeSecret(t, src, "zot-ca", corev1.SecretTypeOpaque, map[string][]byte{"ca.crt": e.ca.CertPEM(), "note": []byte("not copied")})
	ctx := testCtx(t)
	res, err := Apply(ctx, Options{Spoke: e.spoke.Config(), WorkloadNamespace: wl, CASourceNamespace: src, WaitTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if got := stepStatuses(res); got[StepSpokeCA] != StatusChanged || got[StepProjectAdmission] != StatusSkipped {
		t.Errorf("statuses = %v", got)
	}
	sec, err := e.spokeCore.CoreV1().Secrets(wl).Get(ctx, "zot-ca", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sec.Type != corev1.SecretTypeOpaque || !reflect.DeepEqual(sec.Data, map[string][]byte{"ca.crt": e.ca.CertPEM()}) {
		t.Errorf("zot-ca = %s %v", sec.Type, keysOf(sec.Data))
	}
	if it := findItemIn(t, res, StepSpokeCA, "Secret", wl, "zot-ca"); it.Namespace != wl || it.Action != ActionCreated || !strings.Contains(it.Detail, src+"/zot-ca") {
		t.Errorf("item = %+v", it)
	}
}

func (e *env) testStaleTarget(t *testing.T) {
	const src, wl = "src-stale", "wl-stale"
	ctx := testCtx(t)
	e.spokeSecret(t, src, "oci-tls-hub", corev1.SecretTypeTLS, e.ociTLSHub(t))
	crt, key := e.ca.Issue(t, "stale.local")
	e.spokeSecret(t, wl, "zot-ca", corev1.SecretTypeTLS, map[string][]byte{"ca.crt": []byte("stale"), "tls.crt": crt, "tls.key": key})
	opts := Options{Spoke: e.spoke.Config(), WorkloadNamespace: wl, CASourceNamespace: src, WaitTimeout: 5 * time.Second}
	if _, err := Apply(ctx, opts); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	sec, err := e.spokeCore.CoreV1().Secrets(wl).Get(ctx, "zot-ca", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sec.Type != corev1.SecretTypeOpaque || !reflect.DeepEqual(sec.Data, map[string][]byte{"ca.crt": e.ca.CertPEM()}) {
		t.Errorf("zot-ca = %s %v", sec.Type, keysOf(sec.Data))
	}
	// A source whose ca.crt is a private key is refused.
	e.spokeSecret(t, "src-bad", "zot-ca", corev1.SecretTypeOpaque, map[string][]byte{"ca.crt": key})
	opts.CASourceNamespace, opts.WorkloadNamespace = "src-bad", "wl-bad"
	if _, err := Apply(ctx, opts); !errors.Is(err, ErrUnusableCA) {
		t.Errorf("private key source: %v", err)
	}
	if spokeNamespaceExists(t, e.spokeCore, "wl-bad") {
		t.Errorf("namespace created for an unusable source")
	}
}

func (e *env) testTimeout(t *testing.T) {
	const src, wl = "src-never", "wl-never"
	e.spoke.CreateNamespace(t, src)
	var waits int
	start := time.Now()
	res, err := Apply(testCtx(t), Options{
		Spoke: e.spoke.Config(), WorkloadNamespace: wl, CASourceNamespace: src,
		WaitTimeout: time.Second, PollInterval: 200 * time.Millisecond,
		OnWait: func(WaitStatus) { waits++ },
	})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the wait took %s", d)
	}
	for _, want := range []string{"oci-tls-hub", src, "nothing was created"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if sr, _ := res.Step(StepSpokeCA); sr.Status != StatusFailed {
		t.Errorf("step = %+v", sr)
	}
	if waits < 2 {
		t.Errorf("OnWait called %d times", waits)
	}
	if spokeNamespaceExists(t, e.spokeCore, wl) {
		t.Errorf("the workload namespace was created although the wait failed")
	}
}

func (e *env) testVariableSetMissing(t *testing.T) {
	const ns = "team-novs"
	ctx := testCtx(t)
	e.hubProject(t, ns, admissionDefault, false)
	opts := Options{Hub: e.hub.Config(), ProjectNamespace: ns, WorkloadNamespace: "wl-novs", Registry: testRegistry}
	_, err := Apply(ctx, opts)
	if !errors.Is(err, ErrNotFound) || !errors.Is(err, ErrVariableSetMissing) || !strings.Contains(err.Error(), ns+"/mural-variables") {
		t.Fatalf("err = %v, want ErrNotFound naming the VariableSet", err)
	}
	if _, err := e.hubDyn.Resource(variableSetGVR).Namespace(ns).Get(ctx, "mural-variables", metav1.GetOptions{}); err == nil {
		t.Fatalf("VariableSet created without CreateVariableSet")
	}
	opts.CreateVariableSet = true
	res, err := Apply(ctx, opts)
	if err != nil {
		t.Fatalf("Apply with CreateVariableSet: %v", err)
	}
	if it := findItem(t, res, StepVariables, "VariableSet", "mural-variables"); it.Action != ActionCreated {
		t.Errorf("item = %+v", it)
	}
	vs := e.getHub(t, variableSetGVR, ns, "mural-variables")
	want := []any{
		map[string]any{"name": "zot-cert-secret", "variableType": "string", "value": map[string]any{"string": "zot-ca"}},
		map[string]any{"name": "zot-auth-secret", "variableType": "string", "value": map[string]any{"string": "10-10-233-0-30003-pull-secret"}},
		map[string]any{"name": "internal-zot-url", "variableType": "string", "value": map[string]any{"string": "10.10.233.0:30003"}},
	}
	if got := nested(t, vs.Object, "spec", "variables"); !reflect.DeepEqual(got, want) {
		t.Errorf("variables = %v", got)
	}
	// Overrides win over derived values.
	opts.Variables = Variables{ZotAuthSecret: "custom-pull"}
	res, err = Apply(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if it := findItem(t, res, StepVariables, "VariableSet", "mural-variables"); it.Action != ActionUpdated || !strings.Contains(it.Detail, `zot-auth-secret "10-10-233-0-30003-pull-secret" -> custom-pull`) {
		t.Errorf("override item = %+v", it)
	}
}

func (e *env) testForbidden(t *testing.T) {
	const ns = "team-rbac"
	ctx := testCtx(t)
	e.hubProject(t, ns, admissionDefault, true)
	p0 := e.getHub(t, projectGVR, ns, ns)
	user := e.hub.AddUser(t, testbed.UserOptions{
		Name: "viewer",
		NamespaceRules: []rbacv1.PolicyRule{{
			APIGroups: []string{"spectrocloud.com"}, Resources: []string{"projects", "variablesets"}, Verbs: []string{"get", "list"},
		}},
		Namespaces: []string{ns},
	})
	_, err := Apply(ctx, Options{Hub: user.Config(), ProjectNamespace: ns, WorkloadNamespace: "wl-rbac", Registry: testRegistry})
	if !errors.Is(err, ErrForbidden) {
		t.Fatalf("err = %v, want ErrForbidden", err)
	}
	var ae *APIError
	if !errors.As(err, &ae) || ae.Verb != "patch" || ae.Resource != "projects.spectrocloud.com" || ae.Cluster != "hub" {
		t.Fatalf("APIError = %+v", ae)
	}
	if !strings.Contains(err.Error(), "patch projects.spectrocloud.com "+ns+"/"+ns) {
		t.Errorf("message %q does not name verb and resource", err)
	}
	if p := e.getHub(t, projectGVR, ns, ns); p.GetResourceVersion() != p0.GetResourceVersion() {
		t.Errorf("the Project changed")
	}
	// Validation as that user still reports, check by check.
	rep, err := Validate(ctx, Options{Hub: user.Config(), ProjectNamespace: ns, WorkloadNamespace: "wl-rbac", Registry: testRegistry})
	if err != nil || rep.OK {
		t.Errorf("Validate = %+v, %v", rep, err)
	}
}

func (e *env) testConflict(t *testing.T) {
	const ns, wl = "team-conflict", "wl-conflict"
	ctx := testCtx(t)
	e.hubProject(t, ns, admissionDefault, true)
	attempts := map[Step]int{}
	opts := Options{Hub: e.hub.Config(), ProjectNamespace: ns, WorkloadNamespace: wl, Registry: testRegistry}
	opts.hooks.beforeWrite = func(step Step, attempt int) {
		attempts[step] = attempt
		if attempt != 1 {
			return
		}
		// Someone else writes between ferry's read and its write.
		var gvr = projectGVR
		patch := `[{"op":"add","path":"/metadata/labels/touched","value":"yes"}]`
		name := ns
		if step == StepVariables {
			gvr, name = variableSetGVR, "mural-variables"
			patch = `[{"op":"add","path":"/spec/variables/-","value":{"name":"added-meanwhile","variableType":"string","value":{"string":"x"}}}]`
		}
		if _, err := e.hubDyn.Resource(gvr).Namespace(ns).Patch(ctx, name, types.JSONPatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Errorf("concurrent write: %v", err)
		}
	}
	if _, err := Apply(ctx, opts); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if attempts[StepProjectAdmission] != 2 || attempts[StepVariables] != 2 {
		t.Errorf("attempts = %v", attempts)
	}
	p := e.getHub(t, projectGVR, ns, ns)
	if p.GetLabels()["touched"] != "yes" {
		t.Errorf("the concurrent label was lost")
	}
	if got := nested(t, p.Object, "spec", "admissionConfiguration", "workloadConfiguration", "deploymentNamespaces", "allow"); !reflect.DeepEqual(got, []any{"default", wl}) {
		t.Errorf("allow = %v", got)
	}
	var names []string
	for _, v := range nested(t, e.getHub(t, variableSetGVR, ns, "mural-variables").Object, "spec", "variables").([]any) {
		names = append(names, v.(map[string]any)["name"].(string))
	}
	if want := []string{"unrelated-existing", "zot-cert-secret", "internal-zot-url", "added-meanwhile", "zot-auth-secret"}; !reflect.DeepEqual(names, want) {
		t.Errorf("variables = %v, want %v", names, want)
	}
}

func (e *env) testServedKinds(t *testing.T) {
	const ns = "team-kinds"
	ctx := testCtx(t)
	e.hubProject(t, ns, admissionDefault, true)
	// A hub that does serve ClusterProfile (in a test group), so its packs'
	// registry UIDs are applied rewritten.
	crd := fromYAML(t, `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: clusterprofiles.test.ferry.dev}
spec:
  group: test.ferry.dev
  scope: Namespaced
  names: {kind: ClusterProfile, plural: clusterprofiles, singular: clusterprofile, listKind: ClusterProfileList}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
`)
	crdGVR := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	if _, err := e.hubDyn.Resource(crdGVR).Create(ctx, crd, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := e.hubCore.Discovery().ServerResourcesForGroupVersion("test.ferry.dev/v1"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("test CRD not served")
		}
		time.Sleep(100 * time.Millisecond)
	}
	b := makeBundle(t, map[string]string{
		"b/profiles.yaml": strings.ReplaceAll(bundleClusterProfile, "spectrocloud.com/v1alpha1", "test.ferry.dev/v1") + "---\n" +
			"apiVersion: spectrocloud.com/v1alpha1\nkind: Tenant\nmetadata: {name: acme}\nspec: {displayName: Acme}\n---\n" +
			"kind: WorkloadProfile\nmetadata: {name: noversion}\nspec: {chartName: helper, chartVersion: 1.0.0, repoURL: 'https://charts.example.com'}\n---\n" +
			"kind: Unserved\nmetadata: {name: x}\n---\n" +
			"apiVersion: spectrocloud.com/v1alpha1\nkind: VariableSet\nmetadata: {name: mural-variables}\nspec: {variables: [{name: only-this}]}\n",
		"b/broken.yaml": "kind: [unclosed\n",
	})
	res, err := Apply(ctx, Options{
		Hub: e.hub.Config(), ProjectNamespace: ns, WorkloadNamespace: "wl-kinds", Registry: testRegistry, Bundle: b,
		RegistryMap: map[string]string{"5f1a2b3c4d5e6f7a8b9c0d1e": "new-registry-uid"},
	})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	cpGVR := schema.GroupVersionResource{Group: "test.ferry.dev", Version: "v1", Resource: "clusterprofiles"}
	cp, err := e.hubDyn.Resource(cpGVR).Namespace(ns).Get(ctx, "edge-infra", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("ClusterProfile not imported: %v", err)
	}
	packs := nested(t, cp.Object, "spec", "packs").([]any)
	if got := packs[0].(map[string]any)["registry"].(map[string]any)["uid"]; got != "new-registry-uid" {
		t.Errorf("registry uid = %v", got)
	}
	if it := findItem(t, res, StepBundleImport, "ClusterProfile", "edge-infra"); !strings.Contains(it.Detail, "registry UID 5f1a2b3c4d5e6f7a8b9c0d1e -> new-registry-uid (1)") {
		t.Errorf("ClusterProfile item = %+v", it)
	}
	if it := findItem(t, res, StepBundleImport, "Tenant", "acme"); it.Action != ActionSkipped || !strings.Contains(it.Detail, "cluster-scoped") {
		t.Errorf("Tenant item = %+v", it)
	}
	if it := findItem(t, res, StepBundleImport, "Unserved", "x"); it.Action != ActionSkipped || !strings.Contains(it.Detail, "serves no kind Unserved") {
		t.Errorf("Unserved item = %+v", it)
	}
	if it := findItem(t, res, StepBundleImport, "(YAML)", "b/broken.yaml#0"); it.Action != ActionSkipped {
		t.Errorf("broken item = %+v", it)
	}
	if it := findItem(t, res, StepBundleImport, "VariableSet", "mural-variables"); it.Action != ActionSkipped || !strings.Contains(it.Detail, "not replaced") {
		t.Errorf("mural-variables item = %+v", it)
	}
	if vars := nested(t, e.getHub(t, variableSetGVR, ns, "mural-variables").Object, "spec", "variables").([]any); len(vars) != 4 {
		t.Errorf("the bundle's mural-variables replaced the project's: %v", vars)
	}
	wp := e.getHub(t, workloadGVR, ns, "noversion")
	if got := nested(t, wp.Object, "spec", "repoURL"); got != "oci://10.10.233.0:30003/spectro-content/charts/helper" {
		t.Errorf("repoURL = %v", got)
	}
	if _, err := e.hubDyn.Resource(schema.GroupVersionResource{Group: "spectrocloud.com", Version: "v1alpha1", Resource: "tenants"}).Get(ctx, "acme", metav1.GetOptions{}); err == nil {
		t.Errorf("cluster-scoped Tenant was created")
	}
}
