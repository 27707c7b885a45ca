package main

import (
	"bufio"
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/urfave/cli/v2"

	"github.com/ferrytool/ferry/archive"
	"github.com/ferrytool/ferry/ingest"
	"github.com/ferrytool/ferry/ingest/cluster"
	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/registry"
	"github.com/ferrytool/ferry/store"
	"github.com/ferrytool/ferry/verify"
)

// Environment variables the ingest command reads.
const (
	envRegistryUsername = "FERRY_REGISTRY_USERNAME"
	envRegistryPassword = "FERRY_REGISTRY_PASSWORD"
)

type ingestFlags struct {
	registry      string
	key           string
	username      string
	passwordStdin bool
	caFile        string
	insecure      bool
	plainHTTP     bool
	jobs          int
	retries       int
	chunkMiB      int
	dryRun        bool
	validateOnly  bool
	status        bool
	atomic        bool
	journal       string
	noJournal     bool
	lockTimeout   time.Duration
	workDir       string
	maps          cli.StringSlice
	packKey       string
	packsDir      string
	output        string
	quiet         bool
	verbose       bool
	convertOCI    bool
	allowRollback bool
	images        imageKeyFlags
	receipt       receiptOut
	// cluster are the cluster steps run after a successful push when
	// --project-namespace is given; its dry run is --dry-run's.
	cluster clusterOptions
}

