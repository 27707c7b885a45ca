package collect

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/ferrytool/ferry/internal/testbed"
	"github.com/ferrytool/ferry/manifest"
)

func TestMirrorMatch(t *testing.T) {
	ms, err := newMirrors([]manifest.RegistryMirror{
		{Source: "docker.io", Mirror: "mirror.example/hub"},
		{Source: "docker.io/bitnami", Mirror: "bitnami.example"},
		{Source: "quay.io/org", Mirror: "mirror.example:5000/quay/org"},
		{Source: "GHCR.io/Team", Mirror: "ghcr-mirror.example"}, // spelled as a user might
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
		"ghcr.io/team/app:1":                "ghcr-mirror.example/app",
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

// silentRegistry accepts connections and never answers, as a source behind
// a firewall that drops traffic looks to a workstation that only reaches
// its mirror. It counts the connections.
func silentRegistry(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var dials atomic.Int64
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			dials.Add(1)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String(), &dials
}

// Several images of a source that does not answer: each one is taken from
// the mirror with its own warning, and the source is asked once, not once
// per image (nor once per parallel job).
func TestMirrorUnreachableSourceAskedOnce(t *testing.T) {
	mirror := testbed.StartSourceRegistry(t)
	source, dials := silentRegistry(t)
	spec := manifest.NewTransferSpec()
	spec.RegistryMirrors = []manifest.RegistryMirror{{Source: source, Mirror: mirror.Host + "/cache"}}
	const n = 5
	for i := range n {
		testbed.PushRandomImage(t, mirror, fmt.Sprintf("cache/app%d:1", i), 1, 4<<10)
		spec.Images = append(spec.Images, manifest.ImageSpec{Ref: fmt.Sprintf("%s/app%d:1", source, i)})
	}
	plan, err := MakePlan(t.Context(), Options{
		Spec: spec, PlainHTTP: true, CacheDir: t.TempDir(), Jobs: 4,
		SourceCheckTimeout: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.BOM.Artifacts) != n {
		t.Fatalf("%d artifacts, want %d", len(plan.BOM.Artifacts), n)
	}
	for i := range n {
		img := fmt.Sprintf("%s/app%d:1", source, i)
		found := 0
		for _, w := range plan.Warnings {
			if strings.Contains(w, "image "+img+":") && strings.Contains(w, "taken on trust") {
				found++
			}
		}
		if found != 1 {
			t.Errorf("%s: %d warnings that the mirror was trusted, want 1; warnings:\n%s", img, found, strings.Join(plan.Warnings, "\n"))
		}
	}
	// One check of a plain-HTTP registry may race https against http.
	if d := dials.Load(); d < 1 || d > 2 {
		t.Errorf("the silent source was dialled %d times for %d images; want one check (1 or 2 connections)", d, n)
	}
}

// A source that answers that a tag does not exist cannot vouch for what a
// mirror serves under it: the mirror's content is refused, with both named,
// instead of being taken on trust as when the source does not answer.
func TestMirrorRefusedWhenSourceSaysTagUnknown(t *testing.T) {
	source := testbed.StartSourceRegistry(t)
	mirror := testbed.StartSourceRegistry(t)
	testbed.PushRandomImage(t, source, "apps/other:1", 1, 4<<10) // the repository exists, the tag does not
	testbed.PushRandomImage(t, mirror, "cache/apps/web:1", 1, 4<<10)
	spec := manifest.NewTransferSpec()
	spec.RegistryMirrors = []manifest.RegistryMirror{{Source: source.Host, Mirror: mirror.Host + "/cache"}}
	for _, ref := range []string{"apps/web:1", "apps/other:2"} {
		spec.Images = []manifest.ImageSpec{{Ref: source.Host + "/" + ref}}
		if ref == "apps/other:2" {
			testbed.PushRandomImage(t, mirror, "cache/apps/other:2", 1, 4<<10)
		}
		_, err := MakePlan(t.Context(), Options{Spec: spec, PlainHTTP: true, CacheDir: t.TempDir()})
		if !errors.Is(err, ErrMirrorMismatch) {
			t.Fatalf("%s: %v, want %v", ref, err, ErrMirrorMismatch)
		}
		repo, tag, _ := strings.Cut(ref, ":")
		for _, want := range []string{source.Host + "/" + ref, mirror.Host + "/cache/" + repo + ":" + tag, "does not exist"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error does not name %q: %v", ref, want, err)
			}
		}
	}
}

// TestSourceSilence: what a failed check of a mirrored tag at its source
// means. Only a source that could not say lets the mirror in, with a
// warning; one that says the tag does not exist, or answers otherwise,
// refuses it.
func TestSourceSilence(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		trusted bool
		is      error
	}{
		{"no answer", fmt.Errorf("dial tcp: connection refused"), true, nil},
		{"unavailable", &transport.Error{StatusCode: http.StatusServiceUnavailable}, true, nil},
		{"too many requests", &transport.Error{StatusCode: http.StatusTooManyRequests}, true, nil},
		{"credentials refused", &transport.Error{StatusCode: http.StatusUnauthorized}, true, nil},
		{"tag unknown", &transport.Error{StatusCode: http.StatusNotFound, Errors: []transport.Diagnostic{{Code: transport.ManifestUnknownErrorCode}}}, false, ErrMirrorMismatch},
		{"bad request", &transport.Error{StatusCode: http.StatusBadRequest}, false, ErrSource},
	} {
		warning, err := sourceSilence("docker.io/library/app:1", "1", "mirror.example/library/app:1", "sha256:"+hex64(), tc.err)
		if tc.trusted {
			if err != nil || !strings.Contains(warning, "taken on trust") {
				t.Errorf("%s: warning %q, err %v; want trust with a warning", tc.name, warning, err)
			}
			continue
		}
		if !errors.Is(err, tc.is) || warning != "" {
			t.Errorf("%s: warning %q, err %v; want %v", tc.name, warning, err, tc.is)
		}
	}
}
