package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/urfave/cli/v2"

	"github.com/ferrytool/ferry/archive"
	"github.com/ferrytool/ferry/collect"
	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/verify"
)

type collectFlags struct {
	images          cli.StringSlice
	key             string
	passphraseStdin bool
	output          string
	volumeSize      string
	cacheDir        string
	jobs            int
	plainHTTP       bool
	plan            bool
	quiet           bool
}

func collectCommand(env *environment) *cli.Command {
	var f collectFlags
	return &cli.Command{
		Name:  "collect",
		Usage: "resolve and download content into a signed archive (connected side)",
		Description: "Resolves every image (a multi-arch index is kept whole), downloads each blob once into a\n" +
			"content-addressed cache (a second collect of the same content downloads nothing), and\n" +
			"writes NAME.tar.zst, or NAME.tar.zst.001, .002, ... when it needs more than one volume.\n" +
			"Every volume is a complete .tar.zst holding the signed bill of materials. Nothing that\n" +
			"looks complete is left behind on failure. Credentials come from the docker config\n" +
			"(~/.docker/config.json and its credential helpers).\n\n" + exitCodesHelp,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "image", Aliases: []string{"i"}, Usage: "image reference to collect (repeatable)", Destination: &f.images},
			&cli.StringFlag{Name: "key", Usage: "private key (PEM) that signs the archive", Destination: &f.key},
			&cli.BoolFlag{Name: "key-passphrase-stdin", Usage: "read the private key's passphrase from standard input (else " + passphraseEnv + ")", Destination: &f.passphraseStdin},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "archive path without extension: DIR/NAME gives DIR/NAME.tar.zst[.NNN]", Destination: &f.output},
			&cli.StringFlag{Name: "volume-size", Value: strconv.FormatInt(archive.DefaultVolumeSize, 10), Usage: "largest volume file, in bytes or with a unit (700M, 4G); the default is what FAT32 holds", Destination: &f.volumeSize},
			&cli.StringFlag{Name: "cache-dir", Usage: "download cache (default: the user cache folder's ferry/)", Destination: &f.cacheDir},
			&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Value: 4, Usage: "parallel downloads", Destination: &f.jobs},
			&cli.BoolFlag{Name: "plain-http", Usage: "allow source registries over plain HTTP", Destination: &f.plainHTTP},
			&cli.BoolFlag{Name: "plan", Usage: "only resolve: list every artifact, sizes and volumes, download no layer", Destination: &f.plan},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress", Destination: &f.quiet},
		},
		Action: func(c *cli.Context) error { return runCollect(c, env, &f) },
	}
}

func runCollect(c *cli.Context, env *environment, f *collectFlags) error {
	if len(f.images.Value()) == 0 {
		return usageErrorf("collect: nothing to collect: give --image")
	}
	volumeSize, err := parseSize(f.volumeSize)
	if err != nil {
		return usageErrorf("--volume-size: %v", err)
	}
	opts := collect.Options{
		Images:     f.images.Value(),
		PlainHTTP:  f.plainHTTP,
		Remote:     []remote.Option{remote.WithAuthFromKeychain(authn.DefaultKeychain)},
		Jobs:       f.jobs,
		VolumeSize: volumeSize,
		Tool:       "ferry " + version,
	}
	if f.plan {
		plan, err := collect.MakePlan(c.Context, opts)
		if err != nil {
			return collectExit(err)
		}
		printPlan(env, plan, volumeSize)
		return nil
	}
	if f.key == "" || f.output == "" {
		return usageErrorf("collect: --key and --output are required (or use --plan)")
	}
	pass, err := readPassphrase(env, f.passphraseStdin)
	if err != nil {
		return err
	}
	signer, err := verify.SignerFromFile(f.key, pass)
	if err != nil {
		return withCode(ExitUsage, err)
	}
	opts.Signer = signer
	opts.Dir, opts.Name = filepath.Dir(f.output), filepath.Base(f.output)
	opts.Name = strings.TrimSuffix(opts.Name, ".tar.zst")
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return fmt.Errorf("output folder: %w", err)
	}
	if opts.CacheDir = f.cacheDir; opts.CacheDir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return usageErrorf("no user cache folder (%v): give --cache-dir", err)
		}
		opts.CacheDir = filepath.Join(base, "ferry")
	}
	prog := newProgress(env.stderr, f.quiet)
	opts.Progress = collectProgress(prog)
	res, err := collect.Collect(c.Context, opts)
	prog.Wait()
	if err != nil {
		return collectExit(err)
	}
	s := res.BOM.Stats()
	fmt.Fprintf(env.stdout, "collected %d artifacts, %d blobs (%s stored, deduplication saved %s; downloaded %s)\n",
		s.Artifacts, s.Blobs, humanBytes(s.StoredBytes), humanBytes(s.Saved()), humanBytes(res.Downloaded))
	for _, v := range res.Volumes {
		fmt.Fprintf(env.stdout, "  %s  %s\n", v.Path, humanBytes(v.Size))
	}
	return nil
}

