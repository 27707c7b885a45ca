package ingest

import (
	"context"

	"golang.org/x/sync/errgroup"
)

// fanOut runs fn for 0..n-1 with at most jobs at a time; the first error
// cancels the rest and is returned. Every parallel step of a run goes
// through it.
func fanOut(ctx context.Context, jobs, n int, fn func(ctx context.Context, i int) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(jobs, 1))
	for i := range n {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error { return fn(gctx, i) })
	}
	return g.Wait()
}
