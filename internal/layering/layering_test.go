// Package layering holds the tests of rules that span packages: imports
// point down, and the library packages name no command-line flag. Tiers:
// cmd -> collect/ingest/verify -> registry, archive, store -> manifest.
// registry, archive (the media format) and store (local bbolt files) are
// siblings: none imports another.
package layering

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/ferrytool/ferry"

// tiers: a package may import ferry packages of a lower tier only. internal/
// helpers sit outside the tiers: anyone may import them, and they import only
// manifest and each other.
var tiers = map[string]int{
	"cmd/ferry":      4,
	"collect":        3,
	"ingest":         3,
	"ingest/cluster": 3,
	"verify":         3,
	"registry":       1,
	"archive":        1,
	"store":          1,
	"manifest":       0,
}

// allowed lists same-tier imports that are part of the design.
var allowed = map[[2]string]bool{
	{"ingest", "ingest/cluster"}: true,
}

func TestImportsGoDown(t *testing.T) {
	root := moduleRoot(t)
	imports := map[string]map[string]bool{} // package dir -> ferry imports
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != root && (strings.HasPrefix(n, ".") || n == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		rel = filepath.ToSlash(rel)
		if imports[rel] == nil {
			imports[rel] = map[string]bool{}
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if dep, ok := strings.CutPrefix(p, module+"/"); ok {
				imports[rel][dep] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(imports) < 5 {
		t.Fatalf("found only %d packages under %s; is the walk broken?", len(imports), root)
	}
	for pkg, deps := range imports {
		for dep := range deps {
			if msg := check(pkg, dep); msg != "" {
				t.Errorf("%s imports %s: %s", pkg, dep, msg)
			}
		}
	}
}

func check(pkg, dep string) string {
	if strings.HasPrefix(dep, "internal/") {
		return ""
	}
	if strings.HasPrefix(pkg, "internal/") {
		if dep == "manifest" {
			return ""
		}
		return "internal helpers may import only manifest and other internal packages"
	}
	pt, ok := tiers[pkg]
	if !ok {
		return "package " + pkg + " has no tier; add it to the layering test"
	}
	dt, ok := tiers[dep]
	if !ok {
		return "package " + dep + " has no tier; add it to the layering test"
	}
	if allowed[[2]string{pkg, dep}] {
		return ""
	}
	if dt >= pt {
		return "imports must go down (cmd -> collect/ingest/verify -> registry, archive, store -> manifest)"
	}
	return ""
}

func TestCheckRejectsUpward(t *testing.T) {
	for _, c := range [][2]string{{"archive", "verify"}, {"manifest", "store"}, {"collect", "ingest"}, {"ingest", "collect"}, {"store", "archive"}, {"archive", "store"}, {"internal/digestio", "archive"}, {"registry", "archive"}, {"archive", "registry"}, {"registry", "ingest"}} {
		if check(c[0], c[1]) == "" {
			t.Errorf("%s -> %s was accepted", c[0], c[1])
		}
	}
	for _, c := range [][2]string{{"cmd/ferry", "collect"}, {"verify", "archive"}, {"ingest", "store"}, {"ingest", "ingest/cluster"}, {"archive", "internal/digestio"}, {"collect", "registry"}, {"ingest", "registry"}, {"ingest/cluster", "registry"}, {"registry", "manifest"}} {
		if msg := check(c[0], c[1]); msg != "" {
			t.Errorf("%s -> %s was refused: %s", c[0], c[1], msg)
		}
	}
}

func moduleRoot(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found")
		}
		dir = parent
	}
}
