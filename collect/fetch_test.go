package collect

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrytool/ferry/internal/testbed"
	"github.com/ferrytool/ferry/manifest"
)

// fixedSigner signs every bill of materials alike: what is tested here is
// not the signature.
type fixedSigner struct{}

func (fixedSigner) SignBOM(context.Context, []byte) ([]byte, error) { return []byte("sig"), nil }

// An image's blobs start downloading as soon as it is resolved, not when
// the whole plan is: the source holds its answer for one image's manifest
// until a layer of the other image has been asked for (or, failing that,
// for 20 seconds), and the collect must not have needed the wait.
func TestDownloadsStartBeforeThePlanIsDone(t *testing.T) {
	src := testbed.StartSourceRegistry(t)
	first := testbed.PushRandomImage(t, src, "apps/first:1", 1, 64<<10)
	testbed.PushRandomImage(t, src, "apps/second:1", 1, 64<<10)
	layers, _ := first.Layers()
	ld, _ := layers[0].Digest()

	var once sync.Once
	layerAsked := make(chan struct{})
	var mu sync.Mutex
	var waited time.Duration
	proxy := testbed.StartProxy(t, src, testbed.ProxyOptions{Respond: func(r *http.Request, code int, _ http.Header) int {
		switch {
		case strings.HasSuffix(r.URL.Path, "/apps/first/blobs/"+ld.String()):
			once.Do(func() { close(layerAsked) })
		case strings.Contains(r.URL.Path, "/apps/second/manifests/"):
			start := time.Now()
			select {
			case <-layerAsked:
			case <-time.After(20 * time.Second):
			}
			mu.Lock()
			waited = max(waited, time.Since(start))
			mu.Unlock()
		}
		return code
	}})
	spec := manifest.NewTransferSpec()
	spec.Images = []manifest.ImageSpec{{Ref: proxy.Host + "/apps/first:1"}, {Ref: proxy.Host + "/apps/second:1"}}
	_, err := Collect(t.Context(), Options{Spec: spec, PlainHTTP: true, CacheDir: t.TempDir(), Dir: t.TempDir(), Name: "a",
		Signer: fixedSigner{}, Jobs: 2, Referrers: ReferrersNone})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-layerAsked:
	default:
		t.Fatal("the first image's layer was never asked for")
	}
	if waited >= 20*time.Second {
		t.Errorf("the second image's manifest waited %s for a download that only started after the plan", waited)
	}
}
