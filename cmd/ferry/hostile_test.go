package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/ferrytool/ferry/archive"
	"github.com/ferrytool/ferry/internal/digestio"
	"github.com/ferrytool/ferry/internal/testbed"
	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/verify"
)

// volumeLayout is where a volume's regions sit, read from its trailer and
// its sealed index.
type volumeLayout struct {
	data                   []byte
	indexOff, indexLen     int64
	sealOff, sealLen       int64
	entries                []archive.Entry
	head, entriesEnd, size int64
}

func layoutOf(t *testing.T, pub, path string) volumeLayout {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tr := data[len(data)-48:]
	l := volumeLayout{data: data, size: int64(len(data)),
		indexOff: int64(binary.LittleEndian.Uint64(tr[16:])), indexLen: int64(binary.LittleEndian.Uint64(tr[24:])),
		sealOff: int64(binary.LittleEndian.Uint64(tr[32:])), sealLen: int64(binary.LittleEndian.Uint64(tr[40:]))}
	set := openSetForTest(t, pub, path)
	l.entries = set.Entries(set.Volumes()[0].Number)
	l.head, l.entriesEnd = l.size, 0
	for _, e := range l.entries {
		l.head = min(l.head, e.Offset)
		l.entriesEnd = max(l.entriesEnd, e.Offset+e.Length)
	}
	return l
}

// withTrailer replaces the trailer's offsets.
func withTrailer(data []byte, indexOff, indexLen, sealOff, sealLen int64) []byte {
	out := append([]byte(nil), data...)
	tr := out[len(out)-48:]
	binary.LittleEndian.PutUint64(tr[16:], uint64(indexOff))
	binary.LittleEndian.PutUint64(tr[24:], uint64(indexLen))
	binary.LittleEndian.PutUint64(tr[32:], uint64(sealOff))
	binary.LittleEndian.PutUint64(tr[40:], uint64(sealLen))
	return out
}

// tarFrame encodes one tar entry as a zstd frame; declared is the size the
// header claims, content what follows it.
func tarFrame(t *testing.T, name string, declared int64, content []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	buf.Write(tarHeaderBlock(t, name, declared))
	buf.Write(content)
	if pad := len(content) % 512; pad != 0 && int64(len(content)) == declared {
		buf.Write(make([]byte, 512-pad))
	}
	enc, _ := zstd.NewWriter(nil)
	return enc.EncodeAll(buf.Bytes(), nil)
}

func tarHeaderBlock(t *testing.T, name string, size int64) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()[:512]
}

// decodeEntry decodes the single tar entry of a frame.
func decodeEntry(t *testing.T, frame []byte) []byte {
	t.Helper()
	dec, _ := zstd.NewReader(bytes.NewReader(frame))
	defer dec.Close()
	tr := tar.NewReader(dec)
	if _, err := tr.Next(); err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(tr)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// replaceIndex puts frame where the index frame was and moves the seal and
// the rest behind it, with a trailer that points at both.
func (l volumeLayout) replaceIndex(frame []byte) []byte {
	var out []byte
	out = append(out, l.data[:l.indexOff]...)
	out = append(out, frame...)
	rest := l.data[l.indexOff+l.indexLen:]
	out = append(out, rest...)
	shift := int64(len(frame)) - l.indexLen
	return withTrailer(out, l.indexOff, int64(len(frame)), l.sealOff+shift, l.sealLen)
}

// childRun is one run of the ferry binary.
type childRun struct {
	code   int
	out    string
	maxRSS int64 // bytes
}

// runChild runs the built binary with TMPDIR pointed at tmp and reports its
// exit code, output and peak resident memory.
func runChild(t *testing.T, bin, tmp string, env []string, args ...string) childRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(append(os.Environ(), "TMPDIR="+tmp), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("ferry %s did not finish in time\n%s", strings.Join(args, " "), out.String())
	}
	r := childRun{out: out.String()}
	if cmd.ProcessState == nil {
		t.Fatalf("ferry %s: %v", strings.Join(args, " "), err)
	}
	r.code = cmd.ProcessState.ExitCode()
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.maxRSS = ru.Maxrss * 1024
	}
	return r
}

