package collect

import (
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/ferrytool/ferry/internal/testbed"
	"github.com/ferrytool/ferry/manifest"
)

// Two references pinned by digest alone to one repository are two manifests
// side by side at the destination; two sources whose repository and tag
// land on one destination tag with different content are a conflict.
func TestPlanDestinationConflicts(t *testing.T) {
	a := testbed.StartSourceRegistry(t)
	b := testbed.StartSourceRegistry(t)
	testbed.PushRandomImage(t, a, "apps/web:1", 1, 4<<10)
	testbed.PushRandomImage(t, a, "apps/web:2", 1, 4<<10)
	testbed.PushRandomImage(t, b, "apps/web:1", 1, 4<<10)
	d1, d2 := headDigest(t, a, "apps/web:1"), headDigest(t, a, "apps/web:2")
	plan := func(refs ...string) (*Plan, error) {
		spec := manifest.NewTransferSpec()
		for _, r := range refs {
			spec.Images = append(spec.Images, manifest.ImageSpec{Ref: r})
		}
		return MakePlan(t.Context(), Options{Spec: spec, PlainHTTP: true, CacheDir: t.TempDir()})
	}

	p, err := plan(a.Host+"/apps/web@"+d1, a.Host+"/apps/web@"+d2)
	if err != nil {
		t.Fatalf("two digests in one repository: %v", err)
	}
	got := map[string]bool{}
	for _, art := range p.BOM.Artifacts {
		if art.Dest.Repository != "images/apps/web" || art.Dest.Tag != "" {
			t.Errorf("%s goes to %s", art.Name, art.Dest)
		}
		got[art.Digest] = true
	}
	if len(p.BOM.Artifacts) != 2 || !got[d1] || !got[d2] {
		t.Errorf("artifacts %+v, want %s and %s", p.BOM.Artifacts, d1, d2)
	}

	// The digest alone and its tag pinned to it: the tag and the digest
	// side by side, not a conflict.
	if p, err := plan(a.Host+"/apps/web@"+d1, a.Host+"/apps/web:1@"+d1); err != nil || len(p.BOM.Artifacts) != 2 {
		t.Errorf("a digest and the same digest with its tag: %v", err)
	}

	_, err = plan(a.Host+"/apps/web:1", b.Host+"/apps/web:1")
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("two sources to images/apps/web:1: %v, want %v", err, ErrConflict)
	}
	for _, want := range []string{a.Host + "/apps/web:1", b.Host + "/apps/web:1", "images/apps/web:1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("conflict error does not name %s: %v", want, err)
		}
	}
}

func headDigest(t *testing.T, reg *testbed.Registry, repoTag string) string {
	t.Helper()
	spec := manifest.NewTransferSpec()
	spec.Images = []manifest.ImageSpec{{Ref: reg.Host + "/" + repoTag}}
	p, err := MakePlan(t.Context(), Options{Spec: spec, PlainHTTP: true, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return p.BOM.Artifacts[0].Digest
}

// A tag the cache never resolved costs one GET of its manifest; once the
// cache knows it, one HEAD (which registries counting pulls do not count)
// and nothing else while it does not move; when it moves, the new
// manifest is fetched.
func TestTagManifestRequests(t *testing.T) {
	src := testbed.StartSourceRegistry(t)
	testbed.PushRandomImage(t, src, "apps/web:1", 1, 4<<10)
	var mu sync.Mutex
	var asked []string
	proxy := testbed.StartProxy(t, src, testbed.ProxyOptions{Respond: func(r *http.Request, code int, _ http.Header) int {
		if strings.Contains(r.URL.Path, "/manifests/") {
			mu.Lock()
			asked = append(asked, r.Method+" "+r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:])
			mu.Unlock()
		}
		return code
	}})
	cache := t.TempDir()
	plan := func() string {
		t.Helper()
		mu.Lock()
		asked = nil
		mu.Unlock()
		spec := manifest.NewTransferSpec()
		spec.Images = []manifest.ImageSpec{{Ref: proxy.Host + "/apps/web:1"}}
		p, err := MakePlan(t.Context(), Options{Spec: spec, PlainHTTP: true, CacheDir: cache, Referrers: ReferrersNone})
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if got := strings.Join(asked, ", "); len(p.BOM.Artifacts) == 1 {
			return got
		}
		t.Fatalf("artifacts %+v", p.BOM.Artifacts)
		return ""
	}
	if got := plan(); got != "GET 1" {
		t.Errorf("first plan asked %q, want one GET of the tag", got)
	}
	if got := plan(); got != "HEAD 1" {
		t.Errorf("second plan asked %q, want one HEAD of the tag", got)
	}
	moved := headDigest(t, src, "apps/web:1")
	testbed.PushRandomImage(t, src, "apps/web:1", 1, 4<<10)
	if got := plan(); got != "HEAD 1, GET "+headDigest(t, src, "apps/web:1") {
		t.Errorf("after the tag moved from %s, the plan asked %q, want a HEAD and a GET of the new digest", moved, got)
	}
}
