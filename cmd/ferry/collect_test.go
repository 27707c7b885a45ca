package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
	"sigs.k8s.io/yaml"

	"github.com/ferrytool/ferry/internal/testbed"
	"github.com/ferrytool/ferry/manifest"
)

func yamlUnmarshal(data []byte, v any) error { return yaml.Unmarshal(data, v) }

// collectBed is everything the acceptance tests collect from: a source
// registry behind a counting proxy, a chart repository, a vendor key, the
// six packs the ClearML bundle needs, the bundle, and a spec naming them.
type collectBed struct {
	dir      string
	reg      *testbed.Registry
	proxy    *countingProxy
	repo     *chartRepo
	chartTgz []byte
	vendor   *vendorKey
	packs    map[string]string // name -> file
	bundle   string
	spec     string
	key, pub string
}

var zstPacks = [][2]string{
	{"edge-native-byoi", "2.1.0"}, {"edge-k8s", "1.33.5"}, {"cni-cilium", "1.17.4"},
	{"csi-local-path-provisioner", "0.0.32"}, {"registry-connect", "0.1.0"},
}

func newCollectBed(t *testing.T) *collectBed {
	t.Helper()
	b := &collectBed{dir: t.TempDir(), packs: map[string]string{}}
	b.reg = testbed.StartSourceRegistry(t)
	b.proxy = startCountingProxy(t, b.reg)
	host := b.proxy.Host
	pushImages(t, b.reg, append(append(append([]string{}, chartImages...), packImagesWanted...), "apps/standalone:1.0")...)
	b.chartTgz = tgz(t, clearmlChart(host))
	b.repo = startChartRepo(t, b.chartTgz)

	packDir := filepath.Join(b.dir, "packs")
	os.MkdirAll(packDir, 0o755)
	b.vendor = newVendorKey(t, b.dir, "rsa")
	for _, p := range zstPacks {
		b.packs[p[0]] = b.vendor.writePack(t, packDir, p[0], p[1])
	}
	reg := host
	metallb := tgz(t, map[string]string{
		"metallb/pack.json": `{"name": "metallb", "version": "0.15.2", "layer": "addon", "charts": ["charts/metallb-0.15.2.tgz"]}`,
		"metallb/values.yaml": "pack:\n  namespace: metallb-system\n  content:\n    images:\n" +
			"      - image: " + reg + "/metallb/controller:v0.15.2\n      - image: " + reg + "/metallb/speaker:v0.15.2\n" +
			"charts:\n  metallb:\n    frr:\n      enabled: true\n",
		"metallb/charts/metallb-0.15.2.tgz": string(tgz(t, metallbChart(reg))),
	})
	b.packs["metallb"] = filepath.Join(packDir, "metallb-0.15.2.tar.gz")
	os.WriteFile(b.packs["metallb"], metallb, 0o644)
	b.bundle = bundleTarball(t, "clearml-bundle-v1", b.dir, host)

	var spec strings.Builder
	fmt.Fprintf(&spec, "apiVersion: ferry.dev/v1alpha1\nkind: TransferSpec\nmetadata: {name: clearml}\npackKey: %s\n", filepath.Base(b.vendor.pub))
	fmt.Fprintf(&spec, "upstreamRepositories:\n  clearml: %s\nbundles:\n  - file: clearml-bundle-v1.tar.gz\npacks:\n", b.repo.URL)
	for _, p := range zstPacks {
		fmt.Fprintf(&spec, "  - file: packs/%s-%s.zst\n", p[0], p[1])
	}
	fmt.Fprintf(&spec, "  - file: packs/metallb-0.15.2.tar.gz\nimages:\n  - %s/apps/standalone:1.0\n", host)
	b.spec = filepath.Join(b.dir, "transfer.yaml")
	os.WriteFile(b.spec, []byte(spec.String()), 0o644)

	mustFerry(t, "key", "generate", "--output", filepath.Join(b.dir, "ferry"))
	b.key, b.pub = filepath.Join(b.dir, "ferry.key"), filepath.Join(b.dir, "ferry.pub")
	return b
}

