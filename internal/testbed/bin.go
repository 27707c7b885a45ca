package testbed

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// envTestbin names the environment variable that overrides where the test-bed
// binaries live. Unset, they are looked up in <repository root>/.testbin.
const envTestbin = "FERRY_TESTBIN"

// BinDir returns the directory holding the test-bed binaries: $FERRY_TESTBIN
// when set, else .testbin in the repository root (the directory with go.mod,
// found by walking up from the working directory). It does not check that the
// directory exists; [Binary] does that for each binary.
func BinDir(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv(envTestbin); dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			t.Fatalf("testbed: %s=%q: %v", envTestbin, dir, err)
		}
		return abs
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatalf("testbed: %v; set %s to the test-bed binary directory or run `make testbin` in the repository", err, envTestbin)
	}
	return filepath.Join(root, ".testbin")
}

// Binary returns the path of the test-bed binary name in [BinDir]. A missing
// binary fails the test: end-to-end tests must not pass by skipping.
func Binary(t testing.TB, name string) string {
	t.Helper()
	path := filepath.Join(BinDir(t), name)
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		t.Fatalf("testbed: binary %s is missing; run `make testbin` to install the test-bed binaries (or set %s)", path, envTestbin)
	case err != nil:
		t.Fatalf("testbed: binary %s: %v; run `make testbin` to install the test-bed binaries", path, err)
	case fi.IsDir() || fi.Mode().Perm()&0o111 == 0:
		t.Fatalf("testbed: %s is not an executable file; run `make testbin` to reinstall the test-bed binaries", path)
	}
	return path
}

// repoRoot walks up from the working directory to the directory holding go.mod.
func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the repository root: %w", err)
	}
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod in %s or any parent directory", wd)
		}
		dir = parent
	}
}
