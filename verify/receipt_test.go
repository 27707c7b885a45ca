package verify_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/verify"
)

func receiptDigest(name string) string { return fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(name))) }

func testReceipt(t *testing.T) *manifest.Receipt {
	t.Helper()
	b := func(name string, size int64) manifest.Blob {
		return manifest.Blob{Digest: receiptDigest(name), Size: size}
	}
	r, err := manifest.NewReceipt("zot.local:30003/spectro-content", time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC),
		[]manifest.ReceivedArchive{{ArchiveID: "month-1", BOMDigest: receiptDigest("bom")}},
		[]manifest.Holding{
			{Repository: "images/app", Tag: "1.0", Manifest: b("app", 500), Blobs: []manifest.Blob{b("base", 3000), b("cfg", 40)}},
			{Repository: "charts/app/app", Tag: "1.0.0", Manifest: b("chart", 300), Blobs: []manifest.Blob{b("chart-cfg", 2), b("chart-tgz", 9000)}},
		})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// writeTestReceipt signs the test receipt with a fresh key and returns the
// file, the verifier for that key and the file's bytes.
func writeTestReceipt(t *testing.T) (string, *verify.Verifier, []byte) {
	t.Helper()
	s, v, _, _ := fileSignerVerifier(t)
	path := filepath.Join(t.TempDir(), "receipt.tar.zst")
	if err := verify.WriteReceipt(context.Background(), path, testReceipt(t), s); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, v, data
}

func TestReceiptWriteRead(t *testing.T) {
	s, v, _, _ := fileSignerVerifier(t)
	path := filepath.Join(t.TempDir(), "receipt.tar.zst")
	ctx := context.Background()
	if err := verify.WriteReceipt(ctx, path, testReceipt(t), s); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(path)
	// Writing again replaces the file with the same bytes: the same receipt
	// and key always give the same file.
	if err := verify.WriteReceipt(ctx, path, testReceipt(t), s); err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile(path)
	if !bytes.Equal(first, second) {
		t.Error("the same receipt signed twice gave different files")
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*tmp*")); len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
	got, err := verify.ReadReceipt(ctx, path, v)
	if err != nil {
		t.Fatal(err)
	}
	want := testReceipt(t)
	want.SignedBy = s.KeyID()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read back\n%+v\nwant\n%+v", got, want)
	}
	t.Logf("receipt of %d blobs: %d bytes", len(got.Blobs), len(first))
}