// args are the common flags of a collect into out/NAME with the bed's cache.
func (b *collectBed) args(name string, more ...string) []string {
	out := filepath.Join(b.dir, "out")
	os.MkdirAll(out, 0o755)
	return append([]string{"collect", "--quiet", "--plain-http", "--key", b.key, "--output", filepath.Join(out, name),
		"--cache-dir", filepath.Join(b.dir, "cache")}, more...)
}

func (b *collectBed) ref(path string) string { return b.proxy.Host + "/" + path }

type inspected struct {
	Artifacts []struct {
		manifest.Artifact
	} `json:"artifacts"`
}

func inspectJSON(t *testing.T, pub string, volumes ...string) inspected {
	t.Helper()
	r := mustFerry(t, append([]string{"inspect", "--key", pub, "--output", "json"}, volumes...)...)
	var in inspected
	if err := json.Unmarshal([]byte(r.stdout), &in); err != nil {
		t.Fatalf("inspect json: %v\n%s", err, r.stdout)
	}
	return in
}

// helmTemplateImages renders the chart the way `helm template` does, with
// Helm's own install action, and picks the images out of the text: the
// independent reckoning collect's discovery is checked against.
func helmTemplateImages(t *testing.T, chartTgz []byte, release, namespace string) []string {
	t.Helper()
	ch, err := loader.LoadArchive(bytes.NewReader(chartTgz))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &action.Configuration{Releases: storage.Init(driver.NewMemory()), Log: func(string, ...any) {}}
	inst := action.NewInstall(cfg)
	inst.DryRun, inst.ClientOnly, inst.ReleaseName, inst.Namespace = true, true, release, namespace
	inst.KubeVersion = &chartutil.KubeVersion{Version: "v1.33.0", Major: "1", Minor: "33"}
	rel, err := inst.Run(ch, map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	text := rel.Manifest
	for _, h := range rel.Hooks {
		text += "\n---\n" + h.Manifest
	}
	set := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s*(?:-\s+)?image:\s*"?([^"\s]+)"?\s*$`).FindAllStringSubmatch(text, -1) {
		set[m[1]] = true
	}
	for _, m := range regexp.MustCompile(`image:\s*(\S+/apps/extra:\S+)`).FindAllStringSubmatch(ch.Metadata.Annotations["artifacthub.io/images"], -1) {
		set[m[1]] = true
	}
	return sortedKeys(set)
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestCollectBundleSpec(t *testing.T) {
	b := newCollectBed(t)
	r := mustFerry(t, b.args("clearml", "--spec", b.spec)...)
	t.Logf("collect:\n%s\n%s", r.stdout, r.stderr)
	if strings.Contains(r.stdout, "MISSING") || !strings.Contains(r.stdout, "csi-local-path-provisioner") {
		t.Errorf("collect output lacks the pack report:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "edge-native-byoi") || !strings.Contains(r.stderr, "macro") {
		t.Errorf("the Palette macro in edge-native-byoi's values is not reported:\n%s", r.stderr)
	}
	vols, _ := filepath.Glob(filepath.Join(b.dir, "out", "clearml.tar.zst*"))
	if len(vols) != 1 {
		t.Fatalf("volumes: %v", vols)
	}
	mustFerry(t, "verify", "--quiet", "--key", b.pub, vols[0])
	in := inspectJSON(t, b.pub, vols...)

	// Images: what Helm renders, plus the pack's, plus the spec's one.
	want := map[string]bool{b.ref("apps/standalone:1.0"): true}
	for _, im := range helmTemplateImages(t, b.chartTgz, "clearml", "default") {
		want[im] = true
	}
	for _, im := range packImagesWanted {
		want[b.ref(im)] = true
	}
	got := map[string]bool{}
	kinds := map[manifest.ArtifactKind][]string{}
	for _, a := range in.Artifacts {
		kinds[a.Kind] = append(kinds[a.Kind], a.Name)
		if len(a.Reasons) == 0 {
			t.Errorf("%s has no reason", a.Name)
		}
		if a.Kind == manifest.KindImage {
			got[a.Name] = true
		}
	}
	if g, w := sortedKeys(got), sortedKeys(want); strings.Join(g, "\n") != strings.Join(w, "\n") {
		t.Errorf("images:\n got %v\nwant %v", g, w)
	}
	if len(want) != len(chartImages)+len(packImagesWanted)+1 {
		t.Errorf("Helm rendered %d images, the chart has %d: %v", len(want)-len(packImagesWanted)-1, len(chartImages), sortedKeys(want))
	}
	if len(kinds[manifest.KindPack]) != 6 || len(kinds[manifest.KindChart]) != 1 || len(kinds[manifest.KindBundle]) != 1 {
		t.Errorf("artifacts by kind: %v", kinds)
	}
	for _, a := range in.Artifacts {
		switch {
		case a.Kind == manifest.KindChart:
			if a.Dest.String() != "charts/clearml/clearml:7.14.7" {
				t.Errorf("chart destination %s", a.Dest)
			}
		case a.Kind == manifest.KindBundle:
			if a.Dest.String() != "bundles/clearml-bundle:v1" {
				t.Errorf("bundle destination %s", a.Dest)
			}
		case a.Kind == manifest.KindPack && a.Name == "spectro-packs/archive/edge-k8s:1.33.5":
			if a.Annotations[manifest.AnnotationPackSignature] == "" || a.Annotations[manifest.AnnotationPackFormat] != "zst" {
				t.Errorf("pack annotations %v", a.Annotations)
			}
			if !hasReason(a.Reasons, "bundle", "ClusterProfile edge-infra") {
				t.Errorf("edge-k8s reasons %v", a.Reasons)
			}
		case a.Name == b.ref("tools/migrate:2.0"):
			if !hasReason(a.Reasons, "chart", "clearml/templates/hook-job.yaml Job/clearml-clearml-migrate spec.template.spec.containers[0].image") {
				t.Errorf("hook image reasons %v", a.Reasons)
			}
		case a.Name == b.ref("debug/shell:1.0"):
			if !hasReason(a.Reasons, "chart", "spec.ephemeralContainers[0].image") {
				t.Errorf("ephemeral container reasons %v", a.Reasons)
			}
		case a.Name == b.ref("metallb/controller:v0.15.2"):
			if !hasReason(a.Reasons, "pack", "values.yaml pack.content.images[0].image") || !hasReason(a.Reasons, "bundle", "ClusterProfile edge-addons") {
				t.Errorf("pack image reasons %v", a.Reasons)
			}
		}
	}

	// A second collect on a warm cache downloads no layer.
	b.proxy.reset()
	r = mustFerry(t, b.args("again", "--spec", b.spec)...)
	if n := b.proxy.blobGets.Load(); n != 0 {
		t.Errorf("warm collect sent %d blob requests", n)
	}
	if n := b.proxy.manifests.Load(); n != 0 {
		t.Errorf("warm collect fetched %d manifests (tags should resolve with HEAD, manifests come from the cache)", n)
	}
	if !strings.Contains(r.stdout, "downloaded 0 B") {
		t.Errorf("warm collect output:\n%s", r.stdout)
	}
}

func hasReason(rs []manifest.Reason, from, detail string) bool {
	for _, r := range rs {
		if r.From == from && strings.Contains(r.Detail, detail) {
			return true
		}
	}
	return false
}

func TestCollectPlanListsReasonsWithoutDownloading(t *testing.T) {
	b := newCollectBed(t)
	os.Remove(b.packs["cni-cilium"])
	spec, _ := os.ReadFile(b.spec)
	os.WriteFile(b.spec, bytes.Replace(spec, []byte("  - file: packs/cni-cilium-1.17.4.zst\n"), nil, 1), 0o644)
	r := mustFerry(t, "collect", "--plan", "--quiet", "--plain-http", "--cache-dir", filepath.Join(b.dir, "cache"), "--spec", b.spec, "--allow-missing-packs")
	if !regexp.MustCompile(`cni-cilium +1\.17\.4 .* MISSING`).MatchString(r.stdout) {
		t.Errorf("plan does not report cni-cilium missing:\n%s", r.stdout)
	}
	for _, s := range []string{"chart: clearml 7.14.7: clearml/charts/cache/templates/statefulset.yaml",
		"bundle: bundle clearml-bundle v1: WorkloadProfile clearml", "charts/clearml/clearml:7.14.7",
		"spectro-packs/archive/metallb:0.15.2", "deduplication saves", "), 1 volume(s)",
	} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("plan lacks %q:\n%s", s, r.stdout)
		}
	}
	if n := b.proxy.blobGets.Load(); n != 0 {
		t.Errorf("--plan sent %d blob requests", n)
	}
	if !strings.Contains(r.stderr, "cni-cilium 1.17.4") {
		t.Errorf("the missing pack is not warned about:\n%s", r.stderr)
	}
}

