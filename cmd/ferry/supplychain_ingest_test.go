package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ferrytool/ferry/ingest"
	"github.com/ferrytool/ferry/internal/testbed"
	"github.com/ferrytool/ferry/manifest"
)

// The air-gapped side of signatures, attestations and SBOMs: an archive of
// images signed with the real cosign CLI, carrying what is attached to
// them, is checked again with the image keys and pushed into the test
// bed's TLS registry (the Distribution registry: no referrers API), where
// the real cosign must verify what arrived.

// signedBed is a signed source, the archive of its images with everything
// attached to them, and a destination like the appliance's registry.
type signedBed struct {
	src    *testbed.SignedSource
	cosign *testbed.Cosign
	fx     *fixtureArchive
	dst    *testbed.Registry
	caFile string
	dir    string
}

// newSignedBed starts the signed source and a destination, and writes the
// archive of the source's images; edit, when set, changes the artifacts
// before the archive is written.
func newSignedBed(t *testing.T, src *testbed.SignedSource, edit func([]fixtureArtifact) []fixtureArtifact) *signedBed {
	t.Helper()
	b := newSignedDest(t, src)
	var arts []fixtureArtifact
	for _, s := range []struct {
		sub   testbed.Subject
		index bool
	}{{src.Image, false}, {src.Index, true}, {src.Bundled, false}, {src.Unsigned, false}} {
		arts = append(arts, carriedWith(t, src.Registry, s.sub, s.index)...)
	}
	if edit != nil {
		arts = edit(arts)
	}
	b.fx = &fixtureArchive{dir: b.dir, artifacts: arts}
	b.fx.write(t, 0)
	return b
}

// newSignedDest starts the destination, like the appliance's registry
// (TLS from a private CA, htpasswd), for an archive of src.
func newSignedDest(t *testing.T, src *testbed.SignedSource) *signedBed {
	t.Helper()
	b := &signedBed{src: src, cosign: src.Cosign, dir: t.TempDir()}
	b.dst = testbed.StartRegistry(t, testbed.RegistryOptions{TLS: true, Username: "zot-admin", Password: "s3cret-" + strings.Repeat("y", 8)})
	b.caFile = b.dst.CA.WriteCert(t, b.dir)
	t.Setenv(envRegistryPassword, b.dst.Password)
	return b
}

// cosignVerifies runs the real cosign against the destination, offline,
// as an admission controller would: each signed image verifies with the
// key, the unsigned one does not, the SPDX attestation is found, and
// cosign tree lists the legacy tags carried.
func (b *signedBed) cosignVerifies(t *testing.T) {
	t.Helper()
	c, src := b.cosign, b.src
	regArgs := c.RegistryArgs(t, b.dst)
	for _, sub := range []testbed.Subject{src.Image, src.Index, src.Bundled} {
		out := c.Run(t, append(append([]string{"verify"}, regArgs...), append(c.VerifyKeyArgs(), b.destRef(sub))...)...)
		if !strings.Contains(string(out), sub.Digest()) {
			t.Errorf("cosign verify %s printed no payload naming the digest:\n%s", b.destRef(sub), out)
		}
	}
	if out, err := c.RunErr(t, append(append([]string{"verify"}, regArgs...), append(c.VerifyKeyArgs(), b.destRef(src.Unsigned))...)...); err == nil {
		t.Errorf("cosign verify of the unsigned image passed:\n%s", out)
	}
	c.Run(t, append(append([]string{"verify-attestation"}, regArgs...), append(c.VerifyKeyArgs(), "--type", "spdxjson", b.destRef(src.Image))...)...)
	tree := string(c.Run(t, append(append([]string{"tree"}, regArgs...), b.destRef(src.Image))...))
	for _, suffix := range []string{".sig", ".att", ".sbom"} {
		if tag := manifest.LegacyTag(src.Image.Digest(), suffix); !strings.Contains(tree, ":"+tag+"\n") {
			t.Errorf("cosign tree of the destination image does not list %s:\n%s", tag, tree)
		}
	}
	// The Distribution registry has no referrers API: the bundle is
	// listed under the referrers tag schema.
	refs := testbed.Referrers(t, b.dst, b.destSubject(src.Bundled))
	srcRefs := testbed.Referrers(t, src.Registry, src.Bundled)
	if len(refs) != 1 || refs[0].Digest != srcRefs[0].Digest || refs[0].ArtifactType != testbed.BundleMediaType {
		t.Errorf("destination lists %+v as referrers of the bundled image, want %+v", refs, srcRefs)
	}
}

