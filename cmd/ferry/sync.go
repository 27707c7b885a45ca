package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/urfave/cli/v2"

	"github.com/ferrytool/ferry/collect"
	"github.com/ferrytool/ferry/ingest"
	"github.com/ferrytool/ferry/registry"
	"github.com/ferrytool/ferry/verify"
)

// Environment variables the sync command reads for the destination.
const (
	envDestUsername = "FERRY_DEST_USERNAME"
	envDestPassword = "FERRY_DEST_PASSWORD"
)

// syncFlags are collect's source flags (the same names, the same spec) and
// the destination flags of the PaletteAI CLI's `mirror sync`.
type syncFlags struct {
	src           collectFlags
	registry      string
	username      string
	password      string
	passwordStdin bool
	caFile        string
	insecure      bool
	plainHTTP     bool
	retries       int
	chunkMiB      int
	atomic        bool
	maps          cli.StringSlice
	output        string
	verbose       bool
	supply        supplyChainFlags
}

func syncCommand(env *environment) *cli.Command {
	var f syncFlags
	s := &f.src
	return &cli.Command{
		Name:      "sync",
		Usage:     "collect and push in one go, for a host that reaches both the sources and the registry (no archive)",
		ArgsUsage: " ",
		Description: "The direct mode: resolves what --spec and the flags name exactly as `ferry collect` does,\n" +
			"then pushes it into --dest-registry the way `ferry ingest` does, with no archive in between\n" +
			"and nothing written but the download cache. For one chart, the PaletteAI CLI's flags work:\n" +
			"  ferry sync --chart-url clearml/clearml --chart-version 7.14.7 --release-name clearml \\\n" +
			"    --repo-url https://clearml.github.io/clearml-helm-charts \\\n" +
			"    --dest-registry 10.10.233.0:30003/spectro-content --dest-username admin --dest-password-stdin \\\n" +
			"    --dest-ca-file zot-ca.crt\n\n" +
			"The destination layout is ingest's: charts at BASE/charts/<chart>/<chart>:<version>, images at\n" +
			"BASE/images/<path> with tag and digest kept, packs and bundles beside them. Each blob is\n" +
			"asked of the registry first (HEAD) and downloaded from its source only when the registry\n" +
			"lacks it, once, through the cache, and verified against its digest on the way up; so a\n" +
			"second sync of the same content downloads and uploads no layer. Manifests go last, children\n" +
			"first. The registry is checked at the end: every tag resolves to its digest. sync keeps no\n" +
			"journal: an interrupted sync, run again, sends only the blobs the registry still lacks.\n" +
			"--registry-mirror pulls images through a company mirror, checked as collect checks it, and\n" +
			"--convert-oci converts Docker schema 2 manifests and lists to OCI before they are pushed, for\n" +
			"a Zot that refuses Docker media types (no docker2s2 compat).\n\n" +
			"Destination credentials: --dest-username with --dest-password-stdin, --dest-password or\n" +
			envDestPassword + " (the user may also come from " + envDestUsername + "); --dest-password\n" +
			"shows in the process list, prefer the other two. Without a user, the docker config\n" +
			"(~/.docker/config.json and its credential helpers) serves both sides. Passwords are never\n" +
			"printed.\n\n" + exitCodesHelp,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "dest-registry", Usage: "destination HOST:PORT/BASE, e.g. 10.10.233.0:30003/spectro-content", Destination: &f.registry},
			&cli.StringFlag{Name: "dest-username", Usage: "destination registry user (else " + envDestUsername + ", else the docker config)", Destination: &f.username},
			&cli.StringFlag{Name: "dest-password", Usage: "destination registry password (visible to other users of this host: prefer --dest-password-stdin or " + envDestPassword + ")", Destination: &f.password},
			&cli.BoolFlag{Name: "dest-password-stdin", Usage: "read the destination password from standard input", Destination: &f.passwordStdin},
			&cli.StringFlag{Name: "dest-ca-file", Usage: "PEM certificate authority the destination's certificate is checked against, besides the system's", Destination: &f.caFile},
			&cli.BoolFlag{Name: "dest-insecure", Usage: "skip TLS certificate verification of the destination", Destination: &f.insecure},
			&cli.BoolFlag{Name: "dest-plain-http", Usage: "talk plain HTTP to the destination", Destination: &f.plainHTTP},
			&cli.IntFlag{Name: "retries", Value: 6, Usage: "attempts per destination request on 429, 5xx and lost connections", Destination: &f.retries},
			&cli.IntFlag{Name: "chunk-size", Value: registry.DefaultChunkSize >> 20, Usage: "largest upload request in MiB: a larger blob goes in chunks of this size, each resumable", Destination: &f.chunkMiB},
			&cli.BoolFlag{Name: "atomic", Usage: "all or nothing: push no manifest unless every artifact can go in", Destination: &f.atomic},
			&cli.StringSliceFlag{Name: "map", Usage: "rewrite destination repositories starting with FROM to TO (FROM=TO, repeatable)", Destination: &f.maps},
			outputFlag(&f.output),
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress", Destination: &s.quiet},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "log retries and resumed uploads to standard error", Destination: &f.verbose},
		}, append(sourceFlags(s, "sync"), f.supply.flags()...)...),
		Action: func(c *cli.Context) error { return runSync(c, env, &f) },
	}
}