// noArchive fails when anything that looks like an archive was left.
func noArchive(t *testing.T, dir string) {
	t.Helper()
	left, _ := filepath.Glob(filepath.Join(dir, "*.tar.zst*"))
	if len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

func TestCollectFailures(t *testing.T) {
	b := newCollectBed(t)
	out := filepath.Join(b.dir, "out")
	t.Run("missing pack", func(t *testing.T) {
		spec, _ := os.ReadFile(b.spec)
		p := filepath.Join(b.dir, "missing.yaml")
		os.WriteFile(p, bytes.Replace(spec, []byte("  - file: packs/cni-cilium-1.17.4.zst\n"), nil, 1), 0o644)
		wantFail(t, ExitIncomplete, []string{"cni-cilium 1.17.4", "ClusterProfile edge-infra",
			"allowMissingPacks in the spec; on the command line: --pack FILE, or --allow-missing-packs"}, b.args("x", "--spec", p)...)
		noArchive(t, out)
	})
	// The library says which spec field fixes it; the command line adds
	// its flag.
	t.Run("bundle chart without an upstream repository", func(t *testing.T) {
		spec, _ := os.ReadFile(b.spec)
		p := filepath.Join(b.dir, "no-upstream.yaml")
		os.WriteFile(p, bytes.Replace(spec, []byte("  clearml: "+b.repo.URL+"\n"), []byte("  other: "+b.repo.URL+"\n"), 1), 0o644)
		wantFail(t, ExitUsage, []string{"chart clearml", "{{ internal-zot-url }}", "cannot be reached",
			"upstreamRepositories; on the command line: --upstream-repo clearml=URL"}, b.args("x", "--spec", p)...)
		noArchive(t, out)
	})
	t.Run("pack without a vendor key", func(t *testing.T) {
		spec, _ := os.ReadFile(b.spec)
		p := filepath.Join(b.dir, "no-key.yaml")
		os.WriteFile(p, bytes.Replace(spec, []byte("packKey: "+filepath.Base(b.vendor.pub)+"\n"), nil, 1), 0o644)
		wantFail(t, ExitUsage, []string{"no vendor public key", "packKey in the spec; on the command line: --pack-key FILE"}, b.args("x", "--spec", p)...)
		noArchive(t, out)
	})
	t.Run("bad pack signature", func(t *testing.T) {
		bad := filepath.Join(b.dir, "packs", "edge-k8s-1.33.5.zst")
		data, _ := os.ReadFile(bad)
		data[100] ^= 1
		os.WriteFile(bad, data, 0o644)
		defer func() { data[100] ^= 1; os.WriteFile(bad, data, 0o644) }()
		b.proxy.reset()
		wantFail(t, ExitVerify, []string{bad, "edge-k8s-1.33.5.sig.bin", "signature"}, b.args("x", "--spec", b.spec)...)
		noArchive(t, out)
		if n := b.proxy.all.Load(); n != 0 {
			t.Errorf("%d registry requests before the pack signature was checked", n)
		}
	})
	t.Run("unreachable repository", func(t *testing.T) {
		wantFail(t, ExitRegistry, []string{"http://127.0.0.1:1", "unreachable"}, b.args("x", "--spec", b.spec, "--upstream-repo", "clearml=http://127.0.0.1:1/charts")...)
		noArchive(t, out)
	})
	t.Run("chart version that does not exist", func(t *testing.T) {
		wantFail(t, ExitIncomplete, []string{"clearml", "9.9.9", b.repo.URL, "available: 7.14.7"},
			b.args("x", "--chart-url", "clearml/clearml", "--chart-version", "9.9.9", "--release-name", "clearml", "--repo-url", b.repo.URL)...)
		noArchive(t, out)
	})
	t.Run("image that does not exist", func(t *testing.T) {
		wantFail(t, ExitIncomplete, []string{b.ref("apps/nope:1.0"), "not found"}, b.args("x", "--spec", b.spec, "--image", b.ref("apps/nope:1.0"))...)
		noArchive(t, out)
	})
	t.Run("output folder missing", func(t *testing.T) {
		b.proxy.reset()
		missing := filepath.Join(b.dir, "unmounted")
		wantFail(t, ExitUsage, []string{missing, "does not exist"}, b.args("x", "--spec", b.spec, "--output", filepath.Join(missing, "palette"))...)
		if _, err := os.Stat(missing); err == nil {
			t.Errorf("%s was created", missing)
		}
		if n := b.proxy.all.Load(); n != 0 {
			t.Errorf("%d registry requests before the output folder was checked", n)
		}
	})
	t.Run("registry unreachable", func(t *testing.T) {
		args := b.args("x", "--image", b.ref("apps/web:1.0"), "--cache-dir", filepath.Join(b.dir, "cold"))
		reg := b.reg
		reg.Stop()
		wantFail(t, ExitRegistry, []string{b.ref("apps/web:1.0")}, args...)
		noArchive(t, out)
	})
}

func TestCollectPaletteAIChartFlags(t *testing.T) {
	b := newCollectBed(t)
	r := mustFerry(t, b.args("clearml", "--chart-url", "clearml/clearml", "--chart-version", "7.14.7", "--release-name", "clearml",
		"--repo-url", b.repo.URL, "--namespace", "clearml")...)
	if !strings.Contains(r.stdout, "collected 10 artifacts") {
		t.Errorf("want the chart and its 9 images:\n%s", r.stdout)
	}
	vols, _ := filepath.Glob(filepath.Join(b.dir, "out", "clearml.tar.zst*"))
	mustFerry(t, "verify", "--quiet", "--key", b.pub, vols[0])
	in := inspectJSON(t, b.pub, vols...)
	for _, a := range in.Artifacts {
		if a.Kind == manifest.KindChart && !hasReason(a.Reasons, "flag", "chart clearml") {
			t.Errorf("chart reasons %v", a.Reasons)
		}
	}
}

func TestCollectOCIChartAndPlatformSubset(t *testing.T) {
	b := newCollectBed(t)
	pushOCIChart(t, b.reg, "charts/clearml:7.14.7", b.chartTgz)
	r := mustFerry(t, b.args("oci", "--chart-url", "oci://"+b.ref("charts/clearml"), "--chart-version", "7.14.x", "--platform", "linux/arm64")...)
	vols, _ := filepath.Glob(filepath.Join(b.dir, "out", "oci.tar.zst*"))
	mustFerry(t, "verify", "--quiet", "--key", b.pub, vols[0])
	in := inspectJSON(t, b.pub, vols...)
	var chartOK, multiOK bool
	for _, a := range in.Artifacts {
		if a.Kind == manifest.KindChart {
			chartOK = a.Dest.String() == "charts/clearml/clearml:7.14.7" && a.Source == "oci://"+b.ref("charts/clearml:7.14.7")
		}
		if a.Name == b.ref("base/multi:3.0") {
			src, err := remote.Get(b.reg.Ref(t, "base/multi:3.0"), b.reg.Options()...)
			if err != nil {
				t.Fatal(err)
			}
			multiOK = a.Annotations[manifest.AnnotationPlatforms] == "linux/arm64" && a.Annotations[manifest.AnnotationSourceDigest] == src.Digest.String() && a.Digest != src.Digest.String()
			// One child manifest, its config and two layers, and the index.
			if len(a.Blobs) != 5 {
				t.Errorf("subset index closure has %d blobs, want 5", len(a.Blobs))
			}
		}
	}
	if !chartOK || !multiOK {
		t.Errorf("chart from OCI %v, platform subset %v:\n%s", chartOK, multiOK, r.stdout)
	}
	wantFail(t, ExitIncomplete, []string{"s390x", "linux/amd64"}, b.args("s390", "--image", b.ref("base/multi:3.0"), "--platform", "linux/s390x")...)
}

func TestCollectECDSAPackKey(t *testing.T) {
	dir := t.TempDir()
	ec := newVendorKey(t, dir, "ecdsa")
	rsaKey := newVendorKey(t, dir, "rsa")
	zst := ec.writePack(t, dir, "edge-k8s", "1.33.5")
	r := mustFerry(t, "collect", "--plan", "--quiet", "--cache-dir", filepath.Join(dir, "cache"), "--pack", zst, "--pack-key", ec.pub)
	if !strings.Contains(r.stdout, "spectro-packs/archive/edge-k8s:1.33.5") {
		t.Errorf("plan:\n%s", r.stdout)
	}
	wantFail(t, ExitVerify, []string{zst, "signature"}, "collect", "--plan", "--quiet", "--cache-dir", filepath.Join(dir, "cache"), "--pack", zst, "--pack-key", rsaKey.pub)
	wantFail(t, ExitUsage, []string{zst, "--pack-key"}, "collect", "--plan", "--quiet", "--cache-dir", filepath.Join(dir, "cache"), "--pack", zst)
}

func TestCollectDockerConfigCredentials(t *testing.T) {
	reg := testbed.StartRegistry(t, testbed.RegistryOptions{Username: "ferry", Password: "s3cret"})
	testbed.PushRandomImage(t, reg, "private/app:1.0", 1, 8<<10)
	dir := t.TempDir()
	args := []string{"collect", "--plan", "--quiet", "--plain-http", "--cache-dir", filepath.Join(dir, "cache"), "--image", reg.Host + "/private/app:1.0"}
	t.Setenv("DOCKER_CONFIG", dir)
	wantFail(t, ExitRegistry, []string{"private/app", "denied"}, args...)
	cfg := fmt.Sprintf(`{"auths": {%q: {"auth": %q}}}`, reg.Host, base64.StdEncoding.EncodeToString([]byte("ferry:s3cret")))
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600)
	mustFerry(t, args...)
}

func TestCollectUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"collect", "--plan"}, "nothing to collect"},
		{[]string{"collect", "--plan", "--chart-version", "1.0"}, "--chart-version needs --chart-url"},
		{[]string{"collect", "--plan", "--chart-url", "clearml/clearml"}, "--repo-url"},
		{[]string{"collect", "--plan", "--image", "x", "--platform", "linux"}, "platform"},
		{[]string{"collect", "--plan", "--image", "x", "--upstream-repo", "nourl"}, "CHART=URL"},
	} {
		wantFail(t, ExitUsage, []string{c.want}, c.args...)
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "spec.yaml")
	os.WriteFile(bad, []byte("apiVersion: ferry.dev/v1alpha1\nkind: TransferSpec\nimagez: [x]\n"), 0o644)
	wantFail(t, ExitUsage, []string{"imagez"}, "collect", "--plan", "--spec", bad)
}

// A warning found before collect fails is printed with the error: a mirror
// taken on trust is what an operator needs to know most when the run goes
// wrong. Here the mirrored image then conflicts with the same repository
// and tag from another source.
func TestCollectWarningsOnFailure(t *testing.T) {
	b := newConvertBed(t)
	mirror := testbed.StartSourceRegistry(t)
	testbed.PushRandomImage(t, mirror, "cache/"+ociImage, 1, 4<<10) // not the source's content
	gone := "127.0.0.1:1"
	out := filepath.Join(b.dir, "out", "warned")
	os.MkdirAll(filepath.Dir(out), 0o755)
	common := []string{"--quiet", "--plain-http", "--cache-dir", filepath.Join(b.dir, "cache-warned"),
		"--registry-mirror", gone + "=" + mirror.Host + "/cache", "--image", gone + "/" + ociImage, "--image", b.src.Host + "/" + ociImage}
	for _, args := range [][]string{
		append([]string{"collect", "--key", b.key, "--output", out}, common...),
		append([]string{"collect", "--plan"}, common...),
	} {
		wantFail(t, ExitUsage, []string{"warning:", "taken on trust", gone + "/" + ociImage, "both go to images/" + ociImage}, args...)
	}
}
