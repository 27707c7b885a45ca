package main

import (
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/ferrytool/ferry/verify"
)

type verifyFlags struct {
	key    string
	output string
	quiet  bool
	images imageKeyFlags
}

func verifyCommand(env *environment) *cli.Command {
	var f verifyFlags
	return &cli.Command{
		Name:      "verify",
		Usage:     "check an archive: signature, every volume, every blob's digest and size, nothing missing",
		ArgsUsage: "VOLUME...",
		Description: "Checks the signature, then each volume's sealed index, then reads every entry the index\n" +
			"names, as ingest would. Reports a bad signature, a tampered or truncated volume, anything a\n" +
			"volume holds that its index does not account for, a blob whose digest or size is wrong, a\n" +
			"manifest whose references are absent, and any volume that is missing, by number.\n\n" +
			"With --image-key, every image's cosign signatures are checked again from the archive,\n" +
			"offline, and each image reported: verified by which key, unsigned, or failed. A failed image\n" +
			"(or, with --require-signed, an unsigned one) fails the verification.\n\n" + exitCodesHelp,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "key", Usage: "public key (PEM) the archive must be signed with", Required: true, Destination: &f.key},
			outputFlag(&f.output),
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress", Destination: &f.quiet},
		}, f.images.flags()...),
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usageErrorf("verify: give the archive's volume files")
			}
			if err := checkOutput(f.output); err != nil {
				return err
			}
			v, err := verify.VerifierFromFile(f.key)
			if err != nil {
				return withCode(ExitUsage, err)
			}
			images, err := f.images.policy("verify")
			if err != nil {
				return err
			}
			prog := newProgress(env.stderr, f.quiet || f.output == "json")
			var cur bar
			report, err := verify.Archive(c.Context, c.Args().Slice(), v, verify.ArchiveOptions{
				OnVolume: func(path string) {
					if cur != nil {
						cur.Done()
					}
					cur = prog.Bar("verify "+path, fileSize(path))
				},
				OnProgress: func(n int64) { cur.Add(n) },
				Images:     images,
			})
			if cur != nil {
				cur.Done()
			}
			prog.Wait()
			if err != nil {
				return err
			}
			if f.output == "json" {
				if err := writeJSON(env.stdout, report); err != nil {
					return err
				}
			} else {
				printVerifyReport(env, report)
			}
			return verifyExit(report.Err())
		},
	}
}

func verifyExit(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, verify.ErrArchiveInvalid):
		return withCode(ExitVerify, err)
	case errors.Is(err, verify.ErrArchiveIncomplete):
		return withCode(ExitIncomplete, err)
	}
	return err
}

func printVerifyReport(env *environment, r *verify.ArchiveReport) {
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VOLUME\tNUMBER\tBLOBS\tPARTS\tSTATUS")
	for _, v := range r.Volumes {
		status := "ok"
		if v.Error != "" {
			status = "FAILED"
		}
		num := fmt.Sprint(v.Number)
		if v.Final {
			num += " (last)"
		}
		if v.Number == 0 {
			num = "?"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", v.Path, num, v.Blobs, v.Parts, status)
	}
	tw.Flush()
	if r.ArchiveID != "" {
		fmt.Fprintf(env.stdout, "\narchive %s, bill of materials %s\n", r.ArchiveID, r.BOMDigest)
		fmt.Fprintf(env.stdout, "%d artifacts, %d blobs, %s stored\n", r.Stats.Artifacts, r.Stats.Blobs, humanBytes(r.Stats.StoredBytes))
	}
	printImageChecks(env.stdout, r.Images, r.ImagesAtDestination)
	if len(r.Problems) == 0 && r.Complete {
		fmt.Fprintln(env.stdout, "verified: signature, every blob and every reference; no volume missing")
		return
	}
	fmt.Fprintf(env.stdout, "\n%d problem(s):\n", len(r.Problems))
	for _, p := range r.Problems {
		fmt.Fprintf(env.stdout, "  %s: %s\n", p.Kind, p.Message)
	}
}
