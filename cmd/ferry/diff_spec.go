package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/ferrytool/ferry/collect"
	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/verify"
)

// sideSpec is a transfer spec, resolved against its sources.
const sideSpec = "spec"

// isSpecFile tells a transfer spec from an archive volume or a receipt by
// its name: specs are YAML files, the others zstd-compressed tars.
func isSpecFile(path string) bool {
	ext := strings.ToLower(filepath.Ext(path))
	return ext == ".yaml" || ext == ".yml"
}

// loadSpec resolves a transfer spec the way `collect --plan` does, with the
// default limits (charts render in a bounded child), and takes its bill of
// materials as one side of the diff. Layers are not downloaded.
func (f *diffFlags) loadSpec(ctx context.Context, path string) (*loadedSide, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, withCode(ExitUsage, err)
	}
	spec, err := manifest.ParseTransferSpec(data, filepath.Dir(path))
	if err != nil {
		return nil, usageErrorf("diff: transfer spec %s: %v", path, err)
	}
	r, err := newChildRenderer(defaultRenderTimeout, defaultRenderMemory)
	if err != nil {
		return nil, err
	}
	opts := collect.Options{
		Spec:      spec,
		PlainHTTP: f.plainHTTP,
		Keychain:  authn.DefaultKeychain,
		Transport: sourceTransport(4),
		Jobs:      4,
		Tool:      "ferry " + version,
		Renderer:  r,
		CacheDir:  f.cacheDir,
	}
	if spec.PackKey != "" {
		pub, err := verify.LoadPublicKey(spec.Path(spec.PackKey))
		if err != nil {
			return nil, usageErrorf("diff: transfer spec %s: pack key: %v", path, err)
		}
		opts.PackVerifier = packKey{pub: pub}
	}
	if opts.CacheDir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return nil, usageErrorf("no user cache folder (%v): give --cache-dir", err)
		}
		opts.CacheDir = filepath.Join(base, "ferry")
	}
	plan, err := collect.MakePlan(ctx, opts)
	if err != nil {
		return nil, collectCode(err)
	}
	return &loadedSide{side: diffSide{Path: path, Kind: sideSpec}, inv: manifest.BOMInventory(plan.BOM)}, nil
}
