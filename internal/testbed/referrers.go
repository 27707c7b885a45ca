package testbed

import (
	"bytes"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// StartReferrersRegistry starts go-containerregistry's registry in process,
// plain HTTP and anonymous, with the OCI 1.1 referrers API on: the stand-in
// for a source that lists referrers itself, as Zot and most public
// registries do (the Distribution registry does not). Its content lives in
// memory; the test's cleanup stops it.
func StartReferrersRegistry(t testing.TB) *Registry {
	t.Helper()
	h := ggcrregistry.New(ggcrregistry.WithReferrersSupport(true), ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(h)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	r := &Registry{Host: strings.TrimPrefix(srv.URL, "http://"), transport: tr, closer: srv.Close}
	t.Cleanup(r.Stop)
	return r
}

// PushReferrer pushes an OCI 1.1 artifact manifest with artifactType, an
// empty config and one layer holding data (media type layerType), whose
// subject is the manifest subject in repo. It returns the referrer's
// descriptor. On a registry without the referrers API, go-containerregistry
// maintains the referrers tag schema's index instead.
func PushReferrer(t testing.TB, reg *Registry, repo string, subject v1.Descriptor, artifactType, layerType string, data []byte, annotations map[string]string) v1.Descriptor {
	t.Helper()
	ctx := reg.Ref(t, repo+"@"+subject.Digest.String()).Context()
	opts := append(reg.Options(), remote.WithContext(t.Context()))
	cfg := static.NewLayer([]byte("{}"), types.MediaType("application/vnd.oci.empty.v1+json"))
	layer := static.NewLayer(data, types.MediaType(layerType))
	var descs []v1.Descriptor
	for _, l := range []v1.Layer{cfg, layer} {
		if err := remote.WriteLayer(ctx, l, opts...); err != nil {
			t.Fatalf("testbed: pushing referrer blob to %s: %v", ctx, err)
		}
		d, err := partial(l)
		if err != nil {
			t.Fatalf("testbed: %v", err)
		}
		descs = append(descs, d)
	}
	sub := subject
	sub.Platform, sub.Annotations, sub.URLs, sub.ArtifactType = nil, nil, nil, ""
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  artifactType,
		Config:        descs[0],
		Layers:        descs[1:],
		Subject:       &sub,
		Annotations:   annotations,
	}
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatalf("testbed: %v", err)
	}
	digest, size, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("testbed: %v", err)
	}
	ref := ctx.Digest(digest.String())
	if err := remote.Put(ref, rawManifest{data: raw, mediaType: types.OCIManifestSchema1}, opts...); err != nil {
		t.Fatalf("testbed: pushing referrer %s: %v", ref, err)
	}
	return v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: digest, Size: size, ArtifactType: artifactType, Annotations: annotations}
}

// Descriptor returns the descriptor of the manifest at repoRef ("repo:tag" or
// "repo@digest") in reg.
func Descriptor(t testing.TB, reg *Registry, repoRef string) v1.Descriptor {
	t.Helper()
	ref := reg.Ref(t, repoRef)
	d, err := remote.Head(ref, append(reg.Options(), remote.WithContext(t.Context()))...)
	if err != nil {
		t.Fatalf("testbed: HEAD %s: %v", ref, err)
	}
	return *d
}

func partial(l v1.Layer) (v1.Descriptor, error) {
	d, err := l.Digest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	size, err := l.Size()
	if err != nil {
		return v1.Descriptor{}, err
	}
	mt, err := l.MediaType()
	if err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: mt, Digest: d, Size: size}, nil
}

// rawManifest pushes manifest bytes exactly as given.
type rawManifest struct {
	data      []byte
	mediaType types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.data, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mediaType, nil }
