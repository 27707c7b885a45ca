package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	helmengine "helm.sh/helm/v3/pkg/engine"
	helmregistry "helm.sh/helm/v3/pkg/registry"

	"github.com/ferrytool/ferry/ingest"
	"github.com/ferrytool/ferry/internal/testbed"
	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/store"
)

const ingestBase = "spectro-content"

// ingestBed is a destination registry set up like the appliance's Zot
// (TLS from a private CA, htpasswd), a source registry and an archive.
type ingestBed struct {
	reg     *testbed.Registry
	src     *testbed.Registry
	fx      *fixtureArchive
	caFile  string
	journal string
	workDir string
	host    string // what --registry points at: the registry or a proxy
}

func newIngestBed(t *testing.T, volumeSize, bigLayer int64) *ingestBed {
	t.Helper()
	b := &ingestBed{src: testbed.StartSourceRegistry(t)}
	b.reg = testbed.StartRegistry(t, testbed.RegistryOptions{TLS: true, Username: "zot-admin", Password: "s3cret-" + strings.Repeat("x", 8)})
	b.host = b.reg.Host
	b.fx = clearmlFixture(t, b.src, volumeSize, bigLayer)
	dir := t.TempDir()
	b.caFile = b.reg.CA.WriteCert(t, dir)
	b.journal = filepath.Join(dir, "state", "ingest-journal.db")
	b.workDir = filepath.Join(dir, "state", "work")
	t.Setenv(envRegistryPassword, b.reg.Password)
	return b
}

func (b *ingestBed) args(extra ...string) []string {
	return append([]string{"ingest", "--quiet", "--registry", b.host + "/" + ingestBase, "--key", b.fx.pub,
		"--ca-file", b.caFile, "--username", b.reg.Username, "--journal", b.journal, "--work-dir", b.workDir}, extra...)
}

func reversed(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[len(list)-1-i] = s
	}
	return out
}

// checkAllIn checks every artifact's tag resolves to its digest in the bill
// of materials and, for images, to the source registry's digest.
func (b *ingestBed) checkAllIn(t *testing.T) {
	t.Helper()
	for _, a := range b.fx.artifacts {
		got := destDigest(t, b.reg, ingestBase+"/"+a.dest.Repository+":"+a.dest.Tag)
		if got != a.root().digest() {
			t.Errorf("%s: %s:%s resolves to %q, want %s", a.name, a.dest.Repository, a.dest.Tag, got, a.root().digest())
		}
		if a.kind == "image" {
			srcRef := strings.TrimPrefix(a.name, b.src.Host+"/")
			if src := destDigest(t, b.src, srcRef); src != got {
				t.Errorf("%s: destination digest %s, source %s", a.name, got, src)
			}
		}
	}
}

