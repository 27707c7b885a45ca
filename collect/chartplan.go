package collect

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"helm.sh/helm/v3/pkg/chartutil"

	"github.com/ferrytool/ferry/manifest"
)

// chartRequest is one chart to collect and render, with why.
type chartRequest struct {
	src         chartSource
	releaseName string
	namespace   string
	values      map[string]any
	valuesFiles []string
	kubeVersion string
	reason      manifest.Reason
}

// specChartRequest turns a spec chart entry into a request.
func (p *planner) specChartRequest(i int, c manifest.ChartSpec) (chartRequest, error) {
	req := chartRequest{
		src:         chartSource{Name: c.Name, Version: c.Version, RepoURL: c.Repo},
		releaseName: c.ReleaseName,
		namespace:   c.Namespace,
		values:      c.Values,
		valuesFiles: c.ValuesFiles,
		kubeVersion: c.KubeVersion,
	}
	if rs, ok := p.spec.Repository(c.Repo); ok {
		req.src.RepoURL, req.src.Repo = rs.URL, rs
	}
	if strings.HasPrefix(c.Name, "oci://") {
		// Helm's form: oci://registry/path/chart names the repository.
		i := strings.LastIndex(c.Name, "/")
		req.src.RepoURL, req.src.Name = c.Name[:i], c.Name[i+1:]
	}
	detail := fmt.Sprintf("charts[%d]", i)
	if originOf(c.Origin) == manifest.OriginFlag {
		detail = "chart " + c.Name
	}
	req.reason = manifest.Reason{From: originOf(c.Origin), Detail: detail}
	return req, nil
}

// collectCharts fetches and renders every requested chart once; requests
// for the same chart and version merge their reasons.
func (p *planner) collectCharts(ctx context.Context, reqs []chartRequest) error {
	done := map[string]*resolved{} // destination -> artifact
	for _, req := range reqs {
		if rs, ok := p.spec.Repository(req.src.RepoURL); ok {
			req.src.RepoURL, req.src.Repo = rs.URL, rs
		} else if req.src.Repo.URL == "" {
			// A URL given directly still gets the TLS settings and
			// credentials of a repository entry with that URL.
			for _, rs := range p.spec.Repositories {
				if strings.TrimSuffix(rs.URL, "/") == strings.TrimSuffix(req.src.RepoURL, "/") {
					req.src.Repo = rs
				}
			}
		}
		if !isURL(req.src.RepoURL) {
			return fmt.Errorf("%w: %s: repository %q is not a URL nor a repository of the spec", ErrUsage, req.src, req.src.RepoURL)
		}
		if req.src.Version != "" {
			if prev, ok := done[chartDest(req.src.Name, req.src.Version).String()]; ok && !strings.ContainsAny(req.src.Version, "<>=~^* ") {
				prev.artifact.Reasons = appendReason(prev.artifact.Reasons, req.reason)
				continue
			}
		}
		fc, err := p.fetchChart(ctx, req.src)
		if errors.Is(err, ErrChart) {
			if err := p.brokenChart(req.src.String(), req.reason, err); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		key := fc.res.artifact.Dest.String()
		if prev, ok := done[key]; ok {
			if prev.artifact.Digest != fc.res.artifact.Digest {
				return fmt.Errorf("%w: %s and %s both go to %s with different content", ErrConflict, prev.artifact.Source, fc.res.artifact.Source, key)
			}
			prev.artifact.Reasons = appendReason(prev.artifact.Reasons, req.reason)
			continue
		}
		fc.res.artifact.Reasons = []manifest.Reason{req.reason}
		done[key] = fc.res
		p.arts = append(p.arts, fc.res)
		p.progressResolved(fc.res.artifact)
		if err := p.renderChart(ctx, fc, req); err != nil {
			return err
		}
	}
	return nil
}

func isURL(u string) bool {
	l := strings.ToLower(u)
	return strings.HasPrefix(l, "https://") || strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "oci://")
}

// renderChart renders a fetched chart and queues the images it references.
func (p *planner) renderChart(ctx context.Context, fc *fetchedChart, req chartRequest) error {
	vals := map[string]any{}
	for _, f := range req.valuesFiles {
		data, err := os.ReadFile(p.spec.Path(f))
		if err != nil {
			return fmt.Errorf("%w: chart %s: values file: %v", ErrUsage, req.src.Name, err)
		}
		fv, err := chartutil.ReadValues(data)
		if err != nil {
			return fmt.Errorf("%w: chart %s: values file %s: %v", ErrUsage, req.src.Name, f, err)
		}
		vals = chartutil.CoalesceTables(fv.AsMap(), vals)
	}
	if req.values != nil {
		vals = chartutil.CoalesceTables(copyMap(req.values), vals)
	}
	kv := req.kubeVersion
	if kv == "" {
		kv = p.spec.KubeVersion
	}
	// label names the chart once: reasons read "chart: clearml 7.14.4: ...".
	label := fc.chart.Metadata.Name + " " + fc.version
	archive, err := p.cache.ReadSmall(fc.res.blobs[chartLayerIndex(fc.res)].blob, maxChartSize)
	if err != nil {
		return fmt.Errorf("chart %s: %w", label, err)
	}
	rr := RenderRequest{Label: label, Chart: archive,
		Options: RenderOptions{ReleaseName: req.releaseName, Namespace: req.namespace, Values: vals, KubeVersion: kv}}
	r, err := p.opts.Renderer.Render(ctx, rr)
	if err != nil && ctx.Err() == nil && !errors.Is(err, ErrRenderLimit) && req.reason.From == "bundle" && len(req.values) > 0 {
		// A WorkloadProfile's values may hold PaletteAI macros a template
		// cannot digest; the chart's own values still show its images.
		p.warn("chart %s: did not render with the WorkloadProfile's values (%v); rendered with the chart's own", label, err)
		rr.Options.Values = nil
		r, err = p.opts.Renderer.Render(ctx, rr)
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return p.brokenChart("chart "+label, req.reason, err)
	}
	for _, w := range r.Warnings {
		p.warn("%s", w)
	}
	for _, fi := range r.Images {
		p.wantFound(fi, manifest.Reason{From: "chart", Detail: label + ": " + fi.Where})
	}
	return nil
}

// chartLayerIndex finds the chart archive among an artifact's blobs.
func chartLayerIndex(r *resolved) int {
	for i, b := range r.blobs {
		if b.blob.MediaType == manifest.MediaTypeHelmChart {
			return i
		}
	}
	return 0
}
