package archive

import (
	"archive/tar"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/ferrytool/ferry/manifest"
)

// Entry names. Everything outside ferry/ is a plain OCI image layout.
const (
	NameBOM       = "ferry/manifest.json"
	NameSignature = "ferry/manifest.json.sig"
	NameOCILayout = "oci-layout"
	NameIndexJSON = "index.json"
	NameIndexDB   = "ferry/index.db"
	NameIndexSeal = "ferry/index.db.seal"
	blobsPrefix   = "blobs/sha256/"
	partsPrefix   = "ferry/parts/sha256/"
)

// Limits on what a reader holds in memory or accepts from a volume. Each is
// named in the error when it is hit, and listed in docs/ARCHITECTURE.md.
const (
	// MaxIndexSize caps a volume's index database. A 4 GiB volume of
	// small blobs needs a few MiB.
	MaxIndexSize = 64 << 20
	// MaxIndexEntries caps the blobs and parts one volume's index lists.
	MaxIndexEntries = 1 << 18
	// MaxDecoderWindow is the largest zstd window a reader accepts: the
	// most ferry's own encoders use. A frame that declares more is refused
	// before any memory is set aside for it.
	MaxDecoderWindow = 8 << 20
	maxSignatureSize = 64 << 10
	maxSealSize      = 64 << 10
)

const ociLayoutContent = `{"imageLayoutVersion":"1.0.0"}`

// blobName is the tar name of a whole blob.
func blobName(digest string) string {
	return blobsPrefix + strings.TrimPrefix(digest, "sha256:")
}

// partName is the tar name of a part of a split blob. The zero-padded offset
// makes `cat ferry/parts/sha256/<hex>/* > blobs/sha256/<hex>` reassemble it.
func partName(digest string, offset int64) string {
	return fmt.Sprintf("%s%s/%016d", partsPrefix, strings.TrimPrefix(digest, "sha256:"), offset)
}

// entryKind classifies a tar entry of a volume.
type entryKind int

const (
	entryBOM entryKind = iota
	entrySignature
	entryOCILayout
	entryBlob
	entryPart
	entryIndexJSON
	entryIndexDB
	entryIndexSeal
)

// parsedName is what a valid entry name says.
type parsedName struct {
	kind   entryKind
	digest string
	offset int64
}

// checkEntry refuses every entry a careless extractor could be hurt by, and
// every name ferry does not write.
func checkEntry(h *tar.Header) (parsedName, error) {
	name := h.Name
	if name == "" || path.IsAbs(name) || strings.HasPrefix(name, "/") {
		return parsedName{}, fmt.Errorf("%w: %q has an absolute path", ErrUnsafeEntry, name)
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == ".." {
			return parsedName{}, fmt.Errorf("%w: %q climbs out of the archive with ../", ErrUnsafeEntry, name)
		}
	}
	if strings.Contains(name, "\\") || path.Clean(name) != name {
		return parsedName{}, fmt.Errorf("%w: %q is not a clean path", ErrUnsafeEntry, name)
	}
	switch h.Typeflag {
	case tar.TypeReg:
	case tar.TypeSymlink, tar.TypeLink:
		return parsedName{}, fmt.Errorf("%w: %q is a link to %q", ErrUnsafeEntry, name, h.Linkname)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return parsedName{}, fmt.Errorf("%w: %q is a device or fifo", ErrUnsafeEntry, name)
	default:
		return parsedName{}, fmt.Errorf("%w: %q has tar type %q, only regular files are allowed", ErrUnsafeEntry, name, h.Typeflag)
	}
	if h.Size < 0 {
		return parsedName{}, fmt.Errorf("%w: %q has negative size", ErrFormat, name)
	}
	switch name {
	case NameBOM:
		return parsedName{kind: entryBOM}, nil
	case NameSignature:
		return parsedName{kind: entrySignature}, nil
	case NameOCILayout:
		return parsedName{kind: entryOCILayout}, nil
	case NameIndexJSON:
		return parsedName{kind: entryIndexJSON}, nil
	case NameIndexDB:
		return parsedName{kind: entryIndexDB}, nil
	case NameIndexSeal:
		return parsedName{kind: entryIndexSeal}, nil
	}
	if hex, ok := strings.CutPrefix(name, blobsPrefix); ok {
		d := "sha256:" + hex
		if err := manifest.CheckDigest(d); err != nil {
			return parsedName{}, fmt.Errorf("%w: %q: %v", ErrFormat, name, err)
		}
		return parsedName{kind: entryBlob, digest: d}, nil
	}
	if rest, ok := strings.CutPrefix(name, partsPrefix); ok {
		hex, off, found := strings.Cut(rest, "/")
		d := "sha256:" + hex
		offset, err := strconv.ParseInt(off, 10, 64)
		if !found || manifest.CheckDigest(d) != nil || err != nil || offset < 0 || len(off) != 16 {
			return parsedName{}, fmt.Errorf("%w: %q is not a valid part name", ErrFormat, name)
		}
		return parsedName{kind: entryPart, digest: d, offset: offset}, nil
	}
	return parsedName{}, fmt.Errorf("%w: unexpected entry %q", ErrFormat, name)
}