func ingestCommand(env *environment) *cli.Command {
	var f ingestFlags
	return &cli.Command{
		Name:      "ingest",
		Usage:     "push an archive into the registry straight from its volumes (air-gapped side)",
		ArgsUsage: "VOLUME...",
		Description: "Checks the bill of materials' signature before any network traffic, then pushes every\n" +
			"artifact to HOST:PORT/BASE/<destination>: blobs first, read and verified straight from the\n" +
			"volumes (no extraction), in parallel, in as few requests as the registry allows (a mount where\n" +
			"another repository has the blob, one POST for a small blob, resumable chunks of --chunk-size\n" +
			"for a large one); then manifests, children first, the tag last. An artifact\n" +
			"with a blob that fails verification is refused and named; nothing of it reaches a manifest.\n\n" +
			"Volumes can come in any order and in separate runs: a journal records what is in, the\n" +
			"volumes seen and the upload sessions in flight, so an interrupted run resumes where the\n" +
			"registry stopped and an artifact is completed by the run that brings its last blob.\n" +
			"`--status` lists what waits for which volume. The journal's default place is\n" +
			"$XDG_STATE_HOME/ferry/ingest-journal.db (~/.local/state/ferry/ingest-journal.db); a second\n" +
			"ingest on the same journal waits --lock-timeout, then names the process holding it.\n\n" +
			"Credentials: --username with --password-stdin or " + envRegistryPassword + " (the user name may\n" +
			"also come from " + envRegistryUsername + "); without them, the docker config\n" +
			"(~/.docker/config.json and its credential helpers). Passwords are never printed or recorded.\n\n" +
			"Whether the registry takes Docker schema 2 manifests (a default Zot does not) is probed with a\n" +
			"tiny manifest stored by digest (never a tag) in one of the archive's destination repositories\n" +
			"and deleted again: always with --dry-run, and before any upload when the archive holds Docker\n" +
			"manifests, so that a refusing registry refuses those artifacts before their layers are sent.\n\n" +
			"With --image-key, every image's cosign signatures are checked again from the archive before\n" +
			"anything is sent; an image whose signatures do not verify (or, with --require-signed, an\n" +
			"unsigned one) is refused with what is attached to it, the others go in, and ferry exits 3.\n" +
			"Signatures, attestations and SBOMs attached to an image follow it into its repository: by\n" +
			"their cosign tag, or by digest with their subject field, listed in the referrers tag schema\n" +
			"(sha256-<hex>) on a registry without the referrers API.\n\n" +
			"An artifact collected by digest only is tagged " + ingest.DigestTagPrefix + "sha256-<hex>, so a registry that\n" +
			"deletes untagged manifests (Zot's garbage collection) keeps it.\n\n" +
			"With --project-namespace, the cluster steps of `ferry cluster apply` follow a complete push:\n" +
			"the archive's bundle is imported into the hub, the workload namespace allowed, the Zot variables\n" +
			"set and the Zot CA copied to the spoke; --dry-run shows their diffs too.\n\n" +
			exitCodesHelp,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "registry", Aliases: []string{"r"}, Usage: "destination HOST:PORT/BASE, e.g. 10.10.233.0:30003/spectro-content", Destination: &f.registry},
			&cli.StringFlag{Name: "key", Usage: "public key (PEM) the archive must be signed with", Destination: &f.key},
			&cli.StringFlag{Name: "username", Aliases: []string{"u"}, Usage: "registry user (else " + envRegistryUsername + ", else the docker config)", Destination: &f.username},
			&cli.BoolFlag{Name: "password-stdin", Usage: "read the registry password from standard input (else " + envRegistryPassword + ")", Destination: &f.passwordStdin},
			&cli.StringFlag{Name: "ca-file", Usage: "PEM certificate authority the registry's certificate is checked against, besides the system's", Destination: &f.caFile},
			&cli.BoolFlag{Name: "insecure", Usage: "skip TLS certificate verification", Destination: &f.insecure},
			&cli.BoolFlag{Name: "plain-http", Usage: "talk plain HTTP to the registry", Destination: &f.plainHTTP},
			&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Value: 4, Usage: "parallel uploads", Destination: &f.jobs},
			&cli.IntFlag{Name: "chunk-size", Value: registry.DefaultChunkSize >> 20, Usage: "largest upload request in MiB: a larger blob goes in chunks of this size, each resumable; lower it behind a proxy that cuts long requests", Destination: &f.chunkMiB},
			&cli.IntFlag{Name: "retries", Value: 6, Usage: "attempts per request on 429, 5xx and lost connections (Retry-After is honoured)", Destination: &f.retries},
			&cli.BoolFlag{Name: "dry-run", Usage: "show what would go where and what the registry already has; push no artifact, record nothing (only the Docker media type probe stores a tiny manifest by digest in a destination repository and deletes it)", Destination: &f.dryRun},
			&cli.BoolFlag{Name: "validate-only", Usage: "only check the registry: catalog lists every destination, every tag resolves to its digest", Destination: &f.validateOnly},
			&cli.BoolFlag{Name: "status", Usage: "from the journal alone: what is in, what waits for which volume", Destination: &f.status},
			&cli.BoolFlag{Name: "atomic", Usage: "all or nothing: push no manifest unless every artifact can go in", Destination: &f.atomic},
			&cli.StringFlag{Name: "journal", Usage: "ingest journal (default $XDG_STATE_HOME/ferry/ingest-journal.db)", Destination: &f.journal},
			&cli.BoolFlag{Name: "no-journal", Usage: "keep no journal: no resume across runs", Destination: &f.noJournal},
			&cli.DurationFlag{Name: "lock-timeout", Value: store.DefaultJournalLockTimeout, Usage: "how long to wait for another ingest holding the journal", Destination: &f.lockTimeout},
			&cli.StringFlag{Name: "work-dir", Usage: "where parts of blobs split across volumes wait for the rest (default: beside the journal)", Destination: &f.workDir},
			&cli.StringSliceFlag{Name: "map", Usage: "rewrite destination repositories starting with FROM to TO (FROM=TO, repeatable)", Destination: &f.maps},
			&cli.StringFlag{Name: "pack-key", Usage: "vendor public key (PEM) to check Artifact Studio pack signatures again", Destination: &f.packKey},
			&cli.StringFlag{Name: "packs-dir", Usage: "also write each verified pack (.zst and .sig.bin) here, for upload through Palette", Destination: &f.packsDir},
			outputFlag(&f.output),
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress", Destination: &f.quiet},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "log retries and resumed uploads to standard error", Destination: &f.verbose},
			&cli.BoolFlag{Name: "convert-oci", Usage: "last resort for a registry that refuses Docker manifests (a default Zot): push them as OCI; their digests change and the report lists each", Destination: &f.convertOCI},
			&cli.BoolFlag{Name: "allow-rollback", Usage: "let an archive set tags that a newer archive set before (the journal remembers which archive set each tag); said in the report when it happens", Destination: &f.allowRollback},
		}, append(append(f.images.flags(), clusterFlags(&f.cluster)...), f.receipt.ingestFlags()...)...),
		Action: func(c *cli.Context) error { return runIngest(c, env, &f) },
	}
}

