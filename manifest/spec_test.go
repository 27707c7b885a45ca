package manifest

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

const goodSpec = `apiVersion: ferry.dev/v1alpha1
kind: TransferSpec
metadata: {name: clearml}
platforms: [linux/amd64, linux/arm64/v8]
kubeVersion: "1.30.0"
packKey: keys/spectro_public_key.pem
repositories:
  - {name: clearml, url: "https://clearml.github.io/clearml-helm-charts"}
upstreamRepositories:
  clearml: clearml
bundles:
  - file: bundles/clearml-bundle-v1.tar.gz
packs:
  - file: packs/edge-k8s-1.33.5.zst
  - {file: packs/metallb, name: metallb, version: 0.15.2}
charts:
  - name: clearml
    version: 7.14.7
    repo: clearml
    releaseName: clearml
    values: {agent: {enabled: false}}
    valuesFiles: [values-airgap.yaml]
  - name: oci://registry.example.com/charts/app
    version: ">=1.0.0"
images:
  - nginx:1.27
  - ref: quay.io/org/app:2.0
`

func TestParseTransferSpec(t *testing.T) {
	s, err := ParseTransferSpec([]byte(strings.ReplaceAll(goodSpec, "\n", "\r\n")), "/specs")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Images) != 2 || s.Images[0].Ref != "nginx:1.27" || s.Images[1].Ref != "quay.io/org/app:2.0" {
		t.Errorf("images %+v", s.Images)
	}
	if s.Charts[0].Values["agent"].(map[string]any)["enabled"] != false || s.Charts[0].ValuesFiles[0] != "values-airgap.yaml" {
		t.Errorf("chart %+v", s.Charts[0])
	}
	if got := s.Path(s.PackKey); got != filepath.Join("/specs", "keys/spectro_public_key.pem") {
		t.Errorf("Path: %s", got)
	}
	if r, ok := s.Repository("clearml"); !ok || r.URL != "https://clearml.github.io/clearml-helm-charts" {
		t.Errorf("Repository: %+v %v", r, ok)
	}
	if s.Packs[1].Name != "metallb" || s.Packs[1].Version != "0.15.2" || s.Empty() {
		t.Errorf("packs %+v", s.Packs)
	}
	out, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseTransferSpec(out, "/specs")
	if err != nil {
		t.Fatalf("round trip: %v\n%s", err, out)
	}
	if len(again.Charts) != 2 || again.Images[1].Ref != "quay.io/org/app:2.0" {
		t.Errorf("round trip lost entries:\n%s", out)
	}
}

func TestParseTransferSpecRejects(t *testing.T) {
	for name, c := range map[string]struct{ doc, want string }{
		"unknown field":    {"apiVersion: ferry.dev/v1alpha1\nkind: TransferSpec\nimagez: [x]\n", "imagez"},
		"wrong kind":       {"apiVersion: ferry.dev/v1alpha1\nkind: BillOfMaterials\n", "TransferSpec"},
		"wrong apiVersion": {"apiVersion: v1\nkind: TransferSpec\n", "ferry.dev/v1alpha1"},
		"bad platform":     {"apiVersion: ferry.dev/v1alpha1\nkind: TransferSpec\nplatforms: [amd64]\n", "amd64"},
		"chart no repo":    {"apiVersion: ferry.dev/v1alpha1\nkind: TransferSpec\ncharts: [{name: x}]\n", "chart x has no repo"},
		"chart bad repo":   {"apiVersion: ferry.dev/v1alpha1\nkind: TransferSpec\ncharts: [{name: x, repo: nope}]\n", `repo "nope"`},
		"pack no file":     {"apiVersion: ferry.dev/v1alpha1\nkind: TransferSpec\npacks: [{name: x}]\n", "packs[0] has no file"},
		"empty image":      {"apiVersion: ferry.dev/v1alpha1\nkind: TransferSpec\nimages: [\"\"]\n", "images[0] is empty"},
		"bad upstream":     {"apiVersion: ferry.dev/v1alpha1\nkind: TransferSpec\nupstreamRepositories: {x: ftp://a}\n", "upstreamRepositories[x]"},
		"oci with repo":    {"apiVersion: ferry.dev/v1alpha1\nkind: TransferSpec\ncharts: [{name: oci://r/c, repo: https://x}]\n", "not both"},
		"image extra key":  {"apiVersion: ferry.dev/v1alpha1\nkind: TransferSpec\nimages: [{ref: x, tag: y}]\n", "tag"},
		"two documents":    {"---\napiVersion: ferry.dev/v1alpha1\nkind: TransferSpec\nimages: [a]\n# more\n---\napiVersion: ferry.dev/v1alpha1\nkind: TransferSpec\nimages: [b]\n", "line 6 starts a second YAML document"},
		"end then more":    {"apiVersion: ferry.dev/v1alpha1\nkind: TransferSpec\n...\nimages: [b]\n", "line 3 starts a second"},
		"inline second":    {"apiVersion: ferry.dev/v1alpha1\nkind: TransferSpec\n--- {images: [b]}\n", "line 3 starts a second"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseTransferSpec([]byte(c.doc), "")
			if !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err %v, want ErrInvalidSpec naming %q", err, c.want)
			}
		})
	}
}

