package manifest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// tarFile is one entry of a generated archive.
type tarFile struct {
	name     string
	body     string
	typeflag byte   // zero: regular file
	link     string // for links
}

// makeTar builds an archive in memory; gz compresses it as bundles are.
func makeTar(t testing.TB, gz bool, files ...tarFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	var tw *tar.Writer
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		tw = tar.NewWriter(zw)
	} else {
		tw = tar.NewWriter(&buf)
	}
	for _, f := range files {
		hdr := &tar.Header{Name: f.name, Mode: 0o644, Typeflag: f.typeflag, Linkname: f.link}
		if hdr.Typeflag == 0 {
			hdr.Typeflag = tar.TypeReg
		}
		if hdr.Typeflag == tar.TypeReg {
			hdr.Size = int64(len(f.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(f.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// The PALETTEAI.md fixtures F2-F5, one document per constant.
const (
	fixtureProfileBundle = `apiVersion: spectrocloud.com/v1alpha1
kind: ProfileBundle
metadata:
  name: clearml
  namespace: default
spec:
  type: Fullstack
  version: v1
  clusterProfiles:
    - name: edge-infra
      version: 1.0.0
    - name: edge-addons
      version: 1.0.0
  workloadProfiles:
    - name: clearml
      revision: v1
  workloadProfileDependencies:
    helmRepositories:
      - name: clearml
        url: https://clearml.github.io/clearml-helm-charts
    ociRepositories:
      - name: internal-zot
        url: oci://10.10.233.0:30003/spectro-content/charts
  futureField: {keep: me}
`
	fixtureEdgeInfra = `apiVersion: spectrocloud.com/v1alpha1
kind: ClusterProfile
metadata:
  name: edge-infra
spec:
  version: 1.0.0
  type: infra
  cloudType: edge-native
  packs:
    - name: edge-native-byoi
      version: 2.1.0
      tag: 2.1.0
      layer: os
      type: spectro
      registry: {uid: 5f1a2b3c4d5e6f7a8b9c0d1e, name: Public Repo}
      values: |
        pack:
          content:
            images:
              - image: "{{.spectro.pack.edge-native-byoi.options.system.uri}}"
    - {name: edge-k8s, version: 1.33.5, layer: k8s, type: spectro, registry: {uid: 5f1a2b3c4d5e6f7a8b9c0d1e}}
    - {name: cni-cilium-oss, version: 1.17.4, layer: cni, type: spectro}
    - {name: csi-local-path-provisioner, version: 0.0.32, layer: csi, type: spectro}
`
	fixtureAddons = `apiVersion: spectrocloud.com/v1alpha1
kind: ClusterProfile
metadata: {name: edge-addons}
spec:
  version: 1.0.0
  type: add-on
  packs:
    - {name: registry-connect, version: 0.1.0, layer: addon, type: spectro}
    - name: lb-metallb-helm
      version: 0.15.2
      layer: addon
      type: spectro
      values: |
        pack:
          content:
            images:
              - image: quay.io/metallb/controller:v0.15.2
              - image: quay.io/metallb/speaker:v0.15.2
`
	fixtureWorkloadProfile = `apiVersion: spectrocloud.com/v1alpha1
kind: WorkloadProfile
metadata:
  name: clearml
  namespace: default
spec:
  type: Application
  workload:
    components:
      - name: clearml
        type: helm-release
        properties:
          chart: clearml
          version: 7.14.7
          repository: https://clearml.github.io/clearml-helm-charts
          releaseName: clearml
          namespace: "{{ clearml-namespace }}"
          values:
            imageCredentials: {existingSecret: "{{ zot-auth-secret }}"}
            chart: not-a-chart-reference
    traits: []
    policies: []
`
	fixtureVariableSet = `apiVersion: spectrocloud.com/v1alpha1
kind: VariableSet
metadata:
  name: clearml-vars
  namespace: default
spec:
  variables:
    - {name: clearml-namespace, variableType: string, value: {string: clearml}}
    - {name: unrelated-existing, variableType: string, value: {string: keep-me}, note: unknown}
`
)

// fixtureF1 is the F1 layout: one kind per file, both extensions, a JSON file.
func fixtureF1(prefix string) []tarFile {
	return []tarFile{
		{name: prefix, typeflag: tar.TypeDir},
		{name: prefix + "bundle.yaml", body: fixtureProfileBundle},
		{name: prefix + "profiles/cluster/edge-infra.yaml", body: fixtureEdgeInfra},
		{name: prefix + "profiles/cluster/addons.yml", body: fixtureAddons},
		{name: prefix + "profiles/workload/clearml.yaml", body: fixtureWorkloadProfile},
		{name: prefix + "variables/clearml-vars.yaml", body: fixtureVariableSet},
		{name: prefix + "metadata/source.json", body: `{"repo":"https://clearml.github.io/clearml-helm-charts"}`},
	}
}

func readFixture(t *testing.T, data []byte) *Bundle {
	t.Helper()
	b, err := ReadBundle(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("ReadBundle: %v", err)
	}
	return b
}

// checkFixture asserts what every layout variant of F1 must yield.
func checkFixture(t *testing.T, b *Bundle) {
	t.Helper()
	if len(b.Unparsed) != 0 {
		t.Errorf("unparsed documents: %v", b.Unparsed)
	}
	kinds := map[string]int{}
	for _, o := range b.Objects {
		kinds[o.Kind()]++
	}
	want := map[string]int{KindProfileBundle: 1, KindClusterProfile: 2, KindWorkloadProfile: 1, KindVariableSet: 1}
	if !reflect.DeepEqual(kinds, want) {
		t.Errorf("kinds = %v, want %v", kinds, want)
	}

	pbs := b.ProfileBundles()
	if len(pbs) != 1 {
		t.Fatalf("ProfileBundles: %d", len(pbs))
	}
	pb := pbs[0]
	if pb.Name != "clearml" || pb.Type != "Fullstack" || pb.Version != "v1" {
		t.Errorf("ProfileBundle = %+v", pb)
	}
	if !reflect.DeepEqual(pb.ClusterProfiles, []ProfileRef{{"edge-infra", "1.0.0"}, {"edge-addons", "1.0.0"}}) {
		t.Errorf("cluster profiles = %v", pb.ClusterProfiles)
	}
	if !reflect.DeepEqual(pb.WorkloadProfiles, []ProfileRef{{"clearml", "v1"}}) {
		t.Errorf("workload profiles = %v", pb.WorkloadProfiles)
	}
	if len(pb.HelmRepositories) != 1 || pb.HelmRepositories[0].URL != "https://clearml.github.io/clearml-helm-charts" ||
		len(pb.OCIRepositories) != 1 || pb.OCIRepositories[0].Name != "internal-zot" {
		t.Errorf("repositories = %+v %+v", pb.HelmRepositories, pb.OCIRepositories)
	}
	if v, _ := (Path{"spec", "futureField", "keep"}).Get(pb.Object.Content); v != "me" {
		t.Errorf("unknown field lost: %v", pb.Object.Content["spec"])
	}

	cps := b.ClusterProfiles()
	if len(cps) != 2 {
		t.Fatalf("ClusterProfiles: %d", len(cps))
	}
	infra := cps[0]
	if infra.Name != "edge-infra" {
		infra = cps[1]
	}
	if infra.Version != "1.0.0" || infra.Type != "infra" || infra.CloudType != "edge-native" || len(infra.Packs) != 4 {
		t.Fatalf("edge-infra = %+v", infra)
	}
	byoi := infra.Packs[0]
	if byoi.Name != "edge-native-byoi" || byoi.Version != "2.1.0" || byoi.Tag != "2.1.0" || byoi.Layer != "os" ||
		byoi.Type != "spectro" || byoi.RegistryUID != "5f1a2b3c4d5e6f7a8b9c0d1e" || byoi.RegistryName != "Public Repo" {
		t.Errorf("byoi = %+v", byoi)
	}
	if got := byoi.RegistryUIDPath.String(); got != "/spec/packs/0/registry/uid" {
		t.Errorf("registry uid path = %s", got)
	}
	if !strings.Contains(byoi.Values, "{{.spectro.pack.edge-native-byoi.options.system.uri}}") {
		t.Errorf("values = %q", byoi.Values)
	}
	if p := infra.Packs[2]; p.Name != "cni-cilium-oss" || p.RegistryUID != "" || p.RegistryUIDPath != nil {
		t.Errorf("cilium = %+v", p)
	}

	wps := b.WorkloadProfiles()
	if len(wps) != 1 {
		t.Fatalf("WorkloadProfiles: %d", len(wps))
	}
	wp := wps[0]
	if wp.Type != "Application" || len(wp.Charts) != 1 {
		t.Fatalf("workload profile = %+v", wp)
	}
	c := wp.Charts[0]
	if c.Name != "clearml" || c.Version != "7.14.7" || c.Repository != "https://clearml.github.io/clearml-helm-charts" || c.IsOCI() || c.Templated() {
		t.Errorf("chart = %+v", c)
	}
	if c.RepositoryPath.String() != "/spec/workload/components/0/properties/repository" {
		t.Errorf("repository path = %s", c.RepositoryPath)
	}
	if !reflect.DeepEqual(wp.Variables, []string{"clearml-namespace", "zot-auth-secret"}) {
		t.Errorf("variables = %v", wp.Variables)
	}

	vss := b.VariableSets()
	if len(vss) != 1 || len(vss[0].Variables) != 2 {
		t.Fatalf("VariableSets = %+v", vss)
	}
	if s, ok := vss[0].Variables[1].StringValue(); !ok || s != "keep-me" || vss[0].Variables[1].Type != "string" {
		t.Errorf("variable = %+v", vss[0].Variables[1])
	}
}

func TestReadBundleLayouts(t *testing.T) {
	all := strings.Join([]string{fixtureProfileBundle, fixtureEdgeInfra, fixtureAddons, fixtureWorkloadProfile, fixtureVariableSet}, "---\n")
	tests := []struct {
		name  string
		gz    bool
		files []tarFile
	}{
		{"F1 layout", true, fixtureF1("clearml-bundle-v1/")},
		{"F1 layout, plain tar", false, fixtureF1("clearml-bundle-v1/")},
		{"F1 layout, no top folder, ./ names", true, fixtureF1("./")},
		{"nested extra level", true, fixtureF1("outer/clearml-bundle-v1/")},
		{"one multi-document file", true, []tarFile{{name: "b/all.yaml", body: "---\n# leading comment\n" + all + "...\n"}}},
		{"CRLF endings", true, []tarFile{{name: "b/all.YML", body: strings.ReplaceAll(all, "\n", "\r\n")}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkFixture(t, readFixture(t, makeTar(t, tc.gz, tc.files...)))
		})
	}
}

func TestReadBundleFiles(t *testing.T) {
	b := readFixture(t, makeTar(t, true, fixtureF1("clearml-bundle-v1/")...))
	var paths []string
	for _, f := range b.Files {
		paths = append(paths, f.Path)
	}
	want := []string{
		"clearml-bundle-v1/bundle.yaml", "clearml-bundle-v1/profiles/cluster/edge-infra.yaml",
		"clearml-bundle-v1/profiles/cluster/addons.yml", "clearml-bundle-v1/profiles/workload/clearml.yaml",
		"clearml-bundle-v1/variables/clearml-vars.yaml", "clearml-bundle-v1/metadata/source.json",
	}
	if !reflect.DeepEqual(paths, want) {
		t.Errorf("files = %v", paths)
	}
	if o := b.ObjectsOfKind(KindWorkloadProfile)[0]; o.File != "clearml-bundle-v1/profiles/workload/clearml.yaml" || o.Doc != 0 {
		t.Errorf("object origin = %s", o)
	}
}

func TestReadBundleDocuments(t *testing.T) {
	body := "kind: ConfigMap\nmetadata: {name: a}\ndata: {n: \"1\"}\n" +
		"--- # a comment after the marker\n" +
		"# only a comment\n" +
		"---\n" +
		"just a scalar\n" +
		"---\n" +
		"- a list\n" +
		"---\n" +
		"metadata: {name: no-kind}\n" +
		"---\n" +
		"kind: List\nitems:\n  - {kind: Secret, metadata: {name: s1}}\n  - {kind: Secret, metadata: {name: s2}}\n  - not-an-object\n" +
		"---\n" +
		"kind: [unclosed\n" +
		"--- kind: Inline\n" +
		"---\n" +
		"kind: Numbers\nspec: {int: 12, big: 9007199254740993, float: 1.33, version: 7.10}\n"
	b := readFixture(t, makeTar(t, true, tarFile{name: "docs.yaml", body: body}))
	var got []string
	for _, o := range b.Objects {
		got = append(got, o.Kind()+"/"+o.Name())
	}
	want := []string{"ConfigMap/a", "Secret/s1", "Secret/s2", "Inline/", "Numbers/"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("objects = %v, want %v", got, want)
	}
	if len(b.Unparsed) != 1 || b.Unparsed[0].File != "docs.yaml" || b.Unparsed[0].Doc != 5 {
		t.Errorf("unparsed = %v", b.Unparsed)
	}
	spec := b.ObjectsOfKind("Numbers")[0].Content["spec"].(map[string]any)
	if spec["int"] != int64(12) || spec["big"] != int64(9007199254740993) || spec["float"] != 1.33 {
		t.Errorf("numbers = %#v", spec)
	}
	// An unquoted 7.10 is a float to YAML; the accessor shows what is left.
	if s := scalarString(spec["version"]); s != "7.1" {
		t.Errorf("version = %q", s)
	}
}

func TestReadBundleRejects(t *testing.T) {
	ok := tarFile{name: "b/ok.yaml", body: "kind: A\n"}
	tests := []struct {
		name   string
		files  []tarFile
		limits BundleLimits
		want   string
	}{
		{"parent path", []tarFile{ok, {name: "b/../../etc/passwd.yaml", body: "kind: A\n"}}, BundleLimits{}, "climbs out"},
		{"leading parent", []tarFile{{name: "../x.yaml", body: "kind: A\n"}}, BundleLimits{}, "climbs out"},
		{"backslash parent", []tarFile{{name: `b\..\..\x.yaml`, body: "kind: A\n"}}, BundleLimits{}, "climbs out"},
		{"absolute", []tarFile{{name: "/etc/x.yaml", body: "kind: A\n"}}, BundleLimits{}, "absolute"},
		{"drive letter", []tarFile{{name: `C:\x.yaml`, body: "kind: A\n"}}, BundleLimits{}, "absolute"},
		{"symlink", []tarFile{ok, {name: "b/link.yaml", typeflag: tar.TypeSymlink, link: "/etc/passwd"}}, BundleLimits{}, "symbolic link"},
		{"hard link", []tarFile{ok, {name: "b/hard.yaml", typeflag: tar.TypeLink, link: "b/ok.yaml"}}, BundleLimits{}, "hard link"},
		{"char device", []tarFile{{name: "b/tty", typeflag: tar.TypeChar}}, BundleLimits{}, "character device"},
		{"block device", []tarFile{{name: "b/sda", typeflag: tar.TypeBlock}}, BundleLimits{}, "block device"},
		{"fifo", []tarFile{{name: "b/pipe", typeflag: tar.TypeFifo}}, BundleLimits{}, "named pipe"},
		{"duplicate", []tarFile{ok, ok}, BundleLimits{}, "appears twice"},
		{"file too big", []tarFile{{name: "big.yaml", body: strings.Repeat("# x\n", 100)}}, BundleLimits{MaxFileSize: 100}, "more than the 100 a YAML file may have (MaxBundleFileSize)"},
		{"total too big", []tarFile{ok, {name: "blob.bin", body: strings.Repeat("x", 100000)}}, BundleLimits{MaxTotalSize: 50000}, "more than 50000 bytes once uncompressed (MaxBundleSize)"},
		{"too many entries", []tarFile{ok, {name: "a"}, {name: "b"}}, BundleLimits{MaxEntries: 2}, `more than 2 entries (MaxBundleEntries) at "b"`},
		{"too many documents", []tarFile{{name: "d.yaml", body: "kind: A\n---\nkind: B\n---\nkind: C\n"}}, BundleLimits{MaxDocuments: 2}, "d.yaml brings the bundle past 2 YAML documents (MaxBundleDocuments)"},
		{"documents over files", []tarFile{{name: "a.yaml", body: "kind: A\n---\nkind: B\n"}, {name: "c.yaml", body: "kind: C\n"}}, BundleLimits{MaxDocuments: 2}, "c.yaml brings the bundle past 2 YAML documents (MaxBundleDocuments)"},
		{"decoded over files", []tarFile{{name: "a.yaml", body: "kind: A\nx: " + strings.Repeat("y", 600) + "\n"}, {name: "c.yaml", body: "kind: C\nx: " + strings.Repeat("y", 600) + "\n"}}, BundleLimits{MaxDecodedSize: 1000}, "c.yaml: document 0 brings the bundle past 1000 decoded bytes (MaxBundleDecodedSize)"},
		{"alias bomb", []tarFile{{name: "bomb.yaml", body: aliasBomb(1<<20, 3)}}, BundleLimits{}, "bomb.yaml: document 0 brings the bundle past 67108864 decoded bytes (MaxBundleDecodedSize)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadBundleLimits(bytes.NewReader(makeTar(t, true, tc.files...)), tc.limits)
			if !errors.Is(err, ErrInvalidBundle) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrInvalidBundle mentioning %q", err, tc.want)
			}
		})
	}
	t.Run("not an archive", func(t *testing.T) {
		if _, err := ReadBundle(strings.NewReader("kind: Project\n")); !errors.Is(err, ErrInvalidBundle) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("truncated gzip", func(t *testing.T) {
		data := makeTar(t, true, fixtureF1("x/")...)
		if _, err := ReadBundle(bytes.NewReader(data[:len(data)/2])); !errors.Is(err, ErrInvalidBundle) {
			t.Fatalf("err = %v", err)
		}
	})
}

// aliasBomb is a YAML document of a few kilobytes more than text bytes of
// its own that decodes to text*10^levels bytes: every level lists the
// previous one ten times by alias.
func aliasBomb(text, levels int) string {
	var b strings.Builder
	b.WriteString("kind: Bomb\na0: &a0 \"" + strings.Repeat("x", text) + "\"\n")
	// Plain nodes keep the alias ratio under what the YAML decoder refuses
	// on its own.
	b.WriteString("pad: [" + strings.Repeat("1, ", 50) + "1]\n")
	for i := 1; i <= levels; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [%s*a%d]\n", i, i, strings.Repeat(fmt.Sprintf("*a%d, ", i-1), 9), i-1)
	}
	return b.String()
}

// An alias bomb is refused before it is expanded: reading it costs about
// what the file itself does, not the gigabyte it stands for.
func TestReadBundleAliasBombMemory(t *testing.T) {
	data := makeTar(t, true, tarFile{name: "b/bomb.yaml", body: aliasBomb(4<<20, 3)})
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := ReadBundle(bytes.NewReader(data))
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrInvalidBundle) || !strings.Contains(err.Error(), "MaxBundleDecodedSize") {
		t.Fatalf("err = %v, want the decoded size limit", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 64<<20 {
		t.Errorf("reading a %d byte bomb allocated %d MiB", len(data), got>>20)
	}
}

func TestYAMLDecodedSize(t *testing.T) {
	small, err := YAMLDecodedSize([]byte("a: &x [1, 2]\nb: *x\n---\nc: d\n"), 1<<20)
	if err != nil || small <= 0 {
		t.Fatalf("size = %d, %v", small, err)
	}
	if _, err := YAMLDecodedSize([]byte(aliasBomb(1000, 6)), 1<<20); !errors.Is(err, ErrYAMLTooLarge) {
		t.Fatalf("bomb: err = %v, want ErrYAMLTooLarge", err)
	}
	if _, err := YAMLDecodedSize([]byte("a: [unclosed\n"), 1<<20); err == nil || errors.Is(err, ErrYAMLTooLarge) {
		t.Fatalf("broken YAML: err = %v", err)
	}
}

func TestParseBundleFileName(t *testing.T) {
	tests := []struct{ in, name, version string }{
		{"clearml-bundle-v1.tar.gz", "clearml-bundle", "v1"},
		{"/media/usb/clearml-7.14.7.tgz", "clearml", "7.14.7"},
		{"app-1.0.0-rc1.tar", "app", "1.0.0-rc1"},
		{"noversion.tar.gz", "noversion", ""},
	}
	for _, tc := range tests {
		name, version, ok := ParseBundleFileName(tc.in)
		if name != tc.name || version != tc.version || ok != (tc.version != "") {
			t.Errorf("ParseBundleFileName(%q) = %q, %q, %v", tc.in, name, version, ok)
		}
	}
}

// FuzzReadBundle feeds arbitrary bytes, and mutations of real bundles, to the
// reader: it must never panic, and whatever it accepts must hold up to the
// typed accessors.
func FuzzReadBundle(f *testing.F) {
	f.Add(makeTar(f, true, fixtureF1("clearml-bundle-v1/")...))
	f.Add(makeTar(f, false, tarFile{name: "a.yaml", body: fixtureWorkloadProfile + "---\n" + fixtureEdgeInfra}))
	f.Add(makeTar(f, false, tarFile{name: "l.yaml", body: "kind: List\nitems: [{kind: WorkloadProfile, spec: {chart: {name: x}}}]\n"}))
	f.Add([]byte{0x1f, 0x8b})
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ReadBundleLimits(bytes.NewReader(data), BundleLimits{MaxTotalSize: 4 << 20, MaxFileSize: 1 << 20})
		if err != nil {
			if !errors.Is(err, ErrInvalidBundle) {
				t.Fatalf("error not ErrInvalidBundle: %v", err)
			}
			return
		}
		for _, o := range b.Objects {
			if o.Kind() == "" {
				t.Fatalf("object without kind: %v", o.Content)
			}
			c := o.DeepCopy()
			if !reflect.DeepEqual(c.Content, o.Content) {
				t.Fatalf("deep copy differs")
			}
		}
		for _, f := range b.Files {
			if strings.HasPrefix(f.Path, "/") || strings.Contains("/"+f.Path+"/", "/../") {
				t.Fatalf("unsafe path accepted: %q", f.Path)
			}
		}
		for _, wp := range b.WorkloadProfiles() {
			for _, c := range wp.Charts {
				if v, ok := c.NamePath.Get(wp.Object.Content); !ok || scalarString(v) != c.Name {
					t.Fatalf("chart name path %s does not lead to %q", c.NamePath, c.Name)
				}
			}
		}
		b.ClusterProfiles()
		b.VariableSets()
		b.ProfileBundles()
	})
}

// FuzzYAMLDecodedSize feeds arbitrary YAML to the alias counter: it must
// never panic or loop, and a size it accepts is within the limit.
func FuzzYAMLDecodedSize(f *testing.F) {
	f.Add([]byte("a: &x [1, 2]\nb: *x\n---\nc: d\n"), int64(1<<10))
	f.Add([]byte(aliasBomb(10, 4)), int64(1<<12))
	f.Add([]byte("a: &x [*x]\n"), int64(1<<10))
	f.Fuzz(func(t *testing.T, data []byte, limit int64) {
		size, err := YAMLDecodedSize(data, limit)
		if err == nil && size > limit {
			t.Fatalf("size %d accepted over the limit %d", size, limit)
		}
	})
}
