package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/klauspost/compress/zstd"

	"github.com/ferrytool/ferry/internal/testbed"
	"github.com/ferrytool/ferry/manifest"
)

// dayTwoBed is the day-2 scenario: a source registry with a chart's images
// for month 1 and month 2, a chart repository with both chart versions, two
// destination registries set up like the appliance's (TLS, htpasswd), the
// archive key of the connected side and the receipt key of the air-gapped
// side.
type dayTwoBed struct {
	dir           string
	src           *testbed.Registry
	repo          *chartRepo
	r1, r2        *testbed.Registry
	caFile        string
	key, pub      string // archive key
	site, sitePub string // receipt key
	base          v1.Layer
	// month1 and month2 are each month's image closures, digest to size,
	// read from the source registry while the month's tags were current.
	month1, month2 map[string]int64
}

const dayTwoPassword = "s3cret-day-two"

// dayTwoImages: web moves to a new tag, api's "stable" tag moves to a new
// image, db and cache stay; every image sits on one shared base layer.
func newDayTwoBed(t *testing.T) *dayTwoBed {
	t.Helper()
	b := &dayTwoBed{dir: t.TempDir(), src: testbed.StartSourceRegistry(t)}
	b.base = testbed.RandomLayer(t, 512<<10)
	host := b.src.Host
	chartFor := func(version string, images ...string) []byte {
		deploy := "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  template:\n    spec:\n      containers:\n"
		for _, img := range images {
			name := strings.Split(strings.Split(img, "/")[1], ":")[0]
			deploy += fmt.Sprintf("        - name: %s\n          image: %s/%s\n", name, host, img)
		}
		return tgz(t, map[string]string{
			"app/Chart.yaml":            "apiVersion: v2\nname: app\nversion: " + version + "\n",
			"app/templates/deploy.yaml": deploy,
		})
	}
	for _, r := range []string{"apps/web:1.0", "apps/api:stable", "tools/db:1.0", "tools/cache:1.0"} {
		testbed.PushRandomImage(t, b.src, r, 1, 64<<10, b.base)
	}
	b.month1 = b.closures(t, "apps/web:1.0", "apps/api:stable", "tools/db:1.0", "tools/cache:1.0")
	b.repo = startChartRepo(t, chartFor("1.0.0", "apps/web:1.0", "apps/api:stable", "tools/db:1.0", "tools/cache:1.0"),
		chartFor("2.0.0", "apps/web:2.0", "apps/api:stable", "tools/db:1.0", "tools/cache:1.0", "mirror/db:1.0"))

	b.r1 = testbed.StartRegistry(t, testbed.RegistryOptions{TLS: true, Username: "zot-admin", Password: dayTwoPassword})
	b.r2 = testbed.StartRegistry(t, testbed.RegistryOptions{TLS: true, CA: b.r1.CA, Username: "zot-admin", Password: dayTwoPassword})
	b.caFile = b.r1.CA.WriteCert(t, b.dir)
	t.Setenv(envRegistryPassword, dayTwoPassword)
	mustFerry(t, "key", "generate", "--output", filepath.Join(b.dir, "ferry"))
	mustFerry(t, "key", "generate", "--output", filepath.Join(b.dir, "site"))
	b.key, b.pub = filepath.Join(b.dir, "ferry.key"), filepath.Join(b.dir, "ferry.pub")
	b.site, b.sitePub = filepath.Join(b.dir, "site.key"), filepath.Join(b.dir, "site.pub")
	return b
}

// moveToMonth2 pushes month 2's images: web 2.0 and a new api:stable over
// the same base layer, and db 1.0 again under a new repository, which the
// destination holds only under another one.
func (b *dayTwoBed) moveToMonth2(t *testing.T) {
	t.Helper()
	testbed.PushRandomImage(t, b.src, "apps/web:2.0", 1, 64<<10, b.base)
	testbed.PushRandomImage(t, b.src, "apps/api:stable", 1, 64<<10, b.base)
	db, err := remote.Image(b.src.Ref(t, "tools/db:1.0"), b.src.Options()...)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(b.src.Ref(t, "mirror/db:1.0"), db, b.src.Options()...); err != nil {
		t.Fatal(err)
	}
	b.month2 = b.closures(t, "apps/web:2.0", "apps/api:stable", "tools/db:1.0", "tools/cache:1.0", "mirror/db:1.0")
}

