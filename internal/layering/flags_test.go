package layering

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// flagWord is a command-line flag as an operator would type it.
var flagWord = regexp.MustCompile(`(^|[\s("'=\x60])--[a-z][a-z0-9-]*`)

// namesFlag reports whether a string literal names a flag.
func namesFlag(s string) bool { return flagWord.MatchString(s) }

// The library packages never name a flag of ferry's command line in what
// they return or report (errors, refusal reasons, warnings): a flag is
// cmd/ferry's to name, and cmd/ferry adds it where an error reaches the
// terminal. Comments may say which flag sets an option; string literals
// may not.
func TestLibrariesNameNoFlags(t *testing.T) {
	root := moduleRoot(t)
	checked := 0
	for pkg := range tiers {
		if strings.HasPrefix(pkg, "cmd/") {
			continue
		}
		files, err := filepath.Glob(filepath.Join(root, filepath.FromSlash(pkg), "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range files {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, path, src, 0)
			if err != nil {
				t.Fatal(err)
			}
			checked++
			ast.Inspect(f, func(n ast.Node) bool {
				lit, ok := n.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					return true
				}
				s, err := strconv.Unquote(lit.Value)
				if err == nil && namesFlag(s) {
					t.Errorf("%s: names a command-line flag: %s", fset.Position(lit.Pos()), lit.Value)
				}
				return true
			})
		}
	}
	if checked < 20 {
		t.Fatalf("checked only %d files; is the walk broken?", checked)
	}
}

func TestNamesFlag(t *testing.T) {
	for _, s := range []string{"--atomic: nothing is pushed", "or allow this with --allow-missing-packs", "(packKey in the spec, or --pack-key)",
		"give one with --kube-version", "detail --image ", "`--convert-oci`"} {
		if !namesFlag(s) {
			t.Errorf("%q was not caught", s)
		}
	}
	for _, s := range []string{"atomic: nothing is pushed", "allowMissingPacks in the spec", "sha256:--x", "a -- b", "0-1023", "bytes=0--1"} {
		if namesFlag(s) {
			t.Errorf("%q was caught", s)
		}
	}
}
