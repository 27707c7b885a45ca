package digestio

import (
	"context"
	"io"
)

// ContextReader stops a read as soon as ctx ends: io.Copy never looks at a
// context, so a long copy, hash or decode would otherwise run to its end.
func ContextReader(ctx context.Context, r io.Reader) io.Reader { return ctxReader{ctx, r} }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
