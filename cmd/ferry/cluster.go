package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ferrytool/ferry/ingest"
	"github.com/ferrytool/ferry/ingest/cluster"
	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/verify"
)

// clusterOptions are the flags of the cluster steps. `ferry cluster` uses
// them on their own; `ferry ingest` adds them with clusterFlags and passes
// its own registry and the bundle read from the archive to options.
type clusterOptions struct {
	hubKubeconfig, hubContext     string
	spokeKubeconfig, spokeContext string
	projectNamespace, project     string
	workloadNamespace             string
	registryMap                   cli.StringSlice
	zotCertSecret, zotAuthSecret  string
	internalZotURL                string
	variableSet                   string
	createVariableSet             bool
	caNamespace                   string
	waitTimeout, pollInterval     time.Duration
	rewriteDigests                bool
	digestMaps                    cli.StringSlice
	dryRun                        bool
}

// clusterFlags are the flags every command that runs the cluster steps
// shares. The registry and the bundle are not among them: `ferry cluster`
// takes them as --registry and --bundle, `ferry ingest` knows them already.
// Nor is --dry-run: `ferry ingest` has its own, which feeds both the push
// and the cluster steps, so each command adds it (clusterDryRunFlag).
func clusterFlags(o *clusterOptions) []cli.Flag {
	const hub, spoke, vars = "Hub cluster", "Spoke cluster", "Project variables"
	return []cli.Flag{
		&cli.StringFlag{Name: "hub-kubeconfig", Category: hub, Usage: "kubeconfig of the PaletteAI hub (default: $KUBECONFIG, several files merged as kubectl does, else ~/.kube/config)", Destination: &o.hubKubeconfig},
		&cli.StringFlag{Name: "hub-context", Category: hub, Usage: "kubeconfig context of the hub (default: the current context)", Destination: &o.hubContext},
		&cli.StringFlag{Name: "project-namespace", Category: hub, Usage: "namespace of the PaletteAI Project; bundle objects are imported here", Destination: &o.projectNamespace},
		&cli.StringFlag{Name: "project", Category: hub, Usage: "name of the Project (default: the project namespace)", Destination: &o.project},
		&cli.StringSliceFlag{Name: "registry-map", Category: hub, Usage: "rewrite a pack registry UID on import, `OLD=NEW` (repeatable)", Destination: &o.registryMap},
		&cli.StringFlag{Name: "variable-set", Category: vars, Usage: "VariableSet holding the project variables", Value: cluster.DefaultVariableSet, Destination: &o.variableSet},
		&cli.BoolFlag{Name: "create-variableset", Category: vars, Usage: "create the VariableSet when it does not exist (otherwise that is an error)", Destination: &o.createVariableSet},
		&cli.StringFlag{Name: "zot-cert-secret", Category: vars, Usage: "value of zot-cert-secret (default: zot-ca)", Destination: &o.zotCertSecret},
		&cli.StringFlag{Name: "zot-auth-secret", Category: vars, Usage: "value of zot-auth-secret (default: <registry host with . as ->-<port>-pull-secret)", Destination: &o.zotAuthSecret},
		&cli.StringFlag{Name: "internal-zot-url", Category: vars, Usage: "value of internal-zot-url (default: the registry's HOST:PORT)", Destination: &o.internalZotURL},
		&cli.StringFlag{Name: "workload-namespace", Category: spoke, Usage: "namespace workloads deploy to: allowed in the Project, created on the spoke with Secret zot-ca", Destination: &o.workloadNamespace},
		&cli.StringFlag{Name: "spoke-kubeconfig", Category: spoke, Usage: "kubeconfig of the spoke (Compute Pool) cluster; without it and --spoke-context the spoke step is skipped", Destination: &o.spokeKubeconfig},
		&cli.StringFlag{Name: "spoke-context", Category: spoke, Usage: "kubeconfig context of the spoke (from --spoke-kubeconfig, else $KUBECONFIG)", Destination: &o.spokeContext},
		&cli.StringFlag{Name: "spoke-ca-namespace", Category: spoke, Usage: "where PaletteAI puts Secret zot-ca or oci-tls-hub on the spoke", Value: cluster.DefaultCASourceNamespace, Destination: &o.caNamespace},
		&cli.DurationFlag{Name: "wait-timeout", Category: spoke, Usage: "how long to wait for that Secret", Value: cluster.DefaultWaitTimeout, Destination: &o.waitTimeout},
		&cli.DurationFlag{Name: "poll-interval", Category: spoke, Usage: "how often to look for it", Value: cluster.DefaultPollInterval, Destination: &o.pollInterval, Hidden: true},
		&cli.BoolFlag{Name: "rewrite-digests", Category: hub, Usage: "on import, rewrite image references pinned by a digest that --convert-oci changed, at collect or at ingest (@sha256:old to @sha256:new)", Destination: &o.rewriteDigests},
	}
}