func TestIngestReverseVolumesOverThreeRuns(t *testing.T) {
	b := newIngestBed(t, 400<<10, 900<<10)
	vols := b.fx.volumes
	if len(vols) < 4 {
		t.Fatalf("fixture has %d volumes; want at least 4 to spread over three runs", len(vols))
	}
	t.Logf("%d volumes", len(vols))
	rev := reversed(vols)
	// Three runs, last volumes first: the last run brings volume 1.
	first := (len(rev) + 2) / 3
	runs := [][]string{rev[:first], rev[first : len(rev)-1], rev[len(rev)-1:]}
	staged := false

	// A dry run changes nothing and reports what the registry lacks.
	r := mustFerry(t, b.args(append([]string{"--dry-run", "--output", "json"}, vols...)...)...)
	var dry ingest.Report
	if err := json.Unmarshal([]byte(r.stdout), &dry); err != nil {
		t.Fatalf("dry run json: %v\n%s", err, r.stdout)
	}
	for _, a := range dry.Artifacts {
		if a.State != ingest.StateWouldPush || a.ToSend == 0 {
			t.Errorf("dry run: %s is %q (to send %d), want %q", a.Name, a.State, a.ToSend, ingest.StateWouldPush)
		}
	}
	if got := destDigest(t, b.reg, ingestBase+"/charts/clearml/clearml:7.14.7"); got != "" {
		t.Fatalf("the dry run pushed the chart")
	}

	for i, run := range runs {
		final := i == len(runs)-1
		args := b.args(append([]string{"--output", "json", "--pack-key", b.fx.packKey, "--packs-dir", filepath.Join(b.fx.dir, "packs")}, run...)...)
		r := ferry(t, "", args...)
		var rep ingest.Report
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			t.Fatalf("run %d: exit %d, json: %v\n%s\n%s", i+1, r.code, err, r.stdout, r.stderr)
		}
		t.Logf("run %d (volumes %v): exit %d, blobs %+v", i+1, volNumbers(rep), r.code, rep.Blobs)
		if parts, _ := filepath.Glob(filepath.Join(b.workDir, "*", "*", "*")); len(parts) > 0 {
			staged = true
		}
		if !final {
			if r.code != ExitIncomplete {
				t.Fatalf("run %d: exit %d, want %d (incomplete)\n%s", i+1, r.code, ExitIncomplete, r.stderr)
			}
			waiting := 0
			for _, a := range rep.Artifacts {
				if a.State == ingest.StateWaiting {
					waiting++
					if !strings.Contains(a.WaitingFor, "volume") {
						t.Errorf("run %d: %s waits for %q, which names no volume", i+1, a.Name, a.WaitingFor)
					}
				}
			}
			if waiting == 0 {
				t.Errorf("run %d: nothing waits, with volume 1 not given yet", i+1)
			}
			// The status, from the journal alone, says the same.
			st := mustFerry(t, "ingest", "--status", "--journal", b.journal, "--registry", b.reg.Host+"/"+ingestBase)
			if !strings.Contains(st.stdout, "waiting") || !strings.Contains(st.stdout, "volume") {
				t.Errorf("status after run %d does not say what waits for which volume:\n%s", i+1, st.stdout)
			}
			if i == 1 && !strings.Contains(st.stdout, "volume 1") {
				t.Errorf("status after run %d, with every volume but 1 seen, does not name volume 1:\n%s", i+1, st.stdout)
			}
			t.Logf("status after run %d:\n%s", i+1, st.stdout)
			continue
		}
		if r.code != 0 {
			t.Fatalf("final run: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		if rep.Validation == nil || !rep.Validation.OK() || len(rep.Validation.Artifacts) != len(b.fx.artifacts) {
			t.Errorf("final run validation: %+v", rep.Validation)
		}
	}
	// The pack went in with one of the runs, its vendor signature checked
	// again and its files written for Palette's Local UI.
	for _, f := range []string{"edge-k8s-1.33.5.zst", "edge-k8s-1.33.5.sig.bin"} {
		if _, err := os.Stat(filepath.Join(b.fx.dir, "packs", f)); err != nil {
			t.Errorf("--packs-dir: %v", err)
		}
	}
	b.checkAllIn(t)
	if !staged {
		t.Error("no run staged a part of the blob split across volumes")
	}

	// The split blob's staged parts are gone once it is in.
	if left, _ := filepath.Glob(filepath.Join(b.workDir, "*", "*")); len(left) > 0 {
		t.Errorf("staged parts left behind: %v", left)
	}
	if _, err := os.Stat(b.journal + ".holder"); !os.IsNotExist(err) {
		t.Errorf("journal holder record left behind: %v", err)
	}
	st := mustFerry(t, "ingest", "--status", "--journal", b.journal, "--output", "json")
	var status ingest.StatusReport
	json.Unmarshal([]byte(st.stdout), &status)
	if len(status.Destinations) != 1 || len(status.Destinations[0].Archives) != 1 || !status.Destinations[0].Archives[0].Done() {
		t.Errorf("status after the last run:\n%s", st.stdout)
	}

	// Validation alone, from one volume or from the journal.
	r = mustFerry(t, b.args("--validate-only", vols[0])...)
	if !strings.Contains(r.stdout, "8 of 8 artifacts valid") {
		t.Errorf("validate-only:\n%s", r.stdout)
	}
	mustFerry(t, "ingest", "--validate-only", "--registry", b.reg.Host+"/"+ingestBase, "--ca-file", b.caFile, "--username", b.reg.Username, "--journal", b.journal)

	// Helm's SDK pulls the chart from oci://.../charts/clearml/clearml and renders it.
	pullChart(t, b)

	// A second run with everything sends nothing.
	r = ferry(t, "", b.args(append([]string{"--output", "json"}, vols...)...)...)
	var again ingest.Report
	json.Unmarshal([]byte(r.stdout), &again)
	if r.code != 0 || again.Blobs.BytesSent != 0 || again.Blobs.Manifests != 0 {
		t.Errorf("rerun: exit %d, blobs %+v\n%s", r.code, again.Blobs, r.stderr)
	}
}

