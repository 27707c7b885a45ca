package archive

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

func TestRoundTripSingleVolume(t *testing.T) {
	f := newFixture(t, 200<<10)
	dir, res := writeFixture(t, f, 0)
	if len(res.Volumes) != 1 || filepath.Base(res.Volumes[0].Path) != "test.tar.zst" {
		t.Fatalf("volumes = %+v, want one test.tar.zst", res.Volumes)
	}
	if got := listDir(t, dir); len(got) != 1 {
		t.Fatalf("leftover files: %v", got)
	}
	set := openSet(t, res.Volumes[0].Path)
	vols := set.Volumes()
	if len(vols) != 1 || vols[0].Err != nil || !vols[0].Final || vols[0].Number != 1 {
		t.Errorf("volumes = %+v", vols)
	}
	for _, b := range f.bom.Blobs {
		if got := readBlob(t, set, b.Digest); !bytes.Equal(got, f.src[b.Digest]) {
			t.Errorf("random read of %s differs", b.Digest)
		}
	}
}

// openSet opens volumes that must all verify.
func openSet(t testing.TB, paths ...string) *Set {
	t.Helper()
	set, err := OpenSet(context.Background(), paths, SetOptions{Verifier: testSigner{"k"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { set.Close() })
	for _, v := range set.Volumes() {
		if v.Err != nil {
			t.Fatalf("volume %s: %v", v.Path, v.Err)
		}
	}
	return set
}

func readBlob(t testing.TB, set *Set, digest string) []byte {
	t.Helper()
	rc, err := set.Open(context.Background(), digest)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", digest, err)
	}
	return data
}

func TestVolumesAndSplitBlob(t *testing.T) {
	f := newFixture(t, 300<<10)
	big := f.add(randomBytes(t, 1200<<10), "application/vnd.oci.image.layer.v1.tar+gzip")
	f.artifact("big", f.image(t, "big", big))
	const volumeSize = 400 << 10
	dir, res := writeFixture(t, f, volumeSize)
	if len(res.Volumes) < 4 {
		t.Fatalf("got %d volumes, want the big blob spread over several", len(res.Volumes))
	}
	for i, v := range res.Volumes {
		if v.Size > volumeSize {
			t.Errorf("volume %d is %d bytes, over %d", v.Number, v.Size, volumeSize)
		}
		if want := filepath.Join(dir, "test.tar.zst.00"+string(rune('1'+i))); v.Path != want {
			t.Errorf("volume path %s, want %s", v.Path, want)
		}
	}
	// Joined behind Set.Open, whichever order the volumes are given in.
	paths := volumePaths(res)
	slices.Reverse(paths)
	set := openSet(t, paths...)
	if !bytes.Equal(readBlob(t, set, big.Digest), f.src[big.Digest]) {
		t.Fatal("joined parts differ from the blob")
	}
	if missing, last := set.Missing(); len(missing) != 0 || !last {
		t.Fatalf("missing %v, last seen %v", missing, last)
	}
	// Without the middle volumes the blob is not there, and Where names them.
	part := openSet(t, paths[0], paths[len(paths)-1])
	if ok, _ := part.Has(big.Digest); ok {
		t.Fatal("split blob readable without its middle parts")
	}
	if _, err := part.Open(context.Background(), big.Digest); !errors.Is(err, ErrNotFound) {
		t.Fatalf("open without the middle volumes: %v", err)
	}
	if where := DescribeVolumes(part.Where(big.Digest)); where == "" {
		t.Fatal("Where names no volume")
	}
	// Each volume is a complete tar.zst on its own; extracted together they
	// form the OCI layout, with the parts joinable by cat.
	out := t.TempDir()
	for _, p := range volumePaths(res) {
		cmd := exec.Command("tar", "--zstd", "-xf", p, "-C", out)
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("tar -xf %s: %v\n%s", p, err, msg)
		}
	}
	for _, b := range f.bom.Blobs {
		if b.Digest == big.Digest {
			continue
		}
		data, err := os.ReadFile(filepath.Join(out, blobName(b.Digest)))
		if err != nil || !bytes.Equal(data, f.src[b.Digest]) {
			t.Errorf("extracted %s: %v", b.Digest, err)
		}
	}
	parts, _ := filepath.Glob(filepath.Join(out, "ferry/parts/sha256", strings.TrimPrefix(big.Digest, "sha256:"), "*"))
	var cat bytes.Buffer
	for _, p := range parts { // Glob sorts, and the names are zero-padded offsets
		data, _ := os.ReadFile(p)
		cat.Write(data)
	}
	if !bytes.Equal(cat.Bytes(), f.src[big.Digest]) {
		t.Fatalf("cat of %d extracted parts differs from the blob", len(parts))
	}
}