// writeOtherArchive writes a second archive of the same content, signed
// with the same key, under another archive id.
func writeOtherArchive(t *testing.T, fx *fixtureArchive) string {
	t.Helper()
	signer, err := verify.SignerFromFile(fx.key, nil)
	if err != nil {
		t.Fatal(err)
	}
	bom := *fx.bom
	bom.ArchiveID = "other-" + rand.Text()
	res, err := archive.Write(context.Background(), &bom, fxSource(fx.blobs), archive.WriteOptions{Dir: t.TempDir(), Name: "clearml", Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	return res.Volumes[0].Path
}

// TestHostileVolumes crafts volumes the way someone without the key could
// and checks what verify, inspect and ingest make of each: the exit code
// from the README's table, a message that names the volume and what is
// wrong, no crash, nothing written to TMPDIR, peak memory under 200 MiB,
// and nothing that did not verify behind a tag in the registry.
func TestHostileVolumes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds ferry and runs it as a child many times")
	}
	bin := buildFerry(t)
	b := newIngestBed(t, 64<<20, 256<<10)
	if len(b.fx.volumes) != 1 {
		t.Fatalf("want a one-volume archive, got %d volumes", len(b.fx.volumes))
	}
	vol := b.fx.volumes[0]
	l := layoutOf(t, b.fx.pub, vol)
	other := writeOtherArchive(t, b.fx)
	ol := layoutOf(t, b.fx.pub, other)
	indexContent := decodeEntry(t, l.data[l.indexOff:l.indexOff+l.indexLen])

	const (
		pushedNone = iota
		pushedAll
		pushedSome
	)
	type hostile struct {
		name string
		// make returns the volumes to give, the last one crafted.
		make    func(t *testing.T, dir string) []string
		verify  int
		inspect int
		ingest  int
		pushed  int
		names   []string // what every message must say, besides the volume
	}
	write := func(dir string, data []byte) string {
		p := filepath.Join(dir, filepath.Base(vol))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	one := func(fn func() []byte) func(*testing.T, string) []string {
		return func(t *testing.T, dir string) []string { return []string{write(dir, fn())} }
	}
	cases := []hostile{
		{name: "index cut to 16 KiB", verify: ExitVerify, inspect: ExitVerify, ingest: ExitVerify, names: []string{"index"},
			make: one(func() []byte {
				return l.replaceIndex(tarFrame(t, archive.NameIndexDB, 16<<10, indexContent[:16<<10]))
			})},
		{name: "index page ids lie", verify: ExitVerify, inspect: ExitVerify, ingest: ExitVerify, names: []string{"not the one sealed"},
			make: one(func() []byte {
				lied := append([]byte(nil), indexContent...)
				for p := 2 * 4096; p+8 < len(lied); p += 4096 {
					binary.LittleEndian.PutUint64(lied[p:], 0xffffff)
				}
				return l.replaceIndex(tarFrame(t, archive.NameIndexDB, int64(len(lied)), lied))
			})},
		{name: "index sealed with another key", verify: ExitVerify, inspect: ExitVerify, ingest: ExitVerify, names: []string{"index seal", "signature"},
			make: one(func() []byte {
				var sl struct{ Statement, Signature string }
				if err := json.Unmarshal(decodeEntry(t, l.data[l.sealOff:l.sealOff+l.sealLen]), &sl); err != nil {
					t.Fatal(err)
				}
				otherKey := filepath.Join(t.TempDir(), "other")
				if err := verify.WriteKeyPair(otherKey+".key", otherKey+".pub", nil); err != nil {
					t.Fatal(err)
				}
				signer, _ := verify.SignerFromFile(otherKey+".key", nil)
				sig, err := signer.SignBOM(context.Background(), []byte(sl.Statement))
				if err != nil {
					t.Fatal(err)
				}
				sl.Signature = string(sig)
				forged, _ := json.Marshal(map[string]string{"statement": sl.Statement, "signature": sl.Signature})
				frame := tarFrame(t, archive.NameIndexSeal, int64(len(forged)), forged)
				out := append(append(append([]byte(nil), l.data[:l.sealOff]...), frame...), l.data[l.sealOff+l.sealLen:]...)
				return withTrailer(out, l.indexOff, l.indexLen, l.sealOff, int64(len(frame)))
			})},
		{name: "trailer points outside the file", verify: ExitVerify, inspect: ExitVerify, ingest: ExitVerify, names: []string{"trailer points outside"},
			make: one(func() []byte { return withTrailer(l.data, l.size+4096, l.indexLen, l.size+4096+l.indexLen, l.sealLen) })},
		{name: "trailer points at blob frames", verify: ExitVerify, inspect: ExitVerify, ingest: ExitVerify, names: []string{"index seal"},
			make: one(func() []byte {
				e1, e2 := adjacent(t, l.entries)
				return withTrailer(l.data, e1.Offset, e1.Length, e2.Offset, e2.Length)
			})},
		{name: "index frame claims 511 MiB", verify: ExitVerify, inspect: ExitVerify, ingest: ExitVerify, names: []string{"limit"},
			make: one(func() []byte {
				junk := make([]byte, 1<<20)
				rand.Read(junk)
				return l.replaceIndex(tarFrame(t, archive.NameIndexDB, 511<<20, junk))
			})},
		{name: "frame declaring a 512 MiB window", verify: ExitVerify, inspect: ExitVerify, ingest: ExitVerify, names: []string{"MaxDecoderWindow"},
			make: one(func() []byte {
				// Frame header: magic, a descriptor with a window byte and no
				// content size, window 2^(10+19) = 512 MiB; then one raw
				// block of 32 KiB.
				frame := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 19 << 3}
				block := make([]byte, 32<<10)
				copy(block, tarHeaderBlock(t, archive.NameBOM, 1<<30))
				hdr := uint32(len(block))<<3 | 1
				frame = append(frame, byte(hdr), byte(hdr>>8), byte(hdr>>16))
				return append(append(frame, block...), l.data...)
			})},
		{name: "volume cut in half", verify: ExitVerify, inspect: ExitVerify, ingest: ExitVerify, names: []string{"truncated"},
			make: one(func() []byte { return l.data[:l.size/2] })},
		{name: "stray symlink between frames", verify: ExitVerify, inspect: ExitVerify, ingest: ExitPartial, pushed: pushedAll, names: []string{"blobs/sha256/link", "link"},
			make: func(t *testing.T, dir string) []string {
				p := insertEntry(t, vol, tar.Header{Name: "blobs/sha256/link", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}, nil)
				return []string{p}
			}},
		{name: "stray device between frames", verify: ExitVerify, inspect: ExitVerify, ingest: ExitPartial, pushed: pushedAll, names: []string{"blobs/sha256/dev", "device"},
			make: func(t *testing.T, dir string) []string {
				p := insertEntry(t, vol, tar.Header{Name: "blobs/sha256/dev", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}, nil)
				return []string{p}
			}},
		{name: "data after the end marker", verify: ExitVerify, inspect: ExitVerify, ingest: ExitPartial, pushed: pushedAll, names: []string{"after the end"},
			make: one(func() []byte {
				enc, _ := zstd.NewWriter(nil)
				junk := enc.EncodeAll(bytes.Repeat([]byte("smuggled "), 1000), nil)
				end := l.size - 48
				return append(append(append([]byte(nil), l.data[:end]...), junk...), l.data[end:]...)
			})},
		{name: "duplicated entry", verify: ExitVerify, inspect: ExitVerify, ingest: ExitPartial, pushed: pushedAll, names: []string{"stray entry", "blobs/sha256/"},
			make: one(func() []byte {
				e := l.entries[0]
				end := l.sealOff + l.sealLen
				dup := l.data[e.Offset : e.Offset+e.Length]
				return append(append(append([]byte(nil), l.data[:end]...), dup...), l.data[end:]...)
			})},
		{name: "swapped frames", verify: ExitVerify, inspect: ExitOK, ingest: ExitPartial, pushed: pushedSome, names: []string{"blobs/sha256/"},
			make: one(func() []byte {
				e1, e2 := adjacent(t, l.entries)
				out := append([]byte(nil), l.data[:e1.Offset]...)
				out = append(out, l.data[e2.Offset:e2.Offset+e2.Length]...)
				out = append(out, l.data[e1.Offset:e1.Offset+e1.Length]...)
				return append(out, l.data[e2.Offset+e2.Length:]...)
			})},
		{name: "index from another archive", verify: ExitVerify, inspect: ExitVerify, ingest: ExitVerify, names: []string{"another archive"},
			make: one(func() []byte {
				// Our head (bill of materials and signature), the other
				// archive's blobs, index and seal, the trailer moved along.
				out := append(append([]byte(nil), l.data[:l.head]...), ol.data[ol.head:]...)
				shift := l.head - ol.head
				return withTrailer(out, ol.indexOff+shift, ol.indexLen, ol.sealOff+shift, ol.sealLen)
			})},
		{name: "volume of another archive with the same key", verify: ExitVerify, inspect: ExitVerify, ingest: ExitPartial, pushed: pushedAll, names: []string{"another archive"},
			make: func(t *testing.T, dir string) []string {
				p := filepath.Join(dir, "other.tar.zst")
				os.WriteFile(p, ol.data, 0o644)
				return []string{vol, p}
			}},
	}
	env := []string{envRegistryPassword + "=" + b.reg.Password}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			vols := c.make(t, dir)
			crafted := vols[len(vols)-1]
			tmp := t.TempDir()
			base := fmt.Sprintf("hostile-%d", i)
			state := t.TempDir()
			runs := []struct {
				what string
				want int
				args []string
			}{
				{"verify", c.verify, append([]string{"verify", "--quiet", "--key", b.fx.pub}, vols...)},
				{"inspect", c.inspect, append([]string{"inspect", "--key", b.fx.pub}, vols...)},
				{"ingest", c.ingest, append([]string{"ingest", "--quiet", "--registry", b.host + "/" + base, "--key", b.fx.pub,
					"--ca-file", b.caFile, "--username", b.reg.Username, "--journal", filepath.Join(state, "journal.db"),
					"--work-dir", filepath.Join(state, "work")}, vols...)},
			}
			for _, r := range runs {
				got := runChild(t, bin, tmp, env, r.args...)
				t.Logf("%s: exit %d, peak RSS %d MiB\n%s", r.what, got.code, got.maxRSS>>20, got.out)
				if got.code != r.want {
					t.Errorf("%s: exit %d, want %d", r.what, got.code, r.want)
				}
				if strings.Contains(got.out, "panic") || strings.Contains(got.out, "goroutine ") {
					t.Errorf("%s crashed:\n%s", r.what, got.out)
				}
				if got.maxRSS > 200<<20 {
					t.Errorf("%s: peak RSS %d MiB, over 200 MiB", r.what, got.maxRSS>>20)
				}
				names := append([]string{crafted}, c.names...)
				if r.what == "ingest" && c.pushed == pushedSome {
					// Blob-level damage: ingest's report gives each refused
					// artifact's reason in its own list.
					names = []string{"refused"}
				}
				if r.want != ExitOK {
					for _, n := range names {
						if !strings.Contains(got.out, n) {
							t.Errorf("%s: the message does not name %q", r.what, n)
						}
					}
				}
				if left, _ := os.ReadDir(tmp); len(left) > 0 {
					t.Errorf("%s left %d file(s) in TMPDIR, e.g. %s", r.what, len(left), left[0].Name())
				}
			}
			if left, _ := os.ReadDir(dir); len(left) > len(vols) {
				t.Errorf("files appeared beside the volumes: %d", len(left))
			}
			pushed := 0
			for _, a := range b.fx.artifacts {
				got := destDigest(t, b.reg, base+"/"+a.dest.Repository+":"+a.dest.Tag)
				if got == "" {
					continue
				}
				pushed++
				if got != a.root().digest() {
					t.Errorf("%s is tagged with %s, not the signed %s", a.name, got, a.root().digest())
				}
			}
			switch {
			case c.pushed == pushedNone && pushed > 0:
				t.Errorf("%d artifacts reached the registry from a volume that did not verify", pushed)
			case c.pushed == pushedAll && pushed != len(b.fx.artifacts):
				t.Errorf("%d of %d artifacts went in; every one verifies", pushed, len(b.fx.artifacts))
			case c.pushed == pushedSome && (pushed == 0 || pushed == len(b.fx.artifacts)):
				t.Errorf("%d of %d artifacts went in; want those that verify, not the others", pushed, len(b.fx.artifacts))
			}
		})
	}
}

