package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// chartPack writes a pack tarball whose one chart has the given template.
func chartPack(t *testing.T, dir, name, template string) string {
	t.Helper()
	return chartPackWith(t, dir, name, "", template)
}

// chartPackWith is chartPack with more lines for the chart's Chart.yaml.
func chartPackWith(t *testing.T, dir, name, chartYAML, template string) string {
	t.Helper()
	chart := tgz(t, map[string]string{
		name + "/Chart.yaml":         "apiVersion: v2\nname: " + name + "\nversion: 1.0.0\n" + chartYAML,
		name + "/templates/cm.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  x: \"" + template + "\"\n",
		name + "/templates/pod.yaml": "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n    - name: c\n      image: example.invalid/app:1.0\n",
	})
	file := filepath.Join(dir, name+"-1.0.0.tar.gz")
	pack := tgz(t, map[string]string{
		name + "/pack.json":                     `{"name": "` + name + `", "version": "1.0.0", "layer": "addon", "charts": ["charts/` + name + `-1.0.0.tgz"]}`,
		name + "/values.yaml":                   "pack:\n  namespace: x\n",
		name + "/charts/" + name + "-1.0.0.tgz": string(chart),
	})
	if err := os.WriteFile(file, pack, 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestCollectKubeVersionAdvice: a chart that accepts no Kubernetes version
// ferry renders for fails collect with the spec field and the flag that
// fix it, although the error comes from the rendering child process.
func TestCollectKubeVersionAdvice(t *testing.T) {
	dir := t.TempDir()
	pack := chartPackWith(t, dir, "future", "kubeVersion: \">=2.0.0\"\n", "x")
	args := []string{"collect", "--plan", "-q", "--pack", pack, "--cache-dir", filepath.Join(dir, "cache")}
	wantFail(t, ExitIncomplete, []string{"chart future 1.0.0", `its kubeVersion ">=2.0.0" accepts no Kubernetes version`,
		"kubeVersion in the spec; on the command line: --kube-version VERSION"}, args...)
	wantFail(t, ExitIncomplete, []string{`does not accept Kubernetes v1.30.0`, "--kube-version VERSION"}, append(args, "--kube-version", "1.30.0")...)
}

// ferryProcess starts the test binary as ferry in its own process.
func ferryProcess(t *testing.T, args ...string) (*exec.Cmd, *strings.Builder) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), runAsFerry+"=1")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &out
}

// TestCollectRenderBounds: a pack chart with an endless template, and one
// with a huge string, fail collect within the render limits, naming the
// chart, while ferry and its rendering child stay small.
func TestCollectRenderBounds(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name, template, timeout, memory, want string
		code                                  int
	}{
		{"endless", `{{range until 100000}}{{range until 100000}}{{end}}{{end}}`, "3s", "256M", "time limit of 3s", ExitTimeout},
		{"huge", `{{ repeat 400000000 "x" }}`, "60s", "160M", "memory limit of 160.0 MiB", ExitIncomplete},
	} {
		t.Run(c.name, func(t *testing.T) {
			pack := chartPack(t, dir, c.name, c.template)
			start := time.Now()
			cmd, out := ferryProcess(t, "collect", "--plan", "-q", "--pack", pack, "--cache-dir", filepath.Join(dir, "cache"), "--render-timeout", c.timeout, "--render-memory", c.memory)
			own := make(chan int64)
			go func() { own <- peakOf(cmd.Process.Pid) }()
			err := cmd.Wait()
			took := time.Since(start)
			code := cmd.ProcessState.ExitCode()
			t.Logf("exit %d after %s: %v\n%s", code, took, err, out)
			if code != c.code {
				t.Errorf("exit %d, want %d", code, c.code)
			}
			for _, want := range []string{c.want, "pack " + c.name + " 1.0.0", "charts/" + c.name + "-1.0.0.tgz"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("output does not name %q", want)
				}
			}
			if limit, _ := time.ParseDuration(c.timeout); took > limit+5*time.Second {
				t.Errorf("took %s; the render timeout is %s", took, limit)
			}
			// wait4's maximum resident size is the larger of ferry's and
			// its reaped child's; with ferry's own peak, read while it ran,
			// their sum bounds what both held at once.
			both := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss<<10 + <-own
			t.Logf("peak resident size of ferry and its child: at most %s", humanBytes(both))
			if both > 300<<20 {
				t.Errorf("ferry and its child held up to %s; want under 300 MiB", humanBytes(both))
			}
		})
	}
}

// TestCollectInterruptedWhileRendering: SIGINT during an endless render
// ends ferry, and its child, within a second.
func TestCollectInterruptedWhileRendering(t *testing.T) {
	dir := t.TempDir()
	pack := chartPack(t, dir, "endless", `{{range until 100000}}{{range until 100000}}{{end}}{{end}}`)
	cmd, out := ferryProcess(t, "collect", "--plan", "-q", "--pack", pack, "--cache-dir", filepath.Join(dir, "cache"))
	child := waitForChild(t, cmd.Process.Pid, 20*time.Second)
	sent := time.Now()
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("ferry still runs 5s after SIGINT\n%s", out)
	}
	if took := time.Since(sent); took > time.Second {
		t.Errorf("ferry took %s to exit after SIGINT, want under a second\n%s", took, out)
	}
	if cmd.ProcessState.ExitCode() == 0 {
		t.Errorf("exit 0 after SIGINT")
	}
	time.Sleep(100 * time.Millisecond)
	if err := syscall.Kill(child, 0); err == nil {
		if st, _ := os.ReadFile(filepath.Join("/proc", itoa(child), "stat")); !strings.Contains(string(st), ") Z") {
			t.Errorf("rendering child %d outlived ferry", child)
		}
	}
}

// peakOf follows a process's own peak resident size (VmHWM) until it
// ends, and returns the last value read.
func peakOf(pid int) int64 {
	var peak int64
	for {
		data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
		if err != nil || strings.Contains(string(data), "State:\tZ") {
			return peak
		}
		for _, l := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				peak = max(peak, kb<<10)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitForChild returns the pid of the first child process of pid.
func waitForChild(t *testing.T, pid int, within time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		tasks, _ := filepath.Glob(filepath.Join("/proc", itoa(pid), "task", "*", "children"))
		for _, f := range tasks {
			data, _ := os.ReadFile(f)
			if fields := strings.Fields(string(data)); len(fields) > 0 {
				n := 0
				for _, c := range fields[0] {
					n = n*10 + int(c-'0')
				}
				return n
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("ferry %d started no rendering child within %s", pid, within)
	return 0
}

func itoa(n int) string { return strconv.Itoa(n) }
