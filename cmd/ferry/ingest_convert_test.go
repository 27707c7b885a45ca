package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ferrytool/ferry/ingest"
	"github.com/ferrytool/ferry/internal/testbed"
	"github.com/ferrytool/ferry/manifest"
)

// zotIngestBed is a Distribution registry with TLS and htpasswd behind the
// test bed's Zot rules (Docker manifests refused on PUT), and an archive
// collected without conversion: an OCI image, a Docker schema 2 image
// pinned by digest in a chart, a Docker manifest list and a chart.
type zotIngestBed struct {
	*ingestBed
	zot             *testbed.ZotRules
	docker, list    fixtureArtifact
	oci, chart      fixtureArtifact
	dockerLayers    []string
	listChildLayers map[string][]string // child digest -> its layer digests
}

func newZotIngestBed(t *testing.T) *zotIngestBed {
	t.Helper()
	b := &ingestBed{src: testbed.StartSourceRegistry(t)}
	b.reg = testbed.StartRegistry(t, testbed.RegistryOptions{TLS: true, Username: "zot-admin", Password: "s3cret-zot"})
	zot := testbed.StartZotRules(t, b.reg)
	b.host = zot.Host
	dir := t.TempDir()
	b.caFile = b.reg.CA.WriteCert(t, dir)
	b.journal = dir + "/state/ingest-journal.db"
	b.workDir = dir + "/state/work"
	t.Setenv(envRegistryPassword, b.reg.Password)

	cb := &zotIngestBed{ingestBed: b, zot: zot, listChildLayers: map[string][]string{}}
	fx := &fixtureArchive{dir: t.TempDir()}
	ociImg := testbed.PushRandomImage(t, b.src, "allegroai/clearml:1.16.2", 1, 40<<10)
	cb.oci = imageArtifact(t, manifest.KindImage, b.src.Host+"/allegroai/clearml:1.16.2", manifest.Destination{Repository: "images/allegroai/clearml", Tag: "1.16.2"}, ociImg)

	dock := testbed.PushDockerImage(t, b.src, "bitnami/mongodb:6.0")
	cb.docker = imageArtifact(t, manifest.KindImage, b.src.Host+"/bitnami/mongodb:6.0", manifest.Destination{Repository: "images/bitnami/mongodb", Tag: "6.0"}, dock)
	// The chart pins the image by its Docker digest, which conversion
	// changes.
	cb.docker.source = b.src.Host + "/bitnami/mongodb:6.0@" + cb.docker.root().digest()
	cb.docker.reasons = []manifest.Reason{{From: "chart", Detail: "chart clearml 7.14.7: templates/mongodb.yaml spec.template.spec.containers[0].image"}}
	cb.dockerLayers = layerDigests(t, dock)

	list := mutate.IndexMediaType(empty.Index, types.DockerManifestList)
	for i, plat := range []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}} {
		img := testbed.PushDockerImage(t, b.src, "bitnami/redis:child"+string(rune('a'+i)))
		d, _ := img.Digest()
		cb.listChildLayers[d.String()] = layerDigests(t, img)
		list = mutate.AppendManifests(list, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &plat}})
	}
	if err := remote.WriteIndex(b.src.Ref(t, "bitnami/redis:7.4"), list, b.src.Options()...); err != nil {
		t.Fatal(err)
	}
	cb.list = indexArtifact(t, b.src.Host+"/bitnami/redis:7.4", manifest.Destination{Repository: "images/bitnami/redis", Tag: "7.4"}, list)

	cfg, tgz := helmChart(t, "clearml", "7.14.7")
	cb.chart = ociArtifact(manifest.KindChart, "chart clearml 7.14.7", manifest.Destination{Repository: "charts/clearml/clearml", Tag: "7.14.7"},
		manifest.MediaTypeHelmConfig, cfg, map[string]fxBlob{"clearml-7.14.7.tgz": {mediaType: manifest.MediaTypeHelmChart, data: tgz}})
	fx.artifacts = []fixtureArtifact{cb.oci, cb.docker, cb.list, cb.chart}
	fx.write(t, 64<<20)
	b.fx = fx
	return cb
}