func TestWriteRefusesExistingAndCleansUp(t *testing.T) {
	f := newFixture(t, 10<<10)
	dir, _ := writeFixture(t, f, 0)
	_, err := Write(context.Background(), f.bom, f.src, WriteOptions{Dir: dir, Name: "test", Signer: testSigner{"k"}})
	if !errors.Is(err, ErrExists) {
		t.Fatalf("err = %v, want ErrExists", err)
	}
	// A source serving wrong bytes fails the write and leaves nothing.
	bad := memSource{}
	for k, v := range f.src {
		bad[k] = v
	}
	layer := f.bom.Blobs[1].Digest
	bad[layer] = append([]byte{}, f.src[layer]...)
	bad[layer][10] ^= 1
	empty := t.TempDir()
	_, err = Write(context.Background(), f.bom, bad, WriteOptions{Dir: empty, Name: "x", Signer: testSigner{"k"}})
	if err == nil || !strings.Contains(err.Error(), layer) {
		t.Fatalf("err = %v, want one naming %s", err, layer)
	}
	if left := listDir(t, empty); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
}

func TestVolumeSizeTooSmall(t *testing.T) {
	f := newFixture(t, 10<<10)
	_, err := Write(context.Background(), f.bom, f.src, WriteOptions{Dir: t.TempDir(), Name: "x", Signer: testSigner{"k"}, VolumeSize: 4096})
	if !errors.Is(err, ErrVolumeSize) {
		t.Fatalf("err = %v, want ErrVolumeSize", err)
	}
}

func TestWriteReplacesUnfinishedVolumes(t *testing.T) {
	f := newFixture(t, 10<<10)
	dir := t.TempDir()
	stale := filepath.Join(dir, "x.tar.zst.001.partial")
	os.WriteFile(stale, []byte("cut off"), 0o644)
	res, err := Write(context.Background(), f.bom, f.src, WriteOptions{Dir: dir, Name: "x", Signer: testSigner{"k"}})
	if err != nil {
		t.Fatal(err)
	}
	if left := listDir(t, dir); len(left) != 1 || left[0] != res.Volumes[0].Path {
		t.Fatalf("files after write: %v", left)
	}
}

// TestWriteAfterKillBetweenRenames kills a writing process (kill -9, from
// inside, right after its first rename) and runs the same write again: it
// recognises the set it left, replaces it, and leaves one complete set.
func TestWriteAfterKillBetweenRenames(t *testing.T) {
	f := newFixture(t, 300<<10)
	const volumeSize = 400 << 10
	write := func(ctx context.Context, dir string) (*Result, error) {
		return Write(ctx, f.bom, f.src, WriteOptions{Dir: dir, Name: "test", VolumeSize: volumeSize, Signer: testSigner{"k"}})
	}
	if dir := os.Getenv("FERRY_TEST_KILLED_WRITE_DIR"); dir != "" {
		// The child: die between the first and the second rename.
		ctx := context.WithValue(context.Background(), commitHookKey{}, func(renamed int) {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		})
		write(ctx, dir)
		t.Fatal("the write was not killed")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestWriteAfterKillBetweenRenames$", "-test.count=1")
	cmd.Env = append(os.Environ(), "FERRY_TEST_KILLED_WRITE_DIR="+dir)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child: %v, want killed\n%s", err, out)
	}
	left := listDir(t, dir)
	var final, partial int
	for _, n := range left {
		switch {
		case strings.HasSuffix(n, ".partial"):
			partial++
		case strings.Contains(n, ".tar.zst."):
			final++
		}
	}
	if final != 1 || partial < 1 {
		t.Fatalf("after the kill: %v, want one volume renamed and the others not", left)
	}
	// Another writer's archive of the same name is still refused...
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "test.tar.zst.001"), []byte("someone else's"), 0o644)
	if _, err := write(context.Background(), other); !errors.Is(err, ErrExists) {
		t.Fatalf("write over a set it did not leave: %v, want ErrExists", err)
	}
	// ...and so is a file under a final name the marker does not vouch for.
	renamed := filepath.Join(dir, "test.tar.zst.001")
	saved, _ := os.ReadFile(renamed)
	os.WriteFile(renamed, []byte("replaced since"), 0o644)
	if err := CheckOutput(dir, "test"); !errors.Is(err, ErrExists) {
		t.Fatalf("a changed file under a final name: %v, want ErrExists", err)
	}
	os.WriteFile(renamed, saved, 0o644)

	if err := CheckOutput(dir, "test"); err != nil {
		t.Fatalf("the unfinished set is not recognised: %v", err)
	}
	res, err := write(context.Background(), dir)
	if err != nil {
		t.Fatalf("the same write again: %v", err)
	}
	got := listDir(t, dir)
	if len(got) != len(res.Volumes) {
		t.Fatalf("after the second write: %v, want only the %d volumes", got, len(res.Volumes))
	}
	for _, n := range got {
		if strings.HasSuffix(n, ".partial") || strings.Contains(n, "unfinished") {
			t.Errorf("left behind: %s", n)
		}
	}
	set := openSet(t, volumePaths(res)...)
	for _, b := range f.bom.Blobs {
		if !bytes.Equal(readBlob(t, set, b.Digest), f.src[b.Digest]) {
			t.Errorf("blob %s differs", b.Digest)
		}
	}
}
