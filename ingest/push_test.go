package ingest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/ferrytool/ferry/internal/digestio"
	"github.com/ferrytool/ferry/internal/testbed"
	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/registry"
	"github.com/ferrytool/ferry/store"
)

type mapSource map[string][]byte

func (m mapSource) OpenBlob(_ context.Context, b manifest.Blob) (io.ReadCloser, error) {
	data, ok := m[b.Digest]
	if !ok {
		return nil, fmt.Errorf("no blob %s", b.Digest)
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

// push copies a bill of materials served by src the way sync does, with
// the options an ingest would use.
func push(t *testing.T, bom *manifest.BOM, src mapSource, dest string, opts CopyOptions) (*Report, error) {
	t.Helper()
	dst, err := registry.ParseDestination(dest)
	if err != nil {
		t.Fatal(err)
	}
	return Copy(t.Context(), graphOf{bom: bom, src: src}, dst, opts)
}

// graphOf is a bill of materials with the blobs that serve it.
type graphOf struct {
	bom *manifest.BOM
	src mapSource
}

func (g graphOf) Graph() *manifest.BOM { return g.bom }
func (g graphOf) OpenBlob(ctx context.Context, b manifest.Blob) (io.ReadCloser, error) {
	return g.src.OpenBlob(ctx, b)
}

// twoImages is a bill of materials of two single-layer images sharing their
// config, with the blobs to serve it.
func twoImages(t *testing.T) (*manifest.BOM, mapSource) {
	t.Helper()
	return images(t, "one", "two")
}

// images is a bill of materials of single-layer images, one per name,
// sharing their config, with the blobs to serve it.
func images(t *testing.T, names ...string) (*manifest.BOM, mapSource) {
	t.Helper()
	src := mapSource{}
	add := func(data []byte) manifest.Descriptor {
		d := digestio.FromBytes(data)
		src[d] = data
		return manifest.Descriptor{Digest: d, Size: int64(len(data))}
	}
	bom := manifest.NewBOM("push-test", testNow())
	cfg := add([]byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`))
	cfg.MediaType = "application/vnd.oci.image.config.v1+json"
	bom.Blobs = append(bom.Blobs, manifest.Blob{Digest: cfg.Digest, Size: cfg.Size, MediaType: cfg.MediaType})
	for i, name := range names {
		layerData, _ := randomBlob(t, 32<<10+i)
		layer := add(layerData)
		layer.MediaType = "application/vnd.oci.image.layer.v1.tar+gzip"
		raw, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": manifest.MediaTypeOCIManifest, "config": cfg, "layers": []manifest.Descriptor{layer}})
		m := add(raw)
		bom.Blobs = append(bom.Blobs, manifest.Blob{Digest: layer.Digest, Size: layer.Size, MediaType: layer.MediaType},
			manifest.Blob{Digest: m.Digest, Size: m.Size, MediaType: manifest.MediaTypeOCIManifest})
		bom.Artifacts = append(bom.Artifacts, manifest.Artifact{Kind: manifest.KindImage, Name: name, Digest: m.Digest, Size: m.Size,
			MediaType: manifest.MediaTypeOCIManifest, Dest: manifest.Destination{Repository: "images/" + name, Tag: "1"},
			Blobs: []string{cfg.Digest, layer.Digest, m.Digest}})
	}
	return bom, src
}

func TestPushFromABlobSource(t *testing.T) {
	reg := testbed.StartRegistry(t, testbed.RegistryOptions{})
	bom, src := twoImages(t)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	opts := CopyOptions{Client: registry.Options{PlainHTTP: true, Transport: tr}, Validate: true}
	rep, err := push(t, bom, src, reg.Host+"/base", opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); err != nil || rep.Blobs.Mounted != 1 || rep.Validation == nil || !rep.Validation.OK() {
		t.Fatalf("report: %v %+v %+v", err, rep.Blobs, rep.Validation)
	}

	// A source serving other bytes than the bill of materials says: that
	// image is refused, the other goes in.
	bom, src = twoImages(t)
	for _, b := range bom.Blobs {
		if b.Size > 30<<10 {
			src[b.Digest] = append([]byte{'x'}, src[b.Digest][1:]...)
			break
		}
	}
	rep, err = push(t, bom, src, reg.Host+"/base", opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); !errors.Is(err, ErrRefused) || rep.Artifacts[0].State != StateRefused || rep.Artifacts[1].State != StatePushed {
		t.Fatalf("tampered source: %v %+v", err, rep.Artifacts)
	}
}

func randomBlob(t *testing.T, size int) ([]byte, manifest.Blob) {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	return data, manifest.Blob{Digest: digestio.FromBytes(data), Size: int64(size), MediaType: "application/octet-stream"}
}

// testConnect connects to a test bed registry over plain HTTP, for checks
// of what a run left there.
func testConnect(t *testing.T, host string, repos ...string) *registry.Client {
	t.Helper()
	d, err := registry.ParseDestination(host)
	if err != nil {
		t.Fatal(err)
	}
	c, err := registry.Connect(t.Context(), d, repos, registry.Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Against the test bed's TLS registry with basic auth (a bcrypt check per
// request, as on Zot), a push costs: the ping and the credential check,
// what each artifact's tag holds (a HEAD each, or with four artifacts or
// more one catalog request, which spares the HEADs of repositories that
// do not exist yet), POST and PUT per blob uploaded (this registry takes
// no single-request upload), one POST per mount, one PUT per manifest,
// and the catalog for validation, which takes the 201s of the manifest
// PUTs as its answer. Pushed again, only the tags are asked.
func TestPushRequestCount(t *testing.T) {
	for _, tc := range []struct {
		names         []string
		first, second int64
	}{
		// 2 to connect, 2 tag HEADs, config: POST+PUT and one mount,
		// layers: 2×(POST+PUT), 2 manifest PUTs, 1 catalog; then 2 to
		// connect, 2 tag HEADs, the catalog and 2 tags to validate.
		{[]string{"one", "two"}, 2 + 2 + 3 + 4 + 2 + 1, 2 + 2 + 1 + 2},
		// 2 to connect, 1 catalog instead of 4 tag HEADs, config: POST+PUT
		// and 3 mounts, layers: 4×(POST+PUT), 4 manifest PUTs, 1 catalog;
		// then the catalog lists every repository, so every tag is asked.
		{[]string{"a", "b", "c", "d"}, 2 + 1 + 5 + 8 + 4 + 1, 2 + 1 + 4 + 1 + 4},
	} {
		t.Run(strings.Join(tc.names, ","), func(t *testing.T) {
			reg := testbed.StartRegistry(t, testbed.RegistryOptions{TLS: true, Username: "u", Password: "p"})
			bom, src := images(t, tc.names...)
			opts := CopyOptions{Validate: true, Client: registry.Options{Transport: reg.HTTPClient().Transport,
				Auth: &authn.Basic{Username: "u", Password: "p"}}}
			for i, want := range []int64{tc.first, tc.second} {
				rep, err := push(t, bom, src, reg.Host+"/base", opts)
				if err != nil {
					t.Fatal(err)
				}
				if err := rep.Err(); err != nil {
					t.Fatal(err)
				}
				if rep.Requests != want {
					t.Errorf("push %d: %d requests, want %d (blobs %+v)", i+1, rep.Requests, want, rep.Blobs)
				}
				if i == 1 {
					for _, a := range rep.Artifacts {
						if a.State != StatePresent || rep.Blobs.Uploaded+rep.Blobs.Mounted != 0 {
							t.Errorf("push again: %s is %s (blobs %+v), want %s and nothing sent", a.Name, a.State, rep.Blobs, StatePresent)
						}
					}
				}
			}
		})
	}
}

// A blob the journal recorded but the registry lost (a registry restored
// or emptied since) is not asked about before the manifest; the manifest
// PUT that the registry refuses for it puts the blob back and tries again.
func TestJournalledBlobMissingIsPutBack(t *testing.T) {
	reg := testbed.StartRegistry(t, testbed.RegistryOptions{})
	bom, src := twoImages(t)
	j, err := store.OpenJournal(filepath.Join(t.TempDir(), "journal.db"), store.JournalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	opts := CopyOptions{Client: registry.Options{PlainHTTP: true}, Journal: j, Validate: true}
	if _, err := push(t, bom, src, reg.Host+"/base", opts); err != nil {
		t.Fatal(err)
	}
	one := bom.Artifacts[0]
	layer := one.Blobs[1]
	c := testConnect(t, reg.Host, "base/images/one")
	if err := c.DeleteManifest(t.Context(), "base/images/one", one.Digest); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteBlob(t.Context(), "base/images/one", layer); err != nil {
		t.Fatal(err)
	}
	rep, err := push(t, bom, src, reg.Host+"/base", opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); err != nil || rep.Artifacts[0].State != StatePushed {
		t.Fatalf("second push: %v %+v", err, rep.Artifacts)
	}
	if ok, err := c.BlobExists(t.Context(), "base/images/one", layer); err != nil || !ok {
		t.Errorf("layer %s not put back: %v", layer, err)
	}
}
