//go:build demo

package demo

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrytool/ferry/internal/testbed"
)

// step prints a command the way an operator types it, runs the real ferry
// binary and shows what it prints.
type demo struct {
	t     *testing.T
	ferry string
	dir   string
}

func (d *demo) say(format string, args ...any) {
	fmt.Printf("\n## "+format+"\n", args...)
}

func (d *demo) run(args ...string) string {
	d.t.Helper()
	fmt.Printf("\n$ ferry %s\n", strings.Join(args, " "))
	cmd := exec.Command(d.ferry, args...)
	cmd.Dir = d.dir
	cmd.Stderr = os.Stdout
	out, err := cmd.Output()
	fmt.Print(string(out))
	if err != nil {
		d.t.Fatalf("ferry %s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}

// volumes lists an archive's volume files relative to the demo folder.
func (d *demo) volumes(prefix string) []string {
	abs, _ := filepath.Glob(filepath.Join(d.dir, prefix+".tar.zst*"))
	var rel []string
	for _, a := range abs {
		r, _ := filepath.Rel(d.dir, a)
		rel = append(rel, r)
	}
	return rel
}

func TestDemo(t *testing.T) {
	ferry, err := filepath.Abs("../../bin/ferry")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(ferry); err != nil {
		t.Fatalf("%s is missing: run `make build` (make demo does)", ferry)
	}
	d := &demo{t: t, ferry: ferry, dir: t.TempDir()}

	d.say("Connected side: a source registry with generated images")
	src := testbed.StartSourceRegistry(t)
	shared := testbed.RandomLayer(t, 2<<20)
	testbed.PushRandomImage(t, src, "apps/web:1.0", 2, 1<<20, shared)
	testbed.PushRandomImage(t, src, "apps/worker:1.0", 1, 1<<20, shared)
	testbed.PushIndex(t, src, "base/multi:3.0", "linux/amd64", "linux/arm64")
	testbed.PushRandomImage(t, src, "apps/model:2.0", 1, 5<<20)
	images := []string{src.Host + "/apps/web:1.0", src.Host + "/apps/worker:1.0", src.Host + "/base/multi:3.0", src.Host + "/apps/model:2.0"}
	fmt.Printf("source registry at %s with %s\n", src.Host, strings.Join(images, ", "))

	d.say("Generate the signing key pair")
	d.run("key", "generate", "--output", "ferry")

	var imageArgs []string
	for _, i := range images {
		imageArgs = append(imageArgs, "--image", i)
	}
	d.say("Plan: what would be collected, without downloading layers")
	d.run(append([]string{"collect", "--plan", "--plain-http", "--volume-size", "3M"}, imageArgs...)...)

	d.say("Collect into 3 MiB volumes (small, to show a layer split across volumes)")
	d.run(append([]string{"collect", "--plain-http", "--key", "ferry.key", "--output", "media/palette", "--cache-dir", "cache", "--volume-size", "3M"}, imageArgs...)...)
	volumes := d.volumes("media/palette")

	d.say("Air-gapped side: verify the signature, every volume and every digest")
	d.run(append([]string{"verify", "--key", "ferry.pub"}, volumes...)...)

	d.say("Inspect from the index alone")
	d.run(append([]string{"inspect"}, volumes...)...)

	d.say("Collect again: the cache makes it download nothing")
	d.run(append([]string{"collect", "--plain-http", "--quiet", "--key", "ferry.key", "--output", "media/again", "--cache-dir", "cache", "--volume-size", "3M"}, imageArgs...)...)

	fmt.Println("\ndemo complete; the stand-ins stop and their files are removed now")
}