func TestReceiptOtherKey(t *testing.T) {
	path, _, _ := writeTestReceipt(t)
	_, other, _, _ := fileSignerVerifier(t)
	_, err := verify.ReadReceipt(context.Background(), path, other)
	if !errors.Is(err, verify.ErrBadSignature) {
		t.Fatalf("err = %v, want ErrBadSignature", err)
	}
	for _, want := range []string{path, other.KeyID(), "not the key given"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

// An edit made by unpacking the receipt, changing the document and packing
// it again keeps a valid file: only the signature can catch it.
func TestReceiptEdited(t *testing.T) {
	path, v, data := writeTestReceipt(t)
	doc, sig := receiptEntries(t, data)
	edited := bytes.Replace(doc, []byte(`"images/app"`), []byte(`"images/apq"`), 1)
	if bytes.Equal(edited, doc) {
		t.Fatal("the edit changed nothing")
	}
	mustWriteFile(t, path, packReceipt(t, edited, sig))
	_, err := verify.ReadReceipt(context.Background(), path, v)
	if !errors.Is(err, verify.ErrBadSignature) {
		t.Fatalf("err = %v, want ErrBadSignature", err)
	}
	for _, want := range []string{path, "changed after", v.KeyID()} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

// Any single flipped byte of the file is refused, whichever layer notices,
// unless it sits where zstd ignores it (an unused entropy table weight) and
// so changes nothing that is read.
func TestReceiptFlippedBytes(t *testing.T) {
	path, v, data := writeTestReceipt(t)
	want, err := verify.ReadReceipt(context.Background(), path, v)
	if err != nil {
		t.Fatal(err)
	}
	refused := 0
	for i := range data {
		bad := append([]byte{}, data...)
		bad[i] ^= 0x20
		mustWriteFile(t, path, bad)
		got, err := verify.ReadReceipt(context.Background(), path, v)
		if err == nil {
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("byte %d flipped: accepted a different receipt", i)
			}
			continue
		}
		refused++
		if !strings.Contains(err.Error(), path) {
			t.Errorf("byte %d flipped: error %q does not name the file", i, err)
		}
	}
	if refused < len(data)*9/10 {
		t.Errorf("only %d of %d flipped bytes refused", refused, len(data))
	}
}

func TestReceiptTruncated(t *testing.T) {
	path, v, data := writeTestReceipt(t)
	for n := 0; n < len(data); n++ {
		mustWriteFile(t, path, data[:n])
		_, err := verify.ReadReceipt(context.Background(), path, v)
		if !errors.Is(err, verify.ErrReceiptTruncated) && !errors.Is(err, verify.ErrReceiptDamaged) {
			t.Fatalf("cut at %d of %d: err = %v, want truncated or damaged", n, len(data), err)
		}
		if n > len(data)/2 && !errors.Is(err, verify.ErrReceiptTruncated) {
			t.Errorf("cut at %d of %d: err = %v, want ErrReceiptTruncated", n, len(data), err)
		}
	}
}

func TestReceiptStructure(t *testing.T) {
	path, v, data := writeTestReceipt(t)
	doc, sig := receiptEntries(t, data)
	ctx := context.Background()
	for name, c := range map[string]struct {
		file []byte
		want error
	}{
		"no signature":  {packReceipt(t, doc), verify.ErrNoSignature},
		"empty sig":     {packReceipt(t, doc, []byte("\n")), verify.ErrNoSignature},
		"extra entry":   {packReceipt(t, doc, sig, []byte("more")), verify.ErrReceiptDamaged},
		"not zstd":      {doc, verify.ErrReceiptDamaged},
		"archive entry": {packNamed(t, "ferry/manifest.json", doc), verify.ErrReceiptDamaged},
	} {
		mustWriteFile(t, path, c.file)
		if _, err := verify.ReadReceipt(ctx, path, v); !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", name, err, c.want)
		}
	}
	big := make([]byte, verify.MaxReceiptFileSize+1)
	mustWriteFile(t, path, big)
	if _, err := verify.ReadReceipt(ctx, path, v); !errors.Is(err, verify.ErrReceiptDamaged) || !strings.Contains(err.Error(), "limit") {
		t.Errorf("oversized file: err = %v, want ErrReceiptDamaged naming the limit", err)
	}
}

// An auditor needs only tar and openssl (or cosign verify-blob) to check a
// receipt.
func TestOpenSSLVerifiesReceipt(t *testing.T) {
	s, _, _, pubPath := fileSignerVerifier(t)
	data, err := verify.EncodeReceipt(context.Background(), testReceipt(t), s)
	if err != nil {
		t.Fatal(err)
	}
	doc, sig := receiptEntries(t, data)
	dir := t.TempDir()
	docPath, sigPath := filepath.Join(dir, "receipt.json"), filepath.Join(dir, "receipt.json.sig.der")
	mustWriteFile(t, docPath, doc)
	mustWriteFile(t, sigPath, mustDecode(t, sig))
	if out := openssl(t, "dgst", "-sha256", "-verify", pubPath, "-signature", sigPath, docPath); !strings.Contains(string(out), "Verified OK") {
		t.Errorf("openssl did not verify the receipt: %s", out)
	}
}

// receiptEntries unpacks a receipt file as tar and zstd would.
func receiptEntries(t *testing.T, data []byte) (doc, sig []byte) {
	t.Helper()
	dec, err := zstd.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	tr := tar.NewReader(dec)
	var entries [][]byte
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"ferry/receipt.json", "ferry/receipt.json.sig"}[len(entries)]
		if hdr.Name != want {
			t.Fatalf("entry %q, want %q", hdr.Name, want)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, b)
	}
	if len(entries) != 2 {
		t.Fatalf("%d entries, want 2", len(entries))
	}
	return entries[0], entries[1]
}

// packReceipt builds a receipt file from entries named as a real one.
func packReceipt(t *testing.T, entries ...[]byte) []byte {
	t.Helper()
	names := []string{"ferry/receipt.json", "ferry/receipt.json.sig", "ferry/extra"}
	var args []any
	for i, e := range entries {
		args = append(args, names[i], e)
	}
	return packNamed(t, args...)
}

func packNamed(t *testing.T, nameData ...any) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := zstd.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for i := 0; i < len(nameData); i += 2 {
		name, data := nameData[i].(string), nameData[i+1].([]byte)
		if err := tw.WriteHeader(&tar.Header{Name: name, Size: int64(len(data)), Mode: 0o644, Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Whatever the bytes, reading a receipt never panics and never accepts
// anything but what the key signed.
func FuzzDecodeReceipt(f *testing.F) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	s, err := verify.NewSigner(key)
	if err != nil {
		f.Fatal(err)
	}
	v, err := verify.NewVerifier(key.Public())
	if err != nil {
		f.Fatal(err)
	}
	r, err := manifest.NewReceipt("reg/base", time.Unix(0, 0), nil, []manifest.Holding{
		{Repository: "images/x", Tag: "1", Manifest: manifest.Blob{Digest: receiptDigest("m"), Size: 3}, Blobs: []manifest.Blob{{Digest: receiptDigest("l"), Size: 9}}},
	})
	if err != nil {
		f.Fatal(err)
	}
	good, err := verify.EncodeReceipt(context.Background(), r, s)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := verify.DecodeReceipt(context.Background(), bytes.NewReader(data), v)
		if err != nil {
			return
		}
		// Accepted: it must be what was signed, since nothing else verifies.
		if !reflect.DeepEqual(got, r) {
			t.Fatalf("accepted a receipt that was never signed: %+v", got)
		}
	})
}
