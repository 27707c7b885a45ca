package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/ferrytool/ferry/collect"
	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/verify"
)

// What collect carries besides images: what is attached to them
// (signatures, attestations, SBOMs), and the check of their signatures.

type supplyChainFlags struct {
	referrers     string
	imageKeys     cli.StringSlice
	requireSigned bool
}

func (f *supplyChainFlags) flags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "referrers", Value: string(collect.ReferrersAll), Usage: "what attached to each image (and each platform manifest of an index) to carry: all (signatures, attestations, SBOMs, other OCI referrers), signatures, or none", Destination: &f.referrers},
		&cli.StringSliceFlag{Name: "image-key", Usage: "cosign public key (PEM: ECDSA, RSA or Ed25519) to check image signatures with, offline; the bill of materials records which key verified which image (repeatable)", Destination: &f.imageKeys},
		&cli.BoolFlag{Name: "require-signed", Usage: "refuse to collect when an image has no signature that an --image-key verifies", Destination: &f.requireSigned},
	}
}

// apply sets the referrer mode and the signature check. Checking needs the
// signatures, so --image-key with --referrers none is refused rather than
// fetching signatures the archive would not carry.
func (f *supplyChainFlags) apply(opts *collect.Options) error {
	mode, err := collect.ParseReferrerMode(f.referrers)
	if err != nil {
		return usageErrorf("--referrers %q: use all, signatures or none", f.referrers)
	}
	opts.Referrers = mode
	paths := f.imageKeys.Value()
	if len(paths) == 0 {
		if f.requireSigned {
			return usageErrorf("--require-signed needs --image-key: the public keys images must be signed with")
		}
		return nil
	}
	if mode == collect.ReferrersNone {
		return usageErrorf("--image-key checks the signatures the archive carries; --referrers none carries none (use --referrers signatures or all)")
	}
	keys, err := verify.LoadImageKeys(paths...)
	if err != nil {
		return usageErrorf("--image-key: %v", err)
	}
	opts.ImageVerifier, opts.RequireSigned = imageKeys(keys), f.requireSigned
	return nil
}

// imageKeys checks image signatures with package verify.
type imageKeys []*verify.ImageKey

func (k imageKeys) VerifyImage(ctx context.Context, image, subject string, attached []collect.AttachedManifest) manifest.ImageVerification {
	as := make([]verify.Attached, len(attached))
	for i, a := range attached {
		as[i] = verify.Attached{Digest: a.Digest, Manifest: a.Manifest, Blobs: a.Blobs}
	}
	rec := verify.VerifyImage(ctx, subject, as, k).Record(image)
	if rec.Status == manifest.SignatureFailed {
		names := make([]string, len(k))
		for i, key := range k {
			names[i] = key.Name
		}
		rec.Reason += " (keys tried: " + strings.Join(names, ", ") + ")"
	}
	return rec
}

// printSupplyChain lists, per image, what is attached to it and the check
// of its signatures, when there is anything to show.
func printSupplyChain(w io.Writer, sc []manifest.ImageSupplyChain) {
	if len(sc) == 0 {
		return
	}
	fmt.Fprintln(w, "\nsupply chain: attached at the source, and signatures checked at collect")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  IMAGE / ATTACHED\tKIND\tARTIFACT TYPE\tDIGEST\tSIGNATURE CHECK")
	for _, im := range sc {
		fmt.Fprintf(tw, "  %s\t\t\t%s\t%s\n", im.Image, shortDigest(im.Digest), verificationText(im.Verification))
		for _, a := range im.Attached {
			where := "    " + attachedHow(a)
			if a.Subject != im.Digest {
				where += " (platform manifest " + shortDigest(a.Subject) + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", where, a.Kind, a.ArtifactType, shortDigest(a.Digest))
		}
	}
	tw.Flush()
}

func attachedHow(a manifest.AttachedArtifact) string {
	if a.Tag != "" {
		return "tag " + a.Tag
	}
	return "referrer"
}

func verificationText(v *manifest.ImageVerification) string {
	if v == nil {
		return "-"
	}
	switch v.Status {
	case manifest.SignatureVerified:
		return fmt.Sprintf("verified by %s (%s, %s)", v.KeyName, shortDigest(v.KeyID), v.Format)
	case manifest.SignatureUnsigned:
		return "unsigned"
	}
	reason := v.Reason
	if len(reason) > 120 {
		reason = reason[:117] + "..."
	}
	return strings.TrimSpace("failed: " + reason)
}

// attachedRows groups the referrer artifacts of a plan under the images
// they are attached to, for listing them there; orphans are referrers no
// image of the bill of materials claims, listed on their own.
func attachedRows(bom *manifest.BOM) (under map[string][]manifest.Artifact, orphans []manifest.Artifact) {
	byName := map[string]manifest.Artifact{}
	for _, a := range bom.Artifacts {
		byName[a.Name] = a
	}
	under = map[string][]manifest.Artifact{}
	claimed := map[string]bool{}
	for _, im := range bom.SupplyChain() {
		for _, at := range im.Attached {
			under[im.Image] = append(under[im.Image], byName[at.Name])
			claimed[at.Name] = true
		}
	}
	for _, a := range bom.Artifacts {
		if a.Kind == manifest.KindReferrer && !claimed[a.Name] {
			orphans = append(orphans, a)
		}
	}
	return under, orphans
}

func containsArtifact(as []manifest.Artifact, name string) bool {
	for _, a := range as {
		if a.Name == name {
			return true
		}
	}
	return false
}

func sizeOf(size map[string]int64, a manifest.Artifact) int64 {
	var total int64
	for _, d := range a.Blobs {
		total += size[d]
	}
	return total
}