// carriedWith returns the artifacts collect carries for one subject: the
// image or index, what cosign's legacy tags hold, and the referrers the
// source lists (the referrers tag schema on the Distribution registry).
func carriedWith(t *testing.T, reg *testbed.Registry, sub testbed.Subject, index bool) []fixtureArtifact {
	t.Helper()
	dest := manifest.Destination{Repository: "images/" + sub.Repo, Tag: sub.Tag}
	name := reg.Host + "/" + sub.Repo + ":" + sub.Tag
	opts := append(reg.Options(), remote.WithContext(t.Context()))
	var out []fixtureArtifact
	if index {
		idx, err := remote.Index(reg.Ref(t, sub.RepoDigest()), opts...)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, indexArtifact(t, name, dest, idx))
	} else {
		img, err := remote.Image(reg.Ref(t, sub.RepoDigest()), opts...)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, imageArtifact(t, manifest.KindImage, name, dest, img))
	}
	attach := func(ref string, r manifest.Referrer) {
		img, err := remote.Image(reg.Ref(t, ref), opts...)
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		a := fixtureArtifact{kind: manifest.KindReferrer, dest: manifest.Destination{Repository: dest.Repository, Tag: r.Tag}}
		a.blobs = imageBlobs(t, img)
		m, err := manifest.ParseReferrerManifest(a.root().data)
		if err != nil {
			t.Fatal(err)
		}
		r.Subject, r.ArtifactType, r.PredicateType = sub.Digest(), m.EffectiveArtifactType(), m.PredicateType()
		if r.Kind == "" {
			r.Kind = manifest.ClassifyReferrer(r.ArtifactType, r.PredicateType)
		}
		a.referrer = &r
		a.name = fmt.Sprintf("%s %s of %s", r.Kind, a.root().digest()[:19], sub.RepoDigest())
		out = append(out, a)
	}
	for _, s := range manifest.LegacyTagSuffixes {
		tag := manifest.LegacyTag(sub.Digest(), s.Suffix)
		if destDigest(t, reg, sub.Repo+":"+tag) != "" {
			attach(sub.Repo+":"+tag, manifest.Referrer{Kind: s.Kind, Attachment: manifest.AttachedByTag, Tag: tag})
		}
	}
	for _, d := range testbed.Referrers(t, reg, sub) {
		attach(sub.Repo+"@"+d.Digest.String(), manifest.Referrer{Attachment: manifest.AttachedBySubject})
	}
	return out
}

func (b *signedBed) args(cmd string, extra ...string) []string {
	if cmd == "verify" {
		return append(append([]string{"verify", "--quiet", "--key", b.fx.pub}, extra...), b.fx.volumes...)
	}
	return b.ingestArgs(b.fx.volumes, extra...)
}

func (b *signedBed) ingestArgs(volumes []string, extra ...string) []string {
	return append(append([]string{"ingest", "--quiet", "--registry", b.dst.Host + "/" + ingestBase, "--key", b.fx.pub,
		"--ca-file", b.caFile, "--username", b.dst.Username, "--journal", filepath.Join(b.dir, "journal.db"),
		"--work-dir", filepath.Join(b.dir, "work")}, extra...), volumes...)
}

// destRef is where a source subject lands.
func (b *signedBed) destRef(sub testbed.Subject) string {
	return b.dst.Host + "/" + ingestBase + "/images/" + sub.RepoDigest()
}

func (b *signedBed) destSubject(sub testbed.Subject) testbed.Subject {
	sub.Repo = ingestBase + "/images/" + sub.Repo
	return sub
}

func ingestReport(t *testing.T, r result) ingest.Report {
	t.Helper()
	var rep ingest.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("ingest --output json: %v\n%s", err, r.stdout)
	}
	return rep
}