func collectProgress(prog progress) collect.Progress {
	var mu sync.Mutex
	bars := map[string]bar{}
	var write bar
	return collect.Progress{
		OnResolved: func(a manifest.Artifact) { prog.Line("resolved %s (%s)", a.Name, shortDigest(a.Digest)) },
		OnFetchStart: func(b manifest.Blob) {
			if b.Size < 1<<20 {
				return
			}
			mu.Lock()
			bars[b.Digest] = prog.Bar("fetch "+shortDigest(b.Digest), b.Size)
			mu.Unlock()
		},
		OnFetchBytes: func(b manifest.Blob, n int64) {
			mu.Lock()
			br := bars[b.Digest]
			mu.Unlock()
			if br != nil {
				br.Add(n)
			}
		},
		OnFetchDone: func(b manifest.Blob, cached bool) {
			mu.Lock()
			br := bars[b.Digest]
			delete(bars, b.Digest)
			mu.Unlock()
			if br != nil {
				br.Done()
			}
		},
		OnWriteBytes: func(n int64) {
			mu.Lock()
			if write == nil {
				write = prog.Bar("write archive", 0)
			}
			w := write
			mu.Unlock()
			w.Add(n)
		},
		OnVolume: func(v archive.VolumeInfo) {
			prog.Line("volume %d complete: %s, %d blobs, %d parts", v.Number, humanBytes(v.Size), v.Blobs, v.Parts)
		},
	}
}

func collectExit(err error) error {
	switch {
	case errors.Is(err, collect.ErrNotFound):
		return withCode(ExitIncomplete, err)
	case errors.Is(err, collect.ErrSource):
		return withCode(ExitRegistry, err)
	case errors.Is(err, collect.ErrConflict), errors.Is(err, collect.ErrNothing):
		return withCode(ExitUsage, err)
	case errors.Is(err, archive.ErrExists), errors.Is(err, archive.ErrVolumeSize):
		return withCode(ExitUsage, err)
	}
	return err
}

func printPlan(env *environment, plan *collect.Plan, volumeSize int64) {
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tNAME\tDESTINATION\tSIZE\tREASON")
	size := map[string]int64{}
	for _, b := range plan.BOM.Blobs {
		size[b.Digest] = b.Size
	}
	for _, a := range plan.BOM.Artifacts {
		var total int64
		for _, d := range a.Blobs {
			total += size[d]
		}
		var reasons []string
		for _, r := range a.Reasons {
			reasons = append(reasons, strings.TrimSpace(r.From+": "+r.Detail))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.Kind, a.Name, a.Dest.String(), humanBytes(total), strings.Join(reasons, "; "))
	}
	tw.Flush()
	s := plan.Stats()
	fmt.Fprintf(env.stdout, "\n%d artifacts, %d blobs: %s in total, %s to store (deduplication saves %s), at most %d volume(s)\n",
		s.Artifacts, s.Blobs, humanBytes(s.LogicalBytes), humanBytes(s.StoredBytes), humanBytes(s.Saved()), plan.EstimateVolumes(volumeSize))
}

// parseSize reads a byte count with an optional binary unit suffix.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(strings.ToUpper(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}} {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = rest, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a positive size", s)
	}
	return n * mult, nil
}
