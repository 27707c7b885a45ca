//go:build demo

package demo

import (
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrytool/ferry/internal/testbed"
)

// demo runs the real ferry binary in one folder, printing each command the
// way an operator types it and what it prints.
type demo struct {
	t     *testing.T
	ferry string
	dir   string
	env   []string
	// globs shortens what the demo shows: a run of volume paths is
	// printed as the shell glob an operator would type.
	globs map[string]string
}

func newDemo(t *testing.T) *demo {
	ferry, err := filepath.Abs("../../bin/ferry")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(ferry); err != nil {
		t.Fatalf("%s is missing: run `make build` (make demo does)", ferry)
	}
	d := &demo{t: t, ferry: ferry, dir: t.TempDir(), globs: map[string]string{}}
	// ferry falls back to the user's cache, state and kube folders; point
	// them into the demo folder so nothing outlives the demo.
	home := filepath.Join(d.dir, ".home")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KUBECONFIG=") && !strings.HasPrefix(kv, "FERRY_") {
			d.env = append(d.env, kv)
		}
	}
	d.env = append(d.env, "HOME="+home, "XDG_CACHE_HOME="+filepath.Join(home, "cache"), "XDG_STATE_HOME="+filepath.Join(home, "state"))
	return d
}

func (d *demo) say(format string, args ...any) {
	fmt.Printf("\n## "+format+"\n", args...)
}

// run runs ferry with args and returns what it printed on stdout.
func (d *demo) run(args ...string) string {
	d.t.Helper()
	return d.runStdin("", args...)
}

// runStdin runs ferry with standard input read from the file stdin (shown
// as a redirection), or none when stdin is empty.
func (d *demo) runStdin(stdin string, args ...string) string {
	d.t.Helper()
	shown := "ferry " + strings.Join(args, " ")
	for list, glob := range d.globs {
		shown = strings.ReplaceAll(shown, list, glob)
	}
	cmd := exec.Command(d.ferry, args...)
	cmd.Dir, cmd.Env = d.dir, d.env
	if stdin != "" {
		shown += " < " + stdin
		f, err := os.Open(filepath.Join(d.dir, stdin))
		if err != nil {
			d.t.Fatal(err)
		}
		defer f.Close()
		cmd.Stdin = f
	}
	fmt.Printf("\n$ %s\n", shown)
	cmd.Stderr = os.Stdout
	out, err := cmd.Output()
	fmt.Print(string(out))
	if err != nil {
		d.t.Fatalf("%s: %v", shown, err)
	}
	return string(out)
}

// expect fails the demo when out lacks one of the strings, compared with
// runs of spaces collapsed because tables are padded.
func (d *demo) expect(what, out string, wants ...string) {
	d.t.Helper()
	flat := strings.Join(strings.Fields(out), " ")
	for _, w := range wants {
		if !strings.Contains(flat, strings.Join(strings.Fields(w), " ")) {
			d.t.Errorf("%s: output lacks %q", what, w)
		}
	}
}

// volumes lists an archive's volume files relative to the demo folder, in
// the order the shell expands prefix.tar.zst.*.
func (d *demo) volumes(prefix string) []string {
	abs, _ := filepath.Glob(filepath.Join(d.dir, prefix+".tar.zst*"))
	var rel []string
	for _, a := range abs {
		r, _ := filepath.Rel(d.dir, a)
		rel = append(rel, r)
	}
	if len(rel) > 1 {
		d.globs[strings.Join(rel, " ")] = prefix + ".tar.zst.*"
	}
	return rel
}

func TestDemo(t *testing.T) {
	d := newDemo(t)
	volumes := connectedSide(d)
	registry, ca := ingestSide(d, volumes)
	clusterSide(d, registry, ca)
	fmt.Println("\ndemo complete; the stand-ins stop and their files are removed now")
}

