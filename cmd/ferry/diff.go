package main

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"text/tabwriter"

	"github.com/klauspost/compress/zstd"
	"github.com/urfave/cli/v2"

	"github.com/ferrytool/ferry/archive"
	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/verify"
)

type diffFlags struct {
	key        string
	receiptPub string
	output     string
	cacheDir   string
	plainHTTP  bool
}

func diffCommand(env *environment) *cli.Command {
	var f diffFlags
	return &cli.Command{
		Name:      "diff",
		Usage:     "compare two archives, receipts or transfer specs: artifacts added, removed, changed, and the bytes that would travel",
		ArgsUsage: "A B",
		Description: "A and B are each an archive volume (any volume of the archive: each carries the signed bill of\n" +
			"materials), a receipt, or a transfer spec (.yaml or .yml), which is resolved against its sources\n" +
			"as `ferry collect --plan` resolves it, layers not downloaded. Artifacts are matched by destination\n" +
			"repository and tag: added are only\n" +
			"in B, removed only in A, changed in both with another digest. The bytes that would travel are\n" +
			"those of every blob B needs that A lacks. Signatures are checked first: archives with --key,\n" +
			"receipts with --receipt-pub.\n\n" + exitCodesHelp,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "key", Usage: "public key (PEM) the archives are signed with", Destination: &f.key},
			&cli.StringFlag{Name: "receipt-pub", Usage: "public key (PEM) of the air-gapped side that signs receipts", Destination: &f.receiptPub},
			&cli.StringFlag{Name: "cache-dir", Usage: "download cache for resolving transfer specs (default: the user cache folder's ferry/)", Destination: &f.cacheDir},
			&cli.BoolFlag{Name: "plain-http", Usage: "talk plain HTTP to the registries a transfer spec names", Destination: &f.plainHTTP},
			outputFlag(&f.output),
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return usageErrorf("diff: give two files, A and B")
			}
			if err := checkOutput(f.output); err != nil {
				return err
			}
			a, err := f.load(c.Context, c.Args().Get(0))
			if err != nil {
				return err
			}
			b, err := f.load(c.Context, c.Args().Get(1))
			if err != nil {
				return err
			}
			rep := diffReport{A: a.side, B: b.side, DiffReport: manifest.Diff(a.inv, b.inv)}
			if f.output == "json" {
				return writeJSON(env.stdout, rep)
			}
			printDiff(env, rep)
			return nil
		},
	}
}

// diffSide describes one input of a diff.
type diffSide struct {
	Path string `json:"path"`
	// Kind is "archive", "receipt" or "spec".
	Kind        string `json:"kind"`
	ArchiveID   string `json:"archiveID,omitempty"`
	BOMDigest   string `json:"bomDigest,omitempty"`
	Destination string `json:"destination,omitempty"`
	// SignedBy is the key id of an archive or receipt; a spec is not signed.
	SignedBy string `json:"signedBy,omitempty"`
}

type diffReport struct {
	A diffSide `json:"a"`
	B diffSide `json:"b"`
	*manifest.DiffReport
}

type loadedSide struct {
	side diffSide
	inv  manifest.Inventory
}

const (
	sideArchive = "archive"
	sideReceipt = "receipt"
)

// load reads one input after checking its signature with the key for its
// kind.
func (f *diffFlags) load(ctx context.Context, path string) (*loadedSide, error) {
	if isSpecFile(path) {
		return f.loadSpec(ctx, path)
	}
	kind, err := sniffFile(path)
	if err != nil {
		return nil, err
	}
	switch kind {
	case sideReceipt:
		if f.receiptPub == "" {
			return nil, usageErrorf("diff: %s is a receipt: give --receipt-pub, the air-gapped side's public key", path)
		}
		v, err := verify.VerifierFromFile(f.receiptPub)
		if err != nil {
			return nil, withCode(ExitUsage, err)
		}
		r, err := verify.ReadReceipt(ctx, path, v)
		if err != nil {
			return nil, receiptExit(err)
		}
		return &loadedSide{side: diffSide{Path: path, Kind: kind, Destination: r.Destination, SignedBy: r.SignedBy}, inv: manifest.ReceiptInventory(r)}, nil
	default:
		if f.key == "" {
			return nil, usageErrorf("diff: %s is an archive volume: give --key, the public key it is signed with", path)
		}
		v, err := verify.VerifierFromFile(f.key)
		if err != nil {
			return nil, withCode(ExitUsage, err)
		}
		bom, digest, err := readArchiveBOM(ctx, path, v)
		if err != nil {
			return nil, err
		}
		return &loadedSide{side: diffSide{Path: path, Kind: kind, ArchiveID: bom.ArchiveID, BOMDigest: digest, SignedBy: v.KeyID()}, inv: manifest.BOMInventory(bom)}, nil
	}
}