// closures reads the images' manifests, configs and layers from the source
// registry, independently of collect.
func (b *dayTwoBed) closures(t *testing.T, refs ...string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, r := range refs {
		img, err := remote.Image(b.src.Ref(t, r), b.src.Options()...)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := img.RawManifest()
		d, _ := img.Digest()
		out[d.String()] = int64(len(raw))
		m, _ := img.Manifest()
		out[m.Config.Digest.String()] = m.Config.Size
		for _, l := range m.Layers {
			out[l.Digest.String()] = l.Size
		}
	}
	return out
}

func (b *dayTwoBed) collect(t *testing.T, name, version, created string, more ...string) []string {
	t.Helper()
	out := filepath.Join(b.dir, "out")
	os.MkdirAll(out, 0o755)
	args := append([]string{"collect", "--quiet", "--plain-http", "--key", b.key, "--output", filepath.Join(out, name),
		"--cache-dir", filepath.Join(b.dir, "cache"), "--created", created,
		"--chart-url", "app", "--repo-url", b.repo.URL, "--chart-version", version, "--release-name", "app"}, more...)
	mustFerry(t, args...)
	vols, _ := filepath.Glob(filepath.Join(out, name+".tar.zst*"))
	if len(vols) == 0 {
		t.Fatalf("collect %s wrote no volume", name)
	}
	return vols
}

func (b *dayTwoBed) ingestArgs(reg *testbed.Registry, journal string, more ...string) []string {
	return append([]string{"ingest", "--quiet", "--registry", reg.Host + "/" + ingestBase, "--key", b.pub,
		"--ca-file", b.caFile, "--username", "zot-admin", "--journal", journal}, more...)
}

