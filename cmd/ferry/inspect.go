package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/ferrytool/ferry/archive"
	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/verify"
)

type inspectFlags struct {
	key    string
	output string
}

func inspectCommand(env *environment) *cli.Command {
	var f inspectFlags
	return &cli.Command{
		Name:      "inspect",
		Usage:     "list an archive's artifacts, sizes, deduplication and volumes from its index",
		ArgsUsage: "VOLUME...",
		Description: "Reads the signed bill of materials at the head and the sealed index at the end of each\n" +
			"volume, both checked against --key: no blob is decompressed, so it is quick on any archive\n" +
			"size. Blob digests are checked by `ferry verify`.\n\n" + exitCodesHelp,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "key", Usage: "public key (PEM) the archive must be signed with", Required: true, Destination: &f.key},
			outputFlag(&f.output),
		},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usageErrorf("inspect: give the archive's volume files")
			}
			if err := checkOutput(f.output); err != nil {
				return err
			}
			v, err := verify.VerifierFromFile(f.key)
			if err != nil {
				return withCode(ExitUsage, err)
			}
			set, err := archive.OpenSet(c.Context, c.Args().Slice(), archive.SetOptions{Verifier: v})
			if err != nil {
				return archiveExit(err)
			}
			defer set.Close()
			in, err := archive.Inspect(c.Context, set)
			if err != nil {
				return archiveExit(err)
			}
			if f.output == "json" {
				return writeJSON(env.stdout, in)
			}
			printInspection(env, in)
			return nil
		},
	}
}

// archiveExit maps an error of opening volumes to ferry's exit codes.
func archiveExit(err error) error {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, archive.ErrNotFound):
		return withCode(ExitIncomplete, err)
	case errors.Is(err, archive.ErrSignature), errors.Is(err, archive.ErrFormat), errors.Is(err, archive.ErrDigest),
		errors.Is(err, archive.ErrUnsafeEntry), errors.Is(err, archive.ErrTruncated), errors.Is(err, manifest.ErrInvalidBOM):
		return withCode(ExitVerify, err)
	}
	return err
}

func printInspection(env *environment, in *archive.Inspection) {
	w := env.stdout
	fmt.Fprintf(w, "archive %s (created %s", in.ArchiveID, in.Created)
	if in.Tool != "" {
		fmt.Fprintf(w, " by %s", in.Tool)
	}
	fmt.Fprintf(w, ")\nbill of materials %s\n\n", in.BOMDigest)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tNAME\tDESTINATION\tSIZE\tDIGEST\tREASON")
	for _, a := range in.Artifacts {
		reason := ""
		if len(a.Reasons) > 0 {
			reason = a.Reasons[0].From
			if a.Reasons[0].Detail != "" {
				reason += ": " + a.Reasons[0].Detail
			}
			if len(a.Reasons) > 1 {
				reason += fmt.Sprintf(" (+%d)", len(a.Reasons)-1)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.Kind, a.Name, a.Dest.String(), humanBytes(a.TotalSize), shortDigest(a.Digest), reason)
	}
	tw.Flush()
	arts := make([]manifest.Artifact, len(in.Artifacts))
	for i, a := range in.Artifacts {
		arts[i] = a.Artifact
	}
	printConversions(w, arts)
	printSupplyChain(w, in.SupplyChain)
	s := in.Stats
	fmt.Fprintf(w, "\n%d artifacts, %d blobs; %s as separate images, %s stored: deduplication saves %s\n\n",
		s.Artifacts, s.Blobs, humanBytes(s.LogicalBytes), humanBytes(s.StoredBytes), humanBytes(s.Saved()))
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VOLUME\tFILE\tSIZE\tBLOBS\tPARTS")
	for _, v := range in.Volumes {
		num := fmt.Sprint(v.Number)
		if v.Final {
			num += " (last)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\n", num, v.Name, humanBytes(v.Size), v.Blobs, v.Parts)
	}
	tw.Flush()
	for _, n := range in.Missing {
		fmt.Fprintf(w, "volume %d was not given\n", n)
	}
	if !in.LastSeen {
		fmt.Fprintln(w, "the last volume was not given")
	}
}

// printConversions lists the manifests collect converted to OCI and the
// artifacts pulled through a mirror: the digests a registry will hold differ
// from the source's, and an operator comparing them needs both.
func printConversions(w io.Writer, arts []manifest.Artifact) {
	var conv, mirrored []manifest.Artifact
	for _, a := range arts {
		if len(a.Converted) > 0 {
			conv = append(conv, a)
		}
		if a.Mirror != "" {
			mirrored = append(mirrored, a)
		}
	}
	if len(conv) > 0 {
		fmt.Fprintln(w, "\nconverted from Docker schema 2 to OCI (collect --convert-oci):")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  NAME\tSOURCE DIGEST\tARCHIVE DIGEST\tMEDIA TYPE")
		for _, a := range conv {
			for _, c := range a.Converted {
				what := a.Name
				if c.To != a.Digest {
					what = "  child of " + a.Name
				}
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", what, c.From, c.To, c.MediaType)
			}
		}
		tw.Flush()
	}
	if len(mirrored) > 0 {
		fmt.Fprintln(w, "\npulled through a registry mirror:")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, a := range mirrored {
			fmt.Fprintf(tw, "  %s\tfrom %s\n", a.Name, a.Mirror)
		}
		tw.Flush()
	}
}

func shortDigest(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}