// readArchiveBOM reads the bill of materials at the head of one volume and
// returns it, and its digest, once its signature checks.
func readArchiveBOM(ctx context.Context, path string, v *verify.Verifier) (*manifest.BOM, string, error) {
	set, err := archive.OpenSet(ctx, []string{path}, archive.SetOptions{Verifier: v})
	if err != nil {
		return nil, "", archiveExit(fmt.Errorf("bill of materials in %s: %w", path, err))
	}
	defer set.Close()
	return set.BOM(), set.BOMDigest(), nil
}

// sniffFile tells an archive volume from a receipt by the name of the first
// entry of the compressed tar, before anything is trusted.
func sniffFile(path string) (string, error) {
	file, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", withCode(ExitUsage, err)
		}
		return "", err
	}
	defer file.Close()
	dec, err := zstd.NewReader(file, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(archive.MaxDecoderWindow))
	if err != nil {
		return "", err
	}
	defer dec.Close()
	hdr, err := tar.NewReader(dec).Next()
	if err != nil {
		return "", usageErrorf("diff: %s is neither an archive volume nor a receipt: %v", path, err)
	}
	switch hdr.Name {
	case archive.NameBOM:
		return sideArchive, nil
	case verify.ReceiptEntry:
		return sideReceipt, nil
	}
	return "", usageErrorf("diff: %s is neither an archive volume nor a receipt (it starts with %q)", path, hdr.Name)
}

func printDiff(env *environment, r diffReport) {
	for _, s := range []struct {
		label string
		side  diffSide
	}{{"A", r.A}, {"B", r.B}} {
		what := fmt.Sprintf("archive %s", s.side.ArchiveID)
		switch s.side.Kind {
		case sideReceipt:
			what = fmt.Sprintf("receipt of %s", s.side.Destination)
		case sideSpec:
			what = "transfer spec, resolved now"
		}
		fmt.Fprintf(env.stdout, "%s  %s  %s\n", s.label, s.side.Path, what)
	}
	fmt.Fprintln(env.stdout)
	if n := len(r.Added) + len(r.Removed) + len(r.Changed); n > 0 {
		tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CHANGE\tDESTINATION\tKIND\tFROM\tTO\tNEW IN B")
		for _, g := range []struct {
			change string
			list   []manifest.ArtifactDiff
		}{{"added", r.Added}, {"removed", r.Removed}, {"changed", r.Changed}} {
			for _, d := range g.list {
				kind := string(d.Kind)
				if kind == "" {
					kind = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", g.change, d.Destination, kind, digestCell(d.From), digestCell(d.To), transferText(d.New))
			}
		}
		tw.Flush()
		fmt.Fprintln(env.stdout)
	}
	fmt.Fprintf(env.stdout, "%d added, %d removed, %d changed, %d unchanged\n", len(r.Added), len(r.Removed), len(r.Changed), r.Unchanged)
	share := ""
	if r.Full.Bytes > 0 {
		share = fmt.Sprintf(" (%.0f%%)", 100*float64(r.Travel.Bytes)/float64(r.Full.Bytes))
	}
	fmt.Fprintf(env.stdout, "would travel: %d of %d blobs, %s of %s%s\n", r.Travel.Blobs, r.Full.Blobs, humanBytes(r.Travel.Bytes), humanBytes(r.Full.Bytes), share)
}

// digestCell shortens a digest for a table; the JSON output has every
// digest in full.
func digestCell(d string) string {
	if d == "" {
		return "-"
	}
	return shortDigest(d)
}

func transferText(t manifest.Transfer) string {
	if t.Blobs == 0 {
		return "-"
	}
	return fmt.Sprintf("%d blobs, %s", t.Blobs, humanBytes(t.Bytes))
}
