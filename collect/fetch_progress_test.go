package collect

import (
	"strings"
	"sync"
	"testing"

	"github.com/ferrytool/ferry/manifest"
)

// A download that ends while announce replays the held progress must not
// report its end before its start: the command line would then make a bar
// for it that nothing ever completes.
func TestProgressHeldBeforeTotalKeepsItsOrder(t *testing.T) {
	x := manifest.Blob{Digest: "sha256:" + strings.Repeat("a", 64), Size: 2 << 20}
	y := manifest.Blob{Digest: "sha256:" + strings.Repeat("b", 64), Size: 2 << 20}
	var mu sync.Mutex
	events := map[string][]string{}
	var f *fetcher
	var once sync.Once
	add := func(b manifest.Blob, ev string) {
		mu.Lock()
		events[b.Digest] = append(events[b.Digest], ev)
		mu.Unlock()
	}
	opts := Options{Progress: Progress{
		OnFetchStart: func(b manifest.Blob) {
			add(b, "start")
			// The other download ends right now, on its own goroutine.
			once.Do(func() {
				other := x
				if b.Digest == x.Digest {
					other = y
				}
				done := make(chan struct{})
				go func() { f.report(other, false, 0, true); close(done) }()
				<-done
			})
		},
		OnFetchBytes: func(b manifest.Blob, n int64) { add(b, "bytes") },
		OnFetchDone:  func(b manifest.Blob, cached bool) { add(b, "done") },
	}}
	f = &fetcher{opts: opts, early: map[string]*earlyProgress{}}
	f.report(x, true, 0, false)
	f.report(x, false, 10, false)
	f.report(y, true, 0, false)
	f.report(y, false, 10, false)
	f.announce(4<<20, 2)
	for d, evs := range events {
		for i, ev := range evs {
			if (i == 0) != (ev == "start") || ev == "done" && i != len(evs)-1 {
				t.Errorf("%s: progress %v, want start first and done, if at all, last", d[:12], evs)
				break
			}
		}
	}
}