func layerDigests(t *testing.T, img v1.Image) []string {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range ls {
		d, _ := l.Digest()
		out = append(out, d.String())
	}
	return out
}

func (b *zotIngestBed) ref(a fixtureArtifact) string {
	return ingestBase + "/" + a.dest.Repository + ":" + a.dest.Tag
}

func TestIngestZotRulesRefuseDockerManifestsAndNothingElse(t *testing.T) {
	b := newZotIngestBed(t)
	wantFail(t, ExitPartial, []string{
		"refused", b.docker.name, b.list.name, "MANIFEST_INVALID",
		`"compat": ["docker2s2"]`, "collect again with --convert-oci",
	}, b.args(b.fx.volumes...)...)
	// The probe's manifest is the only one refused: the Docker artifacts
	// are refused before any of their blobs is sent.
	if n := b.zot.Refused.Load(); n != 1 {
		t.Errorf("the Zot rules refused %d manifest PUTs, want 1 (the probe)", n)
	}
	for repo, layers := range map[string][]string{b.docker.dest.Repository: b.dockerLayers, b.list.dest.Repository: flatten(b.listChildLayers)} {
		for _, d := range layers {
			if blobIn(t, b.reg, ingestBase+"/"+repo, d) {
				t.Errorf("layer %s of a refused Docker artifact was uploaded to %s", d, repo)
			}
		}
	}
	// Nothing else in the archive is affected.
	for _, a := range []fixtureArtifact{b.oci, b.chart} {
		if got := destDigest(t, b.reg, b.ref(a)); got != a.root().digest() {
			t.Errorf("%s: %q in the registry, want %s", a.name, got, a.root().digest())
		}
	}
	for _, a := range []fixtureArtifact{b.docker, b.list} {
		if got := destDigest(t, b.reg, b.ref(a)); got != "" {
			t.Errorf("%s: refused, yet its tag resolves to %s", a.name, got)
		}
	}
}

