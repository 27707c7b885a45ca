// Package archive owns ferry's on-disk format: a signed bill of materials, an
// OCI image layout and a bbolt index, as a zstd-compressed tar cut into
// volumes. It writes archives from a BlobSource, scans them in one pass (also
// from a pipe) and reads single blobs by digest through each volume's index.
// It knows nothing of registries or clusters.
//
// A volume is a sequence of zstd frames, one per tar entry, followed by a
// skippable frame (ignored by every zstd decoder) that records where the
// index entry starts. Because each entry is its own frame, a reader that
// knows an entry's offset starts decoding right there.
package archive
