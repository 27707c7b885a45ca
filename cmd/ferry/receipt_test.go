package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/verify"
)

// writeSiteReceipt writes a receipt signed with a fresh key of the
// air-gapped side and returns its path and the public key's path.
func writeSiteReceipt(t *testing.T, dir string, holdings []manifest.Holding) (receiptPath, pubPath string) {
	t.Helper()
	priv, pub := filepath.Join(dir, "site.key"), filepath.Join(dir, "site.pub")
	if err := verify.WriteKeyPair(priv, pub, nil); err != nil {
		t.Fatal(err)
	}
	s, err := verify.SignerFromFile(priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := manifest.NewReceipt("zot.local:30003/spectro-content", time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC),
		[]manifest.ReceivedArchive{{ArchiveID: "month-1", BOMDigest: receiptTestDigest("bom-1")}}, holdings)
	if err != nil {
		t.Fatal(err)
	}
	receiptPath = filepath.Join(dir, "receipt.tar.zst")
	if err := verify.WriteReceipt(context.Background(), receiptPath, r, s); err != nil {
		t.Fatal(err)
	}
	return receiptPath, pub
}

func receiptTestDigest(name string) string {
	return fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(name)))
}

func receiptTestHoldings() []manifest.Holding {
	b := func(name string, size int64) manifest.Blob {
		return manifest.Blob{Digest: receiptTestDigest(name), Size: size}
	}
	return []manifest.Holding{
		{Repository: "images/app", Tag: "1.0", Manifest: b("app-1.0", 500), Blobs: []manifest.Blob{b("base", 3000), b("app-1.0-cfg", 40)}},
		{Repository: "charts/app/app", Tag: "1.0.0", Manifest: b("chart-1.0.0", 300), Blobs: []manifest.Blob{b("chart-cfg", 2), b("chart-1.0.0-tgz", 9000)}},
	}
}

func TestReceiptVerifyCommand(t *testing.T) {
	dir := t.TempDir()
	path, pub := writeSiteReceipt(t, dir, receiptTestHoldings())
	r := mustFerry(t, "receipt", "verify", "--receipt-pub", pub, path)
	for _, want := range []string{"signature verified", "zot.local:30003/spectro-content", "month-1", "images/app", "charts/app/app", "2 artifacts, 6 blobs"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	r = mustFerry(t, "receipt", "verify", "--receipt-pub", pub, "--output", "json", path)
	var rep struct {
		File      string                  `json:"file"`
		Artifacts []manifest.HeldArtifact `json:"artifacts"`
		Stats     manifest.Stats          `json:"stats"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("json output: %v\n%s", err, r.stdout)
	}
	if rep.File != path || len(rep.Artifacts) != 2 || rep.Stats.StoredBytes != 500+3000+40+300+2+9000 {
		t.Errorf("json report %+v", rep)
	}

	// Another key, edited bytes, a cut-off file: each refused with exit 3,
	// naming the file.
	other := t.TempDir()
	_, otherPub := writeSiteReceipt(t, other, receiptTestHoldings())
	wantFail(t, ExitVerify, []string{path, "not the key given"}, "receipt", "verify", "--receipt-pub", otherPub, path)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data[:len(data)-10], 0o644); err != nil {
		t.Fatal(err)
	}
	wantFail(t, ExitVerify, []string{path, "truncated"}, "receipt", "verify", "--receipt-pub", pub, path)
	wantFail(t, ExitUsage, []string{"one receipt file"}, "receipt", "verify", "--receipt-pub", pub)
}
