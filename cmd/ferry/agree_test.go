package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestVerifyAndIngestAgree damages a small multi-volume archive at random
// (byte flips, truncations, frames swapped) and checks the promise that
// ties the two commands together: when verify exits 0, ingest of the same
// volumes exits 0 with every artifact in the registry at its signed
// digest; and ingest never exits 0 where verify found something wrong.
func TestVerifyAndIngestAgree(t *testing.T) {
	if testing.Short() {
		t.Skip("many ingests")
	}
	b := newIngestBed(t, 400<<10, 700<<10)
	if len(b.fx.volumes) < 3 {
		t.Fatalf("want several volumes, got %d", len(b.fx.volumes))
	}
	// A fixed seed keeps CI repeatable; FERRY_AGREE_SEED explores others
	// ("now" takes the clock) and the log names the seed to replay a failure.
	seed := uint64(20261201)
	if s := os.Getenv("FERRY_AGREE_SEED"); s == "now" {
		seed = uint64(time.Now().UnixNano())
	} else if s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("FERRY_AGREE_SEED=%q: %v", s, err)
		}
		seed = n
	}
	t.Logf("seed %d (FERRY_AGREE_SEED=%d replays it)", seed, seed)
	r := rand.New(rand.NewPCG(seed, 7))
	layouts := make([]volumeLayout, len(b.fx.volumes))
	for i, v := range b.fx.volumes {
		layouts[i] = layoutOf(t, b.fx.pub, v)
	}
	type mutation struct {
		name string
		fn   func(vol int, data []byte) []byte
	}
	mutations := []mutation{
		{"none", func(_ int, data []byte) []byte { return data }},
		{"byte flip", func(_ int, data []byte) []byte {
			data[r.IntN(len(data))] ^= byte(1 << r.IntN(8))
			return data
		}},
		{"truncation", func(_ int, data []byte) []byte { return data[:r.IntN(len(data))] }},
		{"frame swap", func(vol int, data []byte) []byte {
			es := layouts[vol].entries
			var pairs [][2]int
			for i, a := range es {
				for j, c := range es {
					if a.Offset+a.Length == c.Offset {
						pairs = append(pairs, [2]int{i, j})
					}
				}
			}
			if len(pairs) == 0 {
				return data
			}
			p := pairs[r.IntN(len(pairs))]
			a, c := es[p[0]], es[p[1]]
			out := append([]byte(nil), data[:a.Offset]...)
			out = append(out, data[c.Offset:c.Offset+c.Length]...)
			out = append(out, data[a.Offset:a.Offset+a.Length]...)
			return append(out, data[c.Offset+c.Length:]...)
		}},
	}
	for trial := range 14 {
		m := mutations[0]
		if trial > 0 {
			m = mutations[1+r.IntN(len(mutations)-1)]
		}
		vol := r.IntN(len(b.fx.volumes))
		t.Run(fmt.Sprintf("%02d %s in volume %d", trial, m.name, vol+1), func(t *testing.T) {
			dir := t.TempDir()
			var vols []string
			for i, v := range b.fx.volumes {
				data, _ := os.ReadFile(v)
				if i == vol {
					data = m.fn(i, data)
				}
				p := filepath.Join(dir, filepath.Base(v))
				os.WriteFile(p, data, 0o644)
				vols = append(vols, p)
			}
			r.Shuffle(len(vols), func(i, j int) { vols[i], vols[j] = vols[j], vols[i] })
			ver := ferry(t, "", append([]string{"verify", "--quiet", "--key", b.fx.pub}, vols...)...)
			base := fmt.Sprintf("agree-%d-%d", seed%1000, trial)
			state := t.TempDir()
			ing := ferry(t, "", append([]string{"ingest", "--quiet", "--registry", b.host + "/" + base, "--key", b.fx.pub,
				"--ca-file", b.caFile, "--username", b.reg.Username, "--journal", filepath.Join(state, "journal.db"),
				"--work-dir", filepath.Join(state, "work")}, vols...)...)
			t.Logf("verify exit %d, ingest exit %d", ver.code, ing.code)
			if ver.code == ExitOK && ing.code != ExitOK {
				t.Fatalf("verify passed, ingest exit %d:\n%s%s", ing.code, ing.stdout, ing.stderr)
			}
			if ing.code == ExitOK && ver.code != ExitOK {
				t.Fatalf("ingest passed what verify refused (exit %d):\n%s", ver.code, ver.stdout)
			}
			if trial == 0 && ver.code != ExitOK {
				t.Fatalf("the undamaged archive does not verify:\n%s", ver.stdout)
			}
			for _, a := range b.fx.artifacts {
				got := destDigest(t, b.reg, base+"/"+a.dest.Repository+":"+a.dest.Tag)
				if ver.code == ExitOK && got != a.root().digest() {
					t.Errorf("%s: %q after a clean ingest, want %s", a.name, got, a.root().digest())
				}
				if got != "" && got != a.root().digest() {
					t.Errorf("%s is tagged with %s, not the signed %s", a.name, got, a.root().digest())
				}
			}
		})
	}
}
