package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// result is one in-process run of the CLI.
type result struct {
	code           int
	stdout, stderr string
}

func ferry(t testing.TB, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"ferry"}, args...), strings.NewReader(stdin), &out, &errb)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// mustFerry runs the CLI and fails the test unless it exits 0.
func mustFerry(t testing.TB, args ...string) result {
	t.Helper()
	r := ferry(t, "", args...)
	if r.code != 0 {
		t.Fatalf("ferry %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// wantFail runs the CLI and checks its exit code and that stderr or stdout
// names every given string.
func wantFail(t testing.TB, code int, names []string, args ...string) result {
	t.Helper()
	r := ferry(t, "", args...)
	if r.code != code {
		t.Fatalf("ferry %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, code, r.stdout, r.stderr)
	}
	all := r.stdout + r.stderr
	t.Logf("ferry %s: exit %d\n%s", strings.Join(args, " "), r.code, all)
	for _, n := range names {
		if !strings.Contains(all, n) {
			t.Errorf("ferry %s: output does not name %q:\n%s", strings.Join(args, " "), n, all)
		}
	}
	return r
}

func TestHelpListsExitCodes(t *testing.T) {
	r := mustFerry(t, "--help")
	for _, s := range []string{"collect", "verify", "inspect", "EXIT CODES", "3  verification failed"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("--help lacks %q", s)
		}
	}
	if r := ferry(t, "", "verify", "--no-such-flag"); r.code != ExitUsage {
		t.Errorf("unknown flag: exit %d, want %d", r.code, ExitUsage)
	}
}

var update = flag.Bool("update", false, "rewrite the golden files under testdata/cli and docs/cli.md")

// golden compares got with testdata/cli/NAME.golden, or rewrites it with
// -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "cli", name+".golden")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/ferry -run %s -update)", err, t.Name())
	}
	if string(want) != got {
		t.Errorf("%s differs from %s (rerun with -update if the change is meant):\n--- got\n%s\n--- want\n%s", name, path, got, want)
	}
}

var (
	keyIDPattern = regexp.MustCompile(`sha256:[0-9a-f]{64}`)
	spaces       = regexp.MustCompile(`  +`)
)

// normalized is a run's exit code and output with the test's folders and
// key ids replaced, so that it can be compared across runs.
func (r result) normalized(dirs ...string) string {
	s := fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", r.code, r.stdout, r.stderr)
	for _, d := range dirs {
		s = strings.ReplaceAll(s, d, "$DIR")
	}
	s = keyIDPattern.ReplaceAllString(s, "sha256:$$KEYID")
	// Table columns are as wide as the folder names, which vary.
	return spaces.ReplaceAllString(s, "  ")
}

// TestFlagsAnywhere runs every command with its flags before, between and
// after the positional arguments: each place gives the same outcome, the
// one in the golden file.
func TestFlagsAnywhere(t *testing.T) {
	dir := t.TempDir()
	mustFerry(t, "key", "generate", "-o", filepath.Join(dir, "k"))
	pub := filepath.Join(dir, "k.pub")
	v1, v2 := filepath.Join(dir, "a.tar.zst.001"), filepath.Join(dir, "a.tar.zst.002")
	for _, v := range []string{v1, v2} {
		if err := os.WriteFile(v, []byte("not a volume"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	journal := filepath.Join(dir, "journal.db")
	cache := filepath.Join(dir, "cache")
	kubeconfig := filepath.Join(dir, "no-kubeconfig")
	for _, c := range []struct {
		name     string
		variants [][]string
	}{
		{"verify", [][]string{
			{"verify", "--key", pub, "-q", v1, v2},
			{"verify", v1, "--key", pub, v2, "-q"},
			{"verify", v1, v2, "-q", "--key=" + pub},
		}},
		{"inspect", [][]string{
			{"inspect", "-o", "json", "--key", pub, v1, v2},
			{"inspect", v1, "-o", "json", v2, "--key", pub},
			{"inspect", v1, v2, "--key=" + pub, "--output", "json"},
		}},
		{"ingest", [][]string{
			{"ingest", "--registry", "127.0.0.1:1/base", "--key", pub, "--journal", journal, "-q", v1, v2},
			{"ingest", v1, "-r", "127.0.0.1:1/base", v2, "--key", pub, "--journal", journal, "-q"},
			{"ingest", v1, v2, "--registry=127.0.0.1:1/base", "--key", pub, "-q", "--journal", journal},
		}},
		{"cluster-apply", [][]string{
			{"cluster", "apply", "--project-namespace", "p", "--key", pub, v1, v2},
			{"cluster", "apply", v1, "--project-namespace", "p", v2, "--key", pub},
			{"cluster", "apply", v1, v2, "--key", pub, "--project-namespace", "p"},
		}},
		{"cluster-validate", [][]string{
			{"cluster", "validate", "--project-namespace", "p", "--workload-namespace", "w", "--hub-kubeconfig", kubeconfig, "--key", pub, "-o", "json", v1},
			{"cluster", "validate", v1, "--project-namespace", "p", "--key", pub, "-o", "json", "--hub-kubeconfig", kubeconfig, "--workload-namespace", "w"},
			{"cluster", "--project-namespace", "p", "validate", v1, "--key", pub, "-o", "json", "--workload-namespace=w", "--hub-kubeconfig", kubeconfig},
		}},
		// collect and sync take no positional argument: a stray one is
		// named wherever it stands among the flags.
		{"collect", [][]string{
			{"collect", "--plan", "--cache-dir", cache, "-i", "nginx:1", "stray"},
			{"collect", "--plan", "stray", "--cache-dir", cache, "-i", "nginx:1"},
			{"collect", "stray", "--plan", "--cache-dir", cache, "-i", "nginx:1"},
		}},
		{"sync", [][]string{
			{"sync", "--dest-registry", "127.0.0.1:1/base", "-i", "nginx:1", "stray"},
			{"sync", "--dest-registry", "127.0.0.1:1/base", "stray", "-i", "nginx:1"},
			{"sync", "stray", "--dest-registry", "127.0.0.1:1/base", "-i", "nginx:1"},
		}},
		{"completion", [][]string{
			{"completion", "--help"},
			{"completion", "-h"},
		}},
		{"help-anywhere", [][]string{
			{"verify", "--help", v1},
			{"verify", v1, "--help"},
			{"verify", v1, "-h", v2},
		}},
		// After --, an argument that looks like a flag is an argument.
		{"double-dash", [][]string{
			{"inspect", "-o", "json", "--key", pub, "--", "-volume"},
			{"inspect", "--key", pub, "--", "-volume"},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var first string
			for i, args := range c.variants {
				got := ferry(t, "", args...).normalized(dir)
				if i == 0 {
					first = got
					golden(t, c.name, got)
				} else if got != first && c.name != "double-dash" {
					t.Errorf("ferry %s:\n%s\nferry %s:\n%s", strings.Join(c.variants[0], " "), first, strings.Join(args, " "), got)
				}
			}
		})
	}
	// key generate: the flag before or after the subcommand.
	for _, before := range []bool{false, true} {
		sub := t.TempDir()
		args := []string{"key", "generate", "-o", filepath.Join(sub, "p")}
		if before {
			args = []string{"key", "-o", filepath.Join(sub, "p"), "generate"}
		}
		golden(t, "key-generate", mustFerry(t, args...).normalized(sub))
	}
}

// TestUsageExitCodes runs every command with each class of bad input:
// unknown flags, missing flags and arguments, malformed values, stray
// arguments, unknown commands. Each is exit 2, said in one line naming
// what is wrong.
func TestUsageExitCodes(t *testing.T) {
	dir := t.TempDir()
	mustFerry(t, "key", "generate", "-o", filepath.Join(dir, "k"))
	pub := filepath.Join(dir, "k.pub")
	vol := filepath.Join(dir, "a.tar.zst")
	os.WriteFile(vol, []byte("x"), 0o644)
	for _, c := range []struct {
		class string
		args  []string
		names string
	}{
		{"unknown command", []string{"nope"}, `unknown command "nope"`},
		{"unknown subcommand", []string{"cluster", "nope"}, `unknown command "nope"`},
		{"unknown subcommand", []string{"key", "nope"}, `unknown command "nope"`},
		{"unknown flag", []string{"--nope"}, "--nope"},
		{"unknown flag", []string{"collect", "--image", "x", "--nope"}, "--nope"},
		{"unknown flag", []string{"verify", vol, "--key", pub, "--nope"}, "--nope"},
		{"unknown flag", []string{"inspect", vol, "-Z"}, "-Z"},
		{"unknown flag", []string{"ingest", vol, "--nope=1"}, "--nope=1"},
		{"unknown flag", []string{"sync", "--nope"}, "--nope"},
		{"unknown flag", []string{"cluster", "apply", "--nope"}, "--nope"},
		{"unknown flag", []string{"cluster", "validate", "--nope"}, "--nope"},
		{"unknown flag", []string{"key", "generate", "--nope"}, "--nope"},
		{"unknown flag", []string{"completion", "bash", "--nope"}, "--nope"},
		{"missing flag", []string{"verify", vol}, "--key"},
		{"missing flag", []string{"ingest", vol, "--key", pub}, "--registry"},
		{"missing flag", []string{"collect", "--image", "x"}, "--key"},
		{"missing flag", []string{"sync", "--image", "x"}, "--dest-registry"},
		{"missing flag", []string{"cluster", "apply"}, "--project-namespace"},
		{"missing argument", []string{"verify", "--key", pub}, "volume"},
		{"missing flag", []string{"inspect", vol}, "--key"},
		{"missing argument", []string{"inspect", "--key", pub}, "volume"},
		{"missing argument", []string{"ingest", "--registry", "h:5000/b", "--key", pub}, "volume"},
		{"missing argument", []string{"collect"}, "nothing to collect"},
		{"missing argument", []string{"completion"}, "bash, zsh or fish"},
		{"malformed value", []string{"collect", "--image", "x", "--jobs", "many"}, "many"},
		{"malformed value", []string{"collect", "--plan", "--image", "x", "--volume-size", "big"}, "--volume-size"},
		{"malformed value", []string{"inspect", vol, "--key", pub, "-o", "yaml"}, "yaml"},
		{"malformed value", []string{"ingest", vol, "--lock-timeout", "soon"}, "soon"},
		{"malformed value", []string{"cluster", "apply", "--wait-timeout", "soon"}, "soon"},
		{"malformed value", []string{"cluster", "validate", "-o", "yaml", "--project-namespace", "p"}, "yaml"},
		{"malformed value", []string{"completion", "tcsh"}, "tcsh"},
		{"malformed value", []string{"collect", "--plan", "--spec", filepath.Join(dir, "missing.yaml")}, "missing.yaml"},
		{"stray argument", []string{"collect", "x", "--image", "y"}, `"x"`},
		{"stray argument", []string{"sync", "x"}, `"x"`},
		{"stray argument", []string{"key", "generate", "x"}, `"x"`},
		{"stray argument", []string{"completion", "bash", "zsh"}, "one shell"},
	} {
		t.Run(c.class, func(t *testing.T) {
			r := ferry(t, "", c.args...)
			if r.code != ExitUsage {
				t.Fatalf("ferry %s: exit %d, want %d\n%s%s", strings.Join(c.args, " "), r.code, ExitUsage, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stderr, c.names) {
				t.Errorf("ferry %s: stderr does not name %q:\n%s", strings.Join(c.args, " "), c.names, r.stderr)
			}
			if strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 || r.stdout != "" {
				t.Errorf("ferry %s: want one line on stderr and nothing on stdout, got:\n%s\n%s", strings.Join(c.args, " "), r.stdout, r.stderr)
			}
		})
	}
}

// TestCLIDoc keeps docs/cli.md what the commands' definitions say.
func TestCLIDoc(t *testing.T) {
	var b bytes.Buffer
	writeCLIDoc(&b, newApp(strings.NewReader(""), io.Discard, io.Discard))
	path := filepath.Join("..", "..", "docs", "cli.md")
	if *update {
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	have, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(have, b.Bytes()) {
		t.Errorf("docs/cli.md is not what the commands define (err %v); run go test ./cmd/ferry -run TestCLIDoc -update", err)
	}
}

// TestCompletion checks each shell's script names every command and the
// flags of a nested one, and that bash's completes them.
func TestCompletion(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		r := mustFerry(t, "completion", sh)
		for _, want := range []string{"collect", "ingest", "apply", "registry-mirror", "project-namespace"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("%s completion lacks %q", sh, want)
			}
		}
		if strings.Contains(r.stdout, renderCommandName) {
			t.Errorf("%s completion offers the hidden %s command", sh, renderCommandName)
		}
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	script := mustFerry(t, "completion", "bash").stdout
	for line, want := range map[string]string{
		"ferry cluster ap":       "apply",
		"ferry verify x --ke":    "--key",
		"ferry cluster apply --": "--project-namespace",
		"ferry coll":             "collect",
	} {
		words := strings.Fields(line)
		prog := script + fmt.Sprintf("\nCOMP_WORDS=(%s); COMP_CWORD=%d; _ferry; echo \"${COMPREPLY[@]}\"\n", line, len(words)-1)
		out, err := exec.Command(bash, "-c", prog).CombinedOutput()
		if err != nil || !strings.Contains(string(out), want) {
			t.Errorf("%q completes to %q (%v), want %q", line, out, err, want)
		}
	}
}
