package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrytool/ferry/internal/testbed"
	"github.com/ferrytool/ferry/manifest"
)

// provBed is a chart signed with `helm package --sign` by a key generated
// for the test, its tampered twin, and a second key that signed neither.
type provBed struct {
	dir      string
	helm     *testbed.Helm
	signer   testbed.PGPKey
	stranger testbed.PGPKey
	// signed and tampered are <name>-<version>.tgz files; prov is the
	// provenance of signed.
	signed, tampered, prov string
	key, pub               string
}

const (
	provChart   = "signed"
	provVersion = "1.2.3"
)

func newProvBed(t *testing.T) *provBed {
	t.Helper()
	b := &provBed{dir: t.TempDir(), helm: testbed.NewHelm(t)}
	b.signer = testbed.NewPGPKey(t, b.dir, "Chart Signer", "signer")
	b.stranger = testbed.NewPGPKey(t, b.dir, "Someone Else", "stranger")
	chartFiles := func(greeting string) map[string]string {
		return map[string]string{
			"Chart.yaml":               "apiVersion: v2\nname: " + provChart + "\nversion: " + provVersion + "\ndescription: a signed chart\n",
			"values.yaml":              "greeting: " + greeting + "\n",
			"templates/configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-greeting\ndata:\n  greeting: {{ .Values.greeting | quote }}\n",
		}
	}
	pkg := func(name, greeting string, sign bool) string {
		src := filepath.Join(b.dir, "src-"+name, provChart)
		for f, content := range chartFiles(greeting) {
			os.MkdirAll(filepath.Dir(filepath.Join(src, f)), 0o755)
			if err := os.WriteFile(filepath.Join(src, f), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		dest := filepath.Join(b.dir, "pkg-"+name)
		args := []string{"package", src, "--destination", dest}
		if sign {
			args = append(args, "--sign", "--key", b.signer.Name, "--keyring", b.signer.SecretKeyring)
		}
		b.helm.Run(t, args...)
		return filepath.Join(dest, provChart+"-"+provVersion+".tgz")
	}
	b.signed = pkg("signed", "hello from the air gap", true)
	b.prov = b.signed + ".prov"
	// The same name and version with other content: what a compromised
	// repository would serve, its index.yaml digest updated to match.
	b.tampered = pkg("tampered", "hello from somebody else", false)
	mustFerry(t, "key", "generate", "--output", filepath.Join(b.dir, "ferry"))
	b.key, b.pub = filepath.Join(b.dir, "ferry.key"), filepath.Join(b.dir, "ferry.pub")
	return b
}

// repo serves a chart repository holding tgz and, when prov is not empty,
// its provenance file beside it.
func (b *provBed) repo(t *testing.T, tgz, prov string) *chartRepo {
	t.Helper()
	data, err := os.ReadFile(tgz)
	if err != nil {
		t.Fatal(err)
	}
	r := startChartRepo(t, data)
	if prov != "" {
		p, err := os.ReadFile(prov)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(r.dir, provChart+"-"+provVersion+".tgz.prov"), p, 0o644)
	}
	return r
}

func (b *provBed) planArgs(repoURL string, more ...string) []string {
	return append([]string{"collect", "--plan", "--quiet", "--plain-http", "--cache-dir", filepath.Join(b.dir, "cache"),
		"--chart-url", provChart, "--chart-version", provVersion, "--repo-url", repoURL}, more...)
}

// chartArtifact returns the one chart of an archive.
func chartArtifact(t *testing.T, in inspected) manifest.Artifact {
	t.Helper()
	for _, a := range in.Artifacts {
		if a.Kind == manifest.KindChart {
			return a.Artifact
		}
	}
	t.Fatal("the archive has no chart")
	return manifest.Artifact{}
}

// TestChartProvenanceAcrossTheGap: a chart signed with `helm package
// --sign` is verified at collect against --chart-keyring, carried with its
// provenance in its manifest, and after ingest the real helm CLI verifies
// it again when it pulls it from the destination registry.
func TestChartProvenanceAcrossTheGap(t *testing.T) {
	b := newProvBed(t)
	good := b.repo(t, b.signed, b.prov)

	out := filepath.Join(b.dir, "out", "signed")
	os.MkdirAll(filepath.Dir(out), 0o755)
	mustFerry(t, "collect", "--quiet", "--key", b.key, "--output", out, "--cache-dir", filepath.Join(b.dir, "cache"),
		"--chart-url", provChart, "--chart-version", provVersion, "--repo-url", good.URL, "--chart-keyring", b.signer.PublicKeyring)
	vols, _ := filepath.Glob(out + ".tar.zst*")
	a := chartArtifact(t, inspectJSON(t, b.pub, vols...))
	if got := a.Annotations[manifest.AnnotationChartProvenanceKeyID]; got != b.signer.Fingerprint {
		t.Errorf("bill of materials: chart provenance verified by %q, want %s", got, b.signer.Fingerprint)
	}
	if a.Annotations[manifest.AnnotationChartProvenance] == "" || len(a.Blobs) != 4 {
		t.Errorf("chart carries provenance %q in %d blobs, want a provenance layer beside config, archive and manifest",
			a.Annotations[manifest.AnnotationChartProvenance], len(a.Blobs))
	}

	reg := testbed.StartRegistry(t, testbed.RegistryOptions{TLS: true, Username: "zot-admin", Password: "s3cret-" + strings.Repeat("p", 8)})
	t.Setenv(envRegistryPassword, reg.Password)
	mustFerry(t, append([]string{"ingest", "--quiet", "--registry", reg.Host + "/" + ingestBase, "--key", b.pub, "--ca-file", reg.CA.WriteCert(t, b.dir),
		"--username", reg.Username, "--journal", filepath.Join(b.dir, "journal.db"), "--work-dir", filepath.Join(b.dir, "work")}, vols...)...)

	reach := b.helm.Login(t, reg)
	ref := "oci://" + reg.Host + "/" + ingestBase + "/charts/" + provChart + "/" + provChart
	pull := func(keyring string) (string, error) {
		args := append([]string{"pull", ref, "--version", provVersion, "--verify", "--keyring", keyring, "--destination", t.TempDir()}, reach...)
		return b.helm.RunErr(t, args...)
	}
	got, err := pull(b.signer.PublicKeyring)
	if err != nil {
		t.Fatalf("helm pull --verify %s --version %s: %v\n%s", ref, provVersion, err, got)
	}
	if !strings.Contains(got, b.signer.Fingerprint) {
		t.Errorf("helm pull --verify does not name the signing key %s:\n%s", b.signer.Fingerprint, got)
	}
	// The same pull with a keyring that lacks the signer must fail: the
	// check above proved something.
	if got, err := pull(b.stranger.PublicKeyring); err == nil {
		t.Errorf("helm pull --verify with another key's keyring succeeded:\n%s", got)
	}
}

// TestChartProvenanceRefusals: a keyring makes every chart prove where it
// came from; without one, provenance is carried when there is some.
func TestChartProvenanceRefusals(t *testing.T) {
	b := newProvBed(t)
	label := provChart + " " + provVersion
	t.Run("tampered chart", func(t *testing.T) {
		r := b.repo(t, b.tampered, b.prov)
		wantFail(t, ExitVerify, []string{"chart " + label, "changed after signing", "sha256"}, b.planArgs(r.URL, "--chart-keyring", b.signer.PublicKeyring)...)
	})
	t.Run("unknown key", func(t *testing.T) {
		r := b.repo(t, b.signed, b.prov)
		wantFail(t, ExitVerify, []string{"chart " + label, "signed by key " + b.signer.Fingerprint, "not in the keyring", b.stranger.PublicKeyring},
			b.planArgs(r.URL, "--chart-keyring", b.stranger.PublicKeyring)...)
	})
	t.Run("no provenance with a keyring", func(t *testing.T) {
		r := b.repo(t, b.signed, "")
		wantFail(t, ExitVerify, []string{"chart " + label, "no provenance file"}, b.planArgs(r.URL, "--chart-keyring", b.signer.PublicKeyring)...)
		// Without a keyring, a repository without provenance is fine.
		mustFerry(t, b.planArgs(r.URL)...)
	})
	t.Run("provenance unavailable", func(t *testing.T) {
		r := b.repo(t, b.signed, b.prov)
		files := http.FileServer(http.Dir(r.dir))
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if strings.HasSuffix(req.URL.Path, ".prov") {
				http.Error(w, "storage backend down", http.StatusServiceUnavailable)
				return
			}
			files.ServeHTTP(w, req)
		}))
		t.Cleanup(srv.Close)
		provURL := srv.URL + "/" + provChart + "-" + provVersion + ".tgz.prov"
		// A failing server stops the collect, keyring or not: carrying the
		// chart without a file that exists would change its digest by chance.
		wantFail(t, ExitRegistry, []string{provURL, "503"}, b.planArgs(srv.URL)...)
		wantFail(t, ExitRegistry, []string{provURL, "503"}, b.planArgs(srv.URL, "--chart-keyring", b.signer.PublicKeyring)...)
	})
	t.Run("bucket without provenance", func(t *testing.T) {
		r := b.repo(t, b.signed, b.prov)
		files := http.FileServer(http.Dir(r.dir))
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if strings.HasSuffix(req.URL.Path, ".prov") {
				http.Error(w, "AccessDenied", http.StatusForbidden) // an object store's answer for a missing object
				return
			}
			files.ServeHTTP(w, req)
		}))
		t.Cleanup(srv.Close)
		provURL := srv.URL + "/" + provChart + "-" + provVersion + ".tgz.prov"
		res := mustFerry(t, b.planArgs(srv.URL)...)
		if !strings.Contains(res.stderr, "carried without provenance") || !strings.Contains(res.stderr, provURL) {
			t.Errorf("no warning naming %s:\n%s", provURL, res.stderr)
		}
		wantFail(t, ExitRegistry, []string{provURL, "403"}, b.planArgs(srv.URL, "--chart-keyring", b.signer.PublicKeyring)...)
	})
	t.Run("not a keyring", func(t *testing.T) {
		r := b.repo(t, b.signed, b.prov)
		wantFail(t, ExitUsage, []string{"--chart-keyring", b.pub}, b.planArgs(r.URL, "--chart-keyring", b.pub)...)
	})
	t.Run("oci source", func(t *testing.T) {
		src := testbed.StartSourceRegistry(t)
		reach := b.helm.Login(t, src)
		push := func(tgz, repo string) {
			// helm push carries the .prov that sits beside the archive.
			dir := t.TempDir()
			data, _ := os.ReadFile(tgz)
			prov, _ := os.ReadFile(b.prov)
			os.WriteFile(filepath.Join(dir, filepath.Base(tgz)), data, 0o644)
			os.WriteFile(filepath.Join(dir, filepath.Base(tgz)+".prov"), prov, 0o644)
			b.helm.Run(t, append([]string{"push", filepath.Join(dir, filepath.Base(tgz)), "oci://" + src.Host + "/" + repo}, reach...)...)
		}
		push(b.signed, "good")
		push(b.tampered, "evil")
		ociArgs := func(repo string, more ...string) []string {
			return append([]string{"collect", "--plan", "--quiet", "--plain-http", "--cache-dir", filepath.Join(b.dir, "cache-oci"),
				"--chart-url", "oci://" + src.Host + "/" + repo + "/" + provChart, "--chart-version", provVersion}, more...)
		}
		report := filepath.Join(t.TempDir(), "report.json")
		mustFerry(t, ociArgs("good", "--chart-keyring", b.signer.PublicKeyring, "--report", report)...)
		var rep struct{ Artifacts []manifest.Artifact }
		data, _ := os.ReadFile(report)
		if err := json.Unmarshal(data, &rep); err != nil || len(rep.Artifacts) != 1 {
			t.Fatalf("report: %v\n%s", err, data)
		}
		// The chart's manifest is carried as the registry has it, its
		// provenance layer with it.
		a := rep.Artifacts[0]
		if want := destDigest(t, src, "good/"+provChart+":"+provVersion); a.Digest != want || len(a.Blobs) != 4 ||
			a.Annotations[manifest.AnnotationChartProvenanceKeyID] != b.signer.Fingerprint {
			t.Errorf("chart from oci: digest %s (source %s), %d blobs, annotations %v", a.Digest, want, len(a.Blobs), a.Annotations)
		}
		wantFail(t, ExitVerify, []string{"chart " + label, "changed after signing"}, ociArgs("evil", "--chart-keyring", b.signer.PublicKeyring)...)
	})
}