// connectedSide collects everything into signed volumes and returns their
// paths.
func connectedSide(d *demo) []string {
	t := d.t
	d.say("Connected side: a source registry with generated images")
	src := testbed.StartSourceRegistry(t)
	shared := testbed.RandomLayer(t, 2<<20)
	testbed.PushRandomImage(t, src, "apps/web:1.0", 2, 1<<20, shared)
	testbed.PushRandomImage(t, src, "apps/worker:1.0", 1, 1<<20, shared)
	testbed.PushIndex(t, src, "base/multi:3.0", "linux/amd64", "linux/arm64")
	testbed.PushRandomImage(t, src, "apps/model:2.0", 1, 5<<20)
	small := testbed.RandomLayer(t, 128<<10)
	for _, im := range append(append([]string{}, chartImages...), packImages...) {
		if im != "base/multi:3.0" {
			testbed.PushRandomImage(t, src, im, 1, 64<<10, small)
		}
	}
	images := []string{src.Host + "/apps/web:1.0", src.Host + "/apps/worker:1.0", src.Host + "/base/multi:3.0", src.Host + "/apps/model:2.0"}
	fmt.Printf("source registry at %s with %s,\n  the chart's images %s\n  and the pack's images %s\n",
		src.Host, strings.Join(images, ", "), strings.Join(chartImages, ", "), strings.Join(packImages, ", "))

	d.say("Content to carry: a Profile Bundle, two packs and a Helm chart")
	chartRepo := startChartRepo(t, "clearml", "7.14.7", clearmlChart(t, src.Host))
	vendor, _ := newVendorKey(t, filepath.Join(d.dir, "vendor"))
	content := filepath.Join(d.dir, "content")
	vendor.writePack(t, content, "edge-k8s", "1.33.5")
	writeFile(t, content, "metallb-0.15.2.tar.gz", metallbPack(t, src.Host))
	writeFile(t, content, "clearml-bundle-v1.tar.gz", clearmlBundle(t))
	fmt.Printf("chart repository %s serves clearml 7.14.7 (index.yaml and clearml-7.14.7.tgz)\n", chartRepo)
	fmt.Println("content/clearml-bundle-v1.tar.gz  Profile Bundle: ClusterProfile edge-infra needs edge-k8s 1.33.5 and metallb 0.15.2,")
	fmt.Println("                                  WorkloadProfile clearml deploys chart clearml 7.14.7")
	fmt.Println("content/edge-k8s-1.33.5.zst       Artifact Studio pack, signed: edge-k8s-1.33.5.sig.bin")
	fmt.Println("vendor/spectro_public_key.pem     the pack vendor's public key (RSA)")
	fmt.Println("content/metallb-0.15.2.tar.gz     pack tarball; its values.yaml lists two images")

	d.say("Generate the signing key pair")
	d.run("key", "generate", "--output", "ferry")

	d.say("Plan one chart with the PaletteAI CLI's flags: the images it renders")
	out := d.run("collect", "--plan", "--quiet", "--cache-dir", "cache", "--plain-http",
		"--chart-url", "clearml/clearml", "--chart-version", "7.14.7", "--release-name", "clearml", "--repo-url", chartRepo)
	d.expect("chart plan", out, "charts/clearml/clearml:7.14.7", "images/clearml/migrate:1.0")

	d.say("The transfer spec: the bundle, its packs, the chart's real home, and four images")
	spec := transferSpec(chartRepo, images)
	writeFile(t, d.dir, "transfer.yaml", []byte(spec))
	fmt.Print("$ cat transfer.yaml\n" + spec)

	d.say("Plan: what would be collected and why, without downloading layers")
	out = d.run("collect", "--plan", "--quiet", "--cache-dir", "cache", "--plain-http", "--spec", "transfer.yaml", "--volume-size", "3M")
	d.expect("spec plan", out, "bundles/clearml-bundle:v1", "spectro-packs/archive/edge-k8s:1.33.5",
		"spectro-packs/archive/metallb:0.15.2", "images/metallb/speaker:v0.15.2", "charts/clearml/clearml:7.14.7")

	d.say("Collect into 3 MiB volumes (small, to show a layer split across volumes)")
	// collect does not create the output folder; on a real run it is the
	// removable media's mount point.
	if err := os.MkdirAll(filepath.Join(d.dir, "media"), 0o755); err != nil {
		t.Fatal(err)
	}
	fmt.Println("\n$ mkdir media   # stands in for the removable media's mount point")
	d.run("collect", "--plain-http", "--spec", "transfer.yaml", "--key", "ferry.key", "--output", "media/palette", "--cache-dir", "cache", "--volume-size", "3M")
	volumes := d.volumes("media/palette")

	d.say("Air-gapped side: verify the signature, every volume and every digest")
	d.run(append([]string{"verify", "--key", "ferry.pub"}, volumes...)...)

	d.say("Inspect from the index alone")
	d.run(append([]string{"inspect", "--key", "ferry.pub"}, volumes...)...)

	d.say("Collect again: the cache makes it download nothing")
	out = d.run("collect", "--plain-http", "--quiet", "--spec", "transfer.yaml", "--key", "ferry.key", "--output", "media/again", "--cache-dir", "cache", "--volume-size", "3M")
	d.expect("second collect", out, "downloaded 0 B")
	return volumes
}