func runIngest(c *cli.Context, env *environment, f *ingestFlags) error {
	if err := checkOutput(f.output); err != nil {
		return err
	}
	modes := 0
	for _, on := range []bool{f.dryRun, f.validateOnly, f.status} {
		if on {
			modes++
		}
	}
	if modes > 1 {
		return usageErrorf("ingest: --dry-run, --validate-only and --status exclude each other")
	}
	if f.status {
		return runIngestStatus(c, env, f)
	}
	if f.registry == "" {
		return usageErrorf("ingest: give the destination with --registry HOST:PORT/BASE")
	}
	dst, err := parseDestinationFlag("--registry", f.registry)
	if err != nil {
		return err
	}
	if err := f.receipt.check("--receipt", f.noJournal); err != nil {
		return err
	}
	if c.NArg() == 0 && !f.validateOnly {
		return usageErrorf("ingest: give the archive's volume files")
	}
	if f.key == "" && (c.NArg() > 0 || !f.validateOnly) {
		return usageErrorf("ingest: give the public key the archive is signed with (--key)")
	}
	opts, cleanup, err := ingestOptions(c.Context, env, f)
	if err != nil {
		return err
	}
	defer cleanup()
	if f.validateOnly {
		v, err := ingest.Validate(c.Context, c.Args().Slice(), dst, ingest.ValidateOptions{ReadOptions: readOptions(opts), ConvertOCI: opts.ConvertOCI})
		if err != nil {
			return ingestExit(err, nil)
		}
		if f.output == "json" {
			if err := writeJSON(env.stdout, v); err != nil {
				return err
			}
		} else {
			printValidation(env.stdout, v)
		}
		return ingestExit(v.Err(), nil)
	}
	var copts *cluster.Options
	if f.cluster.projectNamespace != "" {
		// Checked before the push, so a wrong kubeconfig costs no upload.
		f.cluster.dryRun = f.dryRun
		o, err := f.cluster.options(os.Getenv, f.registry, nil)
		if err != nil {
			return err
		}
		copts = &o
	} else if f.cluster.workloadNamespace != "" || f.cluster.hubKubeconfig != "" || f.cluster.hubContext != "" {
		return usageErrorf("ingest: the cluster steps need --project-namespace")
	}
	prog := newProgress(env.stderr, f.quiet || f.output == "json")
	opts.Progress = ingestProgress(prog, f.dryRun)
	opts.Validate = true
	rep, err := ingest.Ingest(c.Context, c.Args().Slice(), dst, opts)
	if err != nil {
		prog.Wait()
		return ingestExit(err, rep)
	}
	var clusterErr error
	if copts != nil {
		if perr := rep.Err(); perr != nil {
			prog.Line("cluster steps skipped: the push is not complete")
		} else {
			clusterErr = ingestCluster(c.Context, prog, rep, c.Args().Slice(), dst, readOptions(opts), copts, f.cluster.rewriteDigests)
		}
	}
	prog.Wait()
	if f.output == "json" {
		if err := writeJSON(env.stdout, rep); err != nil {
			return err
		}
	} else {
		printIngestReport(env.stdout, rep)
		if rep.Cluster != nil {
			fmt.Fprintln(env.stdout, "\ncluster steps:")
			printClusterResult(env.stdout, rep.Cluster)
		}
	}
	for _, a := range rep.Artifacts {
		if a.Cause == ingest.CauseRollback {
			fmt.Fprintln(env.stderr, "an older archive may move tags back only with --allow-rollback")
			break
		}
	}
	if err := writeIngestReceipt(c.Context, env, f, opts, rep); err != nil {
		return err
	}
	if err := rep.Err(); err != nil {
		return ingestExit(err, rep)
	}
	return clusterExit(clusterErr)
}

