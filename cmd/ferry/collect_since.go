package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/verify"
)

// sinceFlags name the receipts a delta collect leaves out what they list.
type sinceFlags struct {
	receipts cli.StringSlice
	pub      string
}

func (f *sinceFlags) flags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "since", Usage: "receipt `FILE` of the destination (ferry ingest --receipt): leave out of the archive what it lists; the bill of materials records it as expected there (repeatable)", Destination: &f.receipts},
		&cli.StringFlag{Name: "receipt-pub", Usage: "public key (PEM) of the air-gapped side that signs receipts; required with --since", Destination: &f.pub},
	}
}

// load verifies every receipt before anything is resolved: one signed by
// another key, changed after signing, damaged or cut short is refused,
// named by its file.
func (f *sinceFlags) load(ctx context.Context) ([]*manifest.Receipt, error) {
	paths := f.receipts.Value()
	if len(paths) == 0 {
		if f.pub != "" {
			return nil, usageErrorf("--receipt-pub needs --since")
		}
		return nil, nil
	}
	if f.pub == "" {
		return nil, usageErrorf("--since needs --receipt-pub, the key that signs the receipts")
	}
	v, err := verify.VerifierFromFile(f.pub)
	if err != nil {
		return nil, withCode(ExitUsage, fmt.Errorf("--receipt-pub: %w", err))
	}
	var out []*manifest.Receipt
	for _, p := range paths {
		r, err := verify.ReadReceipt(ctx, p, v)
		if err != nil {
			return nil, receiptExit(fmt.Errorf("--since: %w", err))
		}
		if len(out) > 0 && r.Destination != out[0].Destination {
			return nil, usageErrorf("--since: receipt %s is of %s, receipt %s of %s: a delta is for one destination", p, r.Destination, paths[0], out[0].Destination)
		}
		out = append(out, r)
	}
	return out, nil
}

// printDelta says what receipts saved: full size, delta size and why.
func printDelta(env *environment, bom *manifest.BOM, d *manifest.DeltaPlan) {
	if d == nil {
		return
	}
	fmt.Fprintf(env.stdout, "\ndelta for %s against %d receipt(s):\n", bom.Destination(), len(bom.Since))
	for _, r := range bom.Since {
		fmt.Fprintf(env.stdout, "  %s\n", r)
	}
	share := 100.0
	if d.Full.Bytes > 0 {
		share = 100 * float64(d.Delta.Bytes) / float64(d.Full.Bytes)
	}
	fmt.Fprintf(env.stdout, "full archive %s in %d blobs; delta %s in %d blobs (%.1f%%)\n",
		humanBytes(d.Full.Bytes), d.Full.Blobs, humanBytes(d.Delta.Bytes), d.Delta.Blobs, share)
	fmt.Fprintf(env.stdout, "saved: %s in %d blobs of %d artifact(s) already there; %s in %d blobs shared with what is there (base layers, unchanged manifests)\n",
		humanBytes(d.SavedPresent.Bytes), d.SavedPresent.Blobs, len(d.Present), humanBytes(d.SavedShared.Bytes), d.SavedShared.Blobs)
}
