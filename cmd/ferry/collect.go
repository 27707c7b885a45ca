package main

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/urfave/cli/v2"
	"helm.sh/helm/v3/pkg/strvals"

	"github.com/ferrytool/ferry/archive"
	"github.com/ferrytool/ferry/collect"
	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/verify"
)

type collectFlags struct {
	spec              string
	images            cli.StringSlice
	chartURL          string
	chartVersion      string
	releaseName       string
	repoURL           string
	namespace         string
	values            cli.StringSlice
	set               cli.StringSlice
	kubeVersion       string
	bundles           cli.StringSlice
	packs             cli.StringSlice
	packKey           string
	chartKeyring      string
	allowMissingPacks bool
	upstreamRepos     cli.StringSlice
	platforms         cli.StringSlice
	mirrors           cli.StringSlice
	convertOCI        bool
	key               string
	passphraseStdin   bool
	output            string
	volumeSize        string
	cacheDir          string
	jobs              int
	plainHTTP         bool
	plan              bool
	quiet             bool
	strict            bool
	allowBrokenCharts bool
	renderTimeout     time.Duration
	renderMemory      string
	report            string
	created           string
	supply            supplyChainFlags
	since             sinceFlags
}

func collectCommand(env *environment) *cli.Command {
	var f collectFlags
	return &cli.Command{
		Name:      "collect",
		Usage:     "resolve and download content into a signed archive (connected side)",
		ArgsUsage: " ",
		Description: "Collects what a transfer spec (--spec, see docs/transfer-spec.md) and the flags name:\n" +
			"Profile Bundles and the packs their ClusterProfiles need, Palette packs (an Artifact\n" +
			"Studio .zst is verified against --pack-key before anything else), Helm charts with every\n" +
			"image they render, and images. For one chart, the PaletteAI CLI's flags work:\n" +
			"  --chart-url clearml/clearml --chart-version 7.14.7 --release-name clearml \\\n" +
			"  --repo-url https://clearml.github.io/clearml-helm-charts\n\n" +
			"A multi-arch index is kept whole unless --platform asks for a subset. --registry-mirror\n" +
			"pulls images through a company mirror while the archive names their sources, and\n" +
			"--convert-oci stores Docker schema 2 manifests as OCI for registries that refuse them.\n" +
			"Each blob is downloaded once into a content-addressed cache (a second collect of the\n" +
			"same content downloads no layer) and written into NAME.tar.zst, or NAME.tar.zst.001,\n" +
			".002, ... when it needs more than one volume. Nothing that looks complete is left behind on failure.\n" +
			"Registry credentials come from the docker config (~/.docker/config.json and its\n" +
			"credential helpers). --plan lists every artifact and why it is in, without downloading.\n" +
			"What is attached to each image (cosign signatures, attestations, SBOMs, OCI referrers) travels\n" +
			"with it (--referrers); --image-key checks image signatures offline and records the outcome.\n" +
			"--since RECEIPT leaves out what the destination already holds (docs/receipts.md).\n\n" + exitCodesHelp,
		Flags: append(append(sourceFlags(&f, "collect"),
			&cli.StringFlag{Name: "key", Usage: "private key (PEM) that signs the archive", Destination: &f.key},
			&cli.BoolFlag{Name: "key-passphrase-stdin", Usage: "read the private key's passphrase from standard input (else " + passphraseEnv + ")", Destination: &f.passphraseStdin},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "archive path without extension: DIR/NAME gives DIR/NAME.tar.zst[.NNN]", Destination: &f.output},
			&cli.StringFlag{Name: "volume-size", Value: strconv.FormatInt(archive.DefaultVolumeSize, 10), Usage: "largest volume file, in bytes or with a unit (700M, 4G); the default is what FAT32 holds", Destination: &f.volumeSize},
			&cli.BoolFlag{Name: "plan", Usage: "only resolve: list every artifact with its reason, sizes and volumes; download no image layer", Destination: &f.plan},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress", Destination: &f.quiet},
			&cli.StringFlag{Name: "report", Usage: "also write the outcome as JSON to `FILE`: artifacts, gaps, warnings, volumes", Destination: &f.report},
			&cli.StringFlag{Name: "created", Usage: "creation `TIME` of the archive (RFC 3339); the same content, key and time give byte-identical volumes (default: " + sourceDateEpochEnv + " if set, else now)", Destination: &f.created},
		), append(f.supply.flags(), f.since.flags()...)...),
		Action: func(c *cli.Context) error { return runCollect(c, env, &f) },
	}
}

