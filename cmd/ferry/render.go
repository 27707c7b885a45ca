package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ferrytool/ferry/collect"
)

// Charts are rendered in a child process of ferry: a template can loop
// forever or build a string of any size, and Go cannot stop a goroutine
// or cap its memory. The child is ferry itself, running a hidden command;
// it is killed when its time runs out or ferry is interrupted, and the
// kernel refuses it memory past its limit.

// renderCommandName is the hidden command the child runs.
const renderCommandName = "__render-chart"

// Render bounds, the defaults of --render-timeout and --render-memory.
const (
	defaultRenderTimeout = 3 * time.Minute
	defaultRenderMemory  = 256 << 20
	// maxRenderRequest caps what the child reads: a chart archive and
	// its values, as JSON.
	maxRenderRequest = 512 << 20
	// maxRenderOutput caps what ferry reads back from the child.
	maxRenderOutput = 64 << 20
)

// errRenderTimeout marks a chart whose rendering ran out of time.
var errRenderTimeout = errors.New("render timeout")

// renderResponse is what the child writes on standard output.
type renderResponse struct {
	Rendered *collect.Rendered `json:"rendered,omitempty"`
	Error    string            `json:"error,omitempty"`
	// KubeVersion is set for a chart that accepts no Kubernetes version
	// to render it for, so the error keeps its type across the process.
	KubeVersion *collect.KubeVersionError `json:"kubeVersion,omitempty"`
}

// childRenderer renders each chart in a new child process.
type childRenderer struct {
	exe     string
	timeout time.Duration
	memory  int64
}

func newChildRenderer(timeout time.Duration, memory int64) (*childRenderer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("cannot find the ferry executable to render charts with: %w", err)
	}
	return &childRenderer{exe: exe, timeout: timeout, memory: memory}, nil
}

func (r *childRenderer) Render(ctx context.Context, req collect.RenderRequest) (*collect.Rendered, error) {
	in, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("%w: chart %s: values: %v", collect.ErrChart, req.Label, err)
	}
	rctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	cmd := exec.CommandContext(rctx, r.exe, renderCommandName, "--memory", strconv.FormatInt(r.memory, 10))
	cmd.Stdin = bytes.NewReader(in)
	var out bytes.Buffer
	stderr := &headBuffer{max: 4 << 10}
	cmd.Stdout = &limitedWriter{w: &out, n: maxRenderOutput}
	cmd.Stderr = stderr
	cmd.Env = childEnv(os.Environ())
	// The child dies with ferry's thread that started it; the context's
	// kill above is what holds when ferry stops normally.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	cmd.WaitDelay = time.Second
	var overLimit atomic.Bool
	runErr := cmd.Start()
	if runErr == nil {
		stop := make(chan struct{})
		go watchMemory(cmd.Process, r.memory, &overLimit, stop)
		runErr = cmd.Wait()
		close(stop)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if errors.Is(rctx.Err(), context.DeadlineExceeded) {
		return nil, &renderLimitError{timeout: true, err: fmt.Errorf("%w: %w: chart %s: rendering ran past its time limit of %s (--render-timeout)", collect.ErrChart, collect.ErrRenderLimit, req.Label, r.timeout)}
	}
	var resp renderResponse
	if runErr == nil && json.Unmarshal(out.Bytes(), &resp) == nil {
		if resp.KubeVersion != nil {
			return nil, resp.KubeVersion
		}
		if resp.Error != "" {
			return nil, fmt.Errorf("%w: %s", collect.ErrChart, strings.TrimPrefix(resp.Error, collect.ErrChart.Error()+": "))
		}
		if resp.Rendered != nil {
			return resp.Rendered, nil
		}
	}
	peak := int64(0)
	if cmd.ProcessState == nil {
		return nil, fmt.Errorf("%w: chart %s: cannot start the rendering process: %v", collect.ErrChart, req.Label, runErr)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru != nil {
		peak = ru.Maxrss << 10
	}
	// The runtime dies with "out of memory" when the kernel refuses heap,
	// or fails to start a thread when it refuses a thread's stack.
	if msg := stderr.String(); overLimit.Load() || strings.Contains(msg, "out of memory") || strings.Contains(msg, "cannot allocate memory") ||
		strings.Contains(msg, "pthread_create failed") || peak >= r.memory {
		return nil, fmt.Errorf("%w: %w: chart %s: rendering needed more than its memory limit of %s (--render-memory)", collect.ErrChart, collect.ErrRenderLimit, req.Label, humanBytes(r.memory))
	}
	return nil, fmt.Errorf("%w: chart %s: the rendering process failed (%v): %s", collect.ErrChart, req.Label, runErr, firstLine(stderr.String()))
}

// watchMemory kills the child when its resident size passes limit: the
// kernel's data limit does not count everything a process holds.
func watchMemory(p *os.Process, limit int64, over *atomic.Bool, stop <-chan struct{}) {
	statm := "/proc/" + strconv.Itoa(p.Pid) + "/statm"
	page := int64(os.Getpagesize())
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		data, err := os.ReadFile(statm)
		if err != nil {
			return
		}
		f := strings.Fields(string(data))
		if len(f) < 2 {
			return
		}
		if rss, _ := strconv.ParseInt(f[1], 10, 64); rss*page > limit {
			over.Store(true)
			p.Kill()
			return
		}
	}
}