// clusterDryRunFlag is --dry-run of `ferry cluster`.
func clusterDryRunFlag(o *clusterOptions) cli.Flag {
	return &cli.BoolFlag{Name: "dry-run", Usage: "show every change as a diff (server-side dry run); change nothing", Destination: &o.dryRun}
}

// digestMapFlag is --digest-map of `ferry cluster`, which has no report of
// its own to take the changed digests from.
func digestMapFlag(o *clusterOptions) cli.Flag {
	return &cli.StringSliceFlag{Name: "digest-map", Category: "Hub cluster", Usage: "with --rewrite-digests: `OLD=NEW` digests, or FILE, the --output json report of ingest --convert-oci (repeatable); conversions that collect signed into the archive given as arguments are known without it", Destination: &o.digestMaps}
}

// digestMap reads --digest-map: OLD=NEW pairs and ingest reports.
func (o *clusterOptions) digestMap() (map[string]string, error) {
	m := map[string]string{}
	for _, v := range o.digestMaps.Value() {
		if old, to, ok := strings.Cut(v, "="); ok && strings.HasPrefix(old, "sha256:") {
			if manifest.CheckDigest(old) != nil || manifest.CheckDigest(to) != nil {
				return nil, usageErrorf("--digest-map %q: want sha256:OLD=sha256:NEW", v)
			}
			m[old] = to
			continue
		}
		data, err := os.ReadFile(v)
		if err != nil {
			return nil, usageErrorf("--digest-map %q: neither OLD=NEW nor a readable report: %v", v, err)
		}
		var rep ingest.Report
		if err := json.Unmarshal(data, &rep); err != nil {
			return nil, usageErrorf("--digest-map %s: not an ingest --output json report: %v", v, err)
		}
		for old, to := range rep.DigestMap() {
			m[old] = to
		}
	}
	return m, nil
}

// options turns the flags into cluster.Options. registry is HOST:PORT/BASE
// and bundle may be nil. getenv reads KUBECONFIG.
func (o *clusterOptions) options(getenv func(string) string, registry string, bundle *manifest.Bundle) (cluster.Options, error) {
	if o.projectNamespace == "" {
		return cluster.Options{}, usageErrorf("--project-namespace: give the namespace of the PaletteAI Project")
	}
	if o.workloadNamespace == "" {
		return cluster.Options{}, usageErrorf("--workload-namespace: give the namespace workloads deploy to")
	}
	paths := filepath.SplitList(getenv("KUBECONFIG"))
	if len(paths) == 0 {
		paths = []string{clientcmd.RecommendedHomeFile}
	}
	hub, err := cluster.RESTConfig(cluster.KubeconfigSource{Explicit: o.hubKubeconfig, Paths: paths, Context: o.hubContext})
	if err != nil {
		return cluster.Options{}, usageErrorf("hub: %v", err)
	}
	opts := cluster.Options{
		Hub:               hub,
		ProjectNamespace:  o.projectNamespace,
		Project:           o.project,
		WorkloadNamespace: o.workloadNamespace,
		Registry:          registry,
		Bundle:            bundle,
		Variables:         cluster.Variables{ZotCertSecret: o.zotCertSecret, ZotAuthSecret: o.zotAuthSecret, InternalZotURL: o.internalZotURL},
		VariableSet:       o.variableSet,
		CreateVariableSet: o.createVariableSet,
		CASourceNamespace: o.caNamespace,
		WaitTimeout:       o.waitTimeout,
		PollInterval:      o.pollInterval,
		DryRun:            o.dryRun,
	}
	if o.spokeKubeconfig != "" || o.spokeContext != "" {
		opts.Spoke, err = cluster.RESTConfig(cluster.KubeconfigSource{Explicit: o.spokeKubeconfig, Paths: paths, Context: o.spokeContext})
		if err != nil {
			return cluster.Options{}, usageErrorf("spoke: %v", err)
		}
	}
	if o.rewriteDigests {
		if opts.DigestMap, err = o.digestMap(); err != nil {
			return cluster.Options{}, err
		}
	} else if len(o.digestMaps.Value()) > 0 {
		return cluster.Options{}, usageErrorf("--digest-map needs --rewrite-digests")
	}
	if len(o.registryMap.Value()) > 0 {
		if opts.RegistryMap, err = cluster.ParseRegistryMap(o.registryMap.Value()); err != nil {
			return cluster.Options{}, usageErrorf("--registry-map: %v", err)
		}
	}
	return opts, nil
}

