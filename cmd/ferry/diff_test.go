package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrytool/ferry/archive"
	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/verify"
)

// writeSignedArchive writes artifacts as one archive signed by signer, the
// way fixtureArchive.write does with a key of its own.
func writeSignedArchive(t *testing.T, dir, name string, signer *verify.Signer, artifacts []fixtureArtifact) (string, *manifest.BOM) {
	t.Helper()
	bom := manifest.NewBOM(name, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	blobs := map[string]fxBlob{}
	for _, a := range artifacts {
		art := manifest.Artifact{Kind: a.kind, Name: a.name, Source: a.name, Dest: a.dest, Digest: a.root().digest(),
			Size: int64(len(a.root().data)), MediaType: a.root().mediaType}
		for _, b := range a.blobs {
			d := b.digest()
			if _, ok := blobs[d]; !ok {
				blobs[d] = b
				bom.Blobs = append(bom.Blobs, manifest.Blob{Digest: d, Size: int64(len(b.data)), MediaType: b.mediaType})
			}
			if !fxContains(art.Blobs, d) {
				art.Blobs = append(art.Blobs, d)
			}
		}
		bom.Artifacts = append(bom.Artifacts, art)
	}
	res, err := archive.Write(context.Background(), bom, fxSource(blobs), archive.WriteOptions{Dir: dir, Name: name, Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	return res.Volumes[0].Path, bom
}

// dayTwoArtifacts builds month 1 and month 2 of a small day-2 update: the
// chart moves to 1.1.0, the app image to 1.1 over the same base layer, the
// web image's "stable" tag moves, the database image stays, the tool image
// goes.
func dayTwoArtifacts() (month1, month2 []fixtureArtifact) {
	base := fxBlob{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", data: []byte(strings.Repeat("base layer ", 4000))}
	layer := func(s string) fxBlob {
		return fxBlob{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", data: []byte(strings.Repeat(s+" ", 500))}
	}
	image := func(repo, tag string, layers ...fxBlob) fixtureArtifact {
		files := map[string]fxBlob{}
		for i, l := range layers {
			files[string(rune('a'+i))] = l
		}
		return ociArtifact(manifest.KindImage, repo+":"+tag, manifest.Destination{Repository: "images/" + repo, Tag: tag},
			"application/vnd.oci.image.config.v1+json", []byte(`{"image":"`+repo+`"}`), files)
	}
	chart := func(version string) fixtureArtifact {
		return ociArtifact(manifest.KindChart, "chart app "+version, manifest.Destination{Repository: "charts/app/app", Tag: version},
			manifest.MediaTypeHelmConfig, []byte(`{"name":"app","version":"`+version+`"}`),
			map[string]fxBlob{"app.tgz": {mediaType: manifest.MediaTypeHelmChart, data: []byte("chart " + version)}})
	}
	db := image("db", "5", base, layer("db 5"))
	month1 = []fixtureArtifact{chart("1.0.0"), image("app", "1.0", base, layer("app 1.0")), image("web", "stable", base, layer("web a")), db, image("tool", "1", layer("tool 1"))}
	month2 = []fixtureArtifact{chart("1.1.0"), image("app", "1.1", base, layer("app 1.1")), image("web", "stable", base, layer("web b")), db}
	return month1, month2
}

func TestDiffCommand(t *testing.T) {
	dir := t.TempDir()
	priv, pub := filepath.Join(dir, "ferry.key"), filepath.Join(dir, "ferry.pub")
	if err := verify.WriteKeyPair(priv, pub, nil); err != nil {
		t.Fatal(err)
	}
	signer, err := verify.SignerFromFile(priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	m1, m2 := dayTwoArtifacts()
	a, bom1 := writeSignedArchive(t, dir, "month-1", signer, m1)
	b, bom2 := writeSignedArchive(t, dir, "month-2", signer, m2)

	r := mustFerry(t, "diff", "--key", pub, a, b)
	t.Logf("%s", r.stdout)
	for _, want := range []string{
		"added    charts/app/app:1.1.0", "added    images/app:1.1",
		"removed  charts/app/app:1.0.0", "removed  images/app:1.0", "removed  images/tool:1",
		"changed  images/web:stable",
		"2 added, 3 removed, 1 changed, 1 unchanged",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("table lacks %q", want)
		}
	}

	r = mustFerry(t, "diff", "--key", pub, "--output", "json", a, b)
	var rep struct {
		A, B   diffSide
		Travel manifest.Transfer
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	// Independently of the engine: the bytes of month 2's blobs that month
	// 1 did not carry.
	var want manifest.Transfer
	for _, bl := range bom2.Blobs {
		if _, ok := bom1.Blob(bl.Digest); !ok {
			want.Blobs++
			want.Bytes += bl.Size
		}
	}
	if rep.Travel != want || want.Blobs == 0 {
		t.Errorf("travel %+v, want %+v", rep.Travel, want)
	}
	if rep.A.Kind != "archive" || rep.A.ArchiveID != "month-1" || rep.B.ArchiveID != "month-2" || !strings.HasPrefix(rep.B.BOMDigest, "sha256:") {
		t.Errorf("sides %+v %+v", rep.A, rep.B)
	}

	// A receipt of what month 1 brought, against month 2's archive, gives
	// the same delta.
	receipt, receiptPub := writeSiteReceipt(t, t.TempDir(), manifest.BOMHoldings(bom1))
	r = mustFerry(t, "diff", "--key", pub, "--receipt-pub", receiptPub, "--output", "json", receipt, b)
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Travel != want || rep.A.Kind != "receipt" {
		t.Errorf("from the receipt: travel %+v (side %+v), want %+v", rep.Travel, rep.A, want)
	}

	// Nothing is compared before its signature checks.
	wantFail(t, ExitUsage, []string{"--key"}, "diff", a, b)
	wantFail(t, ExitUsage, []string{"--receipt-pub"}, "diff", "--key", pub, receipt, b)
	wantFail(t, ExitVerify, []string{a, "signature"}, "diff", "--key", receiptPub, a, b)
	wantFail(t, ExitVerify, []string{receipt, "not the key given"}, "diff", "--key", pub, "--receipt-pub", pub, receipt, b)
	notOurs := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notOurs, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	wantFail(t, ExitUsage, []string{notOurs, "neither"}, "diff", "--key", pub, notOurs, b)
}
