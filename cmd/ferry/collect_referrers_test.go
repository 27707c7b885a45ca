package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ferrytool/ferry/internal/digestio"
	"github.com/ferrytool/ferry/internal/testbed"
	"github.com/ferrytool/ferry/manifest"
)

// needCosign returns a cosign runner with a fresh key pair. The real cosign
// CLI signs the fixtures; without it (`make testbin` installs it with the
// other CLIs) the supply-chain tests are skipped, saying so.
func needCosign(t *testing.T) *testbed.Cosign {
	t.Helper()
	path := filepath.Join(testbed.BinDir(t), "cosign")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		t.Skipf("SKIPPED: %s is missing; `make testbin` installs cosign, which signs the supply-chain fixtures", path)
	}
	return testbed.NewCosign(t)
}

// supplyBed collects from the signed source through a counting proxy.
type supplyBed struct {
	src      *testbed.SignedSource
	proxy    *countingProxy
	dir      string
	key, pub string
}

func newSupplyBed(t *testing.T) *supplyBed {
	t.Helper()
	c := needCosign(t)
	b := &supplyBed{src: testbed.StartSignedSource(t, c), dir: t.TempDir()}
	b.proxy = startCountingProxy(t, b.src.Registry)
	mustFerry(t, "key", "generate", "--output", filepath.Join(b.dir, "ferry"))
	b.key, b.pub = filepath.Join(b.dir, "ferry.key"), filepath.Join(b.dir, "ferry.pub")
	return b
}

func (b *supplyBed) ref(s string) string { return b.proxy.Host + "/" + s }

// collect writes out/NAME with the given extra flags and returns the bill
// of materials as inspect reports it.
func (b *supplyBed) collect(t *testing.T, name string, extra ...string) (supplyInspection, []string) {
	t.Helper()
	out := filepath.Join(b.dir, "out")
	os.MkdirAll(out, 0o755)
	args := append([]string{"collect", "--quiet", "--plain-http", "--key", b.key, "--output", filepath.Join(out, name),
		"--cache-dir", filepath.Join(b.dir, "cache"), "--created", "2026-11-01T00:00:00Z"}, extra...)
	mustFerry(t, args...)
	vols, _ := filepath.Glob(filepath.Join(out, name+".tar.zst*"))
	if len(vols) == 0 {
		t.Fatalf("collect %s wrote no volume", name)
	}
	return inspectSupply(t, b.pub, vols...), vols
}

// supplyInspection is `inspect --output json` with the supply-chain view.
type supplyInspection struct {
	Artifacts   []manifest.Artifact         `json:"artifacts"`
	SupplyChain []manifest.ImageSupplyChain `json:"supplyChain"`
}

func inspectSupply(t *testing.T, pub string, volumes ...string) supplyInspection {
	t.Helper()
	r := mustFerry(t, append([]string{"inspect", "--key", pub, "--output", "json"}, volumes...)...)
	var in supplyInspection
	if err := json.Unmarshal([]byte(r.stdout), &in); err != nil {
		t.Fatalf("inspect json: %v\n%s", err, r.stdout)
	}
	return in
}

func (in supplyInspection) artifact(name string) (manifest.Artifact, bool) {
	for _, a := range in.Artifacts {
		if a.Name == name {
			return a, true
		}
	}
	return manifest.Artifact{}, false
}

func (in supplyInspection) referrers() []manifest.Artifact {
	var out []manifest.Artifact
	for _, a := range in.Artifacts {
		if a.Kind == manifest.KindReferrer {
			out = append(out, a)
		}
	}
	return out
}

func (in supplyInspection) image(name string) (manifest.ImageSupplyChain, bool) {
	for _, im := range in.SupplyChain {
		if im.Image == name {
			return im, true
		}
	}
	return manifest.ImageSupplyChain{}, false
}