// adjacent returns two blob entries that follow each other in the volume.
func adjacent(t *testing.T, entries []archive.Entry) (archive.Entry, archive.Entry) {
	t.Helper()
	for _, a := range entries {
		for _, b := range entries {
			if a.Part == nil && b.Part == nil && a.Offset+a.Length == b.Offset {
				return a, b
			}
		}
	}
	t.Fatal("no two adjacent blob entries")
	return archive.Entry{}, archive.Entry{}
}

// noiseBlob is incompressible content from a seed, so a large blob costs
// no memory.
type noiseBlob struct{ size int64 }

func (n noiseBlob) reader() io.Reader {
	var key [32]byte
	return io.LimitReader(mrand.NewChaCha8(key), n.size)
}

func (n noiseBlob) OpenBlob(context.Context, manifest.Blob) (io.ReadCloser, error) {
	return io.NopCloser(n.reader()), nil
}

// mixedSource serves one large generated blob and small ones from memory.
type mixedSource struct {
	small     fxSource
	big       noiseBlob
	bigDigest string
}

func (m mixedSource) OpenBlob(ctx context.Context, b manifest.Blob) (io.ReadCloser, error) {
	if b.Digest == m.bigDigest {
		return m.big.OpenBlob(ctx, b)
	}
	return m.small.OpenBlob(ctx, b)
}

