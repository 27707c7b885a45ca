package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/ferrytool/ferry/archive"
	"github.com/ferrytool/ferry/internal/digestio"
	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/registry"
)

// Bundles reads the Profile Bundles an archive carries (artifacts of kind
// bundle), for the cluster import that follows a push. Each bundle file is
// read from the volumes given, verified against the signed bill of
// materials; one that is in a volume not given is read from the registry
// (where the push put it), verified the same way. Several bundles are
// merged into one, in archive order. Nil without any bundle artifact.
func Bundles(ctx context.Context, volumes []string, dst registry.Destination, opts ReadOptions) (*manifest.Bundle, error) {
	in, err := ReadClusterInput(ctx, volumes, dst, opts)
	if err != nil {
		return nil, err
	}
	return in.Bundle, nil
}

// ClusterInput is what the cluster steps take from an archive on their own
// (`ferry cluster apply VOLUME...`): its Profile Bundles, and the manifest
// digests that `collect --convert-oci` changed, old to new, as signed in the
// bill of materials, so pinned references can be rewritten on import.
type ClusterInput struct {
	Bundle    *manifest.Bundle
	DigestMap map[string]string
}

// ReadClusterInput reads an archive's bundles as Bundles does, and the
// conversions its bill of materials records.
func ReadClusterInput(ctx context.Context, volumes []string, dst registry.Destination, ropts ReadOptions) (*ClusterInput, error) {
	opts := ropts.config(dst)
	vs, err := openVolumes(ctx, volumes, opts.Verifier, opts.WorkDir)
	if err != nil {
		return nil, err
	}
	defer vs.close()
	in := &ClusterInput{DigestMap: map[string]string{}}
	for _, a := range vs.bom.Artifacts {
		for _, c := range a.Converted {
			in.DigestMap[c.From] = c.To
		}
	}
	if in.Bundle, err = readBundles(ctx, vs, opts); err != nil {
		return nil, err
	}
	return in, nil
}

func readBundles(ctx context.Context, vs *volumeSet, opts config) (*manifest.Bundle, error) {
	dest, err := parseDestination(opts.Registry)
	if err != nil {
		return nil, err
	}
	plans, err := planArtifacts(vs.bom, dest, opts.Mappings)
	if err != nil {
		return nil, err
	}
	br := &bundleReader{vs: vs, opts: &opts, dest: dest}
	var out *manifest.Bundle
	for _, p := range plans {
		if p.a.Kind != manifest.KindBundle {
			continue
		}
		b, err := br.read(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("bundle %s: %w", p.a.Name, err)
		}
		if out == nil {
			out = &manifest.Bundle{}
		}
		out.Files = append(out.Files, b.Files...)
		out.Objects = append(out.Objects, b.Objects...)
		out.Unparsed = append(out.Unparsed, b.Unparsed...)
	}
	return out, nil
}

// bundleReader reads bundle artifacts from the volumes, the journal or the
// registry, whichever has them first.
type bundleReader struct {
	vs   *volumeSet
	opts *config
	dest destination
	reg  *registry.Client // connected on first need
}

func (br *bundleReader) read(ctx context.Context, p *artifactPlan) (*manifest.Bundle, error) {
	root := p.manifests[len(p.manifests)-1]
	data, err := br.manifest(ctx, p, root)
	if err != nil {
		return nil, err
	}
	var m struct {
		Layers []manifest.Descriptor `json:"layers"`
	}
	if err := json.Unmarshal(data, &m); err != nil || len(m.Layers) == 0 {
		return nil, fmt.Errorf("manifest %s names no bundle file (%v)", root.Digest, err)
	}
	layer, ok := br.vs.bom.Blob(m.Layers[0].Digest)
	if !ok {
		return nil, fmt.Errorf("bundle file %s is not in the bill of materials", m.Layers[0].Digest)
	}
	rc, err := br.open(ctx, p, layer)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := manifest.ReadBundle(rc)
	if err != nil {
		return nil, fmt.Errorf("bundle file %s: %w", layer.Digest, err)
	}
	// The verifying reader checks the digest at EOF only: read to the end
	// so a tampered file is refused rather than imported.
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return nil, fmt.Errorf("bundle file %s: %w", layer.Digest, err)
	}
	return b, nil
}

func (br *bundleReader) manifest(ctx context.Context, p *artifactPlan, b manifest.Blob) ([]byte, error) {
	if ok, _ := br.vs.available(b); ok {
		return br.vs.readManifest(ctx, b)
	}
	if j := br.opts.Journal; j != nil {
		if m, ok, err := j.ManifestData(b.Digest); err == nil && ok && digestOf(m.Data) == b.Digest {
			return m.Data, nil
		}
	}
	rc, err := br.fromRegistry(ctx, p, true, b)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("manifest %s from the registry: %w", b.Digest, err)
	}
	return data, nil
}

func (br *bundleReader) open(ctx context.Context, p *artifactPlan, b manifest.Blob) (io.ReadCloser, error) {
	if ok, _ := br.vs.available(b); ok {
		return br.vs.opener(b)(ctx)
	}
	return br.fromRegistry(ctx, p, false, b)
}

// fromRegistry GETs a manifest or blob of the artifact's repository,
// verified against the bill of materials' digest and size.
func (br *bundleReader) fromRegistry(ctx context.Context, p *artifactPlan, isManifest bool, b manifest.Blob) (io.ReadCloser, error) {
	if br.reg == nil {
		reg, err := connect(ctx, br.opts, br.dest, []string{p.repo})
		if err != nil {
			return nil, fmt.Errorf("%s is in no volume given, and the registry: %w", b.Digest, err)
		}
		br.reg = reg
	}
	var rc io.ReadCloser
	if isManifest {
		data, _, err := br.reg.FetchManifest(ctx, p.repo, b.Digest)
		if err != nil {
			return nil, classify(br.dest.host, fmt.Errorf("GET %s@%s (in no volume given): %w", p.repo, b.Digest, err))
		}
		rc = io.NopCloser(bytes.NewReader(data))
	} else {
		var err error
		if rc, err = br.reg.FetchBlob(ctx, p.repo, b.Digest); err != nil {
			return nil, fmt.Errorf("%w (in no volume given)", err)
		}
	}
	return digestio.NewReadCloser(rc, b.Digest, b.Size, archive.ErrDigest), nil
}
