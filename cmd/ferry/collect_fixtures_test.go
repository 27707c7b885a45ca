package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/repo"

	"github.com/ferrytool/ferry/internal/testbed"
	"github.com/ferrytool/ferry/manifest"
)

// countingProxy sits in front of the source registry and counts the
// requests collect sends, by kind.
type countingProxy struct {
	Host      string
	blobGets  atomic.Int64
	manifests atomic.Int64
	all       atomic.Int64
	// attached counts requests for what is attached to images: the
	// referrers API and the referrers and cosign tags (sha256-<hex>...).
	attached atomic.Int64
}

func startCountingProxy(t *testing.T, reg *testbed.Registry) *countingProxy {
	t.Helper()
	target, _ := url.Parse(reg.URL())
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = reg.HTTPClient().Transport
	rp.ErrorLog = log.New(io.Discard, "", 0)
	cp := &countingProxy{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cp.all.Add(1)
		if strings.Contains(r.URL.Path, "/referrers/") || strings.Contains(r.URL.Path, "/manifests/sha256-") {
			cp.attached.Add(1)
		}
		switch {
		case r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/"):
			cp.blobGets.Add(1)
		case r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/manifests/"):
			cp.manifests.Add(1)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	cp.Host = strings.TrimPrefix(srv.URL, "http://")
	return cp
}

func (c *countingProxy) reset() {
	c.blobGets.Store(0)
	c.manifests.Store(0)
	c.all.Store(0)
	c.attached.Store(0)
}

// tgz builds a gzip'd tar of files (path -> content), sorted.
func tgz(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(files[n]))
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// clearmlChart is a chart shaped to exercise image discovery: a subchart, a
// disabled subchart whose image does not exist, a hook Job, an init
// container, a CronJob, an ephemeral container, a DaemonSet on a multi-arch
// image, an image in a custom resource, an annotation, and NOTES.txt that
// mentions an image nobody must collect.
func clearmlChart(reg string) map[string]string {
	p := "clearml/"
	return map[string]string{
		p + "Chart.yaml": `apiVersion: v2
name: clearml
version: 7.14.7
kubeVersion: ">=1.25.0-0"
description: synthetic ClearML
annotations:
  artifacthub.io/images: |
    - name: extra
      image: ` + reg + `/apps/extra:1.0
dependencies:
  - name: cache
    version: 1.0.0
    condition: cache.enabled
  - name: unused
    version: 1.0.0
    condition: unused.enabled
`,
		p + "values.yaml":            "registry: " + reg + "\nweb:\n  tag: \"1.0\"\ncache:\n  enabled: true\nunused:\n  enabled: false\n",
		p + "templates/_helpers.tpl": `{{- define "clearml.name" -}}{{ .Release.Name }}-clearml{{- end -}}`,
		p + "templates/NOTES.txt":    "image: " + reg + "/notes/never:1.0\n",
		p + "templates/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "clearml.name" . }}-web
spec:
  template:
    spec:
      initContainers:
        - name: init
          image: "{{ .Values.registry }}/apps/init:1.0"
      containers:
        - name: web
          image: "{{ .Values.registry }}/apps/web:{{ .Values.web.tag }}"
          imagePullPolicy: IfNotPresent
`,
		p + "templates/hook-job.yaml": `apiVersion: batch/v1
kind: Job
metadata:
  name: {{ include "clearml.name" . }}-migrate
  annotations:
    "helm.sh/hook": pre-install,pre-upgrade
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: migrate
          image: {{ .Values.registry }}/tools/migrate:2.0
`,
		p + "templates/cronjob.yaml": `{{- if semverCompare ">=1.21-0" .Capabilities.KubeVersion.GitVersion }}
apiVersion: batch/v1
{{- else }}
apiVersion: batch/v1beta1
{{- end }}
kind: CronJob
metadata:
  name: {{ include "clearml.name" . }}-backup
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          containers:
            - name: backup
              image: {{ .Values.registry }}/tools/backup:3.0
`,
		p + "templates/daemonset.yaml": `apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: {{ include "clearml.name" . }}-node
spec:
  template:
    spec:
      containers:
        - name: node
          image: {{ .Values.registry }}/base/multi:3.0
`,
		p + "templates/debug-pod.yaml": `apiVersion: v1
kind: Pod
metadata:
  name: {{ include "clearml.name" . }}-debug
spec:
  containers:
    - name: main
      image: {{ .Values.registry }}/apps/web:1.0
  ephemeralContainers:
    - name: shell
      image: {{ .Values.registry }}/debug/shell:1.0
`,
		p + "templates/agent.yaml": `apiVersion: agents.example.com/v1
kind: Agent
metadata:
  name: {{ include "clearml.name" . }}-agent
spec:
  replicas: 1
  image: {{ .Values.registry }}/ops/agent:4.0
`,
		p + "charts/cache/Chart.yaml":  "apiVersion: v2\nname: cache\nversion: 1.0.0\n",
		p + "charts/cache/values.yaml": "image: cache:5.0\n",
		p + "charts/cache/templates/statefulset.yaml": `apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{ .Release.Name }}-cache
spec:
  template:
    spec:
      containers:
        - name: cache
          image: {{ .Values.global.registry | default "` + reg + `" }}/db/{{ .Values.image }}
`,
		p + "charts/unused/Chart.yaml": "apiVersion: v2\nname: unused\nversion: 1.0.0\n",
		p + "charts/unused/templates/pod.yaml": `apiVersion: v1
kind: Pod
metadata:
  name: unused
spec:
  containers:
    - name: never
      image: ` + reg + `/never/pulled:1.0
`,
	}
}

// chartImages are the images clearmlChart references, by repository path.
var chartImages = []string{
	"apps/init:1.0", "apps/web:1.0", "tools/migrate:2.0", "tools/backup:3.0", "base/multi:3.0",
	"debug/shell:1.0", "ops/agent:4.0", "db/cache:5.0", "apps/extra:1.0",
}

// metallbChart is the chart inside the metallb pack tarball.
func metallbChart(reg string) map[string]string {
	return map[string]string{
		"metallb/Chart.yaml":  "apiVersion: v2\nname: metallb\nversion: 0.15.2\n",
		"metallb/values.yaml": "frr:\n  enabled: false\n",
		"metallb/templates/frr.yaml": `{{- if .Values.frr.enabled }}
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: frr
spec:
  template:
    spec:
      containers:
        - name: frr
          image: ` + reg + `/metallb/frr:v0.15.2
{{- end }}
`,
	}
}

// packImagesWanted are the images the metallb pack brings: two listed in its
// values.yaml (and in the bundle's ClusterProfile), one rendered from its chart.
var packImagesWanted = []string{"metallb/controller:v0.15.2", "metallb/speaker:v0.15.2", "metallb/frr:v0.15.2"}

// chartRepo serves a static Helm chart repository: index.yaml and the .tgz.
type chartRepo struct {
	URL string
	dir string
}

func startChartRepo(t *testing.T, charts ...[]byte) *chartRepo {
	t.Helper()
	dir := t.TempDir()
	idx := repo.NewIndexFile()
	for _, data := range charts {
		md := chartMeta(t, data)
		file := md.Name + "-" + md.Version + ".tgz"
		if err := os.WriteFile(filepath.Join(dir, file), data, 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		if err := idx.MustAdd(md, file, "", hex.EncodeToString(sum[:])); err != nil {
			t.Fatal(err)
		}
	}
	if err := idx.WriteFile(filepath.Join(dir, "index.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	return &chartRepo{URL: srv.URL, dir: dir}
}

func chartMeta(t *testing.T, data []byte) *chart.Metadata {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("no Chart.yaml: %v", err)
		}
		if strings.Count(h.Name, "/") == 1 && strings.HasSuffix(h.Name, "/Chart.yaml") {
			var md chart.Metadata
			var buf bytes.Buffer
			buf.ReadFrom(tr)
			if err := yamlUnmarshal(buf.Bytes(), &md); err != nil {
				t.Fatal(err)
			}
			return &md
		}
	}
}

// vendorKey is a pack-signing key like Spectro Cloud's.
type vendorKey struct {
	priv crypto.Signer
	pub  string // PEM file
}

func newVendorKey(t *testing.T, dir, kind string) *vendorKey {
	t.Helper()
	var priv crypto.Signer
	var err error
	if kind == "rsa" {
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(dir, "spectro_public_key_"+kind+".pem")
	os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
	return &vendorKey{priv: priv, pub: pub}
}

// writePack writes <name>-<version>.zst with random content and its
// .sig.bin, the way `openssl dgst -sha256 -sign` makes it.
func (k *vendorKey) writePack(t *testing.T, dir, name, version string) string {
	t.Helper()
	content := make([]byte, 64<<10)
	rand.Read(content)
	zst := filepath.Join(dir, name+"-"+version+".zst")
	os.WriteFile(zst, content, 0o644)
	sum := sha256.Sum256(content)
	sig, err := k.priv.Sign(rand.Reader, sum[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(strings.TrimSuffix(zst, ".zst")+".sig.bin", sig, 0o644)
	return zst
}

// bundleTarball packs testdata/bundles/<name> into <dir>/<name>.tar.gz,
// putting the registry host where the YAML says ${REGISTRY}.
func bundleTarball(t *testing.T, name, dir, reg string) string {
	t.Helper()
	src := filepath.Join("..", "..", "testdata", "bundles", name)
	files := map[string]string{}
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		files[name+"/"+filepath.ToSlash(rel)] = strings.ReplaceAll(string(data), "${REGISTRY}", reg)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, name+".tar.gz")
	os.WriteFile(out, tgz(t, files), 0o644)
	return out
}

// pushImages pushes each repo:tag as a small image sharing one layer, so
// the archive has something to deduplicate.
func pushImages(t *testing.T, reg *testbed.Registry, refs ...string) {
	t.Helper()
	shared := testbed.RandomLayer(t, 48<<10)
	for _, r := range refs {
		if r == "base/multi:3.0" {
			testbed.PushIndex(t, reg, r, "linux/amd64", "linux/arm64")
			continue
		}
		testbed.PushRandomImage(t, reg, r, 1, 16<<10, shared)
	}
}

// pushOCIChart pushes a chart archive the way `helm push` lays it out.
func pushOCIChart(t *testing.T, reg *testbed.Registry, repoTag string, chartTgz []byte) {
	t.Helper()
	md := chartMeta(t, chartTgz)
	cfg, _ := json.Marshal(md)
	ref := reg.Ref(t, repoTag)
	opts := append(reg.Options(), remote.WithContext(t.Context()))
	var descs []map[string]any
	for _, l := range []struct {
		data []byte
		mt   string
	}{{cfg, manifest.MediaTypeHelmConfig}, {chartTgz, manifest.MediaTypeHelmChart}} {
		layer := static.NewLayer(l.data, types.MediaType(l.mt))
		if err := remote.WriteLayer(ref.Context(), layer, opts...); err != nil {
			t.Fatal(err)
		}
		d, _ := layer.Digest()
		descs = append(descs, map[string]any{"mediaType": l.mt, "digest": d.String(), "size": len(l.data)})
	}
	m, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": manifest.MediaTypeOCIManifest, "config": descs[0], "layers": descs[1:]})
	if err := remote.Put(ref, rawManifest{m, manifest.MediaTypeOCIManifest}, opts...); err != nil {
		t.Fatal(err)
	}
}

type rawManifest struct {
	data []byte
	mt   string
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.data, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return types.MediaType(r.mt), nil }
