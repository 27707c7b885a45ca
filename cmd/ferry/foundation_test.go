package main

import (
	"archive/tar"
	"bytes"
	"encoding/binary"

	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/klauspost/compress/zstd"

	"github.com/ferrytool/ferry/internal/testbed"
	"github.com/ferrytool/ferry/manifest"
)

// foundation is an archive collected from a real registry, shared by the
// tests that check and then damage it.
type foundation struct {
	dir     string
	key     string
	pub     string
	volumes []string
	src     *testbed.Registry
	refs    []string
}

func newFoundation(t *testing.T, volumeSize string, big bool) *foundation {
	t.Helper()
	src := testbed.StartSourceRegistry(t)
	shared := testbed.RandomLayer(t, 300<<10)
	testbed.PushRandomImage(t, src, "apps/one:1.0", 2, 200<<10, shared)
	testbed.PushRandomImage(t, src, "apps/two:2.0", 1, 200<<10, shared)
	testbed.PushIndex(t, src, "base/multi:3.0", "linux/amd64", "linux/arm64")
	f := &foundation{dir: t.TempDir(), src: src,
		refs: []string{src.Host + "/apps/one:1.0", src.Host + "/apps/two:2.0", src.Host + "/base/multi:3.0"}}
	if big {
		testbed.PushRandomImage(t, src, "apps/big:1.0", 1, 3<<20)
		f.refs = append(f.refs, src.Host+"/apps/big:1.0")
	}
	f.key, f.pub = filepath.Join(f.dir, "ferry.key"), filepath.Join(f.dir, "ferry.pub")
	mustFerry(t, "key", "generate", "--output", filepath.Join(f.dir, "ferry"))
	args := []string{"collect", "--quiet", "--plain-http", "--key", f.key, "--output", filepath.Join(f.dir, "out", "demo"),
		"--cache-dir", filepath.Join(f.dir, "cache"), "--volume-size", volumeSize}
	for _, r := range f.refs {
		args = append(args, "--image", r)
	}
	os.MkdirAll(filepath.Join(f.dir, "out"), 0o755)
	mustFerry(t, args...)
	f.volumes, _ = filepath.Glob(filepath.Join(f.dir, "out", "demo.tar.zst*"))
	if len(f.volumes) == 0 {
		t.Fatal("collect wrote no volume")
	}
	return f
}

func (f *foundation) verifyArgs(volumes ...string) []string {
	return append([]string{"verify", "--quiet", "--key", f.pub}, volumes...)
}

