package collect

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
	ended := make(chan struct{})
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
				go func() { f.report(other, false, 0, true); close(ended) }()
				// Give it the time to overtake the replay, if it can.
				select {
				case <-ended:
				case <-time.After(100 * time.Millisecond):
				}
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
	<-ended
	for d, evs := range events {
		for i, ev := range evs {
			if (i == 0) != (ev == "start") || ev == "done" && i != len(evs)-1 {
				t.Errorf("%s: progress %v, want start first and done, if at all, last", d[:12], evs)
				break
			}
		}
	}
}

// announce returns while downloads go on reporting bytes: the writer
// starts after it.
func TestAnnounceReturnsWhileDownloadsReport(t *testing.T) {
	var calls atomic.Int64
	opts := Options{Progress: Progress{
		OnFetchStart: func(manifest.Blob) { calls.Add(1); time.Sleep(20 * time.Microsecond) },
		OnFetchBytes: func(manifest.Blob, int64) { calls.Add(1); time.Sleep(20 * time.Microsecond) },
	}}
	f := &fetcher{opts: opts, early: map[string]*earlyProgress{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 8 {
		b := manifest.Blob{Digest: fmt.Sprintf("sha256:%064d", i), Size: 1 << 30}
		f.report(b, true, 0, false)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				f.report(b, false, 32<<10, false)
				time.Sleep(50 * time.Microsecond)
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	time.Sleep(10 * time.Millisecond)
	done := make(chan struct{})
	go func() { f.announce(8<<30, 8); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Errorf("announce still replaying after 5s (%d callbacks)", calls.Load())
		close(stop)
		wg.Wait()
		stop = make(chan struct{})
		<-done
	}
}
