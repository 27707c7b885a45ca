package archive

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func writeVolume(t *testing.T, dir string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, "v.tar.zst")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSetRefusesWhatTheKeyDidNotWrite(t *testing.T) {
	f := newFixture(t, 20<<10)
	_, res := writeFixture(t, f, 0)
	good, _ := os.ReadFile(res.Volumes[0].Path)
	tr := good[len(good)-trailerSize:]
	sealOff := int64(binary.LittleEndian.Uint64(tr[32:]))
	sealLen := int64(binary.LittleEndian.Uint64(tr[40:]))
	ctx := context.Background()
	open := func(t *testing.T, data []byte) (*Set, error) {
		set, err := OpenSet(ctx, []string{writeVolume(t, t.TempDir(), data)}, SetOptions{Verifier: testSigner{"k"}})
		if set != nil {
			t.Cleanup(func() { set.Close() })
		}
		return set, err
	}
	t.Run("another key", func(t *testing.T) {
		_, err := OpenSet(ctx, []string{res.Volumes[0].Path}, SetOptions{Verifier: testSigner{"other"}})
		if !errors.Is(err, ErrSignature) {
			t.Fatalf("err = %v, want ErrSignature", err)
		}
	})
	t.Run("seal flipped", func(t *testing.T) {
		data := bytes.Clone(good)
		// The seal frame is compressed; a flipped byte either breaks the
		// frame or the signature, never passes.
		data[sealOff+sealLen/2] ^= 0x20
		set, err := open(t, data)
		if err != nil {
			t.Fatal(err)
		}
		if v := set.Volumes()[0]; v.Err == nil {
			t.Fatal("a volume with a damaged seal verified")
		}
		if ok, _ := set.Has(f.bom.Blobs[0].Digest); ok {
			t.Fatal("a volume whose index is not trusted serves blobs")
		}
	})
	t.Run("stray entry after the seal", func(t *testing.T) {
		enc, _ := zstd.NewWriter(nil)
		stray := enc.EncodeAll(bytes.Repeat([]byte{'x'}, 2048), nil)
		end := sealOff + sealLen
		data := append(append(append([]byte(nil), good[:end]...), stray...), good[end:]...)
		set, err := open(t, data)
		if err != nil {
			t.Fatal(err)
		}
		v := set.Volumes()[0]
		if v.Err != nil || v.Tampered == nil || !errors.Is(v.Tampered, ErrFormat) {
			t.Fatalf("err %v, tampered %v; want the volume served and marked tampered", v.Err, v.Tampered)
		}
		if got := readBlob(t, set, f.bom.Blobs[0].Digest); !bytes.Equal(got, f.src[f.bom.Blobs[0].Digest]) {
			t.Fatal("blob differs")
		}
	})
	t.Run("old trailer", func(t *testing.T) {
		data := bytes.Clone(good)
		old := trailer{indexOffset: 10, indexLength: 10}.marshal()
		copy(old[8:16], "FERRYIX1")
		copy(data[len(data)-trailerSize:], make([]byte, trailerSize))
		copy(data[len(data)-32:], append(old[:8], old[8:32]...))
		set, err := open(t, data)
		if err != nil {
			t.Fatal(err)
		}
		if v := set.Volumes()[0]; v.Err == nil || !strings.Contains(v.Err.Error(), "older ferry") {
			t.Fatalf("err = %v, want one naming an older ferry", v.Err)
		}
	})
	t.Run("huge window", func(t *testing.T) {
		frame := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 19 << 3, 1, 0, 0}
		_, err := open(t, append(frame, good...))
		if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "MaxDecoderWindow") {
			t.Fatalf("err = %v, want ErrLimit naming MaxDecoderWindow", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := OpenSet(cctx, []string{res.Volumes[0].Path}, SetOptions{Verifier: testSigner{"k"}}); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
}

func TestSetRefusesVolumeOfAnotherArchive(t *testing.T) {
	f := newFixture(t, 10<<10)
	_, res := writeFixture(t, f, 0)
	f.bom.ArchiveID = "another"
	_, other := writeFixture(t, f, 0)
	set := func() *Set {
		s, err := OpenSet(context.Background(), []string{res.Volumes[0].Path, other.Volumes[0].Path}, SetOptions{Verifier: testSigner{"k"}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}()
	defer set.Close()
	vols := set.Volumes()
	if vols[0].Err != nil || !errors.Is(vols[1].Err, ErrForeign) || !strings.Contains(vols[1].Err.Error(), "archive another") {
		t.Fatalf("volumes: %v / %v", vols[0].Err, vols[1].Err)
	}
}
