package verify_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/verify"
)

// FuzzVerifyImage feeds arbitrary signature manifests and layers to the
// checker: an archive is untrusted input, so nothing may panic, and nothing
// but a real signature may verify.
func FuzzVerifyImage(f *testing.F) {
	f.Add([]byte(`{"layers":[{"mediaType":"`+manifest.MediaTypeCosignSimpleSigning+`","digest":"DIGEST","size":2,
		"annotations":{"`+manifest.AnnotationCosignSignature+`":"AAAA"}}]}`), []byte(`{}`))
	f.Add([]byte(`{"layers":[{"mediaType":"`+manifest.MediaTypeSigstoreBundle03+`","digest":"DIGEST","size":2}]}`),
		[]byte(`{"mediaType":"`+manifest.MediaTypeSigstoreBundle03+`","dsseEnvelope":{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"sig":"AAAA"}]}}`))
	f.Add([]byte(`{"layers":[{"mediaType":"`+manifest.MediaTypeSigstoreBundle03+`","digest":"DIGEST","size":2}]}`),
		[]byte(`{"mediaType":"`+manifest.MediaTypeSigstoreBundle03+`","messageSignature":{"messageDigest":{"algorithm":"SHA2_256","digest":"AAAA"},"signature":"AAAA"}}`))
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	key, err := verify.NewImageKey("k.pub", priv.Public())
	if err != nil {
		f.Fatal(err)
	}
	subject := "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	f.Fuzz(func(t *testing.T, manifestTmpl, layer []byte) {
		// Point the manifest's layer at the fuzzed layer so both parsers run.
		d := digest(layer)
		m := []byte(strings.ReplaceAll(string(manifestTmpl), "DIGEST", d))
		a := verify.Attached{Digest: digest(m), Manifest: m, Blobs: verify.BlobMap{d: layer}}
		v := verify.VerifyImage(t.Context(), subject, []verify.Attached{a}, []*verify.ImageKey{key})
		if v.Status == manifest.SignatureVerified {
			t.Fatalf("random input verified: %+v", v)
		}
		_ = v.Record("img")
	})
}
