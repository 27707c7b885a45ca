package verify

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/dsse"
	"github.com/sigstore/sigstore/pkg/signature/options"
	"github.com/sigstore/sigstore/pkg/signature/payload"

	"github.com/ferrytool/ferry/manifest"
)

// checkSimpleSigning checks one layer of a cosign signature manifest: the
// layer is the simple-signing JSON payload, the layer's annotation the
// base64 signature over those exact bytes. The payload must name subject.
func checkSimpleSigning(ctx context.Context, subject string, a Attached, l manifest.ReferrerDescriptor, keys []*ImageKey) (*ImageKey, error) {
	b64 := l.Annotations[manifest.AnnotationCosignSignature]
	if b64 == "" {
		return nil, fmt.Errorf("%s layer %s: %w: annotation %s is empty", a.Digest, l.Digest, ErrNoSignature, manifest.AnnotationCosignSignature)
	}
	sig, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("%s layer %s: %w: annotation %s is not base64: %v", a.Digest, l.Digest, ErrBadSignature, manifest.AnnotationCosignSignature, err)
	}
	body, err := readSignatureBlob(ctx, a, l)
	if err != nil {
		return nil, err
	}
	key, err := firstKey(keys, func(v signature.Verifier) error {
		return v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(body), options.WithContext(ctx))
	})
	if err != nil {
		return nil, fmt.Errorf("cosign signature %s: %w", a.Digest, err)
	}
	// Only the verified bytes are trusted to say which image was signed.
	var p payload.SimpleContainerImage
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("%w: cosign signature %s: payload: %v", ErrSignatureArtifact, a.Digest, err)
	}
	if p.Critical.Type != payload.CosignSignatureType {
		return nil, fmt.Errorf("%w: cosign signature %s: payload type %q, want %q", ErrSignatureArtifact, a.Digest, p.Critical.Type, payload.CosignSignatureType)
	}
	if got := p.Critical.Image.DockerManifestDigest; got != subject {
		return nil, fmt.Errorf("cosign signature %s: %w: it signs %s, not %s", a.Digest, ErrSignatureSubject, got, subject)
	}
	return key, nil
}

// sigstoreBundle is the part of a sigstore bundle (v0.1 to v0.3, JSON) an
// offline key check reads. The verification material (key hint, certificate,
// transparency-log entries) is not needed: the operator's keys are the only
// trust, and the air gap has no log to check entries against. That is also
// why the bundle is read here rather than with sigstore-go, whose verifier is
// built around trusted roots, logs and timestamps and would bring their
// clients (gRPC, TUF, Rekor) into the binary for a check that reads three
// fields; the cryptography and the DSSE encoding are sigstore's own.
type sigstoreBundle struct {
	MediaType        string          `json:"mediaType"`
	DSSEEnvelope     json.RawMessage `json:"dsseEnvelope"`
	MessageSignature *struct {
		MessageDigest struct {
			Algorithm string `json:"algorithm"`
			Digest    []byte `json:"digest"`
		} `json:"messageDigest"`
		Signature []byte `json:"signature"`
	} `json:"messageSignature"`
}

// dsseEnvelope is a DSSE envelope as a bundle holds it; its JSON is the
// standard envelope encoding.
type dsseEnvelope struct {
	PayloadType string `json:"payloadType"`
	Payload     []byte `json:"payload"`
}

// inTotoStatement is the part of an in-toto statement that says what it is
// about and what it claims.
type inTotoStatement struct {
	Type    string `json:"_type"`
	Subject []struct {
		Digest map[string]string `json:"digest"`
	} `json:"subject"`
	PredicateType string `json:"predicateType"`
}