// clusterCommandFlags are the flags of `ferry cluster apply|validate`.
type clusterCommandFlags struct {
	clusterOptions
	registry string
	bundle   string
	key      string
	output   string
	quiet    bool
}

func (f *clusterCommandFlags) flags() []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "registry", Usage: "where the content was pushed, `HOST:PORT/BASE` (e.g. 10.10.233.0:30003/spectro-content)", Destination: &f.registry},
		&cli.StringFlag{Name: "bundle", Usage: "Profile Bundle archive `FILE` (<bundle>-<version>.tar.gz) to import into the project namespace; or give ferry's archive volumes as arguments", Destination: &f.bundle},
		&cli.StringFlag{Name: "key", Usage: "public key (PEM) the archive volumes given as arguments must be signed with", Destination: &f.key},
		outputFlag(&f.output),
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress messages", Destination: &f.quiet},
	}, append(clusterFlags(&f.clusterOptions), clusterDryRunFlag(&f.clusterOptions), digestMapFlag(&f.clusterOptions))...)
}

// load checks the flags, reads the bundle (from --bundle, or from the
// archive volumes given as arguments) and builds the options.
func (f *clusterCommandFlags) load(ctx context.Context, volumes []string) (cluster.Options, error) {
	if err := checkOutput(f.output); err != nil {
		return cluster.Options{}, err
	}
	// The cheap checks (namespaces, kubeconfigs) first: a missing flag
	// should not cost opening the archive.
	opts, err := f.options(os.Getenv, f.registry, nil)
	if err != nil {
		return opts, err
	}
	var bundle *manifest.Bundle
	var signedConversions map[string]string
	switch {
	case len(volumes) > 0 && f.bundle != "":
		return cluster.Options{}, usageErrorf("give either --bundle or archive volumes, not both")
	case len(volumes) > 0:
		if f.key == "" {
			return cluster.Options{}, usageErrorf("--key: the public key the archive is signed with (the bundle is read only after its signature is checked)")
		}
		if f.registry == "" {
			return cluster.Options{}, usageErrorf("--registry: where the archive was pushed, HOST:PORT/BASE")
		}
		v, err := verify.VerifierFromFile(f.key)
		if err != nil {
			return cluster.Options{}, withCode(ExitUsage, err)
		}
		// Without the registry's credentials here, a bundle is read from
		// the volumes; one in a volume not given is asked of the registry
		// without them, which an appliance refuses.
		dst, err := parseDestinationFlag("--registry", f.registry)
		if err != nil {
			return cluster.Options{}, err
		}
		in, err := ingest.ReadClusterInput(ctx, volumes, dst, ingest.ReadOptions{Verifier: v})
		if err != nil {
			if errors.Is(err, ingest.ErrAuth) || errors.Is(err, ingest.ErrTLS) || errors.Is(err, ingest.ErrUnreachable) || errors.Is(err, ingest.ErrRegistry) {
				err = fmt.Errorf("%w (give every volume of the archive, or the one holding the bundle)", err)
			}
			return cluster.Options{}, ingestExit(err, nil)
		}
		bundle, signedConversions = in.Bundle, in.DigestMap
		if bundle == nil {
			return cluster.Options{}, withCode(ExitIncomplete, fmt.Errorf("the archive carries no Profile Bundle"))
		}
	case f.bundle != "":
		file, err := os.Open(f.bundle)
		if err != nil {
			return cluster.Options{}, usageErrorf("--bundle: %v", err)
		}
		bundle, err = manifest.ReadBundle(file)
		file.Close()
		if err != nil {
			return cluster.Options{}, withCode(ExitVerify, fmt.Errorf("%s: %w", f.bundle, err))
		}
	}
	opts.Bundle = bundle
	// The conversions collect signed into the archive are known without a
	// report; --digest-map entries given by hand win.
	if f.rewriteDigests && len(signedConversions) > 0 {
		if opts.DigestMap == nil {
			opts.DigestMap = map[string]string{}
		}
		for old, to := range signedConversions {
			if _, given := opts.DigestMap[old]; !given {
				opts.DigestMap[old] = to
			}
		}
	}
	return opts, nil
}

