package ingest

import (
	"context"

	"github.com/ferrytool/ferry/registry"
)

// connect opens the destination registry with the run's credentials and
// transport, scoped to push into repos.
func connect(ctx context.Context, opts *config, dest destination, repos []string) (*registry.Client, error) {
	return registry.Connect(ctx, dest.Destination, repos, registry.Options{
		Auth:      opts.Auth,
		Keychain:  opts.Keychain,
		Transport: opts.Transport,
		PlainHTTP: opts.PlainHTTP,
		Retry:     opts.Retry,
		ChunkSize: opts.ChunkSize,
		Logger:    opts.Logger,
	})
}

// classify turns a registry or connection error into one of the registry
// package's sentinels (which this package's ErrAuth, ErrTLS, ErrUnreachable
// and ErrRegistry are), keeping the cause.
func classify(host string, err error) error { return registry.Classify(host, err) }

// RetryPolicy says how a request that failed for a passing reason is tried
// again; see registry.RetryPolicy.
type RetryPolicy = registry.RetryPolicy
