package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"helm.sh/helm/v3/pkg/chart/loader"
	helmregistry "helm.sh/helm/v3/pkg/registry"

	"github.com/ferrytool/ferry/ingest"
	"github.com/ferrytool/ferry/internal/testbed"
)

// syncBed is a plain-HTTP source registry behind a counting proxy, a chart
// repository whose chart references the source's images, and a destination
// set up like the appliance's Zot (TLS from a private CA, htpasswd).
type syncBed struct {
	src      *testbed.Registry
	proxy    *countingProxy
	repo     *chartRepo
	chartTgz []byte
	dest     *testbed.Registry
	caFile   string
	cache    string
	work     string
}

func newSyncBed(t *testing.T) *syncBed {
	t.Helper()
	b := &syncBed{src: testbed.StartSourceRegistry(t)}
	b.proxy = startCountingProxy(t, b.src)
	pushImages(t, b.src, chartImages...)
	// One layer above the pusher's single-request limit: it goes up in
	// chunks while it still comes down from the source.
	testbed.PushRandomImage(t, b.src, "apps/standalone:1.0", 2, 6<<20)
	b.chartTgz = tgz(t, clearmlChart(b.proxy.Host))
	b.repo = startChartRepo(t, b.chartTgz)
	b.dest = testbed.StartRegistry(t, testbed.RegistryOptions{TLS: true, Username: "zot-admin", Password: "s3cret-" + strings.Repeat("y", 8)})
	dir := t.TempDir()
	b.caFile = b.dest.CA.WriteCert(t, dir)
	b.cache = filepath.Join(dir, "cache")
	b.work = t.TempDir()
	t.Chdir(b.work) // where an archive would land if one were written
	t.Setenv(envDestUsername, "")
	t.Setenv(envDestPassword, "")
	return b
}

// args are the PaletteAI-style flags of one sync into host (the
// destination or a proxy in front of it), password from standard input.
func (b *syncBed) args(host string, more ...string) []string {
	return append([]string{"sync", "--quiet", "--plain-http", "--cache-dir", b.cache, "--output", "json",
		"--chart-url", "clearml/clearml", "--chart-version", "7.14.7", "--release-name", "clearml", "--repo-url", b.repo.URL,
		"--image", b.proxy.Host + "/apps/standalone:1.0",
		"--dest-registry", host + "/" + ingestBase, "--dest-username", b.dest.Username, "--dest-ca-file", b.caFile}, more...)
}

func syncJSON(t *testing.T, r result) syncReport {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("sync: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	var rep syncReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.Report == nil {
		t.Fatalf("sync json: %v\n%s", err, r.stdout)
	}
	return rep
}

