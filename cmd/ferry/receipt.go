package main

import (
	"errors"
	"fmt"
	"io/fs"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/verify"
)

type receiptVerifyFlags struct {
	pub    string
	output string
}

func receiptCommand(env *environment) *cli.Command {
	return &cli.Command{
		Name:  "receipt",
		Usage: "signed statements of what the air-gapped registry holds",
		Description: "A receipt lists every manifest and blob ferry's destination holds, with repositories and\n" +
			"tags, signed with a key of the air-gapped side. It travels back to the connected side on small\n" +
			"media, where it shows what need not be carried again.",
		Subcommands: []*cli.Command{receiptVerifyCommand(env), receiptWriteCommand(env)},
	}
}

func receiptVerifyCommand(env *environment) *cli.Command {
	var f receiptVerifyFlags
	return &cli.Command{
		Name:      "verify",
		Usage:     "check a receipt's signature and content, and show what it lists",
		ArgsUsage: "RECEIPT",
		Description: "Checks the signature first, with the air-gapped side's public key, then the receipt's\n" +
			"structure. A receipt signed by another key, changed after signing, damaged or cut short is\n" +
			"refused with exit code 3.\n\n" + exitCodesHelp,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "receipt-pub", Usage: "public key (PEM) of the air-gapped side that signs receipts", Required: true, Destination: &f.pub},
			outputFlag(&f.output),
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageErrorf("receipt verify: give one receipt file")
			}
			if err := checkOutput(f.output); err != nil {
				return err
			}
			v, err := verify.VerifierFromFile(f.pub)
			if err != nil {
				return withCode(ExitUsage, err)
			}
			path := c.Args().First()
			r, err := verify.ReadReceipt(c.Context, path, v)
			if err != nil {
				return receiptExit(err)
			}
			if f.output == "json" {
				return writeJSON(env.stdout, receiptReport{File: path, Receipt: r, Stats: r.Stats()})
			}
			printReceipt(env, path, r)
			return nil
		},
	}
}

type receiptReport struct {
	File string `json:"file"`
	*manifest.Receipt
	Stats manifest.Stats `json:"stats"`
}

// receiptExit gives a refused receipt the verification exit code.
func receiptExit(err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return withCode(ExitUsage, err)
	case errors.Is(err, verify.ErrBadSignature), errors.Is(err, verify.ErrNoSignature),
		errors.Is(err, verify.ErrReceiptDamaged), errors.Is(err, verify.ErrReceiptTruncated),
		errors.Is(err, manifest.ErrInvalidReceipt):
		return withCode(ExitVerify, err)
	}
	return err
}

func printReceipt(env *environment, path string, r *manifest.Receipt) {
	s := r.Stats()
	fmt.Fprintf(env.stdout, "receipt %s: signature verified (key %s)\n", path, r.SignedBy)
	fmt.Fprintf(env.stdout, "destination %s, written %s\n", r.Destination, r.Created.Format("2006-01-02 15:04:05Z07:00"))
	for _, a := range r.Archives {
		fmt.Fprintf(env.stdout, "archive %s (bill of materials %s)\n", a.ArchiveID, a.BOMDigest)
	}
	fmt.Fprintf(env.stdout, "%d artifacts, %d blobs, %s stored\n\n", s.Artifacts, s.Blobs, humanBytes(s.StoredBytes))
	size := make(map[string]int64, len(r.Blobs))
	for _, b := range r.Blobs {
		size[b.Digest] = b.Size
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REPOSITORY\tTAG\tDIGEST\tBLOBS\tSIZE")
	for _, a := range r.Artifacts {
		var n int64
		for _, d := range a.Blobs {
			n += size[d]
		}
		tag := a.Tag
		if tag == "" {
			tag = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", a.Repository, tag, a.Digest, len(a.Blobs), humanBytes(n))
	}
	tw.Flush()
}