// renderChildCommand is the hidden command a child runs: it reads one
// collect.RenderRequest as JSON on standard input and writes a
// renderResponse on standard output.
func renderChildCommand(env *environment) *cli.Command {
	var memory int64
	return &cli.Command{
		Name:   renderCommandName,
		Hidden: true,
		Usage:  "render one chart for image discovery (ferry runs it as a child process)",
		Flags: []cli.Flag{
			&cli.Int64Flag{Name: "memory", Usage: "memory limit in bytes", Destination: &memory},
		},
		Action: func(c *cli.Context) error {
			if memory > 0 {
				// The kernel refuses heap past the limit; the runtime then
				// dies at once, where a soft limit would make the collector
				// run without end first.
				lim := syscall.Rlimit{Cur: uint64(memory), Max: uint64(memory)}
				if err := syscall.Setrlimit(syscall.RLIMIT_DATA, &lim); err != nil {
					return fmt.Errorf("render: memory limit: %w", err)
				}
			}
			data, err := io.ReadAll(io.LimitReader(env.stdin, maxRenderRequest+1))
			if err != nil || len(data) > maxRenderRequest {
				return fmt.Errorf("render: read request: %v (%d bytes)", err, len(data))
			}
			var req collect.RenderRequest
			if err := json.Unmarshal(data, &req); err != nil {
				return fmt.Errorf("render: request: %w", err)
			}
			var resp renderResponse
			r, err := collect.RenderArchive(req)
			if err != nil {
				resp.Error = err.Error()
				errors.As(err, &resp.KubeVersion)
			} else {
				resp.Rendered = r
			}
			return json.NewEncoder(env.stdout).Encode(resp)
		},
	}
}

// renderLimitError is a chart that ran past its time limit; it is also
// errRenderTimeout so that the exit code says a bound ran out.
type renderLimitError struct {
	timeout bool
	err     error
}

func (e *renderLimitError) Error() string { return e.err.Error() }
func (e *renderLimitError) Unwrap() error { return e.err }
func (e *renderLimitError) Is(target error) bool {
	return e.timeout && target == errRenderTimeout
}

// headBuffer keeps the first max bytes written to it: where the Go
// runtime says why it died, before its goroutine dump.
type headBuffer struct {
	max int
	b   []byte
}

func (t *headBuffer) Write(p []byte) (int, error) {
	if room := t.max - len(t.b); room > 0 {
		t.b = append(t.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (t *headBuffer) String() string { return string(t.b) }

// limitedWriter fails once more than n bytes were written.
type limitedWriter struct {
	w io.Writer
	n int64
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.n {
		return 0, errors.New("render output too large")
	}
	l.n -= int64(len(p))
	return l.w.Write(p)
}

// firstLine is the line of a child's standard error that says why it
// failed.
func firstLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for _, l := range lines {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "fatal error") || strings.HasPrefix(l, "panic") || strings.HasPrefix(l, "ferry:") {
			return l
		}
	}
	return strings.TrimSpace(lines[0])
}

// childEnv is ferry's environment without credentials: a chart renders
// with no need of them, and what a child never holds it cannot leak.
func childEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		upper := strings.ToUpper(name)
		if strings.Contains(upper, "PASSWORD") || strings.Contains(upper, "TOKEN") || strings.Contains(upper, "SECRET") || strings.Contains(upper, "CREDENTIAL") {
			continue
		}
		out = append(out, kv)
	}
	return out
}
