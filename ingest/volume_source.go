package ingest

import (
	"context"
	"io"

	"github.com/ferrytool/ferry/manifest"
)

// volumeSource is the archive's volumes as a Copy Source: the signed bill
// of materials as the graph, blobs read and verified from the volumes
// given (split blobs joined from their staged parts).
type volumeSource struct{ vs *volumeSet }

var _ Source = volumeSource{}

func (s volumeSource) Graph() *manifest.BOM { return s.vs.bom }

func (s volumeSource) OpenBlob(ctx context.Context, b manifest.Blob) (io.ReadCloser, error) {
	return s.vs.opener(b)(ctx)
}