// sourceFlags are the flags that shape what is resolved and how it is
// fetched, shared by collect and sync (verb names the command in the help
// texts): one list, so a source flag added for one command cannot be
// missing from the other while buildSpec reads it for both.
func sourceFlags(f *collectFlags, verb string) []cli.Flag {
	jobs, jobsDefault := "parallel downloads", collect.DefaultJobs
	if verb == "sync" {
		// Uploads too: each costs the registry a password check, and
		// more at once than the appliance has cores gain nothing.
		jobs, jobsDefault = jobs+", and parallel uploads", 4
	}
	return []cli.Flag{
		&cli.StringFlag{Name: "spec", Aliases: []string{"f"}, Usage: "transfer spec file (YAML, kind TransferSpec)", Destination: &f.spec},
		&cli.StringSliceFlag{Name: "image", Aliases: []string{"i"}, Usage: "image reference to " + verb + " (repeatable)", Destination: &f.images},
		&cli.StringFlag{Name: "chart-url", Usage: "chart to " + verb + ": <repo-alias>/<chart> with --repo-url, a chart name with --repo-url, or oci://registry/path/chart", Destination: &f.chartURL},
		&cli.StringFlag{Name: "chart-version", Usage: "version (or semver range) of --chart-url; empty means the latest", Destination: &f.chartVersion},
		&cli.StringFlag{Name: "release-name", Usage: "release name that --chart-url is rendered with for image discovery", Destination: &f.releaseName},
		&cli.StringFlag{Name: "repo-url", Usage: "repository of --chart-url: https://... (index.yaml) or oci://...", Destination: &f.repoURL},
		&cli.StringFlag{Name: "namespace", Usage: "namespace that --chart-url is rendered in", Destination: &f.namespace},
		&cli.StringSliceFlag{Name: "values", Usage: "values file for --chart-url (repeatable)", Destination: &f.values},
		&cli.StringSliceFlag{Name: "set", Usage: "value for --chart-url, key=value as in helm (repeatable)", Destination: &f.set},
		&cli.StringFlag{Name: "kube-version", Usage: "Kubernetes version charts are rendered for (default: one their kubeVersion accepts)", Destination: &f.kubeVersion},
		&cli.StringSliceFlag{Name: "bundle", Usage: "Profile Bundle archive <bundle>-<version>.tar.gz (repeatable)", Destination: &f.bundles},
		&cli.StringSliceFlag{Name: "pack", Usage: "pack: <name>.zst (signature <name>.sig.bin beside it), or a pack tarball or folder (repeatable)", Destination: &f.packs},
		&cli.StringFlag{Name: "pack-key", Usage: "vendor public key (PEM, RSA or ECDSA) that .zst pack signatures must verify against", Destination: &f.packKey},
		&cli.StringFlag{Name: "chart-keyring", Usage: "OpenPGP public keyring (`FILE`, as for helm verify) that every chart's provenance file (.prov) must verify against; a chart without one is refused", Destination: &f.chartKeyring},
		&cli.BoolFlag{Name: "allow-missing-packs", Usage: verb + " a bundle even when packs its profiles need are not given", Destination: &f.allowMissingPacks},
		&cli.StringSliceFlag{Name: "upstream-repo", Usage: "CHART=URL: where to fetch a bundle's chart that points at an internal registry (repeatable)", Destination: &f.upstreamRepos},
		&cli.StringSliceFlag{Name: "platform", Usage: "keep only these platforms of multi-arch images, os/arch[/variant] (repeatable or comma-separated)", Destination: &f.platforms},
		&cli.StringSliceFlag{Name: "registry-mirror", Usage: "SOURCE=MIRROR[/PREFIX]: pull images of SOURCE (docker.io, quay.io/org) through a mirror; artifacts keep the source references, and what the mirror serves is checked against the source or the pinned digest (repeatable)", Destination: &f.mirrors},
		&cli.BoolFlag{Name: "convert-oci", Usage: "convert Docker schema 2 manifests and manifest lists to OCI as they are resolved (for a Zot without docker2s2 compat); the bill of materials records both digests", Destination: &f.convertOCI},
		&cli.StringFlag{Name: "cache-dir", Usage: "download cache (default: the user cache folder's ferry/)", Destination: &f.cacheDir},
		&cli.BoolFlag{Name: "plain-http", Usage: "allow source registries over plain HTTP", Destination: &f.plainHTTP},
		&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Value: jobsDefault, Usage: jobs, Destination: &f.jobs},
		&cli.BoolFlag{Name: "strict", Usage: "fail on any gap: an image only chart annotations name that the source does not have (without it, gaps are listed and recorded in the bill of materials)", Destination: &f.strict},
		&cli.BoolFlag{Name: "allow-broken-charts", Usage: "record a chart that does not load or render, or a bundle document that does not parse, as a gap instead of failing", Destination: &f.allowBrokenCharts},
		&cli.DurationFlag{Name: "render-timeout", Value: defaultRenderTimeout, Usage: "time limit for rendering one chart", Destination: &f.renderTimeout},
		&cli.StringFlag{Name: "render-memory", Value: "256M", Usage: "memory limit for rendering one chart, in bytes or with a unit (512M, 1G)", Destination: &f.renderMemory},
	}
}