func clusterCommand(env *environment) *cli.Command {
	return &cli.Command{
		Name:  "cluster",
		Usage: "the hub and spoke changes after a push: bundle import, Project admission, variables, Zot CA",
		Subcommands: []*cli.Command{
			clusterApplyCommand(env),
			clusterValidateCommand(env),
		},
	}
}

func clusterApplyCommand(env *environment) *cli.Command {
	var f clusterCommandFlags
	return &cli.Command{
		Name:      "apply",
		ArgsUsage: "[VOLUME...]",
		Usage:     "import the bundle, allow the workload namespace, set the Zot variables, copy the Zot CA to the spoke",
		Description: "Does what the PaletteAI air-gap guide asks an operator to type after mirroring:\n" +
			"  1. bundle import: the bundle's objects whose kinds the hub serves are applied to the project\n" +
			"     namespace (server-side apply, field manager ferry); chart references are pointed at\n" +
			"     oci://REGISTRY/charts/<chart>; ClusterProfiles, Palette objects, are listed as skipped\n" +
			"  2. the workload namespace is added to the Project's deployment allow-list, if absent\n" +
			"  3. zot-cert-secret, zot-auth-secret and internal-zot-url are set in the VariableSet,\n" +
			"     keeping every other variable\n" +
			"  4. on the spoke: wait for Secret zot-ca or oci-tls-hub in mural-system, create the workload\n" +
			"     namespace and Secret zot-ca in it (Opaque, ca.crt only)\n" +
			"Every step is idempotent and says whether it changed anything. --dry-run shows the diffs.\n" +
			"The bundle comes from --bundle FILE, or from ferry's archive volumes given as arguments\n" +
			"(checked against --key first; `ferry ingest` with these flags runs the same steps after its push).\n\n" +
			exitCodesHelp,
		Flags: f.flags(),
		Action: func(c *cli.Context) error {
			opts, err := f.load(c.Context, c.Args().Slice())
			if err != nil {
				return err
			}
			prog := newProgress(env.stderr, f.quiet || f.output == "json")
			clusterProgress(prog, &opts)
			res, err := cluster.Apply(c.Context, opts)
			prog.Wait()
			if res != nil {
				if f.output == "json" {
					if werr := writeJSON(env.stdout, res); werr != nil && err == nil {
						err = werr
					}
				} else {
					printClusterResult(env.stdout, res)
				}
			}
			return clusterExit(err)
		},
	}
}

