package verify_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ferrytool/ferry/internal/testbed"
	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/verify"
)

// The signatures here are made by the real cosign CLI (see testbed's
// supply-chain fixtures); the tampered variants are edits of those.
func TestVerifyImageWithCosignSignatures(t *testing.T) {
	t.Parallel()
	c := testbed.NewCosign(t)
	src := testbed.StartSignedSource(t, c)
	refSrc := testbed.StartReferrerSource(t, c)
	key := loadKeys(t, c.PublicKeyPath)[0]
	other := otherKey(t)

	legacySig := fetchAttached(t, src.Registry, src.Image.Repo, legacyTag(src.Image, ".sig"))
	attestation := fetchAttached(t, src.Registry, src.Image.Repo, legacyTag(src.Image, ".att"))
	sbom := fetchAttached(t, src.Registry, src.Image.Repo, legacyTag(src.Image, ".sbom"))
	indexSig := fetchAttached(t, src.Registry, src.Index.Repo, legacyTag(src.Index, ".sig"))
	bundle := fetchReferrers(t, src.Registry, src.Bundled)
	refBundleAndSBOM := fetchReferrers(t, refSrc.Registry, refSrc.Image)
	if len(bundle) != 1 || len(refBundleAndSBOM) != 2 {
		t.Fatalf("fixtures: %d referrers on the bundled image, %d on the referrer source's image; want 1 and 2", len(bundle), len(refBundleAndSBOM))
	}

	t.Run("verified", func(t *testing.T) {
		for _, c := range []struct {
			name     string
			subject  string
			attached []verify.Attached
			format   string
			sig      string
		}{
			{"legacy signature beside attestation and SBOM", src.Image.Digest(), []verify.Attached{sbom, attestation, legacySig}, manifest.SignatureFormatCosign, legacySig.Digest},
			{"index signed at the index", src.Index.Digest(), []verify.Attached{indexSig}, manifest.SignatureFormatCosign, indexSig.Digest},
			{"sigstore bundle under the tag schema", src.Bundled.Digest(), bundle, manifest.SignatureFormatBundle, bundle[0].Digest},
			{"sigstore bundle beside an SBOM referrer", refSrc.Image.Digest(), refBundleAndSBOM, manifest.SignatureFormatBundle, ""},
		} {
			v := verify.VerifyImage(t.Context(), c.subject, c.attached, []*verify.ImageKey{other, key})
			if v.Status != manifest.SignatureVerified || v.Err() != nil {
				t.Fatalf("%s: status %s: %v", c.name, v.Status, v.Err())
			}
			rec := v.Record("img")
			if rec.KeyID != key.ID || rec.KeyName != "cosign.pub" || rec.Format != c.format || (c.sig != "" && rec.Signature != c.sig) {
				t.Errorf("%s: record %+v, want key %s (cosign.pub), format %s, signature %s", c.name, rec, key.ID, c.format, c.sig)
			}
			if err := rec.Validate(); err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
		}
	})

	t.Run("unsigned", func(t *testing.T) {
		// An attestation or SBOM is not a signature over the image.
		v := verify.VerifyImage(t.Context(), src.Image.Digest(), []verify.Attached{attestation, sbom}, []*verify.ImageKey{key})
		if v.Status != manifest.SignatureUnsigned || !errors.Is(v.Err(), verify.ErrNoSignature) {
			t.Fatalf("status %s, err %v; want unsigned", v.Status, v.Err())
		}
		if rec := v.Record("img"); rec.Validate() != nil || rec.KeyID != "" {
			t.Errorf("record %+v", rec)
		}
	})

	failed := []struct {
		name     string
		subject  string
		attached verify.Attached
		keys     []*verify.ImageKey
		want     error
	}{
		{"another key", src.Image.Digest(), legacySig, []*verify.ImageKey{other}, verify.ErrBadSignature},
		{"bundle, another key", src.Bundled.Digest(), bundle[0], []*verify.ImageKey{other}, verify.ErrBadSignature},
		{"no keys", src.Image.Digest(), legacySig, nil, verify.ErrBadSignature},
		{"signature copied onto another image", src.Unsigned.Digest(), legacySig, []*verify.ImageKey{key}, verify.ErrSignatureSubject},
		{"bundle copied onto another image", src.Unsigned.Digest(), bundle[0], []*verify.ImageKey{key}, verify.ErrSignatureSubject},
		{"payload edited", src.Image.Digest(), editLayer(t, legacySig, func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"optional":null`), []byte(`"optional":{"x":"y"}`), 1)
		}), []*verify.ImageKey{key}, verify.ErrBadSignature},
		{"signature annotation edited", src.Image.Digest(), editAnnotation(t, legacySig), []*verify.ImageKey{key}, verify.ErrBadSignature},
		{"layer bytes swapped under their digest", src.Image.Digest(), swapBlob(t, legacySig), []*verify.ImageKey{key}, verify.ErrSignatureArtifact},
		{"manifest bytes not its digest", src.Image.Digest(), verify.Attached{Digest: legacySig.Digest, Manifest: append(bytes.Clone(legacySig.Manifest), ' '), Blobs: legacySig.Blobs},
			[]*verify.ImageKey{key}, verify.ErrSignatureArtifact},
		{"bundle statement edited", src.Bundled.Digest(), editLayer(t, bundle[0], func(b []byte) []byte {
			return editBundleStatement(t, b)
		}), []*verify.ImageKey{key}, verify.ErrBadSignature},
	}
	for _, c := range failed {
		t.Run(c.name, func(t *testing.T) {
			v := verify.VerifyImage(t.Context(), c.subject, []verify.Attached{c.attached}, c.keys)
			if v.Status != manifest.SignatureFailed {
				t.Fatalf("status %s, want failed", v.Status)
			}
			if err := v.Err(); !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.subject) {
				t.Fatalf("err %v, want %v naming %s", err, c.want, c.subject)
			}
			rec := v.Record("img")
			if rec.Reason == "" || rec.Validate() != nil {
				t.Errorf("record %+v", rec)
			}
		})
	}

	t.Run("a good signature beside a tampered one verifies", func(t *testing.T) {
		v := verify.VerifyImage(t.Context(), src.Image.Digest(), []verify.Attached{editAnnotation(t, legacySig), legacySig}, []*verify.ImageKey{key})
		if v.Status != manifest.SignatureVerified || len(v.Checks) != 2 || v.Checks[0].Err == nil {
			t.Fatalf("status %s, checks %+v", v.Status, v.Checks)
		}
	})
}

// cosign signs with RSA (PKCS#1 v1.5) and Ed25519 keys too.
func TestVerifyImageKeyAlgorithms(t *testing.T) {
	t.Parallel()
	c := testbed.NewCosign(t)
	reg := testbed.StartSourceRegistry(t)
	regArgs := c.RegistryArgs(t, reg)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []struct {
		name string
		priv any
	}{{"rsa", rsaKey}, {"ed25519", edKey}, {"p384", p384}} {
		t.Run(k.name, func(t *testing.T) {
			ck := c.ImportKey(t, k.name, k.priv)
			testbed.PushRandomImage(t, reg, "keys/"+k.name+":v1", 1, 1<<10)
			sub := testbed.Subject{Repo: "keys/" + k.name, Descriptor: testbed.Descriptor(t, reg, "keys/"+k.name+":v1")}
			c.Run(t, append(append([]string{"sign"}, regArgs...), "--key", ck.KeyPath, "--tlog-upload=false", "--yes", reg.Host+"/"+sub.RepoDigest())...)
			sig := fetchAttached(t, reg, sub.Repo, legacyTag(sub, ".sig"))
			keys := loadKeys(t, c.PublicKeyPath, ck.PublicKeyPath)
			v := verify.VerifyImage(t.Context(), sub.Digest(), []verify.Attached{sig}, keys)
			if v.Status != manifest.SignatureVerified || v.Verified.Key.Name != k.name+".pub" {
				t.Fatalf("status %s (%v), verified by %+v; want %s.pub", v.Status, v.Err(), v.Verified, k.name)
			}
			v = verify.VerifyImage(t.Context(), sub.Digest(), []verify.Attached{sig}, keys[:1])
			if v.Status != manifest.SignatureFailed {
				t.Fatalf("verified with the wrong key: %+v", v)
			}
		})
	}
}

func TestLoadImageKeysRefusesPrivateKey(t *testing.T) {
	priv, pub, err := verify.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := dir + "/" + name
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if _, err := verify.LoadImageKeys(write("k.pub", pub)); err != nil {
		t.Fatalf("public key: %v", err)
	}
	if _, err := verify.LoadImageKeys(write("k.key", priv)); !errors.Is(err, verify.ErrMalformedKey) {
		t.Fatalf("a private key loaded as an image key: %v", err)
	}
}

func loadKeys(t *testing.T, paths ...string) []*verify.ImageKey {
	t.Helper()
	keys, err := verify.LoadImageKeys(paths...)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func otherKey(t *testing.T) *verify.ImageKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := verify.NewImageKey("other.pub", priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func legacyTag(s testbed.Subject, suffix string) string {
	return manifest.LegacyTag(s.Digest(), suffix)
}

// fetchAttached reads the manifest at reference and its layers from reg.
func fetchAttached(t *testing.T, reg *testbed.Registry, repo, reference string) verify.Attached {
	t.Helper()
	sep := ":"
	if strings.HasPrefix(reference, "sha256:") {
		sep = "@"
	}
	ref := reg.Ref(t, repo+sep+reference)
	opts := append(reg.Options(), remote.WithContext(t.Context()))
	d, err := remote.Get(ref, opts...)
	if err != nil {
		t.Fatalf("fetching %s: %v", ref, err)
	}
	m, err := manifest.ParseReferrerManifest(d.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	blobs := verify.BlobMap{}
	for _, l := range m.Layers {
		layer, err := remote.Layer(ref.Context().Digest(l.Digest), opts...)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := layer.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("reading %s layer %s: %v", ref, l.Digest, err)
		}
		blobs[l.Digest] = data
	}
	return verify.Attached{Digest: d.Digest.String(), Manifest: d.Manifest, Blobs: blobs}
}

func fetchReferrers(t *testing.T, reg *testbed.Registry, s testbed.Subject) []verify.Attached {
	t.Helper()
	var out []verify.Attached
	for _, d := range testbed.Referrers(t, reg, s) {
		out = append(out, fetchAttached(t, reg, s.Repo, d.Digest.String()))
	}
	return out
}

// editLayer rewrites the first layer's bytes and the manifest to match, as a
// tamperer who cannot sign would.
func editLayer(t *testing.T, a verify.Attached, edit func([]byte) []byte) verify.Attached {
	t.Helper()
	return rewrite(t, a, func(m map[string]any, blobs verify.BlobMap) {
		l := m["layers"].([]any)[0].(map[string]any)
		old := blobs[l["digest"].(string)]
		data := edit(bytes.Clone(old))
		if bytes.Equal(data, old) {
			t.Fatalf("edit changed nothing")
		}
		d := digest(data)
		blobs[d] = data
		l["digest"], l["size"] = d, len(data)
	})
}

func editAnnotation(t *testing.T, a verify.Attached) verify.Attached {
	t.Helper()
	return rewrite(t, a, func(m map[string]any, _ verify.BlobMap) {
		ann := m["layers"].([]any)[0].(map[string]any)["annotations"].(map[string]any)
		sig, err := base64.StdEncoding.DecodeString(ann[manifest.AnnotationCosignSignature].(string))
		if err != nil {
			t.Fatal(err)
		}
		sig[len(sig)/2] ^= 0x01
		ann[manifest.AnnotationCosignSignature] = base64.StdEncoding.EncodeToString(sig)
	})
}

// swapBlob keeps the manifest and serves other bytes under the layer's
// digest, as a damaged archive would.
func swapBlob(t *testing.T, a verify.Attached) verify.Attached {
	t.Helper()
	blobs := verify.BlobMap{}
	for d, b := range a.Blobs.(verify.BlobMap) {
		b = bytes.Clone(b)
		b[0] ^= 0x01
		blobs[d] = b
	}
	return verify.Attached{Digest: a.Digest, Manifest: a.Manifest, Blobs: blobs}
}

func rewrite(t *testing.T, a verify.Attached, edit func(map[string]any, verify.BlobMap)) verify.Attached {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	blobs := verify.BlobMap{}
	for d, b := range a.Blobs.(verify.BlobMap) {
		blobs[d] = b
	}
	edit(m, blobs)
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return verify.Attached{Digest: digest(data), Manifest: data, Blobs: blobs}
}

// editBundleStatement points the DSSE statement of a sigstore bundle at
// another digest, keeping the signature.
func editBundleStatement(t *testing.T, bundle []byte) []byte {
	t.Helper()
	var b map[string]any
	if err := json.Unmarshal(bundle, &b); err != nil {
		t.Fatal(err)
	}
	env := b["dsseEnvelope"].(map[string]any)
	payload, err := base64.StdEncoding.DecodeString(env["payload"].(string))
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(payload, &st); err != nil {
		t.Fatal(err)
	}
	st["subject"] = []any{map[string]any{"digest": map[string]any{"sha256": strings.Repeat("0", 64)}}}
	payload, err = json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	env["payload"] = base64.StdEncoding.EncodeToString(payload)
	out, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
