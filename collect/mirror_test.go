package collect

import (
	"testing"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/ferrytool/ferry/manifest"
)

func TestMirrorMatch(t *testing.T) {
	ms, err := newMirrors([]manifest.RegistryMirror{
		{Source: "docker.io", Mirror: "mirror.example/hub"},
		{Source: "docker.io/bitnami", Mirror: "bitnami.example"},
		{Source: "quay.io/org", Mirror: "mirror.example:5000/quay/org"},
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	for ref, want := range map[string]string{
		"nginx:1.27":                        "mirror.example/hub/library/nginx",
		"index.docker.io/library/redis":     "mirror.example/hub/library/redis",
		"docker.io/bitnami/redis:7":         "bitnami.example/redis",
		"docker.io/bitnamilegacy/redis:7":   "mirror.example/hub/bitnamilegacy/redis", // whole segments only
		"quay.io/org/app@sha256:" + hex64(): "mirror.example:5000/quay/org/app",
		"quay.io/other/app:1":               "",
		"ghcr.io/x/y:1":                     "",
	} {
		ref, err := name.ParseReference(ref)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := ms.match(ref.Context())
		if want == "" {
			if ok {
				t.Errorf("%s: mirrored to %s, want no mirror", ref, got)
			}
			continue
		}
		if !ok || got.Name() != want {
			t.Errorf("%s: mirror %q (%v), want %s", ref, got.Name(), ok, want)
		}
	}
}

func hex64() string {
	b := make([]byte, 64)
	for i := range b {
		b[i] = 'a'
	}
	return string(b)
}
