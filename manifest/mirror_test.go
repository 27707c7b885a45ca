package manifest

import (
	"errors"
	"strings"
	"testing"
)

func TestParseRegistryMirror(t *testing.T) {
	for in, want := range map[string]RegistryMirror{
		"docker.io=mirror.corp.example/dockerhub":  {Source: "docker.io", Mirror: "mirror.corp.example/dockerhub"},
		"quay.io/org=127.0.0.1:5000":               {Source: "quay.io/org", Mirror: "127.0.0.1:5000"},
		" ghcr.io = mirror.example:8443/a/b ":      {Source: "ghcr.io", Mirror: "mirror.example:8443/a/b"},
		"registry.k8s.io=mirror.example/k8s-cache": {Source: "registry.k8s.io", Mirror: "mirror.example/k8s-cache"},
	} {
		got, err := ParseRegistryMirror(in)
		if err != nil || got != want {
			t.Errorf("ParseRegistryMirror(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"docker.io", "=mirror", "docker.io=", "docker.io=https://mirror", "docker.io=mirror/", "docker.io=mirror//x", "docker.io=mirror/x:1", "docker.io=mir ror"} {
		if _, err := ParseRegistryMirror(in); !errors.Is(err, ErrInvalidSpec) {
			t.Errorf("ParseRegistryMirror(%q): err = %v, want ErrInvalidSpec", in, err)
		}
	}
}

func TestSpecMirrorsAndConvert(t *testing.T) {
	doc := "apiVersion: ferry.dev/v1alpha1\nkind: TransferSpec\nconvertOCI: true\nregistryMirrors:\n" +
		"  - {source: docker.io, mirror: mirror.example/hub}\nimages: [nginx]\n"
	s, err := ParseTransferSpec([]byte(doc), "")
	if err != nil {
		t.Fatal(err)
	}
	if !s.ConvertOCI || len(s.RegistryMirrors) != 1 {
		t.Fatalf("parsed %+v", s)
	}
	flags := NewTransferSpec()
	flags.RegistryMirrors = []RegistryMirror{{Source: "docker.io", Mirror: "other.example"}, {Source: "quay.io", Mirror: "q.example"}}
	s.Merge(flags)
	if len(s.RegistryMirrors) != 2 || s.RegistryMirrors[0].Mirror != "other.example" {
		t.Errorf("a flag's mirror should replace the spec's for the same source: %+v", s.RegistryMirrors)
	}
	twice := strings.Replace(doc, "images:", "  - {source: docker.io, mirror: b.example}\nimages:", 1)
	if _, err := ParseTransferSpec([]byte(twice), ""); !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), "twice") {
		t.Errorf("two mirrors for one source: %v", err)
	}
}

func TestBOMConversions(t *testing.T) {
	b := validBOM()
	from := "sha256:" + strings.Repeat("d", 64)
	b.Artifacts[0].Converted = []Conversion{{From: from, FromMediaType: MediaTypeDockerManifest, To: b.Artifacts[0].Digest, MediaType: MediaTypeOCIManifest}}
	data, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseBOM(data)
	if err != nil {
		t.Fatal(err)
	}
	if f, ok := got.Artifacts[0].ConvertedFrom(b.Artifacts[0].Digest); !ok || f != from {
		t.Errorf("ConvertedFrom = %q, %v", f, ok)
	}
	// An older bill of materials, without the new fields, still parses, and
	// one without conversions does not name the field at all.
	if plain, _ := validBOM().Marshal(); strings.Contains(string(plain), "converted") || strings.Contains(string(plain), "mirror") {
		t.Errorf("empty conversions are written:\n%s", plain)
	}
	for name, c := range map[string]Conversion{
		"bad from":       {From: "sha256:x", To: b.Artifacts[0].Digest},
		"not in closure": {From: from, To: "sha256:" + strings.Repeat("e", 64)},
	} {
		bad := validBOM()
		bad.Artifacts[0].Converted = []Conversion{c}
		data, _ := bad.Marshal()
		if _, err := ParseBOM(data); !errors.Is(err, ErrInvalidBOM) {
			t.Errorf("%s: err = %v, want ErrInvalidBOM", name, err)
		}
	}
}

// Spellings of one source are one source: Docker Hub's aliases, case.
func TestSpecMirrorSameSourceSpelledTwice(t *testing.T) {
	for _, pair := range [][2]string{
		{"docker.io", "index.docker.io"},
		{"docker.io/bitnami", "index.docker.io/bitnami"},
		{"registry-1.docker.io", "docker.io"},
		{"Quay.IO/org", "quay.io/org"},
		{"ghcr.io/Team", "ghcr.io/team"},
	} {
		s := NewTransferSpec()
		s.Images = []ImageSpec{{Ref: "nginx"}}
		s.RegistryMirrors = []RegistryMirror{{Source: pair[0], Mirror: "a.example"}, {Source: pair[1], Mirror: "b.example"}}
		err := s.Validate()
		if !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), "twice") {
			t.Errorf("mirrors for %s and %s: err = %v, want given twice", pair[0], pair[1], err)
		}
	}
	// Different sources, and a path under a source, are not duplicates.
	s := NewTransferSpec()
	s.Images = []ImageSpec{{Ref: "nginx"}}
	s.RegistryMirrors = []RegistryMirror{{Source: "docker.io", Mirror: "a.example"}, {Source: "docker.io/bitnami", Mirror: "b.example"}, {Source: "quay.io", Mirror: "c.example"}}
	if err := s.Validate(); err != nil {
		t.Errorf("distinct sources refused: %v", err)
	}
	// A flag for another spelling of a spec file's source replaces it.
	flags := NewTransferSpec()
	flags.RegistryMirrors = []RegistryMirror{{Source: "index.docker.io", Mirror: "flag.example"}}
	s.Merge(flags)
	if len(s.RegistryMirrors) != 3 || s.RegistryMirrors[0].Mirror != "flag.example" {
		t.Errorf("merge kept both spellings: %+v", s.RegistryMirrors)
	}
}

func TestRegistryMirrorSourceKey(t *testing.T) {
	for in, want := range map[string]string{
		"docker.io":                 "docker.io",
		"index.docker.io/library":   "docker.io/library",
		"Registry.Example.com:5000": "registry.example.com:5000",
		"quay.io/org/":              "quay.io/org",
	} {
		if got := (RegistryMirror{Source: in}).SourceKey(); got != want {
			t.Errorf("SourceKey(%q) = %q, want %q", in, got, want)
		}
	}
}