// TestStopsOnInterrupt checks that Ctrl-C stops verify and ingest within a
// second while they are in the middle of a large frame.
func TestStopsOnInterrupt(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 256 MiB volume")
	}
	bin := buildFerry(t)
	dir := t.TempDir()
	key, pub := filepath.Join(dir, "k.key"), filepath.Join(dir, "k.pub")
	if err := verify.WriteKeyPair(key, pub, nil); err != nil {
		t.Fatal(err)
	}
	signer, err := verify.SignerFromFile(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	blob := noiseBlob{size: 256 << 20}
	h := sha256.New()
	io.Copy(h, blob.reader())
	d := "sha256:" + hex.EncodeToString(h.Sum(nil))
	layer := manifest.Blob{Digest: d, Size: blob.size, MediaType: "application/vnd.oci.image.layer.v1.tar+gzip"}
	cfgData := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	cfg := manifest.Blob{Digest: digestio.FromBytes(cfgData), Size: int64(len(cfgData)), MediaType: "application/vnd.oci.image.config.v1+json"}
	manData, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": manifest.MediaTypeOCIManifest,
		"config": map[string]any{"mediaType": cfg.MediaType, "digest": cfg.Digest, "size": cfg.Size},
		"layers": []any{map[string]any{"mediaType": layer.MediaType, "digest": layer.Digest, "size": layer.Size}}})
	man := manifest.Blob{Digest: digestio.FromBytes(manData), Size: int64(len(manData)), MediaType: manifest.MediaTypeOCIManifest}
	bom := manifest.NewBOM("interrupt", time.Now())
	bom.Blobs = []manifest.Blob{layer, cfg, man}
	bom.Artifacts = []manifest.Artifact{{Kind: manifest.KindImage, Name: "big", Digest: man.Digest, Size: man.Size, MediaType: man.MediaType,
		Blobs: []string{man.Digest, cfg.Digest, layer.Digest}, Dest: manifest.Destination{Repository: "images/big", Tag: "1"}}}
	src := fxSource{cfg.Digest: {data: cfgData}, man.Digest: {data: manData}}
	res, err := archive.Write(context.Background(), bom, mixedSource{small: src, big: blob, bigDigest: d}, archive.WriteOptions{Dir: dir, Name: "big", Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	reg := testbed.StartSourceRegistry(t)
	// A local registry takes 256 MiB in well under a second; throttled,
	// the upload is sure to be under way when the interrupt comes.
	slow := testbed.StartProxy(t, reg, testbed.ProxyOptions{BytesPerSecond: 32 << 20})
	state := t.TempDir()
	// Each is interrupted once it has read 64 MiB of the volume's 256, by
	// its own count in /proc, so a fast machine cannot finish first.
	interruptWithin(t, bin, 64<<20, time.Second, "verify", "--quiet", "--key", pub, res.Volumes[0].Path)
	interruptWithin(t, bin, 64<<20, time.Second, "ingest", "--quiet", "--plain-http", "--registry", slow.Host+"/interrupt", "--key", pub,
		"--journal", filepath.Join(state, "journal.db"), "--work-dir", filepath.Join(state, "work"), res.Volumes[0].Path)
}

// interruptWithin starts ferry, interrupts it once it has read at least
// read bytes and checks that it stops within limit, having handled the
// interrupt (an exit code, not death by the signal) and not claiming
// success.
func interruptWithin(t *testing.T, bin string, read int64, limit time.Duration, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	ioFile := fmt.Sprintf("/proc/%d/io", cmd.Process.Pid)
	deadline := time.Now().Add(time.Minute)
	for n := int64(0); n < read; {
		select {
		case <-done:
			t.Fatalf("%s finished before it could be interrupted:\n%s", args[0], out.String())
		case <-time.After(2 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("%s read less than %d bytes in a minute\n%s", args[0], read, out.String())
		}
		var err error
		if n, err = bytesRead(ioFile); err != nil {
			// The process may have ended since: say so if it did.
			select {
			case <-done:
				t.Fatalf("%s finished before it could be interrupted:\n%s", args[0], out.String())
			case <-time.After(100 * time.Millisecond):
			}
			cmd.Process.Kill()
			t.Fatalf("counting what %s read: %v", args[0], err)
		}
	}
	cmd.Process.Signal(os.Interrupt)
	start := time.Now()
	select {
	case <-done:
		t.Logf("%s stopped %s after the interrupt, exit %d: %s", args[0], time.Since(start).Round(time.Millisecond), cmd.ProcessState.ExitCode(), out.String())
		if code := cmd.ProcessState.ExitCode(); code <= ExitOK {
			t.Errorf("an interrupted %s exited with %d (-1: killed by the signal)\n%s", args[0], code, out.String())
		}
		// It stopped for the interrupt, not for a failure of its own.
		if o := out.String(); !strings.Contains(o, "interrupt") && !strings.Contains(o, "context canceled") {
			t.Errorf("an interrupted %s does not say it was interrupted:\n%s", args[0], o)
		}
	case <-time.After(limit):
		cmd.Process.Kill()
		t.Fatalf("%s still running %s after the interrupt\n%s", args[0], limit, out.String())
	}
}

// bytesRead is the rchar count of a process's io file in /proc: the bytes
// it has read with read(2) and the like.
func bytesRead(ioFile string) (int64, error) {
	data, err := os.ReadFile(ioFile)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "rchar: "); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("%s has no rchar line", ioFile)
}