// ingestCluster runs the cluster steps after the push, with the bundle
// the archive carries and, with --rewrite-digests, the digests the push
// changed. Its result goes into the report.
func ingestCluster(ctx context.Context, prog progress, rep *ingest.Report, volumes []string, dst registry.Destination, opts ingest.ReadOptions, copts *cluster.Options, rewrite bool) error {
	bundle, err := ingest.Bundles(ctx, volumes, dst, opts)
	if err != nil {
		return ingestExit(err, nil)
	}
	copts.Bundle = bundle
	if rewrite {
		if copts.DigestMap == nil {
			copts.DigestMap = map[string]string{}
		}
		for old, to := range rep.DigestMap() {
			copts.DigestMap[old] = to
		}
	}
	clusterProgress(prog, copts)
	res, err := cluster.Apply(ctx, *copts)
	rep.Cluster = res
	return err
}

// readOptions are the options of the reads that follow a push (the
// cluster steps' bundles), from the push's own.
func readOptions(o ingest.IngestOptions) ingest.ReadOptions {
	return ingest.ReadOptions{Client: o.Client, Verifier: o.Verifier, Journal: o.Journal, Mappings: o.Mappings, WorkDir: o.WorkDir}
}

// ingestOptions turns flags into library options: credentials, TLS, the
// journal (opened and locked here; cleanup closes it).
func ingestOptions(ctx context.Context, env *environment, f *ingestFlags) (ingest.IngestOptions, func(), error) {
	var opts ingest.IngestOptions
	opts.Client = registry.Options{
		PlainHTTP: f.plainHTTP,
		Retry:     ingest.RetryPolicy{Attempts: f.retries},
		ChunkSize: int64(f.chunkMiB) << 20,
	}
	opts.Jobs = f.jobs
	opts.Atomic = f.atomic
	opts.DryRun = f.dryRun
	opts.PacksDir = f.packsDir
	opts.ConvertOCI = f.convertOCI
	opts.ConvertAdvice = ingestConvertAdvice
	opts.AllowRollback = f.allowRollback
	cleanup := func() {}
	if f.jobs < 1 || f.retries < 1 || f.chunkMiB < 1 {
		return opts, cleanup, usageErrorf("ingest: --jobs, --retries and --chunk-size must be at least 1")
	}
	if f.verbose {
		opts.Client.Logger = slog.New(slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if f.key != "" {
		v, err := verify.VerifierFromFile(f.key)
		if err != nil {
			return opts, cleanup, withCode(ExitUsage, err)
		}
		opts.Verifier = v
	}
	if pol, err := f.images.policy("ingest"); err != nil {
		return opts, cleanup, err
	} else if pol != nil {
		opts.Images = imageVerifier{policy: *pol}
	}
	if f.packKey != "" {
		pub, err := verify.LoadPublicKey(f.packKey)
		if err != nil {
			return opts, cleanup, withCode(ExitUsage, fmt.Errorf("--pack-key: %w", err))
		}
		opts.PackVerifier = packVerifier{pub: pub}
	}
	for _, s := range f.maps.Value() {
		m, err := ingest.ParseMapping(s)
		if err != nil {
			return opts, cleanup, usageErrorf("--map: %v", err)
		}
		opts.Mappings = append(opts.Mappings, m)
	}
	var err error
	if opts.Client.Auth, opts.Client.Keychain, err = registryCredentials(env, f); err != nil {
		return opts, cleanup, err
	}
	if opts.Client.Transport, err = registryTransport("--ca-file", f.caFile, f.insecure, f.jobs); err != nil {
		return opts, cleanup, err
	}
	if f.noJournal || f.dryRun && f.journal == "" {
		opts.WorkDir = f.workDir
		return opts, cleanup, nil
	}
	path, err := journalPath(f.journal)
	if err != nil {
		return opts, cleanup, err
	}
	j, err := store.OpenJournal(path, store.JournalOptions{LockTimeout: f.lockTimeout, Holder: store.Holder{Command: "ferry ingest " + f.registry}, ReadOnly: f.dryRun})
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && f.dryRun {
			return opts, cleanup, nil
		}
		return opts, cleanup, ingestExit(err, nil)
	}
	opts.Journal = j
	opts.WorkDir = f.workDir
	if opts.WorkDir == "" {
		opts.WorkDir = filepath.Join(filepath.Dir(path), "work")
	}
	return opts, func() { j.Close() }, nil
}

// journalPath is the journal flag, or the default under the user's state
// folder (XDG_STATE_HOME, else ~/.local/state).
func journalPath(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "ferry", "ingest-journal.db"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", usageErrorf("no home folder for the journal (%v): give --journal", err)
	}
	return filepath.Join(home, ".local", "state", "ferry", "ingest-journal.db"), nil
}

