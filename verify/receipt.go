package verify

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/ferrytool/ferry/archive"
	"github.com/ferrytool/ferry/manifest"
)

// A receipt file is laid out like the head of an archive volume: a
// zstd-compressed tar of the receipt document and its signature, in the same
// form as an archive's bill of materials and signature. An auditor can check
// one without ferry:
//
//	tar --zstd -xf receipt.tar.zst
//	cosign verify-blob --key site.pub --signature ferry/receipt.json.sig ferry/receipt.json
const (
	// ReceiptEntry is the name of the first entry of a receipt file, which
	// tells a receipt from an archive volume (whose first entry is the bill
	// of materials).
	ReceiptEntry    = "ferry/receipt.json"
	receiptSigEntry = "ferry/receipt.json.sig"
)

// MaxReceiptFileSize caps the size of a receipt file. The document inside is
// capped at manifest.MaxReceiptSize, and zstd shrinks it by half or more.
const MaxReceiptFileSize = manifest.MaxReceiptSize

// maxReceiptSigSize caps the signature entry; an RSA-4096 signature in
// base64 takes under a kilobyte.
const maxReceiptSigSize = 64 << 10

var (
	// ErrReceiptDamaged is returned for a receipt file that is not a receipt
	// or whose compression or structure is broken.
	ErrReceiptDamaged = errors.New("receipt file is damaged or not a receipt")
	// ErrReceiptTruncated is returned for a receipt file that ends early.
	ErrReceiptTruncated = errors.New("receipt file is truncated")
)

// WriteReceipt signs r and writes it to path, replacing any file there only
// once the new one is complete and synced. It sets r.SignedBy to the
// signer's key id, so the signature also vouches for which key made it.
func WriteReceipt(ctx context.Context, path string, r *manifest.Receipt, s *Signer) (err error) {
	data, err := EncodeReceipt(ctx, r, s)
	if err != nil {
		return fmt.Errorf("receipt %s: %w", path, err)
	}
	if len(data) > MaxReceiptFileSize {
		return fmt.Errorf("receipt %s: %d bytes exceeds the %d byte limit a reader accepts", path, len(data), MaxReceiptFileSize)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write receipt %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("write receipt %s: %w", path, err)
	}
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("write receipt %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("write receipt %s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("write receipt %s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write receipt %s: %w", path, err)
	}
	syncDir(dir)
	return nil
}

