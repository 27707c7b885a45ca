package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ferrytool/ferry/ingest"
	"github.com/ferrytool/ferry/registry"
	"github.com/ferrytool/ferry/store"
	"github.com/ferrytool/ferry/verify"
)

// receiptOut names where a receipt goes and the key that signs it.
type receiptOut struct {
	path string
	key  string
}

// ingestReceiptFlags are ingest's: a receipt written after the push.
func (r *receiptOut) ingestFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "receipt", Usage: "after the push, write a signed receipt of everything ferry put into the destination (from the journal) to `FILE`, for collect --since on the connected side", Destination: &r.path},
		&cli.StringFlag{Name: "receipt-key", Usage: "private key (PEM) of this side that signs the receipt (passphrase from " + passphraseEnv + ")", Destination: &r.key},
	}
}

// check refuses half a receipt request before any work.
func (r *receiptOut) check(fileFlag string, noJournal bool) error {
	switch {
	case r.path == "" && r.key == "":
		return nil
	case noJournal:
		return usageErrorf("%s is built from the journal: drop --no-journal", fileFlag)
	case r.path == "":
		return usageErrorf("--receipt-key needs %s FILE", fileFlag)
	case r.key == "":
		return usageErrorf("%s needs --receipt-key, the private key that signs it", fileFlag)
	}
	if _, err := os.Stat(r.key); err != nil {
		return usageErrorf("--receipt-key: %v", err)
	}
	return nil
}

// write builds the receipt from the journal and signs it.
func (r *receiptOut) write(ctx context.Context, env *environment, j *store.Journal, dst registry.Destination, opts ingest.ReceiptOptions) error {
	signer, err := verify.SignerFromFile(r.key, []byte(os.Getenv(passphraseEnv)))
	if err != nil {
		return withCode(ExitUsage, fmt.Errorf("--receipt-key: %w", err))
	}
	opts.Tool = "ferry " + version
	res, err := ingest.BuildReceipt(ctx, j, dst, opts)
	if err != nil {
		return ingestExit(err, nil)
	}
	for _, l := range res.Left {
		fmt.Fprintf(env.stderr, "warning: receipt: %s\n", l)
	}
	if err := verify.WriteReceipt(ctx, r.path, res.Receipt, signer); err != nil {
		return err
	}
	s := res.Receipt.Stats()
	fmt.Fprintf(env.stderr, "receipt %s: %s holds %d artifacts, %d blobs (%s); signed with key %s\n",
		r.path, res.Receipt.Destination, s.Artifacts, s.Blobs, humanBytes(s.StoredBytes), signer.KeyID())
	return nil
}

type receiptWriteFlags struct {
	reg      ingestFlags
	out      receiptOut
	created  string
	skipHead bool
}