func TestIngestConvertOCIIntoZotRules(t *testing.T) {
	b := newZotIngestBed(t)
	r := mustFerry(t, b.args(append([]string{"--convert-oci", "--output", "json"}, b.fx.volumes...)...)...)
	var rep ingest.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, r.stdout)
	}
	if rep.Validation == nil || !rep.Validation.OK() {
		t.Fatalf("validation after --convert-oci: %+v", rep.Validation)
	}
	byName := map[string]ingest.ArtifactResult{}
	for _, a := range rep.Artifacts {
		byName[a.Name] = a
		if a.State != ingest.StatePushed {
			t.Errorf("%s: %s (%s)", a.Name, a.State, a.Reason)
		}
	}
	for _, a := range []fixtureArtifact{b.oci, b.chart} {
		if got := byName[a.name]; len(got.Converted) != 0 || got.PushedDigest != "" {
			t.Errorf("%s is OCI already, yet converted: %+v", a.name, got.Converted)
		}
		if got := destDigest(t, b.reg, b.ref(a)); got != a.root().digest() {
			t.Errorf("%s: %q in the registry, want %s", a.name, got, a.root().digest())
		}
	}

	// The Docker image: one manifest changed, the tag points at it, the
	// layers are the very same blobs.
	dc := byName[b.docker.name].Converted
	if len(dc) != 1 || dc[0].From != b.docker.root().digest() || !dc[0].Root || dc[0].MediaType != manifest.MediaTypeOCIManifest {
		t.Fatalf("docker image conversions: %+v", dc)
	}
	img, err := remote.Image(b.reg.Ref(t, b.ref(b.docker)), b.reg.Options()...)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := img.Digest(); d.String() != dc[0].To {
		t.Errorf("tag %s points at %s, the report says %s", b.ref(b.docker), d, dc[0].To)
	}
	if mt, _ := img.MediaType(); mt != types.OCIManifestSchema1 {
		t.Errorf("pushed media type %s", mt)
	}
	if got := layerDigests(t, img); strings.Join(got, ",") != strings.Join(b.dockerLayers, ",") {
		t.Errorf("layers %v, want the archive's %v", got, b.dockerLayers)
	}
	// Pullable: every layer's bytes come back and match their digest.
	for _, l := range mustLayers(t, img) {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		rc.Close()
	}

	// The list: both children and the list itself changed; the list names
	// the converted children.
	lc := byName[b.list.name].Converted
	if len(lc) != 3 || !lc[2].Root || lc[2].From != b.list.root().digest() {
		t.Fatalf("manifest list conversions: %+v", lc)
	}
	idx, err := remote.Index(b.reg.Ref(t, b.ref(b.list)), b.reg.Options()...)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	if im.MediaType != types.OCIImageIndex || len(im.Manifests) != 2 {
		t.Fatalf("pushed index: %+v", im)
	}
	newToOld := map[string]string{}
	for _, c := range lc[:2] {
		newToOld[c.To] = c.From
	}
	for _, d := range im.Manifests {
		old, ok := newToOld[d.Digest.String()]
		if !ok || d.MediaType != types.OCIManifestSchema1 || d.Platform == nil {
			t.Errorf("index child %s (%s) is not a converted child: %+v", d.Digest, d.MediaType, d)
			continue
		}
		child, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if got := layerDigests(t, child); strings.Join(got, ",") != strings.Join(b.listChildLayers[old], ",") {
			t.Errorf("child %s: layers %v, want %v", d.Digest, got, b.listChildLayers[old])
		}
	}

	// The chart pinned the Docker digest: reported, with where it came from.
	if len(rep.StaleReferences) != 1 {
		t.Fatalf("stale references: %+v", rep.StaleReferences)
	}
	s := rep.StaleReferences[0]
	if s.From != dc[0].From || s.To != dc[0].To || !strings.Contains(strings.Join(s.Where, ";"), "templates/mongodb.yaml") {
		t.Errorf("stale reference: %+v", s)
	}

	// A second run finds everything present, pushes no manifest, and
	// still lists the changes and the stale reference in its table.
	r = mustFerry(t, b.args(append([]string{"--convert-oci"}, b.fx.volumes...)...)...)
	for _, want := range []string{"converted to OCI: 4 manifest(s)", "tag " + dc[0].From + " -> " + dc[0].To, "no longer match", "templates/mongodb.yaml"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("second run's report lacks %q:\n%s", want, r.stdout)
		}
	}
	r = mustFerry(t, b.args(append([]string{"--convert-oci", "--output", "json"}, b.fx.volumes...)...)...)
	var again ingest.Report
	if err := json.Unmarshal([]byte(r.stdout), &again); err != nil {
		t.Fatalf("second report: %v\n%s", err, r.stdout)
	}
	if again.Blobs.Manifests != 0 || len(again.Artifacts) != len(rep.Artifacts) {
		t.Errorf("second run pushed %d manifest(s), reported %d artifacts", again.Blobs.Manifests, len(again.Artifacts))
	}
	for _, a := range again.Artifacts {
		if a.State != ingest.StatePresent {
			t.Errorf("second run: %s is %s (%s), want present", a.Name, a.State, a.Reason)
		}
	}

	// Validation expects the converted digests, with or without the flag.
	mustFerry(t, b.args(append([]string{"--validate-only", "--convert-oci"}, b.fx.volumes...)...)...)
	mustFerry(t, b.args(append([]string{"--validate-only"}, b.fx.volumes...)...)...)
}