// checkBundle checks a sigstore bundle layer. isSig is false for a bundle
// whose statement is not cosign's signing predicate: an attestation, which is
// no signature over the image, and which the caller skips.
func checkBundle(ctx context.Context, subject string, a Attached, l manifest.ReferrerDescriptor, keys []*ImageKey) (key *ImageKey, isSig bool, err error) {
	body, err := readSignatureBlob(ctx, a, l)
	if err != nil {
		return nil, true, err
	}
	var b sigstoreBundle
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, true, fmt.Errorf("%w: sigstore bundle %s: %v", ErrSignatureArtifact, a.Digest, err)
	}
	if !manifest.IsSigstoreBundle(b.MediaType) {
		return nil, true, fmt.Errorf("%w: sigstore bundle %s: media type %q", ErrSignatureArtifact, a.Digest, b.MediaType)
	}
	switch {
	case len(b.DSSEEnvelope) > 0 && string(b.DSSEEnvelope) != "null":
		return checkBundleDSSE(ctx, subject, a, b.DSSEEnvelope, keys)
	case b.MessageSignature != nil:
		key, err := checkBundleMessage(ctx, subject, a, &b, keys)
		return key, true, err
	}
	return nil, true, fmt.Errorf("%w: sigstore bundle %s holds neither a DSSE envelope nor a message signature", ErrSignatureArtifact, a.Digest)
}

func checkBundleDSSE(ctx context.Context, subject string, a Attached, raw json.RawMessage, keys []*ImageKey) (*ImageKey, bool, error) {
	var env dsseEnvelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, true, fmt.Errorf("%w: sigstore bundle %s: DSSE envelope: %v", ErrSignatureArtifact, a.Digest, err)
	}
	// Whether this is a signature at all is read from the unverified
	// statement; what the statement says is trusted only once it verifies.
	var unverified inTotoStatement
	if env.PayloadType == manifest.MediaTypeInToto && json.Unmarshal(env.Payload, &unverified) == nil &&
		unverified.PredicateType != manifest.PredicateCosignSign {
		return nil, false, nil
	}
	var verified []byte
	key, err := firstKey(keys, func(v signature.Verifier) error {
		w := dsse.WrapVerifier(v, dsse.WithExpectedPayloadType(manifest.MediaTypeInToto), dsse.WithDecodedPayload(&verified))
		return w.VerifySignature(bytes.NewReader(raw), nil, options.WithContext(ctx))
	})
	if err != nil {
		return nil, true, fmt.Errorf("sigstore bundle %s: %w", a.Digest, err)
	}
	var st inTotoStatement
	if err := json.Unmarshal(verified, &st); err != nil {
		return nil, true, fmt.Errorf("%w: sigstore bundle %s: statement: %v", ErrSignatureArtifact, a.Digest, err)
	}
	if st.PredicateType != manifest.PredicateCosignSign {
		return nil, false, nil
	}
	algo, want, _ := strings.Cut(subject, ":")
	var named []string
	for _, s := range st.Subject {
		if s.Digest[algo] == want {
			return key, true, nil
		}
		for k, v := range s.Digest {
			named = append(named, k+":"+v)
		}
	}
	return nil, true, fmt.Errorf("sigstore bundle %s: %w: it signs %s, not %s", a.Digest, ErrSignatureSubject, strings.Join(named, ", "), subject)
}

// checkBundleMessage checks a bundle that signs a digest directly: the digest
// must be the subject's, and the signature is over it.
func checkBundleMessage(ctx context.Context, subject string, a Attached, b *sigstoreBundle, keys []*ImageKey) (*ImageKey, error) {
	ms := b.MessageSignature
	if ms.MessageDigest.Algorithm != "SHA2_256" {
		return nil, fmt.Errorf("%w: sigstore bundle %s: message digest algorithm %q, want SHA2_256", ErrSignatureArtifact, a.Digest, ms.MessageDigest.Algorithm)
	}
	if got := "sha256:" + hex.EncodeToString(ms.MessageDigest.Digest); got != subject {
		return nil, fmt.Errorf("sigstore bundle %s: %w: it signs %s, not %s", a.Digest, ErrSignatureSubject, got, subject)
	}
	key, err := firstKey(keys, func(v signature.Verifier) error {
		return v.VerifySignature(bytes.NewReader(ms.Signature), nil, options.WithDigest(ms.MessageDigest.Digest), options.WithContext(ctx))
	})
	if err != nil {
		return nil, fmt.Errorf("sigstore bundle %s: %w", a.Digest, err)
	}
	return key, nil
}
