// Package ingest owns the air-gapped side's registry work: it reads an
// archive's volumes where they lie (no extraction), checks the signed bill of
// materials before any network traffic, and pushes every artifact into a
// registry (Zot on the appliance) at the destination the bill of materials
// names under the registry's base path.
//
// Blobs go first, in parallel, one worker per digest, each read through a
// verifying reader straight from its volume's zstd frame; manifests follow
// once every blob an artifact needs is in, children before parents, the
// index or tag last. A blob that fails verification refuses every artifact
// that needs it, and nothing of theirs reaches a manifest. A journal (bbolt,
// in package store) records what is in, upload sessions in flight and each
// archive's volumes and manifests, so a later run needs only the volumes not
// yet seen, in any order, and an interrupted upload resumes where the
// registry says it stopped.
//
// A registry that refuses Docker schema 2 manifests (a default Zot) refuses
// just those artifacts, with both ways out in the reason. CopyOptions.ConvertOCI
// pushes their OCI form instead, computed from the verified bytes (media
// types change, layers do not), and the report lists every digest that
// changed and the digest-pinned references left stale; validation expects
// the converted digests. A dry run probes the registry's rule with a tiny
// manifest stored by digest in one of the destination repositories and
// deleted again. Bundles reads the archive's Profile Bundles for the
// cluster steps.
//
// Copy is the one verb underneath: a graph of artifacts from any Source
// (the volumes, or collect's resolver for `ferry sync`) into a registry,
// children first, every artifact under a tag (DigestTag for one collected
// by digest only) so a registry's garbage collection keeps it. The
// registry protocol is package registry's.
package ingest