func clusterValidateCommand(env *environment) *cli.Command {
	var f clusterCommandFlags
	return &cli.Command{
		Name:      "validate",
		ArgsUsage: "[VOLUME...]",
		Usage:     "check the end state of `cluster apply` without changing anything",
		Description: "Checks that the Project's allow-list holds the workload namespace, the three Zot variables\n" +
			"hold the expected values, the spoke's workload namespace holds Secret zot-ca (Opaque, ca.crt),\n" +
			"and, with --bundle or the archive's volumes as arguments (checked against --key), that the\n" +
			"imported objects exist. Exits 1 when a check fails.\n\n" + exitCodesHelp,
		Flags: f.flags(),
		Action: func(c *cli.Context) error {
			opts, err := f.load(c.Context, c.Args().Slice())
			if err != nil {
				return err
			}
			rep, err := cluster.Validate(c.Context, opts)
			if err != nil {
				return clusterExit(err)
			}
			if f.output == "json" {
				if err := writeJSON(env.stdout, rep); err != nil {
					return err
				}
			} else {
				printValidateReport(env.stdout, rep)
			}
			if !rep.OK {
				failed := 0
				for _, ch := range rep.Checks {
					if !ch.OK {
						failed++
					}
				}
				return withCode(ExitFailure, fmt.Errorf("validation: %d of %d checks failed", failed, len(rep.Checks)))
			}
			return nil
		},
	}
}

// clusterProgress shows each step as it starts and that the spoke step
// waits.
func clusterProgress(prog progress, opts *cluster.Options) {
	opts.OnStepStart = func(s cluster.Step) { prog.Line("%s ...", s) }
	var lastWait time.Duration = -1
	opts.OnWait = func(w cluster.WaitStatus) {
		// Say that it waits, then every ten seconds.
		if lastWait >= 0 && w.Elapsed-lastWait < 10*time.Second {
			return
		}
		lastWait = w.Elapsed
		msg := fmt.Sprintf("%s: waiting for Secret %s in namespace %s (%s of %s)",
			w.Cluster, strings.Join(w.Names, " or "), w.Namespace, w.Elapsed.Round(time.Second), w.Timeout)
		if w.LastError != nil {
			msg += fmt.Sprintf("; last error: %v", w.LastError)
		}
		prog.Line("%s", msg)
	}
}

// clusterExit maps the cluster package's errors to exit codes.
func clusterExit(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, cluster.ErrInvalidOptions):
		return usageErrorf("%v", err)
	case errors.Is(err, cluster.ErrTimeout):
		return withCode(ExitTimeout, err)
	case errors.Is(err, cluster.ErrForbidden), errors.Is(err, cluster.ErrNotFound), errors.Is(err, cluster.ErrConflict),
		errors.Is(err, cluster.ErrRejected), errors.Is(err, cluster.ErrUnavailable), errors.Is(err, cluster.ErrUnusableCA):
		if errors.Is(err, cluster.ErrVariableSetMissing) {
			err = fmt.Errorf("%w (--create-variableset creates it)", err)
		}
		return withCode(ExitCluster, err)
	}
	return err
}

func printClusterResult(w io.Writer, res *cluster.Result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, s := range res.Steps {
		line := fmt.Sprintf("%s (%s): %s", s.Step, s.Cluster, s.Status)
		if s.Reason != "" {
			line += ": " + s.Reason
		}
		fmt.Fprintln(tw, line)
		for _, it := range s.Items {
			obj := it.Name
			if it.Namespace != "" {
				obj = it.Namespace + "/" + it.Name
			}
			fmt.Fprintf(tw, "  %s\t%s %s\t%s\n", it.Action, it.Kind, obj, it.Detail)
		}
	}
	tw.Flush()
	if res.DryRun {
		for _, s := range res.Steps {
			for _, it := range s.Items {
				if it.Diff != "" {
					fmt.Fprintf(w, "\n%s", it.Diff)
				}
			}
		}
		fmt.Fprintln(w, "\ndry run: nothing was changed")
		return
	}
	for _, s := range res.Steps {
		if s.Status == cluster.StatusFailed {
			return
		}
	}
	if !res.Changed() {
		fmt.Fprintln(w, "nothing to change")
	}
}

func printValidateReport(w io.Writer, rep *cluster.Report) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLUSTER\tCHECK\tRESULT\tDETAIL")
	for _, c := range rep.Checks {
		result := "ok"
		if !c.OK {
			result = "FAILED"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Cluster, c.Name, result, c.Detail)
	}
	tw.Flush()
}
