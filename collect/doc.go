// Package collect is the connected side of ferry. It resolves a transfer
// spec (manifest.TransferSpec) into artifacts and blobs: Artifact Studio
// packs, whose vendor signatures it checks before anything else; Profile
// Bundles, whose ClusterProfiles say which packs are needed and whose
// WorkloadProfiles name charts; pack tarballs; Helm charts from HTTP and OCI
// repositories, rendered with Helm's engine to discover every image; images;
// and what is attached to the images (signatures, attestations, SBOMs,
// OCI referrers), each carried as an artifact linked to its subject. It fetches every blob once into a content-addressed cache with a
// bbolt index (store.CacheIndex) and writes the signed archive while the
// downloads run.
//
// It never imports ingest or verify: the two sides meet only in the archive
// format, and pack and image signatures are checked through the
// PackVerifier and ImageVerifier the caller passes in.
package collect
