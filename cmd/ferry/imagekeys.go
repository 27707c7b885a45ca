package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/ferrytool/ferry/ingest"
	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/verify"
)

// imageKeyFlags are the flags that check image signatures again on the
// air-gapped side (verify and ingest).
type imageKeyFlags struct {
	keys          cli.StringSlice
	requireSigned bool
}

func (f *imageKeyFlags) flags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "image-key", Usage: "cosign public key (PEM: ECDSA, RSA or Ed25519) to check every image's signatures with, offline, from the archive; an image with signatures none of the keys verifies is refused (repeatable)", Destination: &f.keys},
		&cli.BoolFlag{Name: "require-signed", Usage: "refuse unsigned images too (needs --image-key)", Destination: &f.requireSigned},
	}
}

// policy loads the keys; nil without --image-key.
func (f *imageKeyFlags) policy(cmd string) (*verify.ImagePolicy, error) {
	paths := f.keys.Value()
	if len(paths) == 0 {
		if f.requireSigned {
			return nil, usageErrorf("%s: --require-signed needs the keys images are signed with (--image-key)", cmd)
		}
		return nil, nil
	}
	keys, err := verify.LoadImageKeys(paths...)
	if err != nil {
		return nil, withCode(ExitUsage, fmt.Errorf("--image-key: %w", err))
	}
	return &verify.ImagePolicy{Keys: keys, RequireSigned: f.requireSigned}, nil
}

// imageVerifier checks images for ingest with the keys of --image-key.
type imageVerifier struct{ policy verify.ImagePolicy }

func (v imageVerifier) VerifyImage(ctx context.Context, image manifest.Artifact, signatures []manifest.Artifact, blobs ingest.DigestOpener) (manifest.ImageVerification, string, error) {
	rec, err := verify.CheckImage(ctx, image, signatures, blobs, v.policy.Keys)
	if err != nil {
		return rec, "", err
	}

	if v.policy.Refuses(rec.Status) {
		return rec, verify.Refusal(rec), nil
	}
	return rec, "", nil
}

// printImageChecks lists each image's signature check, for verify, and
// the images of a delta whose signatures only the destination holds.
func printImageChecks(w io.Writer, checks []manifest.ImageVerification, atDestination []string) {
	if len(checks)+len(atDestination) == 0 {
		return
	}
	fmt.Fprintln(w, "\nimage signatures:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, v := range checks {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", v.Image, shortDigest(v.Subject), verificationText(&v))
	}
	for _, name := range atDestination {
		fmt.Fprintf(tw, "  %s\t\tsignatures at the destination, not in this delta: ingest --image-key checks them there\n", name)
	}
	tw.Flush()
}

// printIngestSupplyChain is the ingest report's supply-chain view: per
// image, its signature check again and what became of what is attached.
func printIngestSupplyChain(w io.Writer, r *ingest.Report) {
	if len(r.SupplyChain) == 0 {
		if r.ImageSignatures == "" && hasReferrers(r) {
			fmt.Fprintln(w, "\nimage signatures: not checked (give --image-key)")
		}
		return
	}
	fmt.Fprintln(w, "\nsupply chain: attached artifacts, and signatures checked again here")
	for _, img := range r.SupplyChain {
		check := "signatures not checked (give --image-key)"
		if img.Verification != nil {
			check = verificationText(img.Verification)
		}
		fmt.Fprintf(w, "  %s (%s): %s\n", img.Image, img.State, check)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, a := range img.Attached {
			how := "subject"
			if a.Attachment == manifest.AttachedByTag {
				how = "tag " + a.Tag
			}
			what := string(a.Kind)
			if a.PredicateType != "" {
				what += " " + a.PredicateType
			} else if a.ArtifactType != "" {
				what += " " + a.ArtifactType
			}
			state := a.State
			if a.Reason != "" && a.State != ingest.StatePushed && a.State != ingest.StatePresent {
				state += ": " + a.Reason
			}
			fmt.Fprintf(tw, "    %s\t%s\tby %s\t%s\n", what, shortDigest(a.Digest), how, state)
		}
		tw.Flush()
	}
}

func hasReferrers(r *ingest.Report) bool {
	for _, a := range r.Artifacts {
		if a.Kind == manifest.KindReferrer {
			return true
		}
	}
	return false
}

// signatureRefusals names the images refused for their signatures, for
// the error that ends the run.
func signatureRefusals(r *ingest.Report) []string {
	if r == nil {
		return nil
	}
	var out []string
	for _, a := range r.Artifacts {
		if a.Cause == ingest.CauseSignature && a.Kind == manifest.KindImage {
			out = append(out, a.Name)
		}
	}
	return out
}
