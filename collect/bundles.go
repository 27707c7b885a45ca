package collect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ferrytool/ferry/internal/digestio"
	"github.com/ferrytool/ferry/manifest"
)

// PackNeed is one pack a bundle's ClusterProfile needs, and whether the spec
// provides it.
type PackNeed struct {
	Bundle  string `json:"bundle"`
	Profile string `json:"profile"`
	Name    string `json:"name"`
	Version string `json:"version"`
	// Provided is the pack file that provides it; empty when none does.
	Provided string `json:"provided,omitempty"`
}

// bundle is a Profile Bundle read from the spec.
type bundle struct {
	name, version string
	file          string
	b             *manifest.Bundle
	res           *resolved
	origin        string
}

func (b *bundle) label() string { return "bundle " + b.name + " " + b.version }

// readBundle reads a Profile Bundle archive, hashing it in the same pass,
// and builds its artifact.
func (p *planner) readBundle(ctx context.Context, bs manifest.BundleSpec) (*bundle, error) {
	file := p.spec.Path(bs.File)
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("%w: bundle %s: %v", ErrUsage, file, err)
	}
	defer f.Close()
	d := newDigester()
	tee := io.TeeReader(digestio.ContextReader(ctx, f), d)
	b, err := manifest.ReadBundle(tee)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", file, err)
	}
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return nil, fmt.Errorf("bundle %s: %w", file, err)
	}
	// Pack values inside a ClusterProfile are YAML in a string, which the
	// bundle's own limits count as text only; their aliases are counted here,
	// before anything parses them.
	for _, cp := range b.ClusterProfiles() {
		for _, pr := range cp.Packs {
			if _, err := manifest.YAMLDecodedSize([]byte(pr.Values), manifest.MaxYAMLDecodedSize); errors.Is(err, manifest.ErrYAMLTooLarge) {
				return nil, fmt.Errorf("bundle %s: %w: %s: pack %s %s: values decode to more than %d bytes, aliases expanded (MaxYAMLDecodedSize)",
					file, manifest.ErrInvalidBundle, cp.Object, pr.Name, pr.Version, manifest.MaxYAMLDecodedSize)
			}
		}
	}
	for _, u := range b.Unparsed {
		err := fmt.Errorf("%w: bundle %s: %v", ErrBundleDocument, file, u)
		if err := p.brokenDocument(fmt.Sprintf("%s: %v", file, u), manifest.Reason{From: originOf(bs.Origin), Detail: "bundle " + bs.File}, err); err != nil {
			return nil, err
		}
	}
	name, version := bs.Name, bs.Version
	fn, fv, _ := manifest.ParseBundleFileName(file)
	pbs := b.ProfileBundles()
	if name == "" {
		name = fn
		if name == "" && len(pbs) > 0 {
			name = pbs[0].Name
		}
	}
	if version == "" {
		version = fv
		if version == "" && len(pbs) > 0 {
			version = pbs[0].Version
		}
	}
	if name == "" || version == "" {
		return nil, fmt.Errorf("%w: bundle %s: neither its file name (<bundle>-<version>.tar.gz) nor a ProfileBundle gives name and version; give them in the spec", ErrUsage, file)
	}
	blob := manifest.Blob{Digest: d.Digest(), Size: d.Size(), MediaType: manifest.MediaTypeTarGzip}
	cfg := map[string]any{"name": name, "version": version, "file": filepath.Base(file)}
	if len(pbs) > 0 {
		cfg["profileBundle"] = pbs[0].Name
		cfg["type"] = pbs[0].Type
	}
	res, err := buildArtifact(ctx, p.cache, artifactSpec{
		kind:        manifest.KindBundle,
		source:      file,
		dest:        manifest.Destination{Repository: "bundles/" + name, Tag: strings.ReplaceAll(version, "+", "_")},
		configType:  manifest.MediaTypeFerryBundleConfig,
		config:      cfg,
		layers:      []artifactLayer{{blob: blob, file: file, title: filepath.Base(file)}},
		annotations: map[string]string{manifest.AnnotationTitle: name, manifest.AnnotationVersion: version},
	})
	if err != nil {
		return nil, err
	}
	return &bundle{name: name, version: version, file: file, b: b, res: res, origin: originOf(bs.Origin)}, nil
}