// syncReport is ingest's report with what came from the sources.
type syncReport struct {
	*ingest.Report
	// Downloaded counts bytes fetched from the sources; the destination or
	// the cache had the rest.
	Downloaded int64    `json:"downloaded"`
	Warnings   []string `json:"warnings,omitempty"`
}

func runSync(c *cli.Context, env *environment, f *syncFlags) error {
	if c.NArg() > 0 {
		return usageErrorf("sync takes no arguments (got %q); name content with --spec, --image, --chart-url, --bundle, --pack", c.Args().First())
	}
	if err := checkOutput(f.output); err != nil {
		return err
	}
	if f.registry == "" {
		return usageErrorf("sync: give the destination with --dest-registry HOST:PORT/BASE")
	}
	dst, err := registry.ParseDestination(f.registry)
	if err != nil {
		return usageErrorf("--dest-registry: %v", err)
	}
	if f.src.jobs < 1 || f.retries < 1 || f.chunkMiB < 1 {
		return usageErrorf("sync: --jobs, --retries and --chunk-size must be at least 1")
	}
	spec, err := f.src.buildSpec()
	if err != nil {
		return err
	}
	if spec.Empty() {
		return usageErrorf("sync: nothing to sync: give --spec, --image, --chart-url, --bundle or --pack")
	}
	iopts := ingest.CopyOptions{
		Client:   registry.Options{PlainHTTP: f.plainHTTP, Retry: registry.RetryPolicy{Attempts: f.retries}},
		Jobs:     f.src.jobs,
		Atomic:   f.atomic,
		Validate: true,
		// sync converts on its collect side, before anything is pushed.
		ConvertAdvice: syncConvertAdvice,
	}
	for _, s := range f.maps.Value() {
		m, err := ingest.ParseMapping(s)
		if err != nil {
			return usageErrorf("--map: %v", err)
		}
		iopts.Mappings = append(iopts.Mappings, m)
	}
	if iopts.Client.Auth, iopts.Client.Keychain, err = destCredentials(env, f); err != nil {
		return err
	}
	if iopts.Client.Transport, err = destTransport(f); err != nil {
		return err
	}
	copts := collect.Options{
		Spec:      spec,
		PlainHTTP: f.src.plainHTTP,
		Keychain:  authn.DefaultKeychain,
		Transport: sourceTransport(f.src.jobs),
		Jobs:      f.src.jobs,
		Tool:      "ferry " + version,
	}
	if spec.PackKey != "" {
		pub, err := verify.LoadPublicKey(spec.Path(spec.PackKey))
		if err != nil {
			return usageErrorf("pack key: %v", err)
		}
		copts.PackVerifier = packKey{pub: pub}
		// The same vendor key checks the packs again on their way up.
		iopts.PackVerifier = packVerifier{pub: pub}
	}
	if err := f.src.applyRender(&copts); err != nil {
		return err
	}
	if err := f.supply.apply(&copts); err != nil {
		return err
	}
	if copts.CacheDir = f.src.cacheDir; copts.CacheDir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return usageErrorf("no user cache folder (%v): give --cache-dir", err)
		}
		copts.CacheDir = filepath.Join(base, "ferry")
	}
	if f.verbose {
		iopts.Client.Logger = slog.New(slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}

	prog := newProgress(env.stderr, f.src.quiet || f.output == "json")
	copts.Progress = collectProgress(prog)
	var warned warnings
	copts.Progress.OnWarning = warned.add
	iopts.Progress = syncPushProgress(prog)
	direct, err := collect.OpenDirect(c.Context, copts)
	if err != nil {
		prog.Wait()
		printWarnings(env, warned.all())
		return collectExit(err)
	}
	defer direct.Close()
	rep, err := ingest.Copy(c.Context, direct, dst, iopts)
	if err != nil {
		// Downloads nobody reads any more would otherwise run to their end
		// before the error is shown.
		serr := direct.Err()
		direct.Close()
		prog.Wait()
		printWarnings(env, direct.Plan.Warnings)
		return syncPushExit(err, rep, serr)
	}
	prog.Wait()
	printWarnings(env, direct.Plan.Warnings)
	out := syncReport{Report: rep, Downloaded: direct.Downloaded(), Warnings: direct.Plan.Warnings}
	if f.output == "json" {
		if err := writeJSON(env.stdout, out); err != nil {
			return err
		}
	} else {
		if len(direct.Plan.Packs) > 0 {
			printPacks(env, direct.Plan.Packs)
			fmt.Fprintln(env.stdout)
		}
		printPushReport(env.stdout, rep, syncConvertWays)
		fmt.Fprintf(env.stdout, "downloaded %s from the sources; no archive written\n", humanBytes(out.Downloaded))
	}
	return ingestExit(rep.Err(), rep)
}