// wantReferrer checks that the archive carries an artifact of kind attached
// to subject in the image's destination repository, under the legacy tag
// when tag is set, and returns it.
func wantReferrer(t *testing.T, in supplyInspection, subject, repo string, kind manifest.ReferrerKind, tag string) manifest.Artifact {
	t.Helper()
	for _, a := range in.referrers() {
		r := a.Referrer
		if r.Subject != subject || r.Kind != kind || a.Dest.Repository != repo || r.Tag != tag {
			continue
		}
		if tag != "" && (a.Dest.Tag != tag || r.Attachment != manifest.AttachedByTag) {
			t.Errorf("%s: destination %s, attachment %s; want the tag %s", a.Name, a.Dest, r.Attachment, tag)
		}
		if tag == "" && (a.Dest.Tag != "" || r.Attachment != manifest.AttachedBySubject) {
			t.Errorf("%s: destination %s, attachment %s; want a referrer by subject without tag", a.Name, a.Dest, r.Attachment)
		}
		if !slices.Contains(a.Blobs, a.Digest) || len(a.Blobs) < 2 {
			t.Errorf("%s: closure %v lacks its manifest or layers", a.Name, a.Blobs)
		}
		return a
	}
	var got []string
	for _, a := range in.referrers() {
		got = append(got, a.Name+" "+string(a.Referrer.Kind)+" of "+a.Referrer.Subject)
	}
	t.Errorf("no %s of %s in %s (tag %q); referrers carried:\n%s", kind, subject, repo, tag, strings.Join(got, "\n"))
	return manifest.Artifact{}
}

func legacyTag(s testbed.Subject, suffix string) string {
	return strings.Replace(s.Digest(), ":", "-", 1) + suffix
}