func TestDayTwoDelta(t *testing.T) {
	b := newDayTwoBed(t)
	j1, j2 := filepath.Join(b.dir, "j1.db"), filepath.Join(b.dir, "j2.db")
	receipt := filepath.Join(b.dir, "month1.receipt")

	// Month 1: collect, ingest into R1 writing a receipt, and into R2.
	m1 := b.collect(t, "month1", "1.0.0", "2026-11-01T00:00:00Z")
	mustFerry(t, b.ingestArgs(b.r1, j1, append([]string{"--receipt", receipt, "--receipt-key", b.site}, m1...)...)...)
	mustFerry(t, b.ingestArgs(b.r2, j2, m1...)...)
	r := mustFerry(t, "receipt", "verify", "--receipt-pub", b.sitePub, receipt)
	for _, s := range []string{"charts/app/app", "images/apps/web", "images/tools/cache"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("receipt lacks %q:\n%s", s, r.stdout)
		}
	}

	// Month 2: a full archive, and a delta against month 1's receipt.
	b.moveToMonth2(t)
	full := b.collect(t, "month2", "2.0.0", "2026-12-01T00:00:00Z")
	plan := mustFerry(t, "collect", "--plan", "--plain-http", "--cache-dir", filepath.Join(b.dir, "cache"), "--chart-url", "app",
		"--repo-url", b.repo.URL, "--chart-version", "2.0.0", "--release-name", "app", "--since", receipt, "--receipt-pub", b.sitePub)
	for _, s := range []string{"delta for " + b.r1.Host + "/" + ingestBase, "full archive", "saved:"} {
		if !strings.Contains(plan.stdout, s) {
			t.Errorf("--plan --since does not say %q:\n%s", s, plan.stdout)
		}
	}
	delta := b.collect(t, "month2-delta", "2.0.0", "2026-12-01T00:00:00Z", "--since", receipt, "--receipt-pub", b.sitePub)

	fullBOM := openSetForTest(t, b.pub, full...).BOM()
	deltaBOM := openSetForTest(t, b.pub, delta...).BOM()
	// What the delta must carry, reckoned from the source registry: month
	// 2's image blobs that month 1 did not have, and the new chart.
	want := map[string]int64{}
	for d, size := range b.month2 {
		if _, ok := b.month1[d]; !ok {
			want[d] = size
		}
	}
	for _, a := range fullBOM.Artifacts {
		if a.Kind == manifest.KindChart {
			for _, d := range a.Blobs {
				bl, _ := fullBOM.Blob(d)
				want[d] = bl.Size
			}
		}
	}
	got := map[string]int64{}
	for _, bl := range deltaBOM.Blobs {
		got[bl.Digest] = bl.Size
	}
	if !sameSizes(got, want) {
		t.Errorf("delta carries %v\nwant %v", keys(got), keys(want))
	}
	var shared int64
	for _, e := range deltaBOM.Expected {
		shared += e.Size
	}
	if _, ok := deltaBOM.ExpectedBlob(b.layerDigest(t)); !ok || shared == 0 {
		t.Errorf("the base layer is not expected at the destination (%d bytes expected)", shared)
	}
	fs, ds := fullBOM.Stats(), deltaBOM.Stats()
	if fs.StoredBytes-ds.StoredBytes != shared {
		t.Errorf("delta stores %d bytes, full %d: want the difference to be the %d shared bytes", ds.StoredBytes, fs.StoredBytes, shared)
	}
	if fv, dv := volumeBytes(t, full), volumeBytes(t, delta); fv-dv < shared*95/100 {
		t.Errorf("delta volumes take %d bytes, full %d: smaller by %d, want about the %d shared bytes", dv, fv, fv-dv, shared)
	}
	if len(deltaBOM.Since) != 1 || deltaBOM.Since[0].Destination != b.r1.Host+"/"+ingestBase {
		t.Errorf("delta records receipts %+v", deltaBOM.Since)
	}
	mustFerry(t, "verify", "--key", b.pub, delta[0])

	// ferry diff of the months' archives lists what was added, removed and
	// changed.
	d := mustFerry(t, "diff", "--key", b.pub, "--output", "json", m1[0], full[0])
	golden(t, "diff-day-two", diffSummary(t, d.stdout))
	// A transfer spec resolved now reads like the archive collected from
	// it: against month 1's archive it gives the same changes, and against
	// month 2's none.
	spec := filepath.Join(b.dir, "month2.yaml")
	if err := os.WriteFile(spec, []byte("apiVersion: ferry.dev/v1alpha1\nkind: TransferSpec\ncharts:\n"+
		"  - {name: app, version: 2.0.0, repo: "+b.repo.URL+", releaseName: app}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cache := []string{"--cache-dir", filepath.Join(b.dir, "cache"), "--plain-http"}
	d = mustFerry(t, append([]string{"diff", "--key", b.pub, "--output", "json", m1[0], spec}, cache...)...)
	golden(t, "diff-day-two", diffSummary(t, d.stdout))
	d = mustFerry(t, append([]string{"diff", "--key", b.pub, "--output", "json", full[0], spec}, cache...)...)
	if got := diffSummary(t, d.stdout); got != "" {
		t.Errorf("month 2's spec against month 2's archive:\n%s", got)
	}

	// A delta goes only to the destination its receipt describes.
	wantFail(t, ExitUsage, []string{"another destination", b.r1.Host + "/" + ingestBase, b.r2.Host + "/" + ingestBase},
		b.ingestArgs(b.r2, j2, delta...)...)

	// R1 loses the shared base layer: the artifacts that need it are
	// refused, naming the layer and the receipt, and nothing of them goes
	// in; the new chart, which does not need it, does.
	layer := b.layerDigest(t)
	repos := []string{"images/apps/web", "images/apps/api", "images/tools/db", "images/tools/cache"}
	for _, repo := range repos {
		deleteBlob(t, b.r1, ingestBase+"/"+repo, layer)
	}
	// A receipt written now, checked against the registry, leaves out the
	// images that lost their layer, saying so.
	gone := filepath.Join(b.dir, "gone.receipt")
	r = mustFerry(t, "receipt", "write", "--registry", b.r1.Host+"/"+ingestBase, "--journal", j1, "--receipt-key", b.site,
		"--out", gone, "--ca-file", b.caFile, "--username", "zot-admin")
	if !strings.Contains(r.stderr, "lacks blob "+layer) {
		t.Errorf("receipt write does not warn of the missing layer:\n%s", r.stderr)
	}
	var held struct {
		Artifacts []manifest.HeldArtifact `json:"artifacts"`
	}
	r = mustFerry(t, "receipt", "verify", "--receipt-pub", b.sitePub, "--output", "json", gone)
	if err := json.Unmarshal([]byte(r.stdout), &held); err != nil {
		t.Fatal(err)
	}
	if len(held.Artifacts) != 1 || held.Artifacts[0].Repository != "charts/app/app" {
		t.Errorf("with the base layer gone the receipt lists %+v, want the chart alone", held.Artifacts)
	}
	wantFail(t, ExitPartial, []string{layer, deltaBOM.Since[0].Digest, "lacks"}, b.ingestArgs(b.r1, j1, delta...)...)
	if tagExists(t, b.r1, ingestBase+"/images/apps/web:2.0") {
		t.Errorf("apps/web:2.0 was tagged although its base layer is missing")
	}
	for d := range want {
		if _, ok := b.month2[d]; ok && blobExists(t, b.r1, ingestBase+"/images/apps/web", d) {
			t.Errorf("blob %s of a refused artifact was pushed", d)
		}
	}
	// The layer back in place, the same delta completes.
	for _, repo := range repos {
		if err := remote.WriteLayer(b.r1.Ref(t, ingestBase+"/"+repo+":x").Context(), b.base, b.r1.Options()...); err != nil {
			t.Fatal(err)
		}
	}
	r = mustFerry(t, b.ingestArgs(b.r1, j1, append([]string{"--output", "json"}, delta...)...)...)
	var rep struct {
		Blobs struct{ Mounted int } `json:"blobs"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	// mirror/db's config and layers sit only in tools/db: mounted, not sent.
	if rep.Blobs.Mounted < 3 {
		t.Errorf("%d blobs mounted from another repository, want mirror/db's 3", rep.Blobs.Mounted)
	}

	// R2 takes the full month-2 archive; both registries end the same.
	mustFerry(t, b.ingestArgs(b.r2, j2, full...)...)
	s1, s2 := registryState(t, b.r1), registryState(t, b.r2)
	if len(s1) != 8 || !sameStrings(s1, s2) {
		t.Errorf("after the delta R1 holds\n%v\nafter the full archive R2 holds\n%v", s1, s2)
	}

	// Receipts that are not the site's word are refused before anything
	// is resolved.
	other := filepath.Join(b.dir, "other")
	mustFerry(t, "key", "generate", "--output", other)
	foreign := filepath.Join(b.dir, "foreign.receipt")
	mustFerry(t, "receipt", "write", "--registry", b.r1.Host+"/"+ingestBase, "--journal", j1, "--receipt-key", other+".key",
		"--out", foreign, "--ca-file", b.caFile, "--username", "zot-admin")
	wantFail(t, ExitVerify, []string{foreign, "not the key given"},
		"collect", "--plan", "--plain-http", "--cache-dir", filepath.Join(b.dir, "cache"), "--image", b.src.Host+"/tools/db:1.0",
		"--since", foreign, "--receipt-pub", b.sitePub)
	edited := editReceipt(t, receipt, filepath.Join(b.dir, "edited.receipt"))
	wantFail(t, ExitVerify, []string{edited, "changed after"},
		"collect", "--plan", "--plain-http", "--cache-dir", filepath.Join(b.dir, "cache"), "--image", b.src.Host+"/tools/db:1.0",
		"--since", edited, "--receipt-pub", b.sitePub)
}

func (b *dayTwoBed) layerDigest(t *testing.T) string {
	d, err := b.base.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func sameSizes(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func sameStrings(a, b []string) bool {
	return strings.Join(a, "\n") == strings.Join(b, "\n")
}

func keys(m map[string]int64) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func volumeBytes(t *testing.T, vols []string) int64 {
	var n int64
	for _, v := range vols {
		st, err := os.Stat(v)
		if err != nil {
			t.Fatal(err)
		}
		n += st.Size()
	}
	return n
}

// diffSummary keeps what `ferry diff --output json` says changed, without
// the digests, which differ on every run.
func diffSummary(t *testing.T, out string) string {
	t.Helper()
	var r struct {
		Added, Removed, Changed []struct {
			Destination string `json:"destination"`
			Kind        string `json:"kind"`
		}
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("diff json: %v\n%s", err, out)
	}
	var b strings.Builder
	for _, g := range []struct {
		name string
		list []struct {
			Destination string `json:"destination"`
			Kind        string `json:"kind"`
		}
	}{{"added", r.Added}, {"removed", r.Removed}, {"changed", r.Changed}} {
		for _, d := range g.list {
			fmt.Fprintf(&b, "%s %s %s\n", g.name, d.Kind, d.Destination)
		}
	}
	return b.String()
}

// registryState lists every repository:tag of a registry with its digest.
func registryState(t *testing.T, reg *testbed.Registry) []string {
	t.Helper()
	ctx := context.Background()
	regName := b2reg(t, reg)
	repos, err := remote.Catalog(ctx, regName, reg.Options()...)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, repo := range repos {
		tags, err := remote.List(reg.Ref(t, repo+":x").Context(), reg.Options()...)
		if err != nil {
			t.Fatal(err)
		}
		for _, tag := range tags {
			desc, err := remote.Head(reg.Ref(t, repo+":"+tag), reg.Options()...)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, repo+":"+tag+" "+desc.Digest.String())
		}
	}
	sort.Strings(out)
	return out
}

func b2reg(t *testing.T, reg *testbed.Registry) name.Registry {
	return reg.Ref(t, "x:x").Context().Registry
}

func tagExists(t *testing.T, reg *testbed.Registry, repoTag string) bool {
	t.Helper()
	_, err := remote.Head(reg.Ref(t, repoTag), reg.Options()...)
	return err == nil
}

func blobExists(t *testing.T, reg *testbed.Registry, repo, digest string) bool {
	t.Helper()
	req, _ := http.NewRequest(http.MethodHead, reg.URL()+"/v2/"+repo+"/blobs/"+digest, nil)
	req.SetBasicAuth(reg.Username, reg.Password)
	resp, err := reg.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

func deleteBlob(t *testing.T, reg *testbed.Registry, repo, digest string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, reg.URL()+"/v2/"+repo+"/blobs/"+digest, nil)
	req.SetBasicAuth(reg.Username, reg.Password)
	resp, err := reg.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 202 {
		t.Fatalf("DELETE %s@%s: %s", repo, digest, resp.Status)
	}
}

// editReceipt changes one character of a receipt's document and writes it
// back in the receipt's form, with the old signature.
func editReceipt(t *testing.T, from, to string) string {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zstd.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	var out bytes.Buffer
	zw, _ := zstd.NewWriter(&out)
	tw := tar.NewWriter(zw)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		if strings.HasSuffix(hdr.Name, "receipt.json") {
			body = bytes.Replace(body, []byte(`"tag":"1.0"`), []byte(`"tag":"1.1"`), 1)
		}
		hdr.Size = int64(len(body))
		tw.WriteHeader(hdr)
		tw.Write(body)
	}
	tw.Close()
	zw.Close()
	if err := os.WriteFile(to, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return to
}