// registryCredentials picks the credential source; the password itself
// never leaves the authenticator.
func registryCredentials(env *environment, f *ingestFlags) (authn.Authenticator, authn.Keychain, error) {
	user := f.username
	if user == "" {
		user = os.Getenv(envRegistryUsername)
	}
	if user == "" {
		if f.passwordStdin {
			return nil, nil, usageErrorf("--password-stdin needs --username")
		}
		return nil, authn.DefaultKeychain, nil
	}
	var pass string
	if f.passwordStdin {
		line, err := bufio.NewReader(env.stdin).ReadString('\n')
		if err != nil && err != io.EOF {
			return nil, nil, fmt.Errorf("reading the password from standard input: %w", err)
		}
		pass = strings.TrimRight(line, "\r\n")
	} else {
		pass = os.Getenv(envRegistryPassword)
	}
	if pass == "" {
		return nil, nil, usageErrorf("user %q has no password: pipe it into --password-stdin or set %s", user, envRegistryPassword)
	}
	return &authn.Basic{Username: user, Password: pass}, nil, nil
}

// parseDestinationFlag parses a destination flag once, before anything is
// sent, and names the flag when it is not a HOST[:PORT][/BASE] the
// registry could take.
func parseDestinationFlag(flag, value string) (registry.Destination, error) {
	d, err := registry.ParseDestination(value)
	if err != nil {
		return registry.Destination{}, usageErrorf("%s: %v", flag, err)
	}
	return d, nil
}

// registryTransport is the registry transport with the TLS settings of the
// flags; caFlag names the CA file's flag in errors.
func registryTransport(caFlag, caFile string, insecure bool, jobs int) (http.RoundTripper, error) {
	o := registry.TransportOptions{Insecure: insecure, Conns: jobs, Proxy: http.ProxyFromEnvironment}
	if caFile != "" {
		data, err := os.ReadFile(caFile)
		if err != nil {
			return nil, usageErrorf("%s: %v", caFlag, err)
		}
		o.CAPEM = data
	}
	tr, err := registry.NewTransport(o)
	if err != nil {
		return nil, usageErrorf("%s %s: %v", caFlag, caFile, err)
	}
	return tr, nil
}

type packVerifier struct{ pub crypto.PublicKey }

func (p packVerifier) VerifyPack(ctx context.Context, content io.Reader, sig []byte) error {
	return verify.VerifyPackSignature(ctx, p.pub, content, sig)
}

