package ingest

import (
	"fmt"
	"strings"

	"github.com/ferrytool/ferry/registry"
)

// DigestTagPrefix starts the tag an artifact collected by digest only is
// pushed under (DigestTag).
const DigestTagPrefix = "ferry-"

// DigestTag is the tag an artifact collected by digest only is pushed
// under: "ferry-sha256-<hex>" for "sha256:<hex>", the digest it was
// collected by (kept when --convert-oci changes the pushed digest).
//
// A registry that collects garbage (Zot by default) deletes manifests no
// tag reaches, so every artifact ferry pushes is tagged. The scheme cannot
// collide with the tags other tools derive from a digest: the referrers
// tag schema's "sha256-<hex>" and cosign's "sha256-<hex>.sig", ".att" and
// ".sbom" all start with the algorithm, ferry's with "ferry-". It fits the
// distribution spec's tag grammar (at most 128 characters).
func DigestTag(digest string) string {
	return DigestTagPrefix + strings.Replace(digest, ":", "-", 1)
}

// checkRepositories refuses, before anything is sent, a destination
// repository (base, mapping and archive path together) that the
// distribution spec's grammar does not allow.
func checkRepositories(plans []*artifactPlan) error {
	for _, p := range plans {
		if err := registry.CheckRepository(p.repo); err != nil {
			return fmt.Errorf("artifact %s: %w", p.a.Name, err)
		}
	}
	return nil
}

// tagDigestOnly gives every artifact without a tag its DigestTag, so that
// what is pushed is reachable from a tag. An OCI 1.1 referrer is reached
// through its subject instead, and keeps none.
func tagDigestOnly(plans []*artifactPlan, dest destination) {
	for _, p := range plans {
		if p.a.Dest.Tag != "" || p.bySubject() {
			continue
		}
		p.a.Dest.Tag = DigestTag(p.a.Digest)
		p.ref = p.a.Dest.Tag
		p.res.Destination = dest.host + "/" + p.repo + ":" + p.ref
	}
}