func volNumbers(r ingest.Report) []int {
	var out []int
	for _, v := range r.Volumes {
		out = append(out, v.Number)
	}
	return out
}

func pullChart(t *testing.T, b *ingestBed) {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.TLSClientConfig = &tls.Config{RootCAs: b.reg.CA.Pool(), MinVersion: tls.VersionTLS12}
	client, err := helmregistry.NewClient(helmregistry.ClientOptHTTPClient(&http.Client{Transport: tr}),
		helmregistry.ClientOptBasicAuth(b.reg.Username, b.reg.Password), helmregistry.ClientOptWriter(&bytes.Buffer{}))
	if err != nil {
		t.Fatal(err)
	}
	res, err := client.Pull(b.reg.Host+"/"+ingestBase+"/charts/clearml/clearml:7.14.7", helmregistry.PullOptWithChart(true))
	if err != nil {
		t.Fatalf("helm pull oci://%s/%s/charts/clearml/clearml --version 7.14.7: %v", b.reg.Host, ingestBase, err)
	}
	ch, err := loader.LoadArchive(bytes.NewReader(res.Chart.Data))
	if err != nil {
		t.Fatal(err)
	}
	if ch.Metadata.Version != "7.14.7" {
		t.Errorf("pulled chart version %s", ch.Metadata.Version)
	}
	vals, err := chartutil.ToRenderValues(ch, nil, chartutil.ReleaseOptions{Name: "clearml", Namespace: "clearml"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := helmengine.Render(ch, vals)
	if err != nil {
		t.Fatal(err)
	}
	if cm := out["clearml/templates/configmap.yaml"]; !strings.Contains(cm, "clearml-greeting") || !strings.Contains(cm, "hello from the air gap") {
		t.Errorf("rendered chart: %v", out)
	}
}

func TestIngestFaultSuite(t *testing.T) {
	b := newIngestBed(t, 4<<20, 6<<20)
	proxy := testbed.StartProxy(t, b.reg, testbed.ProxyOptions{Err500: 0.1, Err429: 0.05, Reset: 0.15, RetryAfter: time.Second, Seed: 42})
	b.host = proxy.Host
	r := ferry(t, "", b.args(append([]string{"--output", "json", "--retries", "8", "--jobs", "6"}, b.fx.volumes...)...)...)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var rep ingest.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	faults := proxy.Faults()
	t.Logf("faults injected: %v over %d requests; blobs %+v", faults, proxy.Requests(), rep.Blobs)
	for _, kind := range []string{"500", "429", "reset"} {
		if faults[kind] == 0 {
			t.Errorf("no %s was injected; the suite proves nothing about it", kind)
		}
	}
	if v := proxy.RetryAfterViolations(); len(v) > 0 {
		t.Errorf("Retry-After not honoured: %v", v)
	}
	if rep.Validation == nil || !rep.Validation.OK() {
		t.Errorf("validation: %+v", rep.Validation)
	}
	// Identical content: every tag resolves, straight at the registry, to
	// the digest of the bill of materials, and every blob is there.
	b.checkAllIn(t)
	if miss := missingBytes(t, b.reg, b.fx, ingestBase); miss != 0 {
		t.Errorf("%d bytes of the archive missing from the registry", miss)
	}
}

func TestIngestRefusesTamperedLayer(t *testing.T) {
	b := newIngestBed(t, 400<<10, 300<<10)
	// The layer both clearml images share: both must be refused.
	var shared string
	for _, x := range b.fx.artifacts[0].blobs {
		for _, y := range b.fx.artifacts[1].blobs {
			if x.digest() == y.digest() && !strings.Contains(x.mediaType, "json") {
				shared = x.digest()
			}
		}
	}
	bad, n := tamperBlob(t, b.fx, shared)
	vols := append([]string(nil), b.fx.volumes...)
	vols[n-1] = bad
	refused := []string{b.fx.artifacts[0].name, b.fx.artifacts[1].name}
	tags := func() (in []string) {
		for _, a := range b.fx.artifacts {
			if destDigest(t, b.reg, ingestBase+"/"+a.dest.Repository+":"+a.dest.Tag) != "" {
				in = append(in, a.name)
			}
		}
		return in
	}

	// All or nothing: nothing goes in.
	wantFail(t, ExitVerify, append([]string{shared, "atomic: nothing is pushed because"}, refused...), b.args(append([]string{"--atomic"}, vols...)...)...)
	if in := tags(); len(in) > 0 {
		t.Fatalf("--atomic: %v went in", in)
	}

	// Without --atomic the others go in, and nothing of the two reaches a
	// manifest in the registry.
	r := wantFail(t, ExitPartial, append([]string{shared, "failed verification", filepath.Base(bad)}, refused...), b.args(vols...)...)
	if !strings.Contains(r.stdout, "refused") {
		t.Errorf("the table does not show the refusal:\n%s", r.stdout)
	}
	if in := tags(); len(in) != len(b.fx.artifacts)-2 {
		t.Errorf("in the registry: %v; want all but the two refused", in)
	}
	for _, a := range b.fx.artifacts[:2] {
		for _, blob := range a.blobs {
			if manifest.IsManifest(blob.mediaType) && destDigest(t, b.reg, ingestBase+"/"+a.dest.Repository+"@"+blob.digest()) != "" {
				t.Errorf("%s: manifest %s reached the registry", a.name, blob.digest())
			}
		}
	}
	st := mustFerry(t, "ingest", "--status", "--journal", b.journal)
	if !strings.Contains(st.stdout, "refused") || !strings.Contains(st.stdout, shared) {
		t.Errorf("status does not name the refusal:\n%s", st.stdout)
	}
	// The good volume, given later, completes them.
	mustFerry(t, b.args(b.fx.volumes[n-1])...)
	b.checkAllIn(t)
}

func TestIngestErrorsAndExitCodes(t *testing.T) {
	b := newIngestBed(t, 4<<20, 100<<10)
	vols := b.fx.volumes
	password := b.reg.Password
	noSecret := func(t *testing.T, r result, secrets ...string) {
		for _, s := range secrets {
			if strings.Contains(r.stdout+r.stderr, s) {
				t.Errorf("output shows a password:\n%s%s", r.stdout, r.stderr)
			}
		}
	}
	t.Run("bad signature, before any request", func(t *testing.T) {
		other := filepath.Join(t.TempDir(), "other")
		mustFerry(t, "key", "generate", "--output", other)
		proxy := testbed.StartProxy(t, b.reg, testbed.ProxyOptions{})
		args := b.args(vols...)
		for i, a := range args {
			switch a {
			case b.fx.pub:
				args[i] = other + ".pub"
			case b.reg.Host + "/" + ingestBase:
				args[i] = proxy.Host + "/" + ingestBase
			}
		}
		wantFail(t, ExitVerify, []string{"signature"}, args...)
		if n := proxy.Requests(); n != 0 {
			t.Errorf("%d requests reached the registry before the signature was checked", n)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		t.Setenv(envRegistryPassword, "not-"+password)
		r := wantFail(t, ExitRegistry, []string{"401", "wrong username or password"}, b.args(vols...)...)
		noSecret(t, r, password, "not-"+password)
	})
	t.Run("password on stdin", func(t *testing.T) {
		t.Setenv(envRegistryPassword, "")
		r := ferry(t, password+"\n", b.args(append([]string{"--password-stdin"}, vols...)...)...)
		if r.code != 0 {
			t.Fatalf("exit %d\n%s", r.code, r.stderr)
		}
		noSecret(t, r, password)
		journal, _ := os.ReadFile(b.journal)
		if bytes.Contains(journal, []byte(password)) {
			t.Error("the journal holds the password")
		}
	})
	t.Run("no password", func(t *testing.T) {
		t.Setenv(envRegistryPassword, "")
		wantFail(t, ExitUsage, []string{"--password-stdin", envRegistryPassword}, b.args(vols...)...)
	})
	t.Run("unknown CA", func(t *testing.T) {
		args := b.args(vols...)
		for i := range args {
			if args[i] == "--ca-file" {
				args = append(args[:i:i], args[i+2:]...)
				break
			}
		}
		wantFail(t, ExitRegistry, []string{"certificate", "--ca-file"}, args...)
	})
	t.Run("journal held by another ingest", func(t *testing.T) {
		j, err := store.OpenJournal(b.journal, store.JournalOptions{Holder: store.Holder{Command: "ferry ingest (another one)"}})
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		host, _ := os.Hostname()
		wantFail(t, ExitTimeout, []string{"ferry ingest (another one)", fmt.Sprintf("pid %d", os.Getpid()), host, "waited 300ms"},
			b.args(append([]string{"--lock-timeout", "300ms"}, vols...)...)...)
	})
	t.Run("registry down", func(t *testing.T) {
		b.reg.Stop()
		start := time.Now()
		wantFail(t, ExitRegistry, []string{"unreachable", b.reg.Host}, b.args(append([]string{"--retries", "2"}, vols...)...)...)
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("took %s to report a registry that is down", d)
		}
	})
}

// buildFerry builds the ferry binary, for tests that need a process they
// can kill.
func buildFerry(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ferry")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func TestIngestKilledHalfWaySendsOnlyWhatIsMissing(t *testing.T) {
	bin := buildFerry(t)
	b := newIngestBed(t, 64<<20, 12<<20)
	var total int64
	for _, blob := range b.fx.blobs {
		total += int64(len(blob.data))
	}
	proxy := testbed.StartProxy(t, b.reg, testbed.ProxyOptions{BytesPerSecond: 8 << 20})
	b.host = proxy.Host
	// 4 MiB chunks: the 12 MiB layer goes in three, and a kill loses at
	// most the one on its way.
	args := b.args(append([]string{"--output", "json", "--chunk-size", "4"}, b.fx.volumes...)...)

	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), envRegistryPassword+"="+b.reg.Password)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for proxy.RequestBytes() < total/2 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the ingest sent only %d of %d bytes in 30s\n%s", proxy.RequestBytes(), total, stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	// What the kernel had buffered still trickles through the proxy to the
	// registry; the count of the next run starts once it has.
	for last := int64(-1); last != proxy.RequestBytes(); time.Sleep(300 * time.Millisecond) {
		last = proxy.RequestBytes()
	}
	sentBefore := proxy.RequestBytes()
	missing := missingBytes(t, b.reg, b.fx, ingestBase)
	t.Logf("killed after %d of %d bytes; the registry lacks %d", sentBefore, total, missing)
	if missing == 0 || missing == total {
		t.Fatalf("killed at a point that tests nothing: %d of %d bytes missing", missing, total)
	}

	proxy.ResetCounters()
	rerun := exec.Command(bin, args...)
	rerun.Env = cmd.Env
	out, err := rerun.Output()
	if err != nil {
		t.Fatalf("second run: %v\n%s", err, out)
	}
	var rep ingest.Report
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatal(err)
	}
	resent := proxy.RequestBytes()
	t.Logf("second run sent %d bytes for %d missing (%.1f%%); blobs %+v", resent, missing, 100*float64(resent)/float64(missing), rep.Blobs)
	if resent > missing+missing/10 {
		t.Errorf("second run sent %d bytes, more than what was missing (%d) plus 10%%", resent, missing)
	}
	if rep.Blobs.Resumed == 0 {
		t.Errorf("no upload was resumed: the 12 MiB layer was cut by the kill and should continue where the registry stopped")
	}
	b.checkAllIn(t)
}

// A destination the registry could not take is refused before anything is
// sent, dry run or not, with the usage code and the flag named.
func TestBadDestinationIsAUsageError(t *testing.T) {
	for _, dest := range []string{"https://h:5000/x", "127.0.0.1:notaport/x", "h/UPPER", "h/a/../b", "h/a//b", "h:70000/x"} {
		for _, cmd := range [][]string{
			{"ingest", "--dry-run", "--registry", dest, "--key", "k.pub", "v.tar.zst"},
			{"ingest", "--registry", dest, "--key", "k.pub", "v.tar.zst"},
			{"sync", "--dest-registry", dest, "--image", "example.com/a:1"},
		} {
			r := ferry(t, "", cmd...)
			flag := "--registry"
			if cmd[0] == "sync" {
				flag = "--dest-registry"
			}
			if r.code != ExitUsage || !strings.Contains(r.stderr, flag) || !strings.Contains(r.stderr, "invalid registry destination") {
				t.Errorf("%v: exit %d, stderr %q; want %d naming %s", cmd, r.code, r.stderr, ExitUsage, flag)
			}
		}
	}
}