// applyRender sets how charts are rendered (in a bounded child process),
// which keys their provenance must verify with, and what becomes of gaps.
func (f *collectFlags) applyRender(opts *collect.Options) error {
	mem, err := parseSize(f.renderMemory)
	if err != nil {
		return usageErrorf("--render-memory: %v", err)
	}
	if f.renderTimeout <= 0 {
		return usageErrorf("--render-timeout %s: give a positive duration", f.renderTimeout)
	}
	r, err := newChildRenderer(f.renderTimeout, mem)
	if err != nil {
		return err
	}
	opts.Renderer, opts.Strict, opts.AllowBrokenCharts = r, f.strict, f.allowBrokenCharts
	if f.chartKeyring != "" {
		if opts.ChartKeyring, err = collect.LoadChartKeyring(f.chartKeyring); err != nil {
			return usageErrorf("--chart-keyring: %v", err)
		}
	}
	return nil
}

// buildSpec reads --spec and adds what the flags name.
func (f *collectFlags) buildSpec() (*manifest.TransferSpec, error) {
	spec := manifest.NewTransferSpec()
	if f.spec != "" {
		data, err := os.ReadFile(f.spec)
		if err != nil {
			return nil, usageErrorf("--spec: %v", err)
		}
		if spec, err = manifest.ParseTransferSpec(data, filepath.Dir(f.spec)); err != nil {
			return nil, usageErrorf("--spec %s: %v", f.spec, err)
		}
	}
	fl := manifest.NewTransferSpec()
	// Flag file names are relative to where ferry runs, not to the spec.
	if cwd, err := os.Getwd(); err == nil {
		fl.Dir = cwd
	}
	fl.KubeVersion, fl.PackKey, fl.AllowMissingPacks = f.kubeVersion, f.packKey, f.allowMissingPacks
	fl.ConvertOCI = f.convertOCI
	for _, m := range f.mirrors.Value() {
		rm, err := manifest.ParseRegistryMirror(m)
		if err != nil {
			return nil, usageErrorf("--registry-mirror: %v", err)
		}
		fl.RegistryMirrors = append(fl.RegistryMirrors, rm)
	}
	for _, p := range f.platforms.Value() {
		for _, s := range strings.Split(p, ",") {
			if s = strings.TrimSpace(s); s != "" {
				fl.Platforms = append(fl.Platforms, s)
			}
		}
	}
	for _, u := range f.upstreamRepos.Value() {
		chart, url, ok := strings.Cut(u, "=")
		if !ok || chart == "" || url == "" {
			return nil, usageErrorf("--upstream-repo %q: want CHART=URL", u)
		}
		if fl.UpstreamRepositories == nil {
			fl.UpstreamRepositories = map[string]string{}
		}
		fl.UpstreamRepositories[chart] = url
	}
	for _, b := range f.bundles.Value() {
		fl.Bundles = append(fl.Bundles, manifest.BundleSpec{File: b, Origin: manifest.OriginFlag})
	}
	for _, p := range f.packs.Value() {
		fl.Packs = append(fl.Packs, manifest.PackSpec{File: p, Origin: manifest.OriginFlag})
	}
	for _, im := range f.images.Value() {
		fl.Images = append(fl.Images, manifest.ImageSpec{Ref: im, Origin: manifest.OriginFlag})
	}
	chart, err := f.chartFlags(spec)
	if err != nil {
		return nil, err
	}
	if chart != nil {
		fl.Charts = append(fl.Charts, *chart)
	}
	spec.Merge(fl)
	if err := spec.Validate(); err != nil {
		return nil, usageErrorf("%v", err)
	}
	return spec, nil
}

