package ingest

import (
	"context"
	"errors"
	"io"

	"github.com/klauspost/compress/zstd"

	"github.com/ferrytool/ferry/archive"
	"github.com/ferrytool/ferry/internal/digestio"
)

// isBadContent reports whether reading a blob from the archive failed
// because of the archive's bytes (a digest mismatch, a damaged compressed
// frame), which refuses the blob, rather than because of the machine.
func isBadContent(err error) bool {
	if errors.Is(err, archive.ErrDigest) || errors.Is(err, digestio.ErrMismatch) ||
		errors.Is(err, archive.ErrTruncated) || errors.Is(err, archive.ErrFormat) {
		return true
	}
	for _, z := range []error{zstd.ErrCRCMismatch, zstd.ErrReservedBlockType, zstd.ErrCompressedSizeTooBig,
		zstd.ErrBlockTooSmall, zstd.ErrUnexpectedBlockSize, zstd.ErrMagicMismatch, zstd.ErrWindowSizeExceeded,
		zstd.ErrWindowSizeTooSmall, zstd.ErrFrameSizeExceeded, zstd.ErrFrameSizeMismatch} {
		if errors.Is(err, z) {
			return true
		}
	}
	return false
}

// opener returns a reader of a blob's whole content from its first byte.
// The reader fails at EOF unless the content matches the blob's digest and
// size, so nothing unverified is ever committed.
type opener func(ctx context.Context) (io.ReadCloser, error)