func receiptWriteCommand(env *environment) *cli.Command {
	var f receiptWriteFlags
	return &cli.Command{
		Name:      "write",
		Usage:     "write a signed receipt of what the destination holds, from the ingest journal checked against the registry",
		ArgsUsage: " ",
		Description: "Lists every artifact the journal says ferry put into --registry, asks the registry for each\n" +
			"(its tag, child manifests and blobs, with HEAD requests) and leaves out, with a warning, what\n" +
			"is gone. The receipt is signed with --receipt-key and goes to --out; the connected side passes\n" +
			"it to collect --since.\n\n" + exitCodesHelp,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "registry", Aliases: []string{"r"}, Usage: "destination HOST:PORT/BASE the receipt describes", Required: true, Destination: &f.reg.registry},
			&cli.StringFlag{Name: "journal", Usage: "ingest journal (default $XDG_STATE_HOME/ferry/ingest-journal.db)", Destination: &f.reg.journal},
			&cli.StringFlag{Name: "out", Usage: "receipt `FILE` to write", Required: true, Destination: &f.out.path},
			&cli.StringFlag{Name: "receipt-key", Usage: "private key (PEM) that signs the receipt (passphrase from " + passphraseEnv + ")", Required: true, Destination: &f.out.key},
			&cli.StringFlag{Name: "username", Aliases: []string{"u"}, Usage: "registry user (else " + envRegistryUsername + ", else the docker config)", Destination: &f.reg.username},
			&cli.BoolFlag{Name: "password-stdin", Usage: "read the registry password from standard input (else " + envRegistryPassword + ")", Destination: &f.reg.passwordStdin},
			&cli.StringFlag{Name: "ca-file", Usage: "PEM certificate authority the registry's certificate is checked against, besides the system's", Destination: &f.reg.caFile},
			&cli.BoolFlag{Name: "insecure", Usage: "skip TLS certificate verification", Destination: &f.reg.insecure},
			&cli.BoolFlag{Name: "plain-http", Usage: "talk plain HTTP to the registry", Destination: &f.reg.plainHTTP},
			&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Value: 4, Usage: "parallel checks", Destination: &f.reg.jobs},
			&cli.BoolFlag{Name: "no-check", Usage: "trust the journal: ask the registry nothing", Destination: &f.skipHead},
			&cli.StringFlag{Name: "created", Usage: "time `TIME` the receipt states (RFC 3339; default now)", Destination: &f.created},
			&cli.DurationFlag{Name: "lock-timeout", Value: store.DefaultJournalLockTimeout, Usage: "how long to wait for an ingest holding the journal", Destination: &f.reg.lockTimeout},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageErrorf("receipt write takes no arguments (got %q)", c.Args().First())
			}
			if err := f.out.check("--out", false); err != nil {
				return err
			}
			dst, err := registry.ParseDestination(f.reg.registry)
			if err != nil {
				return usageErrorf("--registry: %v", err)
			}
			if f.reg.jobs < 1 {
				return usageErrorf("--jobs must be at least 1")
			}
			opts := ingest.ReceiptOptions{Check: !f.skipHead, Jobs: f.reg.jobs}
			if f.created != "" {
				t, err := time.Parse(time.RFC3339, f.created)
				if err != nil {
					return usageErrorf("--created %q: give an RFC 3339 time", f.created)
				}
				opts.Now = func() time.Time { return t }
			}
			if opts.Check {
				auth, keychain, err := registryCredentials(env, &f.reg)
				if err != nil {
					return err
				}
				tr, err := registryTransport("--ca-file", f.reg.caFile, f.reg.insecure, f.reg.jobs)
				if err != nil {
					return err
				}
				opts.Client = registry.Options{Auth: auth, Keychain: keychain, Transport: tr, PlainHTTP: f.reg.plainHTTP}
			}
			path, err := journalPath(f.reg.journal)
			if err != nil {
				return err
			}
			j, err := store.OpenJournal(path, store.JournalOptions{ReadOnly: true, LockTimeout: f.reg.lockTimeout})
			if err != nil {
				if errors.Is(err, os.ErrNotExist) {
					return usageErrorf("no journal at %s: nothing was ingested with it", path)
				}
				return ingestExit(err, nil)
			}
			defer j.Close()
			return f.out.write(c.Context, env, j, dst, opts)
		},
	}
}

// writeIngestReceipt writes --receipt after a push: what the journal now
// records of the destination, this archive's artifacts that went in
// included. A dry run writes none.
func writeIngestReceipt(ctx context.Context, env *environment, f *ingestFlags, opts ingest.IngestOptions, rep *ingest.Report) error {
	if f.receipt.path == "" || f.dryRun || f.validateOnly {
		return nil
	}
	if opts.Journal == nil {
		return usageErrorf("--receipt: the receipt is built from the journal; drop --no-journal")
	}
	dst, err := registry.ParseDestination(f.registry)
	if err != nil {
		return usageErrorf("--registry: %v", err)
	}
	return f.receipt.write(ctx, env, opts.Journal, dst, ingest.ReceiptOptions{Now: opts.Now})
}