// chartFlags reads the one chart of the PaletteAI-style flags.
func (f *collectFlags) chartFlags(spec *manifest.TransferSpec) (*manifest.ChartSpec, error) {
	if f.chartURL == "" {
		for name, v := range map[string]string{"chart-version": f.chartVersion, "release-name": f.releaseName, "repo-url": f.repoURL, "namespace": f.namespace} {
			if v != "" {
				return nil, usageErrorf("--%s needs --chart-url", name)
			}
		}
		if len(f.values.Value())+len(f.set.Value()) > 0 {
			return nil, usageErrorf("--values and --set need --chart-url")
		}
		return nil, nil
	}
	c := manifest.ChartSpec{Version: f.chartVersion, ReleaseName: f.releaseName, Namespace: f.namespace, ValuesFiles: f.values.Value(), Origin: manifest.OriginFlag}
	switch alias, name, hasAlias := strings.Cut(f.chartURL, "/"); {
	case strings.HasPrefix(f.chartURL, "oci://"):
		if f.repoURL != "" {
			return nil, usageErrorf("--chart-url %s is a whole oci:// reference; drop --repo-url", f.chartURL)
		}
		c.Name = f.chartURL
	case f.repoURL != "":
		c.Name, c.Repo = f.chartURL, f.repoURL
		if hasAlias {
			c.Name = name
		}
	case hasAlias:
		if _, ok := spec.Repository(alias); !ok {
			return nil, usageErrorf("--chart-url %s: give --repo-url, or define repository %q in the spec", f.chartURL, alias)
		}
		c.Name, c.Repo = name, alias
	default:
		return nil, usageErrorf("--chart-url %s needs --repo-url", f.chartURL)
	}
	if sets := f.set.Value(); len(sets) > 0 {
		c.Values = map[string]any{}
		for _, s := range sets {
			if err := strvals.ParseInto(s, c.Values); err != nil {
				return nil, usageErrorf("--set %q: %v", s, err)
			}
		}
	}
	return &c, nil
}

// packKey checks pack signatures with package verify.
type packKey struct {
	pub crypto.PublicKey
}

func (k packKey) VerifyPack(ctx context.Context, content io.Reader, sig []byte) error {
	return verify.VerifyPackSignature(ctx, k.pub, content, sig)
}

func (k packKey) KeyID() string { return verify.KeyID(k.pub) }