func TestCollectVerifyExtractRoundTrip(t *testing.T) {
	f := newFoundation(t, "600K", false)
	if len(f.volumes) < 3 {
		t.Fatalf("got %d volumes, want several with a 600K volume size", len(f.volumes))
	}
	for _, v := range f.volumes {
		if st, _ := os.Stat(v); st.Size() > 600<<10 {
			t.Errorf("%s is %d bytes, over the volume size", v, st.Size())
		}
	}
	r := mustFerry(t, f.verifyArgs(f.volumes...)...)
	if !strings.Contains(r.stdout, "verified") {
		t.Errorf("verify output:\n%s", r.stdout)
	}

	// tar --zstd -xf of every volume into one folder gives an OCI layout.
	out := t.TempDir()
	for _, v := range f.volumes {
		if msg, err := exec.Command("tar", "--zstd", "-xf", v, "-C", out).CombinedOutput(); err != nil {
			t.Fatalf("tar -xf %s: %v\n%s", v, err, msg)
		}
	}
	lp, err := layout.FromPath(out)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != len(f.refs) {
		t.Fatalf("index.json lists %d artifacts, want %d", len(im.Manifests), len(f.refs))
	}
	for _, d := range im.Manifests {
		name := d.Annotations["org.opencontainers.image.ref.name"]
		if d.MediaType.IsIndex() {
			ii, err := idx.ImageIndex(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			if err := validate.Index(ii); err != nil {
				t.Errorf("%s: validate.Index: %v", name, err)
			}
		} else {
			img, err := idx.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			if err := validate.Image(img); err != nil {
				t.Errorf("%s: validate.Image: %v", name, err)
			}
		}
		// The source registry resolves the reference to the same digest.
		src, err := remote.Head(f.src.Ref(t, strings.TrimPrefix(name, f.src.Host+"/")), f.src.Options()...)
		if err != nil {
			t.Fatal(err)
		}
		if src.Digest != d.Digest {
			t.Errorf("%s: archive has %s, source has %s", name, d.Digest, src.Digest)
		}
	}
	// Every blob file is byte-identical to what the source serves.
	blobs, _ := filepath.Glob(filepath.Join(out, "blobs", "sha256", "*"))
	repo := f.src.Ref(t, "apps/one:1.0").Context()
	for _, b := range blobs {
		data, _ := os.ReadFile(b)
		l, err := remote.Layer(repo.Digest("sha256:"+filepath.Base(b)), f.src.Options()...)
		if err != nil {
			continue // lives in another repository of the source
		}
		rc, err := l.Compressed()
		if err != nil {
			continue
		}
		want, _ := io.ReadAll(rc)
		rc.Close()
		if len(want) > 0 && !bytes.Equal(data, want) {
			t.Errorf("blob %s differs from the source", filepath.Base(b))
		}
	}

	// inspect answers from the index.
	r = mustFerry(t, "inspect", "--key", f.pub, "--output", "json", f.volumes[0], f.volumes[1])
	var in struct {
		Artifacts []struct{ Name string } `json:"artifacts"`
		Stats     struct{ LogicalBytes, StoredBytes int64 }
		LastSeen  bool `json:"lastVolumeSeen"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &in); err != nil {
		t.Fatalf("inspect json: %v\n%s", err, r.stdout)
	}
	if len(in.Artifacts) != len(f.refs) || in.Stats.LogicalBytes <= in.Stats.StoredBytes {
		t.Errorf("inspect: %d artifacts, logical %d stored %d; want %d artifacts and deduplication", len(in.Artifacts), in.Stats.LogicalBytes, in.Stats.StoredBytes, len(f.refs))
	}
	r = mustFerry(t, append([]string{"inspect", "--key", f.pub}, f.volumes...)...)
	if !strings.Contains(r.stdout, "deduplication saves") || !strings.Contains(r.stdout, "apps/one:1.0") {
		t.Errorf("inspect table:\n%s", r.stdout)
	}
}

func TestBlobLargerThanVolume(t *testing.T) {
	f := newFoundation(t, "1M", true)
	mustFerry(t, f.verifyArgs(f.volumes...)...)
	r := mustFerry(t, "inspect", "--key", f.pub, "--output", "json", f.volumes[0])
	if !strings.Contains(r.stdout, "apps/big:1.0") {
		t.Fatal("inspect does not list the big image")
	}
	parts := 0
	for _, v := range f.volumes {
		r := mustFerry(t, []string{"inspect", "--key", f.pub, "--output", "json", v}...)
		var in struct{ Volumes []struct{ Parts int } }
		json.Unmarshal([]byte(r.stdout), &in)
		parts += in.Volumes[0].Parts
	}
	if parts < 3 {
		t.Fatalf("the 3 MiB layer is in %d parts, want it split over at least 3 volumes", parts)
	}
	// Without the middle volume the split blob is reported missing.
	wantFail(t, ExitIncomplete, []string{"volume 2 is missing"}, f.verifyArgs(append([]string{f.volumes[0]}, f.volumes[2:]...)...)...)
}

func TestVerifyRefusesDamage(t *testing.T) {
	f := newFoundation(t, "600K", false)
	vol := f.volumes[0]

	t.Run("flipped byte in a layer", func(t *testing.T) {
		p := flipInLayer(t, f.pub, vol)
		wantFail(t, ExitVerify, []string{p, "sha256:", "does not match"}, f.verifyArgs(p)...)
	})
	t.Run("flipped byte in the compressed file", func(t *testing.T) {
		data, _ := os.ReadFile(vol)
		data[len(data)/2] ^= 0x55
		p := filepath.Join(t.TempDir(), filepath.Base(vol))
		os.WriteFile(p, data, 0o644)
		wantFail(t, ExitVerify, []string{p}, f.verifyArgs(p)...)
	})
	t.Run("edited manifest.json", func(t *testing.T) {
		p := rewriteVolume(t, vol, func(es []tarEntry) []tarEntry {
			es[0].data = bytes.Replace(es[0].data, []byte(`"size": `), []byte(`"size": 1`), 1)
			return es
		})
		wantFail(t, ExitVerify, []string{p, "signature"}, f.verifyArgs(p)...)
	})
	t.Run("signature from another key", func(t *testing.T) {
		other := filepath.Join(t.TempDir(), "other")
		mustFerry(t, "key", "generate", "--output", other)
		wantFail(t, ExitVerify, []string{vol, "signature"}, "verify", "--quiet", "--key", other+".pub", vol)
	})
	t.Run("missing signature", func(t *testing.T) {
		p := rewriteVolume(t, vol, func(es []tarEntry) []tarEntry { return append(es[:1:1], es[2:]...) })
		wantFail(t, ExitVerify, []string{p, "no signature"}, f.verifyArgs(p)...)
	})
	t.Run("missing volume", func(t *testing.T) {
		given := append([]string{f.volumes[0]}, f.volumes[2:]...)
		wantFail(t, ExitIncomplete, []string{"volume 2 is missing"}, f.verifyArgs(given...)...)
		last := len(f.volumes)
		wantFail(t, ExitIncomplete, []string{"is missing", "not the last"}, f.verifyArgs(f.volumes[:last-1]...)...)
	})
	t.Run("truncated volume", func(t *testing.T) {
		data, _ := os.ReadFile(vol)
		p := filepath.Join(t.TempDir(), filepath.Base(vol))
		os.WriteFile(p, data[:len(data)*2/3], 0o644)
		wantFail(t, ExitVerify, []string{p, "truncated"}, f.verifyArgs(p)...)
	})
	for _, evil := range []struct {
		name string
		hdr  tar.Header
		want string
	}{
		{"dot-dot", tar.Header{Name: "blobs/../../evil", Typeflag: tar.TypeReg}, "../"},
		{"absolute", tar.Header{Name: "/etc/evil", Typeflag: tar.TypeReg}, "absolute"},
		{"symlink", tar.Header{Name: "blobs/sha256/link", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}, "link"},
		{"device", tar.Header{Name: "blobs/sha256/dev", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}, "device"},
	} {
		t.Run("tar entry "+evil.name, func(t *testing.T) {
			p := insertEntry(t, vol, evil.hdr, nil)
			wantFail(t, ExitVerify, []string{p, evil.hdr.Name, evil.want}, f.verifyArgs(p)...)
		})
	}
}

// flipInLayer returns a copy of a volume with one byte flipped in the
// middle of a layer stored raw: the frame still decodes, only the layer's
// digest gives it away.
func flipInLayer(t *testing.T, pub, path string) string {
	t.Helper()
	set := openSetForTest(t, pub, path)
	n := set.Volumes()[0].Number
	for _, e := range set.Entries(n) {
		b, _ := set.Blob(e.Digest)
		if e.Part == nil && e.Size > 100<<10 && manifest.IsCompressed(b.MediaType) {
			data, _ := os.ReadFile(path)
			data[e.Offset+e.Length/2] ^= 1
			out := filepath.Join(t.TempDir(), filepath.Base(path))
			os.WriteFile(out, data, 0o644)
			return out
		}
	}
	t.Fatalf("no raw layer in %s", path)
	return ""
}

// insertEntry returns a copy of a volume with a tar entry, in a zstd frame
// of its own, between the index seal and the tar end marker: everything the
// trailer and the sealed index name is where they say.
func insertEntry(t *testing.T, path string, hdr tar.Header, content []byte) string {
	t.Helper()
	data, _ := os.ReadFile(path)
	trailer := data[len(data)-48:]
	end := binary.LittleEndian.Uint64(trailer[32:]) + binary.LittleEndian.Uint64(trailer[40:])
	var entry bytes.Buffer
	tw := tar.NewWriter(&entry)
	hdr.Size = int64(len(content))
	if err := tw.WriteHeader(&hdr); err != nil {
		t.Fatal(err)
	}
	tw.Write(content)
	tw.Flush()
	enc, _ := zstd.NewWriter(nil)
	frame := enc.EncodeAll(entry.Bytes(), nil)
	out := append(append(append([]byte(nil), data[:end]...), frame...), data[end:]...)
	p := filepath.Join(t.TempDir(), filepath.Base(path))
	os.WriteFile(p, out, 0o644)
	return p
}

type tarEntry struct {
	name string
	hdr  tar.Header
	data []byte
}

// rewriteVolume decodes a volume, lets fn change its entries and writes the
// result as a plain single-stream tar.zst next to nothing else.
func rewriteVolume(t *testing.T, path string, fn func([]tarEntry) []tarEntry) string {
	t.Helper()
	in, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	dec, err := zstd.NewReader(in)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	tr := tar.NewReader(dec)
	var es []tarEntry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		es = append(es, tarEntry{name: h.Name, hdr: *h, data: data})
	}
	es = fn(es)
	out := filepath.Join(t.TempDir(), filepath.Base(path))
	f, _ := os.Create(out)
	enc, _ := zstd.NewWriter(f)
	tw := tar.NewWriter(enc)
	for _, e := range es {
		h := e.hdr
		h.Name = e.name
		h.Size = int64(len(e.data))
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		tw.Write(e.data)
	}
	tw.Close()
	enc.Close()
	f.Close()
	return out
}