// EncodeReceipt signs r and returns the bytes of a receipt file, setting
// r.SignedBy as WriteReceipt does. The same receipt and key always give the
// same bytes.
func EncodeReceipt(ctx context.Context, r *manifest.Receipt, s *Signer) ([]byte, error) {
	r.SignedBy = s.KeyID()
	doc, err := r.Marshal()
	if err != nil {
		return nil, err
	}
	sig, err := s.sign(ctx, doc)
	if err != nil {
		return nil, fmt.Errorf("sign receipt with key %s: %w", s.KeyID(), err)
	}
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	// Every header field is fixed or taken from the receipt, so the file
	// depends on nothing but the content.
	for _, e := range []struct {
		name string
		data []byte
	}{{ReceiptEntry, doc}, {receiptSigEntry, sig}} {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: e.name, Size: int64(len(e.data)), Mode: 0o644,
			ModTime: r.Created.UTC().Truncate(time.Second), Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ReadReceipt reads the receipt file at path and returns its receipt once
// the signature checks with v; nothing in the document is decoded before.
// Errors name the file and say what is wrong: ErrReceiptTruncated,
// ErrReceiptDamaged, ErrNoSignature, ErrBadSignature (signed by another key,
// or changed after signing) or manifest.ErrInvalidReceipt.
func ReadReceipt(ctx context.Context, path string, v *Verifier) (*manifest.Receipt, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read receipt: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read receipt %s: %w", path, err)
	}
	if st.Size() > MaxReceiptFileSize {
		return nil, fmt.Errorf("receipt %s: %w: %d bytes exceeds the %d byte limit", path, ErrReceiptDamaged, st.Size(), MaxReceiptFileSize)
	}
	r, err := DecodeReceipt(ctx, f, v)
	if err != nil {
		return nil, fmt.Errorf("receipt %s: %w", path, err)
	}
	return r, nil
}

// DecodeReceipt is ReadReceipt for a receipt file already open; the caller
// names the file in messages.
func DecodeReceipt(ctx context.Context, rd io.Reader, v *Verifier) (*manifest.Receipt, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	doc, sig, err := readReceiptEntries(io.LimitReader(rd, MaxReceiptFileSize+1))
	if err != nil {
		return nil, err
	}
	if err := v.verify(ctx, doc, sig); err != nil {
		if errors.Is(err, ErrBadSignature) {
			return nil, explainReceiptSignature(doc, v, err)
		}
		return nil, err
	}
	r, err := manifest.ParseReceipt(doc)
	if err != nil {
		return nil, fmt.Errorf("signed by key %s but %w", v.KeyID(), err)
	}
	return r, nil
}

// explainReceiptSignature tells a receipt signed by another key from one
// changed after signing, by the key id the document names. The name is not
// trusted: it only chooses the message of a refusal.
func explainReceiptSignature(doc []byte, v *Verifier, err error) error {
	var claim struct {
		SignedBy string `json:"signedBy"`
	}
	_ = json.Unmarshal(doc, &claim)
	switch {
	case claim.SignedBy != "" && claim.SignedBy != v.KeyID():
		return fmt.Errorf("%w: it names key %s as its signer, not the key given (%s)", ErrBadSignature, claim.SignedBy, v.KeyID())
	case claim.SignedBy == v.KeyID():
		return fmt.Errorf("%w: its content was changed after key %s signed it", ErrBadSignature, v.KeyID())
	}
	return err
}

func readReceiptEntries(rd io.Reader) (doc, sig []byte, err error) {
	dec, err := zstd.NewReader(rd, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(archive.MaxDecoderWindow),
		zstd.WithDecoderMaxMemory(2*manifest.MaxReceiptSize))
	if err != nil {
		return nil, nil, err
	}
	defer dec.Close()
	tr := tar.NewReader(dec)
	doc, err = readReceiptEntry(tr, ReceiptEntry, manifest.MaxReceiptSize)
	if errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("%w: no %s", ErrReceiptTruncated, ReceiptEntry)
	}
	if err != nil {
		return nil, nil, err
	}
	sig, err = readReceiptEntry(tr, receiptSigEntry, maxReceiptSigSize)
	if errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("%w: no %s", ErrNoSignature, receiptSigEntry)
	}
	if err != nil {
		return nil, nil, err
	}
	if _, err := tr.Next(); err != io.EOF {
		if err == nil {
			return nil, nil, fmt.Errorf("%w: more than a receipt and its signature", ErrReceiptDamaged)
		}
		return nil, nil, streamError(err)
	}
	// Read to the end, so a cut-off or altered last frame shows as its
	// failed checksum rather than passing unnoticed.
	if _, err := io.Copy(io.Discard, io.LimitReader(dec, 1<<20)); err != nil {
		return nil, nil, streamError(err)
	}
	return doc, sig, nil
}

func readReceiptEntry(tr *tar.Reader, name string, limit int64) ([]byte, error) {
	hdr, err := tr.Next()
	if err == io.EOF {
		return nil, err
	}
	if err != nil {
		return nil, streamError(err)
	}
	if hdr.Name != name || hdr.Typeflag != tar.TypeReg {
		return nil, fmt.Errorf("%w: found %q where %s belongs", ErrReceiptDamaged, hdr.Name, name)
	}
	if hdr.Size > limit {
		return nil, fmt.Errorf("%w: %s is %d bytes, over the %d byte limit", ErrReceiptDamaged, name, hdr.Size, limit)
	}
	data := make([]byte, hdr.Size)
	if _, err := io.ReadFull(tr, data); err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, streamError(err))
	}
	return data, nil
}

// streamError sorts a failure to read the compressed tar into truncated and
// damaged.
func streamError(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %v", ErrReceiptTruncated, err)
	}
	return fmt.Errorf("%w: %v", ErrReceiptDamaged, err)
}
