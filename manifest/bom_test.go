package manifest

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func validBOM() *BOM {
	b := NewBOM("id", time.Unix(0, 0))
	layer := "sha256:" + strings.Repeat("a", 64)
	man := "sha256:" + strings.Repeat("b", 64)
	b.Blobs = []Blob{{Digest: layer, Size: 10}, {Digest: man, Size: 5, MediaType: MediaTypeOCIManifest}}
	b.Artifacts = []Artifact{{Kind: KindImage, Name: "x", Digest: man, Size: 5, Blobs: []string{layer, man}, Dest: Destination{Repository: "images/x", Tag: "1"}}}
	return b
}

func TestBOMRoundTrip(t *testing.T) {
	data, err := validBOM().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseBOM(data)
	if err != nil {
		t.Fatal(err)
	}
	if s := b.Stats(); s.StoredBytes != 15 || s.LogicalBytes != 15 {
		t.Errorf("stats %+v", s)
	}
}

func TestBOMRejects(t *testing.T) {
	for name, mutate := range map[string]func(*BOM){
		"bad digest":       func(b *BOM) { b.Blobs[0].Digest = "sha256:XYZ" },
		"unlisted blob":    func(b *BOM) { b.Artifacts[0].Blobs = append(b.Artifacts[0].Blobs, "sha256:"+strings.Repeat("c", 64)) },
		"duplicate name":   func(b *BOM) { b.Artifacts = append(b.Artifacts, b.Artifacts[0]) },
		"duplicate blob":   func(b *BOM) { b.Blobs = append(b.Blobs, b.Blobs[0]) },
		"own manifest":     func(b *BOM) { b.Artifacts[0].Blobs = b.Artifacts[0].Blobs[:1] },
		"same destination": func(b *BOM) { a := b.Artifacts[0]; a.Name = "y"; b.Artifacts = append(b.Artifacts, a) },
		"wrong kind":       func(b *BOM) { b.Kind = "Other" },
	} {
		t.Run(name, func(t *testing.T) {
			b := validBOM()
			mutate(b)
			data, _ := b.Marshal()
			if _, err := ParseBOM(data); !errors.Is(err, ErrInvalidBOM) {
				t.Fatalf("err = %v, want ErrInvalidBOM", err)
			}
		})
	}
	if _, err := ParseBOM([]byte(`{"apiVersion":"ferry.dev/v1alpha1","kind":"BillOfMaterials","extra":1}`)); !errors.Is(err, ErrInvalidBOM) {
		t.Fatalf("unknown field accepted: %v", err)
	}
}

// signedBOM is validBOM with a signature attached to its image by the
// cosign tag, and the check of that signature at collect.
func signedBOM() *BOM {
	b := validBOM()
	img := b.Artifacts[0]
	sigLayer := "sha256:" + strings.Repeat("c", 64)
	sigMan := "sha256:" + strings.Repeat("d", 64)
	b.Blobs = append(b.Blobs, Blob{Digest: sigLayer, Size: 3}, Blob{Digest: sigMan, Size: 4, MediaType: MediaTypeOCIManifest})
	b.Artifacts = append(b.Artifacts, Artifact{
		Kind: KindReferrer, Name: "x.sig", Digest: sigMan, Size: 4, Blobs: []string{sigLayer, sigMan},
		Dest:     Destination{Repository: img.Dest.Repository, Tag: LegacyTag(img.Digest, LegacyTagSignature)},
		Referrer: &Referrer{Subject: img.Digest, Kind: ReferrerSignature, Attachment: AttachedByTag, Tag: LegacyTag(img.Digest, LegacyTagSignature)},
	})
	b.Verifications = []ImageVerification{{Image: img.Name, Subject: img.Digest, Status: SignatureVerified,
		KeyID: "sha256:" + strings.Repeat("e", 64), Signature: sigMan, Format: SignatureFormatCosign}}
	return b
}

func TestBOMSupplyChain(t *testing.T) {
	data, err := signedBOM().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseBOM(data); err != nil {
		t.Fatalf("a signed image's bill of materials is refused: %v", err)
	}
	layer := "sha256:" + strings.Repeat("a", 64)
	for name, mutate := range map[string]func(*BOM){
		"referrer without link":      func(b *BOM) { b.Artifacts[1].Referrer = nil },
		"link on an image":           func(b *BOM) { b.Artifacts[0].Referrer = b.Artifacts[1].Referrer },
		"subject not in the archive": func(b *BOM) { b.Artifacts[1].Referrer.Subject = "sha256:" + strings.Repeat("f", 64) },
		"subject is a layer": func(b *BOM) {
			b.Blobs[0].MediaType = "application/vnd.oci.image.layer.v1.tar+gzip"
			b.Artifacts[1].Referrer.Subject, b.Artifacts[1].Referrer.Tag = layer, LegacyTag(layer, LegacyTagSignature)
			b.Artifacts[1].Dest.Tag = b.Artifacts[1].Referrer.Tag
		},
		"other repository":          func(b *BOM) { b.Artifacts[1].Dest.Repository = "images/other" },
		"check of no artifact":      func(b *BOM) { b.Verifications[0].Image = "nobody" },
		"two checks of one image":   func(b *BOM) { b.Verifications = append(b.Verifications, b.Verifications[0]) },
		"check of another manifest": func(b *BOM) { b.Verifications[0].Subject = "sha256:" + strings.Repeat("d", 64) },
		"verified without a key":    func(b *BOM) { b.Verifications[0].KeyID = "" },
		"unsigned naming a key":     func(b *BOM) { b.Verifications[0].Status = SignatureUnsigned },
	} {
		t.Run(name, func(t *testing.T) {
			b := signedBOM()
			mutate(b)
			data, _ := b.Marshal()
			if _, err := ParseBOM(data); !errors.Is(err, ErrInvalidBOM) {
				t.Fatalf("err = %v, want ErrInvalidBOM", err)
			}
		})
	}
}

// FuzzParseBOM: any input either parses into a bill of materials that
// validates and survives a round trip, or is refused with ErrInvalidBOM.
func FuzzParseBOM(f *testing.F) {
	data, _ := validBOM().Marshal()
	f.Add(data)
	f.Add([]byte(`{}`))
	conv := validBOM()
	conv.Artifacts[0].Mirror = "mirror.example/hub/x"
	conv.Artifacts[0].Converted = []Conversion{{From: "sha256:" + strings.Repeat("d", 64), FromMediaType: MediaTypeDockerManifest, To: conv.Artifacts[0].Digest, MediaType: MediaTypeOCIManifest}}
	data, _ = conv.Marshal()
	f.Add(data)
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBOM(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidBOM) {
				t.Fatalf("error without ErrInvalidBOM: %v", err)
			}
			return
		}
		again, err := b.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseBOM(again); err != nil {
			t.Fatalf("re-parse of a valid bill of materials failed: %v", err)
		}
	})
}

func TestParseBOMRefusesUnsealedVersion(t *testing.T) {
	b := NewBOM("old", time.Unix(1700000000, 0))
	b.APIVersion = "ferry.dev/v1alpha1"
	data, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	_, err = ParseBOM(data)
	if !errors.Is(err, ErrInvalidBOM) || !strings.Contains(err.Error(), "older ferry") {
		t.Fatalf("err = %v, want a refusal naming the older ferry", err)
	}
}
