package main

import (
	"bytes"
	"context"
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