// The real cosign signs the source's images; collect carries the signatures,
// attestation and SBOM with their subjects, and checks the signatures with
// the cosign public key.
func TestCollectCarriesSignaturesAndChecksThem(t *testing.T) {
	b := newSupplyBed(t)
	s := b.src
	child := s.SignChild(t, 1)
	app, multi, bundled, plain := b.ref("signed/app:v1"), b.ref("signed/multi:v1"), b.ref("signed/bundled:v1"), b.ref("signed/plain:v1")
	byDigest := b.ref(s.Bundled.RepoDigest())
	images := []string{"--image", app, "--image", multi, "--image", bundled, "--image", byDigest, "--image", plain}

	in, vols := b.collect(t, "all", append(images, "--image-key", s.Cosign.PublicKeyPath)...)
	mustFerry(t, "verify", "--quiet", "--key", b.pub, vols[0])

	// The image signed the legacy way: .sig, .att, .sbom tags.
	sig := wantReferrer(t, in, s.Image.Digest(), "images/signed/app", manifest.ReferrerSignature, legacyTag(s.Image, ".sig"))
	att := wantReferrer(t, in, s.Image.Digest(), "images/signed/app", manifest.ReferrerAttestation, legacyTag(s.Image, ".att"))
	wantReferrer(t, in, s.Image.Digest(), "images/signed/app", manifest.ReferrerSBOM, legacyTag(s.Image, ".sbom"))
	if sig.Referrer != nil && sig.Referrer.ArtifactType != manifest.MediaTypeCosignSimpleSigning {
		t.Errorf("signature artifact type %q", sig.Referrer.ArtifactType)
	}
	if att.Referrer != nil && att.Referrer.PredicateType != testbed.SPDXPredicateType {
		t.Errorf("attestation predicate type %q, want %q", att.Referrer.PredicateType, testbed.SPDXPredicateType)
	}
	if !hasReason(sig.Reasons, "image", "signature of "+app) {
		t.Errorf("signature reasons %v do not name %s", sig.Reasons, app)
	}
	// The index is signed at the index, one platform manifest on its own.
	wantReferrer(t, in, s.Index.Digest(), "images/signed/multi", manifest.ReferrerSignature, legacyTag(s.Index, ".sig"))
	childSig := wantReferrer(t, in, child.Digest(), "images/signed/multi", manifest.ReferrerSignature, legacyTag(child, ".sig"))
	if !hasReason(childSig.Reasons, "image", "platform manifest "+child.Digest()) {
		t.Errorf("platform signature reasons %v", childSig.Reasons)
	}
	// The bundle is an OCI 1.1 referrer under the referrers tag schema; the
	// image collected by digest only gets it too, carried once.
	bundle := wantReferrer(t, in, s.Bundled.Digest(), "images/signed/bundled", manifest.ReferrerSignature, "")
	if bundle.Referrer != nil && !manifest.IsSigstoreBundle(bundle.Referrer.ArtifactType) {
		t.Errorf("bundle artifact type %q", bundle.Referrer.ArtifactType)
	}
	if !hasReason(bundle.Reasons, "image", "signature of "+bundled) || !hasReason(bundle.Reasons, "image", "signature of "+byDigest) {
		t.Errorf("bundle reasons %v, want both references of the image", bundle.Reasons)
	}
	if n := len(in.referrers()); n != 6 {
		t.Errorf("%d referrers carried, want 6 (.sig .att .sbom, index .sig, platform .sig, bundle)", n)
	}

	// Verifications: which key verified which image.
	keyID := ""
	for _, name := range []string{app, multi, bundled, byDigest} {
		im, ok := in.image(name)
		if !ok || im.Verification == nil {
			t.Errorf("%s: no verification recorded: %+v", name, im)
			continue
		}
		v := im.Verification
		if v.Status != manifest.SignatureVerified || v.KeyName != "cosign.pub" || v.KeyID == "" {
			t.Errorf("%s: verification %+v, want verified by cosign.pub", name, v)
		}
		if keyID != "" && v.KeyID != keyID {
			t.Errorf("%s: key %s, others %s", name, v.KeyID, keyID)
		}
		keyID = v.KeyID
		wantFormat := manifest.SignatureFormatCosign
		if name == bundled || name == byDigest {
			wantFormat = manifest.SignatureFormatBundle
		}
		if v.Format != wantFormat {
			t.Errorf("%s: verified a %s signature, want %s", name, v.Format, wantFormat)
		}
	}
	if im, ok := in.image(plain); !ok || im.Verification == nil || im.Verification.Status != manifest.SignatureUnsigned || len(im.Attached) != 0 {
		t.Errorf("unsigned image: %+v", im)
	}
	if im, _ := in.image(multi); len(im.Attached) != 2 {
		t.Errorf("the index lists %d attachments, want its own and its platform manifest's: %+v", len(im.Attached), im.Attached)
	}

	// The text views list them under their images.
	r := mustFerry(t, append([]string{"inspect", "--key", b.pub}, vols...)...)
	for _, want := range []string{"supply chain", "verified by cosign.pub", "tag " + legacyTag(s.Image, ".att"), "unsigned"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("inspect lacks %q:\n%s", want, r.stdout)
		}
	}
	plan := mustFerry(t, append([]string{"collect", "--plan", "--quiet", "--plain-http", "--cache-dir", filepath.Join(b.dir, "cache")}, images...)...)
	lines := strings.Split(plan.stdout, "\n")
	i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "image") && strings.Contains(l, app) })
	if i < 0 || i+3 >= len(lines) || !strings.Contains(lines[i+1], "signature") || !strings.Contains(lines[i+2], "attestation") || !strings.Contains(lines[i+3], "sbom") {
		t.Errorf("--plan does not list the attachments under %s:\n%s", app, plan.stdout)
	}

	// A second collect with the same time writes the same bytes.
	_, again := b.collect(t, "again", append(images, "--image-key", s.Cosign.PublicKeyPath)...)
	for i := range vols {
		x, _ := os.ReadFile(vols[i])
		y, _ := os.ReadFile(again[i])
		if !bytes.Equal(x, y) {
			t.Errorf("volume %d differs between two collects of the same content", i+1)
		}
	}

	t.Run("require signed", func(t *testing.T) {
		out := filepath.Join(b.dir, "out")
		wrong := filepath.Join(b.dir, "ferry.pub") // an ECDSA key that signed nothing
		base := []string{"collect", "--quiet", "--plain-http", "--key", b.key, "--cache-dir", filepath.Join(b.dir, "cache")}
		wantFail(t, ExitVerify, []string{app, "ferry.pub", "no signature verifies"},
			append(base, "--output", filepath.Join(out, "wrong"), "--image", app, "--image-key", wrong, "--require-signed")...)
		wantFail(t, ExitVerify, []string{plain, "no signature is attached"},
			append(base, "--output", filepath.Join(out, "unsigned"), "--image", app, "--image", plain, "--image-key", s.Cosign.PublicKeyPath, "--require-signed")...)
		for _, n := range []string{"wrong", "unsigned"} {
			if left, _ := filepath.Glob(filepath.Join(out, n+".tar.zst*")); len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
		}
		wantFail(t, ExitUsage, []string{"--referrers none"}, append(base, "--plan", "--image", app, "--image-key", s.Cosign.PublicKeyPath, "--referrers", "none")...)
		wantFail(t, ExitUsage, []string{"--image-key"}, append(base, "--plan", "--image", app, "--require-signed")...)
		wantFail(t, ExitUsage, []string{"--referrers"}, append(base, "--plan", "--image", app, "--referrers", "some")...)
	})

	t.Run("platform subset", func(t *testing.T) {
		// The cut index is not what the source signed: its signature stays
		// behind, the kept platform manifest's travels.
		pl := child.Descriptor.Platform
		r := mustFerry(t, "collect", "--plan", "--quiet", "--plain-http", "--cache-dir", filepath.Join(b.dir, "cache"), "--image", multi,
			"--platform", pl.OS+"/"+pl.Architecture, "--image-key", s.Cosign.PublicKeyPath)
		if !strings.Contains(r.stderr, s.Index.Digest()) || !strings.Contains(r.stderr, "not carried") {
			t.Errorf("no warning that the index's attachments stay behind:\n%s", r.stderr)
		}
		if !strings.Contains(r.stdout, legacyTag(child, ".sig")) || strings.Contains(r.stdout, legacyTag(s.Index, ".sig")) {
			t.Errorf("want the platform manifest's signature alone:\n%s", r.stdout)
		}
		if !strings.Contains(r.stdout, "failed: the index was cut to a subset of its platforms") {
			t.Errorf("the cut index is not reported as failing its check:\n%s", r.stdout)
		}
	})

	t.Run("signatures only", func(t *testing.T) {
		in, _ := b.collect(t, "sigs", append(images, "--referrers", "signatures")...)
		kinds := map[manifest.ReferrerKind]int{}
		for _, a := range in.referrers() {
			kinds[a.Referrer.Kind]++
		}
		if kinds[manifest.ReferrerSignature] != 4 || len(kinds) != 1 {
			t.Errorf("--referrers signatures carried %v, want 4 signatures only", kinds)
		}
	})

	t.Run("none is what was carried before", func(t *testing.T) {
		b.proxy.reset()
		none, _ := b.collect(t, "none", append(images, "--referrers", "none")...)
		if n := b.proxy.attached.Load(); n != 0 {
			t.Errorf("--referrers none sent %d requests for attached artifacts", n)
		}
		if len(none.referrers()) != 0 || len(none.SupplyChain) != 0 {
			t.Fatalf("--referrers none carried %d referrers, supply chain %+v", len(none.referrers()), none.SupplyChain)
		}
		// The same artifacts as with referrers, less the referrers, and no
		// blob that only a referrer needs.
		var withoutRefs []manifest.Artifact
		for _, a := range in.Artifacts {
			if a.Kind != manifest.KindReferrer {
				withoutRefs = append(withoutRefs, a)
			}
		}
		gotJSON, _ := json.Marshal(none.Artifacts)
		wantJSON, _ := json.Marshal(withoutRefs)
		if !bytes.Equal(gotJSON, wantJSON) {
			t.Errorf("--referrers none artifacts:\n%s\nwant the images alone:\n%s", gotJSON, wantJSON)
		}
		noneBlobs := blobsOfArchive(t, b.pub, filepath.Join(b.dir, "out", "none.tar.zst"))
		var imageBlobs []string
		for _, a := range withoutRefs {
			imageBlobs = append(imageBlobs, a.Blobs...)
		}
		sort.Strings(imageBlobs)
		imageBlobs = slices.Compact(imageBlobs)
		if strings.Join(noneBlobs, " ") != strings.Join(imageBlobs, " ") {
			t.Errorf("--referrers none blobs:\n%v\nwant the images' closures:\n%v", noneBlobs, imageBlobs)
		}
	})
}