func TestSyncChartAndImagesStraightToRegistry(t *testing.T) {
	b := newSyncBed(t)
	images := append(append([]string{}, chartImages...), "apps/standalone:1.0")

	rep := syncJSON(t, ferry(t, b.dest.Password+"\n", b.args(b.dest.Host, "--dest-password-stdin")...))
	if len(rep.Artifacts) != 1+len(images) {
		t.Errorf("%d artifacts, want the chart and %d images: %+v", len(rep.Artifacts), len(images), rep.Artifacts)
	}
	for _, a := range rep.Artifacts {
		if a.State != "pushed" {
			t.Errorf("%s: %s (%s)", a.Name, a.State, a.Reason)
		}
	}
	if rep.Validation == nil || !rep.Validation.OK() {
		t.Errorf("validation: %+v", rep.Validation)
	}
	if rep.Downloaded < 12<<20 || b.proxy.blobGets.Load() == 0 || rep.Blobs.Uploaded == 0 {
		t.Errorf("first sync downloaded %d bytes in %d blob GETs, uploaded %d blobs", rep.Downloaded, b.proxy.blobGets.Load(), rep.Blobs.Uploaded)
	}

	// Each image keeps its source digest (an index stays an index).
	for _, img := range images {
		want, err := remote.Head(b.src.Ref(t, img), append(b.src.Options(), remote.WithContext(t.Context()))...)
		if err != nil {
			t.Fatal(err)
		}
		if got := destDigest(t, b.dest, ingestBase+"/images/"+img); got != want.Digest.String() {
			t.Errorf("%s: destination has %q, source %s", img, got, want.Digest)
		}
	}
	syncPullChart(t, b)

	// Nothing but the cache was written: no archive, no volume, anywhere.
	if ents, _ := os.ReadDir(b.work); len(ents) > 0 {
		t.Errorf("sync wrote into the working folder: %v", ents)
	}
	filepath.WalkDir(b.cache, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), ".tar.zst") {
			t.Errorf("archive file %s", p)
		}
		return nil
	})

	t.Run("second sync uploads and downloads nothing", func(t *testing.T) {
		proxy := testbed.StartProxy(t, b.dest, testbed.ProxyOptions{})
		b.proxy.reset()
		t.Setenv(envDestPassword, b.dest.Password) // the environment variable this time
		again := syncJSON(t, ferry(t, "", b.args(proxy.Host)...))
		c := again.Blobs
		if c.Uploaded+c.Resumed+c.Mounted != 0 || c.BytesSent != 0 || c.Manifests != 0 {
			t.Errorf("second sync: %+v", c)
		}
		// Every tag resolves to its digest already: no blob is even asked
		// about.
		for _, a := range again.Artifacts {
			if a.State != ingest.StatePresent {
				t.Errorf("second sync: %s is %s, want present", a.Name, a.State)
			}
		}
		if n := proxy.RequestBytes(); n != 0 {
			t.Errorf("second sync sent %d body bytes to the registry", n)
		}
		if n := b.proxy.blobGets.Load(); n != 0 || again.Downloaded != 0 {
			t.Errorf("second sync downloaded %d bytes in %d blob GETs from the source", again.Downloaded, n)
		}
	})

	t.Run("table report", func(t *testing.T) {
		r := ferry(t, b.dest.Password+"\n", append(b.args(b.dest.Host, "--dest-password-stdin"), "--output", "table")...)
		if r.code != 0 {
			t.Fatalf("exit %d\n%s", r.code, r.stderr)
		}
		t.Logf("\n%s", r.stdout)
		for _, want := range []string{"present", ingestBase + "/charts/clearml/clearml:7.14.7", "0 uploaded", "validated:", "no archive written"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("report does not say %q:\n%s", want, r.stdout)
			}
		}
		if strings.Contains(r.stdout, "volume(s)") {
			t.Errorf("report names volumes:\n%s", r.stdout)
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		args := b.args(b.dest.Host, "--dest-password", "not-"+b.dest.Password)
		r := wantFail(t, ExitRegistry, []string{"401", "wrong username or password"}, args...)
		if strings.Contains(r.stdout+r.stderr, b.dest.Password) {
			t.Errorf("output shows the password:\n%s%s", r.stdout, r.stderr)
		}
	})

	t.Run("usage", func(t *testing.T) {
		wantFail(t, ExitUsage, []string{"--dest-registry"}, "sync", "--image", b.proxy.Host+"/apps/web:1.0")
		wantFail(t, ExitUsage, []string{"--dest-username"}, "sync", "--image", b.proxy.Host+"/apps/web:1.0",
			"--dest-registry", b.dest.Host, "--dest-password", "x")
		wantFail(t, ExitUsage, []string{"nothing to sync"}, "sync", "--dest-registry", b.dest.Host)
		wantFail(t, ExitUsage, []string{envDestPassword}, "sync", "--image", b.proxy.Host+"/apps/web:1.0",
			"--dest-registry", b.dest.Host, "--dest-username", "u")
	})
}

// syncPullChart pulls the chart with Helm's own registry client, as `helm
// pull oci://HOST/BASE/charts/clearml/clearml --version 7.14.7` does.
func syncPullChart(t *testing.T, b *syncBed) {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.TLSClientConfig = &tls.Config{RootCAs: b.dest.CA.Pool(), MinVersion: tls.VersionTLS12}
	client, err := helmregistry.NewClient(helmregistry.ClientOptHTTPClient(&http.Client{Transport: tr}),
		helmregistry.ClientOptBasicAuth(b.dest.Username, b.dest.Password), helmregistry.ClientOptWriter(&bytes.Buffer{}))
	if err != nil {
		t.Fatal(err)
	}
	res, err := client.Pull(b.dest.Host+"/"+ingestBase+"/charts/clearml/clearml:7.14.7", helmregistry.PullOptWithChart(true))
	if err != nil {
		t.Fatalf("helm pull oci://%s/%s/charts/clearml/clearml --version 7.14.7: %v", b.dest.Host, ingestBase, err)
	}
	if !bytes.Equal(res.Chart.Data, b.chartTgz) {
		t.Error("the pulled chart archive differs from the repository's")
	}
	ch, err := loader.LoadArchive(bytes.NewReader(res.Chart.Data))
	if err != nil {
		t.Fatal(err)
	}
	if ch.Metadata.Name != "clearml" || ch.Metadata.Version != "7.14.7" {
		t.Errorf("pulled chart %s %s", ch.Metadata.Name, ch.Metadata.Version)
	}
}

// syncZotArgs sync the convert bed's images into its Zot-rule registry
// under base; the password comes from the environment.
func syncZotArgs(t *testing.T, b *convertBed, base string, more ...string) []string {
	t.Helper()
	t.Setenv(envDestUsername, "")
	t.Setenv(envDestPassword, b.dest.Password)
	args := []string{"sync", "--quiet", "--plain-http", "--cache-dir", filepath.Join(b.dir, "cache-sync-"+base),
		"--dest-registry", b.zot.Host + "/" + base, "--dest-username", b.dest.Username, "--dest-ca-file", b.caFile}
	return append(args, more...)
}

