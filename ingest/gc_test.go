package ingest

import (
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"testing"

	"github.com/ferrytool/ferry/internal/testbed"
	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/registry"
)

// After a push of artifacts collected by digest only (an image, and an
// index over a Docker manifest, which makes the run probe the registry's
// Docker rules), every manifest pushed is reachable from a tag, found by
// walking the catalog as a garbage collector would, and the catalog lists
// the destination repositories and nothing else: the probe left no trace.
func TestEveryPushedManifestIsTagged(t *testing.T) {
	reg := testbed.StartRegistry(t, testbed.RegistryOptions{})
	bom, src := twoImages(t)
	mixed, msrc, _ := ociIndexOverDocker(t)
	for _, b := range mixed.Blobs {
		if _, dup := src[b.Digest]; !dup {
			bom.Blobs = append(bom.Blobs, b)
		}
	}
	bom.Artifacts = append(bom.Artifacts, mixed.Artifacts...)
	for d, b := range msrc {
		src[d] = b
	}
	bom.Artifacts[1].Dest.Tag = "" // "two" by digest only
	bom.Artifacts[2].Dest.Tag = "" // the index too
	opts := CopyOptions{Client: registry.Options{PlainHTTP: true}, Validate: true}
	rep, err := push(t, bom, src, reg.Host+"/base", opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); err != nil || rep.DockerProbe == nil || rep.DockerProbe.Result != ProbeAccepts {
		t.Fatalf("push: %v, probe %+v", err, rep.DockerProbe)
	}

	c := testConnect(t, reg.Host)
	catalog, err := c.Catalog(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(catalog)
	if got, want := strings.Join(catalog, " "), "base/images/mixed base/images/one base/images/two"; got != want {
		t.Errorf("catalog %q, want the destination repositories only, %q", got, want)
	}
	reachable := map[string]bool{} // repo@digest
	var walk func(repo, ref string)
	walk = func(repo, ref string) {
		data, mt, err := c.FetchManifest(t.Context(), repo, ref)
		if err != nil {
			t.Fatalf("%s:%s: %v", repo, ref, err)
		}
		reachable[repo+"@"+digestOf(data)] = true
		if mt == manifest.MediaTypeOCIIndex || mt == manifest.MediaTypeDockerList {
			var idx struct {
				Manifests []manifest.Descriptor `json:"manifests"`
			}
			json.Unmarshal(data, &idx)
			for _, m := range idx.Manifests {
				walk(repo, m.Digest)
			}
		}
	}
	for _, repo := range catalog {
		tags, err := c.Tags(t.Context(), repo)
		if err != nil {
			t.Fatal(err)
		}
		for _, tag := range tags {
			if strings.HasPrefix(tag, "sha256-") {
				t.Errorf("%s:%s collides with the referrers tag schema", repo, tag)
			}
			walk(repo, tag)
		}
	}
	blobs := map[string]manifest.Blob{}
	for _, b := range bom.Blobs {
		blobs[b.Digest] = b
	}
	for _, a := range bom.Artifacts {
		repo := "base/" + a.Dest.Repository
		for _, d := range a.Blobs {
			if b := blobs[d]; manifest.IsManifest(b.MediaType) && !reachable[repo+"@"+d] {
				t.Errorf("manifest %s of %s is reachable from no tag in %s", d, a.Name, repo)
			}
		}
		if a.Dest.Tag == "" {
			if got, _ := c.ManifestDigest(t.Context(), repo, DigestTag(a.Digest)); got != a.Digest {
				t.Errorf("%s collected by digest: tag %s resolves to %q", a.Name, DigestTag(a.Digest), got)
			}
		}
	}
	if v := rep.Validation; v == nil || !v.OK() || len(v.Artifacts) != 3 {
		t.Errorf("validation: %+v", v)
	}
}

// Validation flags a manifest that is in the registry by digest but
// reachable from no tag, as an artifact collected by digest only and
// pushed untagged would be.
func TestValidationFlagsUntaggedManifests(t *testing.T) {
	reg := testbed.StartRegistry(t, testbed.RegistryOptions{})
	bom, src := twoImages(t)
	opts := config{Registry: reg.Host + "/base", PlainHTTP: true}
	if _, err := push(t, bom, src, opts.Registry, CopyOptions{Client: registry.Options{PlainHTTP: true}}); err != nil {
		t.Fatal(err)
	}
	// The same content as though collected by digest only: its digest tag
	// was never set.
	bom.Artifacts[0].Dest.Tag = ""
	dest, _ := parseDestination(opts.Registry)
	plans, err := planArtifacts(bom, dest, nil)
	if err != nil {
		t.Fatal(err)
	}
	tagDigestOnly(plans, dest)
	opts.defaults()
	c, err := connect(t.Context(), &opts, dest, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := validate(t.Context(), c, plans, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a := v.Artifacts[0]; a.Status != ValidUntagged || !errors.Is(v.Err(), ErrValidation) {
		t.Errorf("untagged manifest: %+v, %v", a, v.Err())
	}
	if a := v.Artifacts[1]; a.Status != ValidOK {
		t.Errorf("tagged one: %+v", a)
	}
}
