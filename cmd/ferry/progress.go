package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

// progress shows long work: bars on a terminal, plain lines otherwise, so a
// log file or a CI transcript stays readable.
type progress interface {
	// Bar starts a byte bar; total may be 0 when unknown.
	Bar(name string, total int64) bar
	// Line prints a message above the bars.
	Line(format string, args ...any)
	// Wait ends the display.
	Wait()
}

type bar interface {
	Add(n int64)
	Done()
}

func newProgress(w io.Writer, quiet bool) progress {
	if quiet {
		return &plainProgress{w: io.Discard}
	}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return newBarProgress(w)
	}
	return &plainProgress{w: w}
}

func newBarProgress(w io.Writer) *barProgress {
	return &barProgress{p: mpb.New(mpb.WithOutput(w), mpb.WithWidth(40), mpb.WithRefreshRate(150*time.Millisecond)), w: w}
}

// barProgress draws mpb bars. It keeps every bar it made: mpb's Wait blocks
// until each bar completes, and a bar whose total is an upper bound (bytes
// the registry turned out to have already, a download that failed) never
// reaches it, so Wait completes them itself.
type barProgress struct {
	p      *mpb.Progress
	w      io.Writer
	mu     sync.Mutex
	bars   []*mpbBar
	waited bool
}

func (b *barProgress) Bar(name string, total int64) bar {
	// Under the lock, so that Wait, which completes every bar made so far,
	// cannot miss one made meanwhile, and mpb is never asked for a bar after
	// it ended (it panics).
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.waited {
		return noBar{}
	}
	if len(name) > 32 {
		name = name[:15] + "…" + name[len(name)-16:]
	}
	br := b.p.New(total, mpb.BarStyle(),
		mpb.PrependDecorators(decor.Name(name, decor.WC{W: 34, C: decor.DindentRight})),
		mpb.AppendDecorators(decor.Counters(decor.SizeB1024(0), "% .1f / % .1f"), decor.Name(" "), decor.AverageSpeed(decor.SizeB1024(0), "% .1f")),
		mpb.BarRemoveOnComplete())
	m := &mpbBar{b: br, total: total}
	b.bars = append(b.bars, m)
	return m
}

// noBar stands in for a bar asked for once the display has ended.
type noBar struct{}

func (noBar) Add(int64) {}
func (noBar) Done()     {}

func (b *barProgress) Line(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	b.p.Write([]byte(msg + "\n"))
}

func (b *barProgress) Wait() {
	b.mu.Lock()
	bars := b.bars
	b.bars, b.waited = nil, true
	b.mu.Unlock()
	for _, m := range bars {
		m.Done()
	}
	b.p.Wait()
}

// mpbBar is safe for concurrent use: uploads of several blobs add to one
// total bar.
type mpbBar struct {
	b     *mpb.Bar
	mu    sync.Mutex
	total int64
	n     int64
	done  bool
}

func (m *mpbBar) Add(n int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.done {
		return
	}
	m.n += n
	if m.total == 0 || m.n > m.total {
		m.b.SetTotal(m.n+1, false)
	}
	m.b.IncrInt64(n)
}

func (m *mpbBar) Done() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.done {
		return
	}
	m.done = true
	m.b.SetTotal(-1, true)
}

// plainProgress writes a line when a bar starts, every few seconds while it
// runs, and when it ends.
type plainProgress struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *plainProgress) Bar(name string, total int64) bar {
	return &plainBar{p: p, name: name, total: total, last: time.Now()}
}

func (p *plainProgress) Line(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, format+"\n", args...)
}

func (p *plainProgress) Wait() {}

type plainBar struct {
	p     *plainProgress
	name  string
	total int64
	n     int64
	last  time.Time
	mu    sync.Mutex
}

func (b *plainBar) Add(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n += n
	if time.Since(b.last) > 5*time.Second {
		b.last = time.Now()
		if b.total > 0 {
			b.p.Line("%s: %s of %s (%d%%)", b.name, humanBytes(b.n), humanBytes(b.total), b.n*100/b.total)
		} else {
			b.p.Line("%s: %s", b.name, humanBytes(b.n))
		}
	}
}

func (b *plainBar) Done() {}

// humanBytes renders a size in binary units.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