// blobsOfArchive lists the digests of the blobs an archive's bill of
// materials names, sorted.
func blobsOfArchive(t *testing.T, pub string, volumes ...string) []string {
	t.Helper()
	set := openSetForTest(t, pub, volumes...)
	var out []string
	for _, b := range set.BOM().Blobs {
		out = append(out, b.Digest)
	}
	sort.Strings(out)
	return out
}

// A source with the referrers API: an SBOM and a sigstore bundle attached
// by subject are listed there and carried as referrers.
func TestCollectOCIReferrers(t *testing.T) {
	c := needCosign(t)
	s := testbed.StartReferrerSource(t, c)
	dir := t.TempDir()
	mustFerry(t, "key", "generate", "--output", filepath.Join(dir, "ferry"))
	key, pub := filepath.Join(dir, "ferry.key"), filepath.Join(dir, "ferry.pub")
	image := s.Host + "/oci/app:v1"

	// A referrer that is an index: carried with the manifest under it.
	testbed.PushRandomImage(t, s.Registry, "oci/app:part", 1, 2<<10)
	part := testbed.Descriptor(t, s.Registry, "oci/app:part")
	const evidenceType = "application/vnd.example.evidence.v1+json"
	idx, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": manifest.MediaTypeOCIIndex, "artifactType": evidenceType,
		"manifests": []any{map[string]any{"mediaType": string(part.MediaType), "digest": part.Digest.String(), "size": part.Size}},
		"subject":   map[string]any{"mediaType": string(s.Image.Descriptor.MediaType), "digest": s.Image.Digest(), "size": s.Image.Descriptor.Size}})
	idxDigest := digestio.FromBytes(idx)
	if err := remote.Put(s.Registry.Ref(t, "oci/app@"+idxDigest), rawManifest{idx, manifest.MediaTypeOCIIndex},
		append(s.Registry.Options(), remote.WithContext(t.Context()))...); err != nil {
		t.Fatal(err)
	}

	collect := func(name string, extra ...string) supplyInspection {
		out := filepath.Join(dir, name)
		mustFerry(t, append([]string{"collect", "--quiet", "--plain-http", "--key", key, "--output", out,
			"--cache-dir", filepath.Join(dir, "cache"), "--image", image}, extra...)...)
		return inspectSupply(t, pub, out+".tar.zst")
	}
	in := collect("all", "--image-key", c.PublicKeyPath)
	sbom := wantReferrer(t, in, s.Image.Digest(), "images/oci/app", manifest.ReferrerSBOM, "")
	if sbom.Digest != s.SBOM.Digest.String() || sbom.Referrer.ArtifactType != testbed.SPDXMediaType {
		t.Errorf("SBOM referrer %s (%s), want %s (%s)", sbom.Digest, sbom.Referrer.ArtifactType, s.SBOM.Digest, testbed.SPDXMediaType)
	}
	wantReferrer(t, in, s.Image.Digest(), "images/oci/app", manifest.ReferrerSignature, "")
	evidence := wantReferrer(t, in, s.Image.Digest(), "images/oci/app", manifest.ReferrerOther, "")
	if evidence.Digest != idxDigest || evidence.Referrer.ArtifactType != evidenceType || !slices.Contains(evidence.Blobs, part.Digest.String()) || len(evidence.Blobs) != 4 {
		t.Errorf("index referrer %s (%s) with blobs %v; want %s (%s) with its manifest, config and layer", evidence.Digest, evidence.Referrer.ArtifactType, evidence.Blobs, idxDigest, evidenceType)
	}
	if n := len(in.referrers()); n != 3 {
		t.Errorf("%d referrers carried, want the SBOM, the bundle and the index", n)
	}
	im, ok := in.image(image)
	if !ok || im.Verification == nil || im.Verification.Status != manifest.SignatureVerified || im.Verification.Format != manifest.SignatureFormatBundle {
		t.Errorf("verification of %s: %+v", image, im.Verification)
	}
	sigs := collect("sigs", "--referrers", "signatures")
	if rs := sigs.referrers(); len(rs) != 1 || rs[0].Referrer.Kind != manifest.ReferrerSignature {
		t.Errorf("--referrers signatures carried %+v, want the bundle alone", rs)
	}
}