// ingestSide pushes the volumes into a TLS and basic-auth registry and
// returns its HOST:PORT/BASE and the CA that signed its certificate.
func ingestSide(d *demo, volumes []string) (string, *testbed.CA) {
	t := d.t
	d.say("Air-gapped side: a registry standing in for Zot (TLS with a private CA, basic auth, Zot's media type rules)")
	password := rand.Text()
	backend := testbed.StartRegistry(t, testbed.RegistryOptions{TLS: true, Username: "admin", Password: password})
	zot := testbed.StartZotRules(t, backend)
	backend.CA.WriteCert(t, d.dir)
	writeFile(t, d.dir, "zot-password", []byte(password+"\n"))
	registry := zot.Host + "/spectro-content"
	fmt.Printf("registry %s, CA certificate ca.crt, user admin, password in zot-password\n", registry)

	login := []string{"--registry", registry, "--ca-file", "ca.crt", "--username", "admin", "--password-stdin"}
	journal := []string{"--journal", "state/ingest-journal.db"}
	push := append(append(append([]string{"ingest"}, login...), journal...), "--key", "ferry.pub", "--pack-key", "vendor/spectro_public_key.pem")

	d.say("Ingest straight from the volumes: signature first, then every blob verified as it is pushed")
	d.runStdin("zot-password", append(push, volumes...)...)

	d.say("Validate: the catalog lists every destination and every tag resolves to its digest")
	d.runStdin("zot-password", append(append(append(append([]string{"ingest", "--validate-only"}, login...), journal...), "--key", "ferry.pub"), volumes...)...)

	d.say("Status, from the journal alone")
	d.run(append([]string{"ingest", "--status", "--registry", registry}, journal...)...)

	d.say("Ingest again: everything is present, nothing is sent")
	out := d.runStdin("zot-password", append(push, volumes...)...)
	d.expect("second ingest", out, "0 uploaded", "0 B sent", "0 manifests pushed")
	return registry, backend.CA
}

// clusterSide runs the hub and spoke steps of the air-gap guide against
// the registry whose certificate ca signed.
func clusterSide(d *demo, registry string, ca *testbed.CA) {
	t := d.t
	d.say("Hub and spoke: two API servers, with what PaletteAI would have created")
	hub := testbed.StartAPIServer(t, testbed.APIServerOptions{})
	spoke := testbed.StartAPIServer(t, testbed.APIServerOptions{CRDDirs: []string{}})
	seedHub(t, hub, "data-science")
	seedSpoke(t, spoke, ca)
	hubKC, spokeKC := kubeconfig(t, hub, d.dir, "hub"), kubeconfig(t, spoke, d.dir, "spoke")
	fmt.Println("hub:   Project data-science/data-science allows namespace default only (disallow: [\"*\"]);")
	fmt.Println("       VariableSet data-science/mural-variables holds gpu-class = a100")
	fmt.Println("spoke: Secret mural-system/oci-tls-hub holds the registry CA")
	fmt.Printf("kubeconfigs: %s, %s\n", hubKC, spokeKC)

	args := []string{"cluster", "apply", "--hub-kubeconfig", hubKC, "--spoke-kubeconfig", spokeKC,
		"--project-namespace", "data-science", "--workload-namespace", "clearml",
		"--registry", registry, "--bundle", "content/clearml-bundle-v1.tar.gz"}

	d.say("Cluster steps, dry run: every change as a diff")
	out := d.run(append(args, "--dry-run")...)
	d.expect("dry run", out, "dry run: nothing was changed")

	d.say("Cluster steps: import the bundle, allow the namespace, set the Zot variables, copy the CA to the spoke")
	out = d.run(args...)
	d.expect("apply", out, "bundle-import (hub): changed", "project-admission (hub): changed", "mural-variables (hub): changed", "spoke-zot-ca (spoke): changed")

	d.say("Cluster steps again: every step unchanged")
	out = d.run(args...)
	d.expect("second apply", out, "nothing to change")

	d.say("Check the end state")
	vargs := append([]string{"cluster", "validate"}, args[2:]...)
	d.run(vargs...)
}