// ingestExit maps an error to ferry's exit codes.
func ingestExit(err error, rep *ingest.Report) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrLocked):
		return withCode(ExitTimeout, err)
	case errors.Is(err, store.ErrDamaged):
		return withCode(ExitFailure, fmt.Errorf("%w\n  move the file aside or give another --journal; a new journal knows nothing of earlier runs, so volumes they brought may be needed again", err))
	case errors.Is(err, registry.ErrDestination):
		return withCode(ExitUsage, err)
	case errors.Is(err, ingest.ErrTLS):
		return withCode(ExitRegistry, fmt.Errorf("%w (give the registry's CA with --ca-file, or --insecure to skip the check)", err))
	case errors.Is(err, registry.ErrWrongScheme):
		return withCode(ExitRegistry, fmt.Errorf("%w (use --plain-http for an HTTP registry)", err))
	case errors.Is(err, ingest.ErrAuth), errors.Is(err, ingest.ErrUnreachable), errors.Is(err, ingest.ErrRegistry):
		return withCode(ExitRegistry, err)
	case errors.Is(err, archive.ErrSignature), errors.Is(err, archive.ErrFormat), errors.Is(err, archive.ErrDigest),
		errors.Is(err, archive.ErrUnsafeEntry), errors.Is(err, archive.ErrTruncated), errors.Is(err, manifest.ErrInvalidBOM):
		return withCode(ExitVerify, err)
	case errors.Is(err, ingest.ErrVolumes), errors.Is(err, ingest.ErrConflict), errors.Is(err, ingest.ErrNoJournal),
		errors.Is(err, ingest.ErrWrongDestination):
		return withCode(ExitUsage, err)
	case errors.Is(err, ingest.ErrRefused):
		return withCode(refusalExit(rep), err)
	case errors.Is(err, ingest.ErrIncomplete):
		return withCode(ExitIncomplete, err)
	case errors.Is(err, ingest.ErrValidation):
		if errors.Is(err, ingest.ErrWrongDigest) {
			return withCode(ExitVerify, err)
		}
		return withCode(ExitIncomplete, err)
	case errors.Is(err, os.ErrNotExist):
		return withCode(ExitIncomplete, err)
	}
	return err
}

// refusalExit is the exit code for refused artifacts: partial when some
// went in (never with --atomic, where nothing did), else by what refused
// them: content that failed verification before a registry's no.
func refusalExit(rep *ingest.Report) int {
	if rep == nil || len(signatureRefusals(rep)) > 0 {
		// An image whose signatures fail is a verification failure, even
		// when other artifacts went in.
		return ExitVerify
	}
	if !rep.Atomic {
		for _, a := range rep.Artifacts {
			if a.State == ingest.StatePushed || a.State == ingest.StatePresent {
				return ExitPartial
			}
		}
	}
	code := ExitVerify
	for _, a := range rep.Artifacts {
		switch a.Cause {
		case ingest.CauseVerification:
			return ExitVerify
		case ingest.CauseRegistry:
			code = ExitRegistry
		case ingest.CauseExpected:
			code = ExitIncomplete
		}
	}
	return code
}

func runIngestStatus(c *cli.Context, env *environment, f *ingestFlags) error {
	path, err := journalPath(f.journal)
	if err != nil {
		return err
	}
	j, err := store.OpenJournal(path, store.JournalOptions{ReadOnly: true, LockTimeout: f.lockTimeout})
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return usageErrorf("no journal at %s: nothing was ingested with it yet", path)
		}
		return ingestExit(err, nil)
	}
	defer j.Close()
	var v archive.Verifier
	if f.key != "" {
		if v, err = verify.VerifierFromFile(f.key); err != nil {
			return withCode(ExitUsage, err)
		}
	}
	st, err := ingest.Status(c.Context, j, f.registry, v)
	if err != nil {
		return ingestExit(err, nil)
	}
	if f.output == "json" {
		return writeJSON(env.stdout, st)
	}
	printStatus(env.stdout, st)
	return nil
}
