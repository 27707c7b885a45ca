// Package archive owns ferry's media format: a signed bill of materials, an
// OCI image layout and a sealed bbolt index per volume, as a zstd-compressed
// tar cut into volumes. It writes archives from a BlobSource, and Set is the
// one way back in: it checks the signature, each volume's sealed index and
// that nothing else hides in a volume, then hands out verified reads by
// digest. It knows nothing of registries or clusters.
//
// A volume is a sequence of zstd frames, one per tar entry, followed by a
// skippable frame (ignored by every zstd decoder) that records where the
// index and its seal start. Because each entry is its own frame, a reader
// that knows an entry's offset starts decoding right there.
package archive