func mustLayers(t *testing.T, img v1.Image) []v1.Layer {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

func TestIngestDryRunProbesDockerMediaTypes(t *testing.T) {
	b := newZotIngestBed(t)
	probe := func(host string) ingest.DockerProbe {
		t.Helper()
		b.host = host
		r := mustFerry(t, b.args(append([]string{"--dry-run", "--output", "json"}, b.fx.volumes...)...)...)
		var rep ingest.Report
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.DockerProbe == nil {
			t.Fatalf("dry-run report: %v\n%s", err, r.stdout)
		}
		return *rep.DockerProbe
	}
	zp := probe(b.zot.Host)
	if zp.Result != ingest.ProbeRefuses || zp.DockerArtifacts != 2 || zp.ConvertedArtifacts != 0 {
		t.Errorf("probe of the Zot rules: %+v", zp)
	}
	// With --convert-oci the Docker artifacts go in converted: the probe
	// says so, not that they would be refused.
	b.host = b.zot.Host
	r := mustFerry(t, b.args(append([]string{"--dry-run", "--convert-oci", "--output", "json"}, b.fx.volumes...)...)...)
	var crep ingest.Report
	if err := json.Unmarshal([]byte(r.stdout), &crep); err != nil || crep.DockerProbe == nil {
		t.Fatalf("dry-run report: %v\n%s", err, r.stdout)
	}
	if cp := *crep.DockerProbe; cp.Result != ingest.ProbeRefuses || cp.DockerArtifacts != 0 || cp.ConvertedArtifacts != 2 {
		t.Errorf("probe with --convert-oci: %+v", cp)
	}
	r = mustFerry(t, b.args(append([]string{"--dry-run", "--convert-oci"}, b.fx.volumes...)...)...)
	if first, _, _ := strings.Cut(r.stdout, "\n"); !strings.Contains(first, "2 artifact(s) have Docker manifests and will be converted to OCI") || strings.Contains(first, "would be refused") {
		t.Errorf("dry run with --convert-oci opens with:\n%s", first)
	}
	pp := probe(b.reg.Host)
	if pp.Result != ingest.ProbeAccepts || pp.Cleanup != "" {
		t.Errorf("probe of the plain registry: %+v", pp)
	}
	// The table says so first.
	b.host = b.zot.Host
	r = mustFerry(t, b.args(append([]string{"--dry-run"}, b.fx.volumes...)...)...)
	if first, _, _ := strings.Cut(r.stdout, "\n"); !strings.Contains(first, "registry refuses Docker media types") || !strings.Contains(first, "--convert-oci") {
		t.Errorf("dry run does not open with the probe:\n%s", r.stdout)
	}
	b.host = b.reg.Host
	r = mustFerry(t, b.args(append([]string{"--dry-run"}, b.fx.volumes...)...)...)
	if !strings.Contains(r.stdout, "registry accepts Docker media types") {
		t.Errorf("dry run against the plain registry:\n%s", r.stdout)
	}

	// Nothing of the probe is left: no tag, no manifest, no config blob,
	// and it went to a destination repository, not one of its own.
	repo := pp.Repository
	if !strings.HasPrefix(repo, ingestBase+"/") || strings.Contains(repo, "probe") {
		t.Errorf("probe went to %s, not a destination repository", repo)
	}
	client := b.reg.HTTPClient()
	get := func(method, path string) int {
		req, _ := http.NewRequestWithContext(t.Context(), method, b.reg.URL()+"/v2/"+repo+"/"+path, nil)
		req.SetBasicAuth(b.reg.Username, b.reg.Password)
		req.Header.Set("Accept", manifest.MediaTypeDockerManifest)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if path == "tags/list" && resp.StatusCode == http.StatusOK {
			var tl struct {
				Tags []string `json:"tags"`
			}
			json.NewDecoder(resp.Body).Decode(&tl)
			if len(tl.Tags) > 0 {
				t.Errorf("probe repository has tags %v", tl.Tags)
			}
		}
		return resp.StatusCode
	}
	if code := get(http.MethodHead, "manifests/"+pp.Manifest); code != http.StatusNotFound {
		t.Errorf("probe manifest %s: HEAD answered %d, want 404", pp.Manifest, code)
	}
	get(http.MethodGet, "tags/list")
	if code := get(http.MethodHead, "blobs/sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"); code != http.StatusNotFound {
		t.Errorf("probe config blob: HEAD answered %d, want 404", code)
	}
	// And a dry run pushed nothing else.
	if got := destDigest(t, b.reg, b.ref(b.oci)); got != "" {
		t.Errorf("dry run pushed %s", b.oci.name)
	}
}

func flatten(m map[string][]string) []string {
	var out []string
	for _, l := range m {
		out = append(out, l...)
	}
	return out
}

// blobIn reports whether a repository of the registry holds a blob.
func blobIn(t *testing.T, reg *testbed.Registry, repo, digest string) bool {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodHead, reg.URL()+"/v2/"+repo+"/blobs/"+digest, nil)
	req.SetBasicAuth(reg.Username, reg.Password)
	resp, err := reg.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// startProbeBlocker puts a TLS proxy in front of the Zot rules that
// forbids the Docker probe's config blob, so that ingest cannot tell
// beforehand and meets the refusal when it PUTs manifests.
func startProbeBlocker(t *testing.T, zot *testbed.ZotRules, ca *testbed.CA) string {
	t.Helper()
	target, err := url.Parse(zot.URL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = zot.HTTPClient().Transport
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The probe's config is unique to each run; its upload is known by
		// the marker in its body.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if bytes.Contains(body, []byte(`"ferry.probe"`)) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`{"errors":[{"code":"DENIED","message":"the test forbids the probe"}]}`))
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	certPEM, keyPEM := ca.Issue(t)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// --atomic into a registry that refuses Docker manifests: no tag of any
// artifact, whether the refusal comes when the manifests are PUT (the
// probe could not tell) or from the probe before any upload; and the exit
// code says the registry refused.
func TestIngestAtomicIntoZotRulesTagsNothing(t *testing.T) {
	b := newZotIngestBed(t)
	b.fx = &fixtureArchive{dir: t.TempDir(), artifacts: []fixtureArtifact{b.oci, b.docker}}
	b.fx.write(t, 64<<20)
	noTags := func(when string) {
		t.Helper()
		for _, a := range []fixtureArtifact{b.oci, b.docker} {
			if got := destDigest(t, b.reg, b.ref(a)); got != "" {
				t.Errorf("%s: %s's tag resolves to %s", when, a.name, got)
			}
		}
	}

	b.host = startProbeBlocker(t, b.zot, b.reg.CA)
	args := b.args(append([]string{"--atomic", "--output", "json"}, b.fx.volumes...)...)
	r := wantFail(t, ExitRegistry, []string{"MANIFEST_INVALID", "atomic: no tag was set"}, args...)
	noTags("refused at PUT time")
	if b.zot.Refused.Load() == 0 {
		t.Error("the Zot rules refused no manifest PUT")
	}
	var rep ingest.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, r.stdout)
	}
	if rep.DockerProbe == nil || rep.DockerProbe.Result != ingest.ProbeUnknown {
		t.Errorf("probe through the blocker: %+v", rep.DockerProbe)
	}
	causes := map[string]string{}
	for _, a := range rep.Artifacts {
		if a.State != ingest.StateRefused {
			t.Errorf("%s: %s, want refused", a.Name, a.State)
		}
		causes[a.Name] = a.Cause
	}
	if causes[b.docker.name] != ingest.CauseRegistry || causes[b.oci.name] != ingest.CauseAtomic {
		t.Errorf("causes: %v", causes)
	}

	b.host = b.zot.Host
	before := b.zot.Refused.Load()
	wantFail(t, ExitRegistry, []string{"probed in", "MANIFEST_INVALID", "atomic: nothing is pushed"}, b.args(append([]string{"--atomic"}, b.fx.volumes...)...)...)
	noTags("refused by the probe")
	if n := b.zot.Refused.Load() - before; n != 1 {
		t.Errorf("the Zot rules refused %d manifest PUTs, want 1 (the probe)", n)
	}
}