func runCollect(c *cli.Context, env *environment, f *collectFlags) error {
	if c.NArg() > 0 {
		return usageErrorf("collect takes no arguments (got %q); name content with --spec, --image, --chart-url, --bundle, --pack", c.Args().First())
	}
	spec, err := f.buildSpec()
	if err != nil {
		return err
	}
	if spec.Empty() {
		return usageErrorf("collect: nothing to collect: give --spec, --image, --chart-url, --bundle or --pack")
	}
	volumeSize, err := parseSize(f.volumeSize)
	if err != nil {
		return usageErrorf("--volume-size: %v", err)
	}
	created, err := f.createdTime()
	if err != nil {
		return err
	}
	tr := sourceTransport(f.jobs)
	opts := collect.Options{
		Created:    created,
		Spec:       spec,
		PlainHTTP:  f.plainHTTP,
		Keychain:   authn.DefaultKeychain,
		Transport:  tr,
		Jobs:       f.jobs,
		VolumeSize: volumeSize,
		Tool:       "ferry " + version,
	}
	if err := f.applyRender(&opts); err != nil {
		return err
	}
	if err := f.supply.apply(&opts); err != nil {
		return err
	}
	if opts.Since, err = f.since.load(c.Context); err != nil {
		return err
	}
	if spec.PackKey != "" {
		pub, err := verify.LoadPublicKey(spec.Path(spec.PackKey))
		if err != nil {
			return usageErrorf("pack key: %v", err)
		}
		opts.PackVerifier = packKey{pub: pub}
	}
	if opts.CacheDir = f.cacheDir; opts.CacheDir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return usageErrorf("no user cache folder (%v): give --cache-dir", err)
		}
		opts.CacheDir = filepath.Join(base, "ferry")
	}
	if f.plan {
		prog := newProgress(env.stderr, f.quiet)
		var warned warnings
		opts.Progress = collect.Progress{OnResolved: func(a manifest.Artifact) { prog.Line("resolved %s (%s)", a.Name, shortDigest(a.Digest)) }, OnWarning: warned.add}
		plan, err := collect.MakePlan(c.Context, opts)
		prog.Wait()
		if err != nil {
			printWarnings(env, warned.all())
			return collectExit(err)
		}
		printWarnings(env, plan.Warnings)
		printPlan(env, plan, volumeSize)
		printSupplyChain(env.stdout, plan.BOM.SupplyChain())
		printDelta(env, plan.BOM, plan.Delta)
		printGaps(env, plan.Gaps)
		return writeCollectReport(f.report, plan.BOM, plan.Warnings, nil)
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
	// Checked before anything is resolved or downloaded: a missing folder is
	// most often media that is not mounted, and creating it would fill the
	// host's own disk instead.
	if st, err := os.Stat(opts.Dir); err != nil || !st.IsDir() {
		return usageErrorf("collect: --output %s: folder %s does not exist (is the media mounted?)", f.output, opts.Dir)
	}
	prog := newProgress(env.stderr, f.quiet)
	opts.Progress = collectProgress(prog)
	var warned warnings
	opts.Progress.OnWarning = warned.add
	res, err := collect.Collect(c.Context, opts)
	prog.Wait()
	if err != nil {
		printWarnings(env, warned.all())
		return collectExit(err)
	}
	printWarnings(env, res.Warnings)
	if len(res.Packs) > 0 {
		printPacks(env, res.Packs)
		fmt.Fprintln(env.stdout)
	}
	s := res.BOM.Stats()
	fmt.Fprintf(env.stdout, "collected %d artifacts, %d blobs (%s stored, deduplication saved %s; downloaded %s)\n",
		s.Artifacts, s.Blobs, humanBytes(s.StoredBytes), humanBytes(s.Saved()), humanBytes(res.Downloaded))
	for _, v := range res.Volumes {
		fmt.Fprintf(env.stdout, "  %s  %s\n", v.Path, humanBytes(v.Size))
	}
	printSupplyChain(env.stdout, res.BOM.SupplyChain())
	printDelta(env, res.BOM, res.Delta)
	printGaps(env, res.BOM.Gaps)
	return writeCollectReport(f.report, res.BOM, res.Warnings, res.Volumes)
}

// sourceDateEpochEnv is the reproducible-builds convention for a fixed
// creation time: seconds since 1970 (UTC).
const sourceDateEpochEnv = "SOURCE_DATE_EPOCH"

