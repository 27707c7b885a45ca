package collect

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ferrytool/ferry/internal/digestio"
	"github.com/ferrytool/ferry/internal/testbed"
	"github.com/ferrytool/ferry/manifest"
)

// A download cut off by the network and made good by the reader's retry
// leaves no failure behind: Err speaks only of blobs still failing, so a
// later destination error is not blamed on the source.
func TestDirectRetriedDownloadClearsFailure(t *testing.T) {
	src := testbed.StartSourceRegistry(t)
	img := testbed.PushRandomImage(t, src, "apps/web:1", 1, 256<<10)
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	// Every other GET of the layer is cut in the middle of its body: the
	// first fails, the retry gets through.
	proxy := testbed.StartProxy(t, src, testbed.ProxyOptions{Reset: 1, MaxFaultsInARow: 1,
		Only: func(r *http.Request) bool {
			return r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+ld.String())
		}})
	spec := manifest.NewTransferSpec()
	spec.Images = []manifest.ImageSpec{{Ref: proxy.Host + "/apps/web:1"}}
	d, err := OpenDirect(t.Context(), Options{Spec: spec, PlainHTTP: true, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var layer manifest.Blob
	for _, b := range d.Plan.BOM.Blobs {
		if b.Digest == ld.String() {
			layer = b
		}
	}
	if layer.Digest == "" {
		t.Fatalf("layer %s is not in the plan", ld)
	}
	read := func() error {
		rc, err := d.OpenBlob(t.Context(), layer)
		if err != nil {
			return err
		}
		defer rc.Close()
		_, err = io.Copy(io.Discard, digestio.NewReader(rc, layer.Digest, layer.Size))
		return err
	}

	if err := read(); err == nil {
		t.Fatal("the first read got through a cut connection")
	}
	if err := d.Err(); !errors.Is(err, ErrSource) {
		t.Fatalf("after the failed download, Err is %v, want a source error", err)
	}
	if err := read(); err != nil {
		t.Fatalf("the retry: %v", err)
	}
	if err := d.Err(); err != nil {
		t.Errorf("after a retry downloaded the blob, Err still reports %v", err)
	}
	if f := proxy.Faults()["reset"]; f != 1 {
		t.Errorf("%d resets injected, want 1", f)
	}
	// Closing early, as sync does on a failed push, and again later is fine.
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}