// bundleNeeds lists the packs the bundle's ClusterProfiles need and queues
// the images their values list.
func (p *planner) bundleNeeds(bd *bundle) []PackNeed {
	var out []PackNeed
	for _, cp := range bd.b.ClusterProfiles() {
		for _, pr := range cp.Packs {
			if strings.EqualFold(pr.Type, "manifest") || pr.Name == "" {
				continue // a manifest layer has no pack to download
			}
			out = append(out, PackNeed{Bundle: bd.name + " " + bd.version, Profile: cp.Name, Name: pr.Name, Version: pr.Version})
			where := fmt.Sprintf("%s: ClusterProfile %s pack %s %s", bd.label(), cp.Name, pr.Name, pr.Version)
			refs, warns := packImages([]byte(pr.Values), where)
			for _, w := range warns {
				p.warn("%s", w)
			}
			for _, fi := range refs {
				p.wantImage(fi.Ref, manifest.Reason{From: "bundle", Detail: where + " values " + fi.Where})
			}
		}
	}
	return out
}

// bundleCharts turns the chart references of the bundle's WorkloadProfiles
// into chart requests. A reference whose repository is a macro or an
// internal registry is collected from the upstream repository the spec
// names for that chart.
func (p *planner) bundleCharts(bd *bundle) ([]chartRequest, error) {
	var out []chartRequest
	for _, wp := range bd.b.WorkloadProfiles() {
		for _, c := range wp.Charts {
			where := fmt.Sprintf("%s: WorkloadProfile %s %s", bd.label(), wp.Name, c.Path)
			req := chartRequest{
				reason: manifest.Reason{From: "bundle", Detail: where},
				src:    chartSource{Name: c.Name, Version: c.Version, RepoURL: c.Repository},
			}
			if up, ok := p.spec.UpstreamRepositories[c.Name]; ok {
				req.src.RepoURL = up
			}
			if strings.Contains(c.Name, "{{") {
				return nil, fmt.Errorf("%w: %s: the chart name %q is a macro", ErrUsage, where, c.Name)
			}
			if req.src.Version == "" || strings.Contains(req.src.Version, "{{") {
				if sc, ok := p.specChart(c.Name); ok {
					req.src.Version = sc.Version
				} else {
					return nil, fmt.Errorf("%w: %s: chart %s has version %q; list the chart in the spec with its version", ErrUsage, where, c.Name, c.Version)
				}
			}
			if req.src.RepoURL == "" || strings.Contains(req.src.RepoURL, "{{") {
				if sc, ok := p.specChart(c.Name); ok && sc.Version == req.src.Version {
					// The spec names this chart itself; it is collected once,
					// with both reasons.
					req.src.RepoURL = sc.Repo
				} else {
					return nil, &UnreachableChartError{Where: where, Chart: c.Name, Repository: c.Repository}
				}
			}
			props, _ := c.Path.Get(wp.Object.Content)
			if m, ok := props.(map[string]any); ok {
				if v, ok := m["values"].(map[string]any); ok {
					req.values = v
				}
				if s, _ := m["releaseName"].(string); s != "" && !strings.Contains(s, "{{") {
					req.releaseName = s
				}
				if s, _ := m["namespace"].(string); s != "" && !strings.Contains(s, "{{") {
					req.namespace = s
				}
			}
			out = append(out, req)
		}
	}
	return out, nil
}

// UnreachableChartError is a bundle's chart whose repository is a macro or
// missing, and which the spec does not name either: it can be collected
// only from an upstream repository given for it
// (TransferSpec.UpstreamRepositories). It is ErrUsage.
type UnreachableChartError struct {
	Where      string // the bundle, profile and path that name the chart
	Chart      string
	Repository string // as the bundle gives it
}

func (e *UnreachableChartError) Error() string {
	return fmt.Sprintf("%v: %s: chart %s comes from %q, which cannot be reached from here; give its upstream repository in the spec's upstreamRepositories",
		ErrUsage, e.Where, e.Chart, e.Repository)
}

func (e *UnreachableChartError) Unwrap() error { return ErrUsage }

// specChart returns the spec's chart entry of that name.
func (p *planner) specChart(name string) (manifest.ChartSpec, bool) {
	for _, c := range p.spec.Charts {
		if c.Name == name {
			return c, true
		}
	}
	return manifest.ChartSpec{}, false
}

func originOf(o string) string {
	if o == "" {
		return manifest.OriginSpec
	}
	return o
}
