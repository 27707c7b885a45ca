package ingest

import (
	"encoding/json"
	"testing"

	"github.com/ferrytool/ferry/internal/digestio"
	"github.com/ferrytool/ferry/internal/testbed"
	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/registry"
)

// addSBOM attaches an SPDX document to the bill of materials' first image
// by the subject field, as an OCI 1.1 referrer.
func addSBOM(t *testing.T, bom *manifest.BOM, src mapSource) manifest.Artifact {
	t.Helper()
	img := bom.Artifacts[0]
	add := func(mediaType string, data []byte) manifest.ReferrerDescriptor {
		d := digestio.FromBytes(data)
		src[d] = data
		bom.Blobs = append(bom.Blobs, manifest.Blob{Digest: d, Size: int64(len(data)), MediaType: mediaType})
		return manifest.ReferrerDescriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}
	}
	cfg := add(manifest.MediaTypeOCIEmpty, []byte("{}"))
	layer := add(manifest.MediaTypeSPDX, []byte(`{"spdxVersion":"SPDX-2.3","name":"one"}`))
	raw, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": manifest.MediaTypeOCIManifest, "artifactType": manifest.MediaTypeSPDX,
		"config": cfg, "layers": []manifest.ReferrerDescriptor{layer}, "annotations": map[string]string{"org.example.made-by": "test"},
		"subject": manifest.ReferrerDescriptor{MediaType: img.MediaType, Digest: img.Digest, Size: img.Size}})
	if err != nil {
		t.Fatal(err)
	}
	m := add(manifest.MediaTypeOCIManifest, raw)
	a := manifest.Artifact{Kind: manifest.KindReferrer, Name: "sbom of one", Digest: m.Digest, Size: m.Size, MediaType: m.MediaType,
		Dest: manifest.Destination{Repository: img.Dest.Repository}, Blobs: []string{cfg.Digest, layer.Digest, m.Digest},
		Referrer: &manifest.Referrer{Subject: img.Digest, Kind: manifest.ReferrerSBOM, ArtifactType: manifest.MediaTypeSPDX, Attachment: manifest.AttachedBySubject}}
	bom.Artifacts = append(bom.Artifacts, a)
	return a
}

// referrersIndexOf reads the referrers tag schema's index of subject.
func referrersIndexOf(t *testing.T, host, repo, subject string) (string, []manifest.ReferrerDescriptor) {
	t.Helper()
	c := testConnect(t, host, repo)
	tag := manifest.ReferrersTag(subject)
	d, err := c.ManifestDigest(t.Context(), repo, tag)
	if err != nil || d == "" {
		t.Fatalf("no referrers index %s:%s (%v)", repo, tag, err)
	}
	data, _, err := c.FetchManifest(t.Context(), repo, tag)
	if err != nil {
		t.Fatal(err)
	}
	var idx struct {
		Manifests []manifest.ReferrerDescriptor `json:"manifests"`
	}
	if err := json.Unmarshal(data, &idx); err != nil {
		t.Fatal(err)
	}
	return d, idx.Manifests
}

// On a registry without the referrers API, a referrer goes in by digest and
// is added to its subject's referrers tag schema index, beside what another
// tool listed there; a second run sends nothing, and a run after the index
// was lost lists the referrer again.
func TestReferrerListedInTagSchema(t *testing.T) {
	for _, atomic := range []bool{false, true} {
		reg := testbed.StartRegistry(t, testbed.RegistryOptions{})
		dest := reg.Host + "/base"
		opts := CopyOptions{Client: registry.Options{PlainHTTP: true}, Validate: true, Atomic: atomic}
		bom, src := twoImages(t)
		img := bom.Artifacts[0]
		repo := "base/" + img.Dest.Repository
		if _, err := push(t, bom, src, dest, opts); err != nil {
			t.Fatal(err)
		}
		// Another tool listed the image itself as a referrer of itself:
		// odd, but a descriptor ferry must keep.
		c := testConnect(t, reg.Host, repo)
		foreign := manifest.ReferrerDescriptor{MediaType: img.MediaType, Digest: img.Digest, Size: img.Size, ArtifactType: "application/x-other"}
		seed, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": manifest.MediaTypeOCIIndex, "manifests": []any{foreign}})
		if err := c.PutManifest(t.Context(), repo, manifest.ReferrersTag(img.Digest), manifest.MediaTypeOCIIndex, seed); err != nil {
			t.Fatal(err)
		}

		sbom := addSBOM(t, bom, src)
		rep, err := push(t, bom, src, dest, opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := rep.Err(); err != nil {
			t.Fatalf("atomic %v: %v %+v", atomic, err, rep.Artifacts)
		}
		if a := rep.Artifacts[2]; a.State != StatePushed || a.Destination != reg.Host+"/"+repo+"@"+sbom.Digest {
			t.Errorf("atomic %v: referrer %+v", atomic, a)
		}
		idxDigest, listed := referrersIndexOf(t, reg.Host, repo, img.Digest)
		if len(listed) != 2 || listed[0].Digest != foreign.Digest || listed[1].Digest != sbom.Digest ||
			listed[1].ArtifactType != manifest.MediaTypeSPDX || listed[1].Annotations["org.example.made-by"] != "test" || listed[1].Size != sbom.Size {
			t.Errorf("atomic %v: referrers index lists %+v", atomic, listed)
		}
		for _, v := range rep.Validation.Artifacts {
			if v.Name == sbom.Name && v.Status != ValidOK {
				t.Errorf("atomic %v: validation of the referrer: %+v", atomic, v)
			}
		}
		if tags, _ := c.Tags(t.Context(), repo); len(tags) != 2 {
			t.Errorf("atomic %v: %s has tags %v, want the image's and the referrers index's", atomic, repo, tags)
		}

		rep, err = push(t, bom, src, dest, opts)
		if err != nil || rep.Err() != nil || rep.Blobs.Manifests != 0 {
			t.Fatalf("atomic %v: second push: %v %v, %d manifests pushed", atomic, err, rep.Err(), rep.Blobs.Manifests)
		}
		if again, _ := referrersIndexOf(t, reg.Host, repo, img.Digest); again != idxDigest {
			t.Errorf("atomic %v: second push changed the referrers index", atomic)
		}

		if err := c.DeleteManifest(t.Context(), repo, idxDigest); err != nil {
			t.Fatal(err)
		}
		if rep, err = push(t, bom, src, dest, opts); err != nil || rep.Err() != nil {
			t.Fatalf("atomic %v: push after the index was lost: %v %v", atomic, err, rep.Err())
		}
		if _, listed := referrersIndexOf(t, reg.Host, repo, img.Digest); len(listed) != 1 || listed[0].Digest != sbom.Digest {
			t.Errorf("atomic %v: after the index was lost it lists %+v", atomic, listed)
		}
	}
}