// createdTime reads --created, else SOURCE_DATE_EPOCH; the zero time means
// now.
func (f *collectFlags) createdTime() (time.Time, error) {
	if f.created != "" {
		t, err := time.Parse(time.RFC3339, f.created)
		if err != nil {
			return time.Time{}, usageErrorf("--created %q: give an RFC 3339 time such as 2026-11-01T00:00:00Z", f.created)
		}
		return t.UTC(), nil
	}
	if v, ok := os.LookupEnv(sourceDateEpochEnv); ok && v != "" {
		secs, err := strconv.ParseInt(v, 10, 64)
		if err != nil || secs < 0 {
			return time.Time{}, usageErrorf("%s=%q: give whole seconds since 1970", sourceDateEpochEnv, v)
		}
		return time.Unix(secs, 0).UTC(), nil
	}
	return time.Time{}, nil
}

// collectProgress shows one bar per active download of 1 MiB or more, one
// for all downloads, and one for the archive.
func collectProgress(prog progress) collect.Progress {
	var mu sync.Mutex
	bars := map[string]bar{}
	var total, write bar
	return collect.Progress{
		OnResolved: func(a manifest.Artifact) { prog.Line("resolved %s %s (%s)", a.Kind, a.Name, shortDigest(a.Digest)) },
		OnFetchTotal: func(bytes int64, blobs int) {
			if blobs == 0 {
				prog.Line("every blob is in the cache; nothing to download")
				return
			}
			mu.Lock()
			total = prog.Bar(fmt.Sprintf("download %d blobs", blobs), bytes)
			mu.Unlock()
		},
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
			br, t := bars[b.Digest], total
			mu.Unlock()
			if br != nil {
				br.Add(n)
			}
			if t != nil {
				t.Add(n)
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

// collectExit gives an error of collect or sync its exit code, with the
// flags that would fix it.
func collectExit(err error) error { return collectCode(sourceFlagAdvice(err)) }

// collectCode gives a collect error its exit code. diff, which reads a
// spec and has none of collect's source flags, uses it alone.
func collectCode(err error) error {
	switch {
	case errors.Is(err, collect.ErrChartProvenance):
		return withCode(ExitVerify, err)
	case errors.Is(err, collect.ErrBadPackSignature), errors.Is(err, verify.ErrBadSignature), errors.Is(err, verify.ErrNoSignature),
		errors.Is(err, collect.ErrMirrorMismatch):
		return withCode(ExitVerify, err)
	case errors.Is(err, collect.ErrImageSignature):
		return withCode(ExitVerify, fmt.Errorf("%w; sign them with a key given to --image-key, give the key they are signed with, or drop --require-signed", err))
	case errors.Is(err, errRenderTimeout):
		return withCode(ExitTimeout, err)
	case errors.Is(err, collect.ErrMissingPack), errors.Is(err, collect.ErrNotFound), errors.Is(err, collect.ErrGap),
		errors.Is(err, collect.ErrChart):
		var mie *collect.MissingImageError
		if errors.As(err, &mie) {
			err = fmt.Errorf("%w; the chart sets it at values path %s: point that at where the image is now (--set %s=<repository> or the spec's chart values), or pull it through --registry-mirror SOURCE=MIRROR", err, mie.ValuesPath, mie.ValuesPath)
		}
		return withCode(ExitIncomplete, err)
	case errors.Is(err, collect.ErrSource):
		return withCode(ExitRegistry, err)
	case errors.Is(err, collect.ErrConflict), errors.Is(err, collect.ErrNothing), errors.Is(err, collect.ErrUsage),
		errors.Is(err, manifest.ErrInvalidSpec), errors.Is(err, manifest.ErrInvalidBundle), errors.Is(err, collect.ErrBundleDocument):
		return withCode(ExitUsage, err)
	case errors.Is(err, archive.ErrExists):
		return withCode(ExitUsage, fmt.Errorf("%w (remove it or choose another --output)", err))
	case errors.Is(err, archive.ErrVolumeSize):
		return withCode(ExitUsage, err)
	}
	return err
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

// sourceTransport is the transport to the sources: the default one (proxy
// from the environment, HTTP/2 where offered) keeping enough idle
// connections per host for jobs parallel downloads; the default keeps two,
// so every burst of requests to one registry opened new connections.
func sourceTransport(jobs int) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = max(jobs*2, 8)
	return tr
}