// A default Zot refuses Docker schema 2: sync says to run itself with
// --convert-oci (not collect or ingest, which do not apply), and with it
// converts what it resolves and pushes OCI that pulls back.
func TestSyncConvertOCIIntoZotRules(t *testing.T) {
	b := newConvertBed(t)
	images := []string{"--image", b.src.Host + "/" + dockerImage, "--image", b.src.Host + "/" + dockerList, "--image", b.src.Host + "/" + ociImage}

	r := wantFail(t, ExitPartial, []string{"docker2s2", "ferry sync --convert-oci", "images/" + dockerImage, "images/" + dockerList},
		syncZotArgs(t, b, "plain", images...)...)
	for _, wrong := range []string{"collect again", "ingest --convert-oci", "ingest with --convert-oci"} {
		if strings.Contains(r.stdout+r.stderr, wrong) {
			t.Errorf("sync's advice names %q, which does not apply to sync:\n%s%s", wrong, r.stdout, r.stderr)
		}
	}
	if b.zot.Refused.Load() == 0 {
		t.Error("the Zot-rule proxy refused nothing")
	}
	if got := destDigest(t, b.dest, "plain/images/"+ociImage); got != b.digests[ociImage] {
		t.Errorf("%s: destination has %q, want %s beside the refused ones", ociImage, got, b.digests[ociImage])
	}

	refusedBefore := b.zot.Refused.Load()
	rep := syncJSON(t, ferry(t, "", syncZotArgs(t, b, "conv", append(images, "--convert-oci", "--output", "json")...)...))
	if n := b.zot.Refused.Load() - refusedBefore; n != 0 {
		t.Errorf("the Zot-rule proxy refused %d manifests of a converting sync", n)
	}
	for _, a := range rep.Artifacts {
		docker := a.Name != b.src.Host+"/"+ociImage
		if a.State != "pushed" || docker != (len(a.ConvertedByCollect) > 0) {
			t.Errorf("%s: %s (%s), conversions %+v", a.Name, a.State, a.Reason, a.ConvertedByCollect)
		}
	}
	if rep.Validation == nil || !rep.Validation.OK() {
		t.Errorf("validation: %+v", rep.Validation)
	}
	opts := append(b.zot.Options(), remote.WithContext(t.Context()))
	got, err := remote.Image(b.zot.Ref(t, "conv/images/"+dockerImage), opts...)
	if err != nil {
		t.Fatalf("pull the converted image: %v", err)
	}
	src, err := remote.Image(b.src.Ref(t, dockerImage), append(b.src.Options(), remote.WithContext(t.Context()))...)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := got.Digest()
	sameImage(t, dockerImage, src, got, d.String())
	idx, err := remote.Index(b.zot.Ref(t, "conv/images/"+dockerList), opts...)
	if err != nil {
		t.Fatalf("pull the converted list: %v", err)
	}
	if m, _ := idx.IndexManifest(); m.MediaType != types.OCIImageIndex {
		t.Errorf("pulled list has media type %s, want an OCI index", m.MediaType)
	}
}

// sync pulls through a registry mirror as collect does: the source serves
// no blob, the destination names the original repositories, and a source
// that cannot be asked leaves a warning, also when the push then fails.
func TestSyncThroughRegistryMirror(t *testing.T) {
	b := newConvertBed(t)
	mirror := testbed.StartSourceRegistry(t)
	copyImage(t, b.src, ociImage, mirror, "cache/"+ociImage)
	proxy := startCountingProxy(t, b.src)

	args := syncZotArgs(t, b, "mirrored", "--output", "json", "--registry-mirror", proxy.Host+"="+mirror.Host+"/cache", "--image", proxy.Host+"/"+ociImage)
	rep := syncJSON(t, ferry(t, "", args...))
	if n := proxy.blobGets.Load(); n != 0 {
		t.Errorf("the source served %d blobs; the mirror should have served them all", n)
	}
	if len(rep.Artifacts) != 1 || rep.Artifacts[0].Name != proxy.Host+"/"+ociImage || rep.Artifacts[0].State != "pushed" {
		t.Errorf("artifacts %+v", rep.Artifacts)
	}
	if got := destDigest(t, b.dest, "mirrored/images/"+ociImage); got != b.digests[ociImage] {
		t.Errorf("destination has %q, the source %s", got, b.digests[ociImage])
	}

	t.Run("warnings survive a failed push", func(t *testing.T) {
		gone := "127.0.0.1:1"
		args := syncZotArgs(t, b, "gone", "--registry-mirror", gone+"="+mirror.Host+"/cache", "--image", gone+"/"+ociImage)
		t.Setenv(envDestPassword, "not-"+b.dest.Password)
		wantFail(t, ExitRegistry, []string{"warning:", "taken on trust", gone + "/" + ociImage, "401"}, args...)
	})
}

// A destination password in the environment without a user is a mistake
// to name, not a reason to push with the docker config's credentials.
func TestSyncDestPasswordWithoutUser(t *testing.T) {
	t.Setenv(envDestUsername, "")
	t.Setenv(envDestPassword, "s3cret")
	r := wantFail(t, ExitUsage, []string{envDestPassword, envDestUsername, "--dest-username"},
		"sync", "--image", "127.0.0.1:1/apps/web:1.0", "--dest-registry", "127.0.0.1:1/base")
	if strings.Contains(r.stdout+r.stderr, "s3cret") {
		t.Errorf("the password shows:\n%s%s", r.stdout, r.stderr)
	}
}
