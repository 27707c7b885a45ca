package main

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// TestBarProgressWaitEnds: the terminal display must end however its bars
// ended: a bar with an unknown total, one whose total was only an upper
// bound (blobs the registry already had), one never touched, and one that
// several uploads add to at once.
func TestBarProgressWaitEnds(t *testing.T) {
	var out bytes.Buffer
	p := newBarProgress(&out)
	p.Bar("unknown total", 0).Add(10)
	p.Bar("upper bound", 1<<20).Add(100)
	p.Bar("never touched", 1<<10)
	shared := p.Bar("shared", 1<<20)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				shared.Add(1)
			}
		}()
	}
	wg.Wait()
	done := make(chan struct{})
	go func() { p.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Wait did not return: a bar that never reached its total holds the display")
	}
	// A late bar (a download starting as the display ends) is harmless.
	late := p.Bar("late", 10)
	late.Add(5)
	late.Done()
}
