package main

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// collectSums collects the bed's spec into a folder of its own and returns
// the SHA-256 of every volume, by file name: what two people compare
// before the media crosses.
func (b *collectBed) collectSums(t *testing.T, out, cache string, more ...string) map[string]string {
	t.Helper()
	dir := filepath.Join(b.dir, out)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"collect", "--quiet", "--plain-http", "--key", b.key, "--spec", b.spec,
		"--output", filepath.Join(dir, "clearml"), "--cache-dir", filepath.Join(b.dir, cache), "--volume-size", "300K"}, more...)
	mustFerry(t, args...)
	vols, err := filepath.Glob(filepath.Join(dir, "clearml.tar.zst*"))
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string]string{}
	for _, v := range vols {
		data, err := os.ReadFile(v)
		if err != nil {
			t.Fatal(err)
		}
		sums[filepath.Base(v)] = fmt.Sprintf("%x", sha256.Sum256(data))
	}
	return sums
}

// Two collects of the same spec at the same --created, one downloading
// with one job and one with eight, each into a cache of its own, write
// byte-identical volumes; SOURCE_DATE_EPOCH stands in for --created; another
// creation time gives other volumes.
func TestCollectReproducibleVolumes(t *testing.T) {
	b := newCollectBed(t)
	created := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	one := b.collectSums(t, "one", "cache-one", "--jobs", "1", "--created", created.Format(time.RFC3339))
	eight := b.collectSums(t, "eight", "cache-eight", "--jobs", "8", "--created", created.Format(time.RFC3339))
	if len(one) < 3 {
		t.Fatalf("%d volumes; the test needs several: %v", len(one), one)
	}
	t.Logf("%d volumes", len(one))
	if fmt.Sprint(one) != fmt.Sprint(eight) {
		t.Errorf("same spec and --created, different volumes:\n--jobs 1: %v\n--jobs 8: %v", one, eight)
	}

	t.Setenv(sourceDateEpochEnv, strconv.FormatInt(created.Unix(), 10))
	epoch := b.collectSums(t, "epoch", "cache-eight")
	if fmt.Sprint(one) != fmt.Sprint(epoch) {
		t.Errorf("%s=%d gives other volumes than --created %s:\n%v\n%v", sourceDateEpochEnv, created.Unix(), created.Format(time.RFC3339), one, epoch)
	}

	later := b.collectSums(t, "later", "cache-one", "--created", created.Add(time.Hour).Format(time.RFC3339))
	for name, sum := range one {
		if later[name] == sum {
			t.Errorf("%s is the same with another --created", name)
		}
	}
}

// A creation time that does not parse is refused before anything is
// resolved, naming what to give.
func TestCollectCreatedUsage(t *testing.T) {
	wantFail(t, ExitUsage, []string{"--created", "RFC 3339"}, "collect", "--image", "example.test/a:1", "--plan", "--created", "yesterday")
	t.Setenv(sourceDateEpochEnv, "2026-11-01")
	wantFail(t, ExitUsage, []string{sourceDateEpochEnv, "seconds since 1970"}, "collect", "--image", "example.test/a:1", "--plan")
}