// A leading marker, a trailing one and markers inside values are not a
// second document.
func TestParseTransferSpecOneDocument(t *testing.T) {
	for _, doc := range []string{
		"---\napiVersion: ferry.dev/v1alpha1\nkind: TransferSpec\nimages: [a]\n",
		"%YAML 1.2\n---\napiVersion: ferry.dev/v1alpha1\nkind: TransferSpec\nimages: [a]\n---\n# nothing\n",
		"apiVersion: ferry.dev/v1alpha1\nkind: TransferSpec\nimages: [a]\n...\n",
		"apiVersion: ferry.dev/v1alpha1\nkind: TransferSpec\nimages:\n  - \"x---y\"\n  ---not-a-marker\n",
	} {
		if _, err := ParseTransferSpec([]byte(doc), ""); err != nil && strings.Contains(err.Error(), "second YAML document") {
			t.Errorf("%q: %v", doc, err)
		}
	}
}

func TestTransferSpecMerge(t *testing.T) {
	s, err := ParseTransferSpec([]byte(goodSpec), "/specs")
	if err != nil {
		t.Fatal(err)
	}
	flags := NewTransferSpec()
	flags.Dir = "/cwd"
	flags.Platforms = []string{"linux/amd64", "linux/s390x"}
	flags.Packs = []PackSpec{{File: "extra.zst", Origin: OriginFlag}}
	flags.UpstreamRepositories = map[string]string{"other": "https://charts.example.com"}
	flags.AllowMissingPacks = true
	s.Merge(flags)
	if len(s.Platforms) != 3 || !s.AllowMissingPacks || s.UpstreamRepositories["other"] == "" || s.UpstreamRepositories["clearml"] == "" {
		t.Errorf("merged %+v", s)
	}
	last := s.Packs[len(s.Packs)-1]
	if last.File != filepath.Join("/cwd", "extra.zst") || last.Origin != OriginFlag || s.Path(last.File) != last.File {
		t.Errorf("flag pack %+v resolves to %s", last, s.Path(last.File))
	}
	if err := s.Validate(); err != nil {
		t.Error(err)
	}
	if got := s.UpstreamNames(); strings.Join(got, ",") != "clearml,other" {
		t.Errorf("UpstreamNames %v", got)
	}
}

func FuzzParseTransferSpec(f *testing.F) {
	f.Add([]byte(goodSpec))
	f.Add([]byte("apiVersion: ferry.dev/v1alpha1\nkind: TransferSpec\nimages: [x]\n"))
	f.Add([]byte("apiVersion: ferry.dev/v1alpha1\nkind: TransferSpec\nconvertOCI: true\nregistryMirrors: [{source: docker.io, mirror: m.example/hub}]\nimages: [x]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseTransferSpec(data, "")
		if err != nil {
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("parsed spec does not validate: %v", err)
		}
		out, err := s.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseTransferSpec(out, ""); err != nil {
			t.Fatalf("marshalled spec does not parse: %v\n%s", err, out)
		}
	})
}