// syncPushExit gives a failed push its exit code. A download that failed
// reaches the pusher as a read error: when the pusher kept it recognisable
// it is a source error as it stands; when not, a download still failing
// (serr, none once a retry got the blob) is named instead, unless the
// destination refused the credentials or the certificate, which no source
// explains.
func syncPushExit(err error, rep *ingest.Report, serr error) error {
	if errors.Is(err, collect.ErrSource) || errors.Is(err, collect.ErrNotFound) {
		return collectExit(err)
	}
	if serr != nil && !errors.Is(err, ingest.ErrAuth) && !errors.Is(err, ingest.ErrTLS) {
		return collectExit(fmt.Errorf("%w (the push stopped: %v)", serr, err))
	}
	if errors.Is(err, ingest.ErrTLS) {
		return withCode(ExitRegistry, fmt.Errorf("%w (give the destination's CA with --dest-ca-file, or --dest-insecure to skip the check)", err))
	}
	return ingestExit(err, rep)
}

// syncPushProgress is ingest's progress with one byte bar for the push:
// there are no volumes to show.
func syncPushProgress(prog progress) ingest.Progress {
	p := ingestProgress(prog, false)
	var mu sync.Mutex
	var total bar
	p.OnStart = func(t ingest.Totals) {
		prog.Line("%d artifacts; up to %d blobs, %s, to push (what the registry has is skipped)", t.Artifacts, t.Blobs, humanBytes(t.Bytes))
		mu.Lock()
		total = prog.Bar("push", t.Bytes)
		mu.Unlock()
	}
	p.OnBytes = func(_ string, n int64) {
		mu.Lock()
		t := total
		mu.Unlock()
		if t != nil {
			t.Add(n)
		}
	}
	return p
}

// destCredentials picks the destination credential source; the password
// never leaves the authenticator.
func destCredentials(env *environment, f *syncFlags) (authn.Authenticator, authn.Keychain, error) {
	user := f.username
	if user == "" {
		user = os.Getenv(envDestUsername)
	}
	if user == "" {
		switch {
		case f.passwordStdin || f.password != "":
			return nil, nil, usageErrorf("a destination password needs --dest-username (or %s)", envDestUsername)
		case os.Getenv(envDestPassword) != "":
			// Falling back to the docker config would push with other
			// credentials than the ones the operator set.
			return nil, nil, usageErrorf("%s is set but no destination user is: give --dest-username or set %s (or unset %s to use the docker config)",
				envDestPassword, envDestUsername, envDestPassword)
		}
		return nil, authn.DefaultKeychain, nil
	}
	pass := f.password
	switch {
	case f.passwordStdin && pass != "":
		return nil, nil, usageErrorf("give --dest-password or --dest-password-stdin, not both")
	case f.passwordStdin:
		line, err := bufio.NewReader(env.stdin).ReadString('\n')
		if err != nil && err != io.EOF {
			return nil, nil, fmt.Errorf("reading the destination password from standard input: %w", err)
		}
		pass = strings.TrimRight(line, "\r\n")
	case pass == "":
		pass = os.Getenv(envDestPassword)
	}
	if pass == "" {
		return nil, nil, usageErrorf("destination user %q has no password: pipe it into --dest-password-stdin or set %s", user, envDestPassword)
	}
	return &authn.Basic{Username: user, Password: pass}, nil, nil
}

// destTransport is ingest's registry transport with the destination's TLS
// flags, named in errors.
func destTransport(f *syncFlags) (http.RoundTripper, error) {
	return registryTransport("--dest-ca-file", f.caFile, f.insecure, f.src.jobs)
}