func TestSupplyChainIngest(t *testing.T) {
	src := testbed.StartSignedSource(t, needCosign(t))

	t.Run("carried, checked again and verified by cosign at the destination", func(t *testing.T) {
		b := newSignedBed(t, src, nil)
		c := b.cosign
		out := mustFerry(t, b.args("verify", "--image-key", c.PublicKeyPath)...).stdout
		for _, want := range []string{"signed/app:v1", "verified by cosign.pub", "signed/plain:v1", "unsigned"} {
			if !strings.Contains(out, want) {
				t.Errorf("verify --image-key does not say %q:\n%s", want, out)
			}
		}

		rep := ingestReport(t, mustFerry(t, b.args("ingest", "--image-key", c.PublicKeyPath, "--output", "json")...))
		status := map[string]manifest.SignatureStatus{}
		for _, v := range rep.Images {
			status[strings.TrimPrefix(v.Image, src.Host+"/")] = v.Status
			if v.Status == manifest.SignatureVerified && v.KeyName != "cosign.pub" {
				t.Errorf("%s verified by key %q, want cosign.pub", v.Image, v.KeyName)
			}
		}
		want := map[string]manifest.SignatureStatus{"signed/app:v1": manifest.SignatureVerified, "signed/multi:v1": manifest.SignatureVerified,
			"signed/bundled:v1": manifest.SignatureVerified, "signed/plain:v1": manifest.SignatureUnsigned}
		for img, st := range want {
			if status[img] != st {
				t.Errorf("image %s: %q, want %q (all: %v)", img, status[img], st, status)
			}
		}
		attached := map[string][]string{}
		for _, img := range rep.SupplyChain {
			for _, a := range img.Attached {
				if a.State != ingest.StatePushed {
					t.Errorf("%s attached to %s: %s %s", a.Name, img.Image, a.State, a.Reason)
				}
				attached[strings.TrimPrefix(img.Image, src.Host+"/")] = append(attached[strings.TrimPrefix(img.Image, src.Host+"/")], string(a.Kind))
			}
		}
		slices.Sort(attached["signed/app:v1"])
		if got := strings.Join(attached["signed/app:v1"], ","); got != "attestation,sbom,signature" {
			t.Errorf("attached to signed/app: %s, want attestation,sbom,signature", got)
		}
		if rep.Validation == nil || !rep.Validation.OK() {
			t.Errorf("validation after ingest: %+v", rep.Validation)
		}

		b.cosignVerifies(t)
		indexTag := b.destSubject(src.Bundled).Repo + ":" + manifest.ReferrersTag(src.Bundled.Digest())
		indexDigest := destDigest(t, b.dst, indexTag)

		catalog := catalogOf(t, b.dst)
		for _, repo := range catalog {
			if !strings.HasPrefix(repo, ingestBase+"/images/signed/") {
				t.Errorf("catalog lists %s, not a destination repository", repo)
			}
		}

		// Again: nothing new, the referrers index is not touched.
		rep = ingestReport(t, mustFerry(t, b.args("ingest", "--image-key", c.PublicKeyPath, "--output", "json")...))
		if rep.Blobs.Manifests != 0 || rep.Blobs.Uploaded != 0 {
			t.Errorf("second ingest pushed %d manifests and %d blobs, want none", rep.Blobs.Manifests, rep.Blobs.Uploaded)
		}
		if got := destDigest(t, b.dst, indexTag); got != indexDigest {
			t.Errorf("second ingest changed the referrers index %s: %s -> %s", indexTag, indexDigest, got)
		}
		if refs := testbed.Referrers(t, b.dst, b.destSubject(src.Bundled)); len(refs) != 1 {
			t.Errorf("after a second ingest the referrers index lists %d referrers, want 1", len(refs))
		}
		out = mustFerry(t, b.args("ingest", "--image-key", c.PublicKeyPath, "--dry-run")...).stdout
		for _, want := range []string{"supply chain:", "signed/app:v1 (present): verified by cosign.pub", "by tag " + manifest.LegacyTag(src.Image.Digest(), ".att"),
			"signature https://sigstore.dev/cosign/sign/v1", "by subject", "signed/plain:v1 (present): unsigned"} {
			if !strings.Contains(out, want) {
				t.Errorf("ingest report does not say %q:\n%s", want, out)
			}
		}
	})

	t.Run("collected by ferry collect", func(t *testing.T) {
		sb := &supplyBed{src: src, dir: t.TempDir()}
		sb.proxy = startCountingProxy(t, src.Registry)
		mustFerry(t, "key", "generate", "--output", filepath.Join(sb.dir, "ferry"))
		sb.key, sb.pub = filepath.Join(sb.dir, "ferry.key"), filepath.Join(sb.dir, "ferry.pub")
		c := src.Cosign
		var images []string
		for _, r := range []string{"signed/app:v1", "signed/multi:v1", "signed/bundled:v1", "signed/plain:v1"} {
			images = append(images, "--image", sb.ref(r))
		}
		_, vols := sb.collect(t, "signed", append(images, "--image-key", c.PublicKeyPath)...)
		b := newSignedDest(t, src)
		b.fx = &fixtureArchive{dir: sb.dir, pub: sb.pub, volumes: vols}
		mustFerry(t, b.args("verify", "--image-key", c.PublicKeyPath)...)
		rep := ingestReport(t, mustFerry(t, b.args("ingest", "--image-key", c.PublicKeyPath, "--output", "json")...))
		verified := 0
		for _, v := range rep.Images {
			if v.Status == manifest.SignatureVerified {
				verified++
			}
		}
		if verified != 3 || rep.Validation == nil || !rep.Validation.OK() {
			t.Errorf("%d images verified, want 3; validation %+v", verified, rep.Validation)
		}
		b.cosignVerifies(t)
	})

	t.Run("a delta whose signatures the destination already holds", func(t *testing.T) {
		sb := &supplyBed{src: src, dir: t.TempDir()}
		sb.proxy = startCountingProxy(t, src.Registry)
		mustFerry(t, "key", "generate", "--output", filepath.Join(sb.dir, "ferry"))
		sb.key, sb.pub = filepath.Join(sb.dir, "ferry.key"), filepath.Join(sb.dir, "ferry.pub")
		site := filepath.Join(sb.dir, "site")
		mustFerry(t, "key", "generate", "--output", site)
		pub := src.Cosign.PublicKeyPath
		var signed []string
		for _, r := range []string{"signed/app:v1", "signed/multi:v1", "signed/bundled:v1"} {
			signed = append(signed, "--image", sb.ref(r))
		}
		_, vols := sb.collect(t, "month1", append(signed, "--image-key", pub)...)
		b := newSignedDest(t, src)
		b.fx = &fixtureArchive{dir: sb.dir, pub: sb.pub, volumes: vols}
		receipt := filepath.Join(sb.dir, "month1.receipt")
		mustFerry(t, b.args("ingest", "--image-key", pub, "--receipt", receipt, "--receipt-key", site+".key")...)
		// Month 2 adds an image: the signed ones and their signatures are
		// expected at the destination, and checked from there.
		_, delta := sb.collect(t, "month2", append(signed, "--image", sb.ref("signed/plain:v1"), "--image-key", pub,
			"--since", receipt, "--receipt-pub", site+".pub")...)
		b.fx.volumes = delta
		// verify cannot reach the destination: it says where the checks of
		// those images happen instead of calling their signatures missing.
		out := mustFerry(t, b.args("verify", "--image-key", pub)...).stdout
		if !strings.Contains(out, "signed/app:v1") || !strings.Contains(out, "ingest --image-key checks them there") {
			t.Errorf("verify --image-key of the delta:\n%s", out)
		}
		rep := ingestReport(t, mustFerry(t, b.args("ingest", "--image-key", pub, "--output", "json")...))
		status := map[string]manifest.SignatureStatus{}
		for _, v := range rep.Images {
			status[strings.TrimPrefix(v.Image, sb.ref(""))] = v.Status
		}
		if len(rep.Images) != 4 || status["signed/app:v1"] != manifest.SignatureVerified || status["signed/plain:v1"] != manifest.SignatureUnsigned {
			t.Errorf("image checks of the delta: %v (%+v)", status, rep.Images)
		}
		b.cosignVerifies(t)
	})

	t.Run("a registry with the referrers API lists them from their subject field", func(t *testing.T) {
		c := src.Cosign
		rs := testbed.StartReferrerSource(t, c)
		fx := &fixtureArchive{dir: t.TempDir(), artifacts: carriedWith(t, rs.Registry, rs.Image, false)}
		fx.write(t, 0)
		dst := testbed.StartReferrersRegistry(t)
		args := append([]string{"ingest", "--quiet", "--plain-http", "--registry", dst.Host + "/" + ingestBase, "--key", fx.pub,
			"--no-journal", "--image-key", c.PublicKeyPath, "--require-signed", "--output", "json"}, fx.volumes...)
		rep := ingestReport(t, mustFerry(t, args...))
		if len(rep.Images) != 1 || rep.Images[0].Status != manifest.SignatureVerified {
			t.Errorf("image checks: %+v, want the one image verified", rep.Images)
		}
		sub := rs.Image
		sub.Repo = ingestBase + "/images/" + sub.Repo
		want := map[string]bool{}
		for _, d := range testbed.Referrers(t, rs.Registry, rs.Image) {
			want[d.Digest.String()] = true
		}
		got := testbed.Referrers(t, dst, sub)
		for _, d := range got {
			delete(want, d.Digest.String())
		}
		if len(want) != 0 || len(got) != 2 {
			t.Errorf("the destination's referrers API lists %+v; missing %v", got, want)
		}
		if d := destDigest(t, dst, sub.Repo+":"+manifest.ReferrersTag(sub.Digest())); d != "" {
			t.Errorf("a referrers tag schema index was pushed to a registry with the referrers API: %s", d)
		}
		if rep.Validation == nil || !rep.Validation.OK() {
			t.Errorf("validation: %+v", rep.Validation)
		}
		c.Run(t, append(append([]string{"verify"}, c.RegistryArgs(t, dst)...), append(c.VerifyKeyArgs(), dst.Host+"/"+sub.RepoDigest())...)...)
	})

	t.Run("volumes one at a time, last first", func(t *testing.T) {
		b := newSignedBed(t, src, nil)
		b.fx.volumes = nil
		if err := os.RemoveAll(filepath.Join(b.fx.dir, "out")); err != nil {
			t.Fatal(err)
		}
		b.fx.write(t, 200<<10)
		if len(b.fx.volumes) < 2 {
			t.Fatalf("%d volumes, want at least 2 for this test", len(b.fx.volumes))
		}
		c := b.cosign
		vols := reversed(b.fx.volumes)
		for i, v := range vols {
			r := ferry(t, "", b.ingestArgs([]string{v}, "--image-key", c.PublicKeyPath)...)
			if last := i == len(vols)-1; last && r.code != 0 || !last && r.code != ExitIncomplete {
				t.Fatalf("ingest of volume %s (%d of %d): exit %d\n%s%s", filepath.Base(v), i+1, len(vols), r.code, r.stdout, r.stderr)
			}
		}
		regArgs := c.RegistryArgs(t, b.dst)
		for _, sub := range []testbed.Subject{src.Image, src.Index, src.Bundled} {
			c.Run(t, append(append([]string{"verify"}, regArgs...), append(c.VerifyKeyArgs(), b.destRef(sub))...)...)
		}
		if refs := testbed.Referrers(t, b.dst, b.destSubject(src.Bundled)); len(refs) != 1 {
			t.Errorf("the bundled image lists %d referrers, want 1", len(refs))
		}
		rep := ingestReport(t, mustFerry(t, b.args("ingest", "--image-key", c.PublicKeyPath, "--output", "json")...))
		if rep.Blobs.Manifests != 0 || rep.Validation == nil || !rep.Validation.OK() {
			t.Errorf("all volumes again: %d manifests pushed, validation %+v", rep.Blobs.Manifests, rep.Validation)
		}
	})

	t.Run("a signature for another image is refused", func(t *testing.T) {
		// The app's .sig is replaced by the index's: archived with valid
		// digests and signed by the right key, but over another digest.
		b := newSignedBed(t, src, func(arts []fixtureArtifact) []fixtureArtifact {
			var indexSig fixtureArtifact
			for _, a := range arts {
				if a.referrer != nil && a.referrer.Subject == src.Index.Digest() && a.referrer.Kind == manifest.ReferrerSignature {
					indexSig = a
				}
			}
			for i, a := range arts {
				if a.referrer != nil && a.referrer.Subject == src.Image.Digest() && a.referrer.Kind == manifest.ReferrerSignature {
					r := *a.referrer
					arts[i].blobs, arts[i].referrer = indexSig.blobs, &r
				}
			}
			return arts
		})
		c := b.cosign
		app := src.Host + "/signed/app:v1"
		wantFail(t, ExitVerify, []string{app, "signature is for another image"}, b.args("verify", "--image-key", c.PublicKeyPath)...)
		r := wantFail(t, ExitVerify, []string{app}, b.args("ingest", "--image-key", c.PublicKeyPath, "--output", "json")...)
		rep := ingestReport(t, r)
		for _, a := range rep.Artifacts {
			refusedWithApp := strings.Contains(a.Name, app) || strings.Contains(a.Name, src.Image.RepoDigest())
			if refusedWithApp != (a.State == ingest.StateRefused) {
				t.Errorf("%s: %s (%s)", a.Name, a.State, a.Reason)
			}
		}
		// Nothing of the image reached the registry, by tag or by digest;
		// the other images did.
		dst := b.destSubject(src.Image)
		if got := destDigest(t, b.dst, dst.RepoDigest()); got != "" {
			t.Errorf("the refused image's manifest is in the registry: %s", got)
		}
		if got := destDigest(t, b.dst, dst.Repo+":"+manifest.LegacyTag(src.Image.Digest(), manifest.LegacyTagAttestation)); got != "" {
			t.Errorf("the refused image's attestation is in the registry: %s", got)
		}
		if got := destDigest(t, b.dst, b.destSubject(src.Index).RepoDigest()); got != src.Index.Digest() {
			t.Errorf("the index, whose signature verifies, is not in: %q", got)
		}
	})

	t.Run("a signature layer tampered in the volume", func(t *testing.T) {
		b := newSignedBed(t, src, nil)
		c := b.cosign
		set := openSetForTest(t, b.fx.pub, b.fx.volumes...)
		var payload string
		for _, a := range set.BOM().Artifacts {
			if a.Referrer == nil || a.Referrer.Subject != src.Image.Digest() || a.Referrer.Kind != manifest.ReferrerSignature {
				continue
			}
			for _, d := range a.Blobs {
				if bl, _ := set.BOM().Blob(d); bl.MediaType == manifest.MediaTypeCosignSimpleSigning {
					payload = d
				}
			}
		}
		if payload == "" {
			t.Fatal("no simple-signing payload for signed/app in the archive")
		}
		vol, n := tamperBlob(t, b.fx, payload)
		b.fx.volumes[n-1] = vol
		app := src.Host + "/signed/app:v1"
		wantFail(t, ExitVerify, []string{payload}, b.args("verify", "--image-key", c.PublicKeyPath)...)
		wantFail(t, ExitVerify, []string{app}, b.args("ingest", "--image-key", c.PublicKeyPath)...)
		dst := b.destSubject(src.Image)
		if got := destDigest(t, b.dst, dst.RepoDigest()); got != "" {
			t.Errorf("the image whose signature was tampered with is in the registry: %s", got)
		}
		if got := destDigest(t, b.dst, b.destSubject(src.Index).RepoDigest()); got != src.Index.Digest() {
			t.Errorf("the index, whose signature verifies, is not in: %q", got)
		}
	})

	t.Run("another key", func(t *testing.T) {
		b := newSignedBed(t, src, nil)
		other := testbed.NewCosign(t)
		wantFail(t, ExitVerify, []string{"signed/app:v1", "failed: ", "keys tried: cosign.pub"}, b.args("verify", "--image-key", other.PublicKeyPath)...)
		wantFail(t, ExitVerify, []string{"signed/app:v1"}, b.args("ingest", "--image-key", other.PublicKeyPath)...)
		if got := catalogOf(t, b.dst); len(got) != 1 || !strings.HasSuffix(got[0], "signed/plain") {
			t.Errorf("with another key only the unsigned image may go in; catalog: %v", got)
		}
	})

	t.Run("require signed", func(t *testing.T) {
		b := newSignedBed(t, src, nil)
		c := b.cosign
		wantFail(t, ExitUsage, []string{"--image-key"}, b.args("verify", "--require-signed")...)
		wantFail(t, ExitVerify, []string{"signed/plain:v1", "signed images are required"}, b.args("verify", "--image-key", c.PublicKeyPath, "--require-signed")...)
		wantFail(t, ExitVerify, []string{"signed/plain:v1"}, b.args("ingest", "--image-key", c.PublicKeyPath, "--require-signed")...)
		if got := destDigest(t, b.dst, b.destSubject(src.Unsigned).RepoDigest()); got != "" {
			t.Errorf("the unsigned image went in with --require-signed: %s", got)
		}
	})
}

// catalogOf lists the registry's repositories.
func catalogOf(t *testing.T, reg *testbed.Registry) []string {
	t.Helper()
	r, err := name.NewRegistry(reg.Host)
	if err != nil {
		t.Fatal(err)
	}
	repos, err := remote.Catalog(t.Context(), r, reg.Options()...)
	if err != nil {
		t.Fatal(err)
	}
	return repos
}
