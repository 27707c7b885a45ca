package collect

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/google/go-containerregistry/pkg/name"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"

	"github.com/ferrytool/ferry/manifest"
)

// Limits on what chart handling holds in memory.
const (
	maxIndexSize = 64 << 20
	maxChartSize = 256 << 20
)

// chartSource says where one chart comes from.
type chartSource struct {
	Name    string // chart name
	Version string // exact version or semver range; empty: latest stable
	// RepoURL is http(s)://... (a repository with index.yaml) or oci://...
	// (a registry path the chart name is appended to).
	RepoURL string
	Repo    manifest.RepositorySpec // TLS and credentials; URL may be empty
}

func (s chartSource) String() string {
	v := s.Version
	if v == "" {
		v = "(latest)"
	}
	return fmt.Sprintf("chart %s %s from %s", s.Name, v, s.RepoURL)
}

// fetchedChart is a chart resolved to one version, its archive in the cache.
type fetchedChart struct {
	res     *resolved
	chart   *chart.Chart
	version string
}

// chartDest is where Helm puts a chart pushed to oci://<base>/charts/<c>:
// charts/<c>/<c>, tagged with the version ("+" is not valid in a tag, so
// Helm writes "_").
func chartDest(name, version string) manifest.Destination {
	return manifest.Destination{Repository: "charts/" + name + "/" + name, Tag: strings.ReplaceAll(version, "+", "_")}
}

// fetchChart resolves and downloads a chart into the cache (charts are small,
// and rendering needs them even for a plan) and returns it loaded.
func (p *planner) fetchChart(ctx context.Context, src chartSource) (*fetchedChart, error) {
	if strings.HasPrefix(strings.ToLower(src.RepoURL), "oci://") {
		return p.fetchOCIChart(ctx, src)
	}
	return p.fetchHTTPChart(ctx, src)
}

func (p *planner) httpClient(rs manifest.RepositorySpec) (*http.Client, error) {
	base := p.opts.Transport
	if rs.CAFile == "" && !rs.InsecureSkipTLSVerify {
		return &http.Client{Transport: base}, nil
	}
	ht, ok := base.(*http.Transport)
	if !ok {
		return nil, fmt.Errorf("repository %s: caFile and insecureSkipTLSVerify need an *http.Transport", rs.URL)
	}
	ht = ht.Clone()
	if ht.TLSClientConfig == nil {
		ht.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if rs.InsecureSkipTLSVerify {
		ht.TLSClientConfig.InsecureSkipVerify = true
	}
	if rs.CAFile != "" {
		pem, err := os.ReadFile(p.spec.Path(rs.CAFile))
		if err != nil {
			return nil, fmt.Errorf("repository %s: %w", rs.URL, err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("repository %s: %s holds no PEM certificate", rs.URL, rs.CAFile)
		}
		ht.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{Transport: ht}, nil
}

// httpGet fetches a URL of a chart repository; the caller closes the body.
func (p *planner) httpGet(ctx context.Context, client *http.Client, rs manifest.RepositorySpec, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", userAgent(p.opts.Tool))
	if rs.Username != "" && sameHost(rs.URL, u) {
		pw, err := os.ReadFile(p.spec.Path(rs.PasswordFile))
		if err != nil {
			return nil, fmt.Errorf("repository %s password: %w", rs.URL, err)
		}
		req.SetBasicAuth(rs.Username, strings.TrimRight(string(pw), "\r\n"))
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: chart repository %s is unreachable: %v", ErrSource, rs.URL, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusNotFound:
			return nil, fmt.Errorf("%w: GET %s: %s", ErrNotFound, u, resp.Status)
		case http.StatusForbidden:
			return nil, fmt.Errorf("%w: %w: GET %s: %s", ErrSource, errForbidden, u, resp.Status)
		}
		return nil, fmt.Errorf("%w: GET %s: %s", ErrSource, u, resp.Status)
	}
	return resp, nil
}

func sameHost(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	return err1 == nil && err2 == nil && ua.Scheme == ub.Scheme && ua.Host == ub.Host
}

// userAgent names ferry to servers: "ferry/<version>".
func userAgent(tool string) string {
	if tool != "" {
		return strings.ReplaceAll(tool, " ", "/")
	}
	return "ferry"
}

// repoIndex downloads and parses a repository's index.yaml, once per run.
func (p *planner) repoIndex(ctx context.Context, client *http.Client, rs manifest.RepositorySpec) (*chartIndex, error) {
	p.mu.Lock()
	idx, ok := p.indexes[rs.URL]
	p.mu.Unlock()
	if ok {
		return idx, nil
	}
	u := strings.TrimSuffix(rs.URL, "/") + "/index.yaml"
	resp, err := p.httpGet(ctx, client, rs, u)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: chart repository %s has no index.yaml (%v)", ErrSource, rs.URL, err)
	}
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxIndexSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: chart repository %s: read index.yaml: %v", ErrSource, rs.URL, err)
	}
	if len(data) > maxIndexSize {
		return nil, fmt.Errorf("%w: chart repository %s: index.yaml is over %d bytes", ErrSource, rs.URL, maxIndexSize)
	}
	idx, err = parseChartIndex(data)
	if err != nil {
		return nil, fmt.Errorf("%w: chart repository %s: index.yaml: %v", ErrSource, rs.URL, err)
	}
	if idx.Entries == nil {
		return nil, fmt.Errorf("%w: chart repository %s: index.yaml lists no charts", ErrSource, rs.URL)
	}
	idx.sortEntries()
	p.mu.Lock()
	p.indexes[rs.URL] = idx
	p.mu.Unlock()
	return idx, nil
}

func (p *planner) fetchHTTPChart(ctx context.Context, src chartSource) (*fetchedChart, error) {
	rs := src.Repo
	rs.URL = src.RepoURL
	client, err := p.httpClient(rs)
	if err != nil {
		return nil, err
	}
	idx, err := p.repoIndex(ctx, client, rs)
	if err != nil {
		return nil, err
	}
	cv, err := idx.get(src.Name, src.Version)
	if err != nil {
		return nil, fmt.Errorf("%w: chart %s version %q in %s (%s)", ErrNotFound, src.Name, src.Version, rs.URL, availableVersions(idx, src.Name))
	}
	if len(cv.URLs) == 0 {
		return nil, fmt.Errorf("%w: chart %s %s in %s lists no download URL", ErrSource, src.Name, cv.Version, rs.URL)
	}
	u, err := resolveChartURL(rs.URL, cv.URLs[0])
	if err != nil {
		return nil, fmt.Errorf("%w: chart %s %s: %v", ErrSource, src.Name, cv.Version, err)
	}
	tgz, err := p.cachedDownload(ctx, client, rs, u, cv.Digest)
	if err != nil {
		return nil, fmt.Errorf("chart %s %s: %w", src.Name, cv.Version, err)
	}
	ch, err := p.loadChart(tgz, src.Name+" "+cv.Version)
	if err != nil {
		return nil, err
	}
	if ch.Metadata.Name != src.Name || ch.Metadata.Version != cv.Version {
		return nil, fmt.Errorf("%w: %s serves chart %s %s for %s %s", ErrSource, u, ch.Metadata.Name, ch.Metadata.Version, src.Name, cv.Version)
	}
	prov, err := p.httpProvenance(ctx, client, rs, u, src.Name+" "+cv.Version)
	if err != nil {
		return nil, err
	}
	res, err := buildArtifact(ctx, p.cache, artifactSpec{
		kind:        manifest.KindChart,
		source:      u,
		dest:        chartDest(ch.Metadata.Name, ch.Metadata.Version),
		configType:  manifest.MediaTypeHelmConfig,
		config:      ch.Metadata,
		layers:      chartLayers(tgz, prov),
		annotations: chartAnnotations(ch.Metadata),
	})
	if err != nil {
		return nil, err
	}
	fc := &fetchedChart{res: res, chart: ch, version: cv.Version}
	if err := p.checkProvenance(ctx, fc, tgz, prov, u); err != nil {
		return nil, err
	}
	return fc, nil
}

// chartLayers are the layers of a chart's manifest as `helm push` writes
// them: the archive and, when there is one, the provenance file, ordered by
// digest.
func chartLayers(tgz manifest.Blob, prov *manifest.Blob) []artifactLayer {
	layers := []artifactLayer{{blob: tgz}}
	if prov != nil {
		layers = append(layers, artifactLayer{blob: *prov})
		sort.Slice(layers, func(i, j int) bool { return layers[i].blob.Digest < layers[j].blob.Digest })
	}
	return layers
}

// chartAnnotations are the manifest annotations `helm push` writes, less
// the creation time, so the same chart always gives the same digest.
func chartAnnotations(md *chart.Metadata) map[string]string {
	a := map[string]string{manifest.AnnotationTitle: md.Name, manifest.AnnotationVersion: md.Version}
	if md.Description != "" {
		a["org.opencontainers.image.description"] = md.Description
	}
	if md.Home != "" {
		a["org.opencontainers.image.url"] = md.Home
	}
	if len(md.Sources) > 0 {
		a["org.opencontainers.image.source"] = md.Sources[0]
	}
	return a
}

func availableVersions(idx *chartIndex, name string) string {
	vs, ok := idx.Entries[name]
	if !ok {
		var names []string
		for n := range idx.Entries {
			names = append(names, n)
		}
		sort.Strings(names)
		if len(names) > 10 {
			names = append(names[:10], "...")
		}
		return "the repository has no chart of that name; it has " + strings.Join(names, ", ")
	}
	var out []string
	for i, v := range vs {
		if i == 10 {
			out = append(out, "...")
			break
		}
		out = append(out, v.Version)
	}
	return "available: " + strings.Join(out, ", ")
}

// cachedDownload returns a chart archive from the cache, or downloads it. A
// digest from index.yaml (hex sha256) is checked; without one, the URL's
// last download is reused.
func (p *planner) cachedDownload(ctx context.Context, client *http.Client, rs manifest.RepositorySpec, u, hexDigest string) (manifest.Blob, error) {
	key := "chart " + u
	if hexDigest != "" {
		if b, ok := p.cache.Lookup("sha256:" + strings.ToLower(hexDigest)); ok {
			b.MediaType = manifest.MediaTypeHelmChart
			return b, nil
		}
	} else if ref, ok := p.cache.Ref(key); ok {
		if b, ok := p.cache.Lookup(ref.Digest); ok {
			b.MediaType = manifest.MediaTypeHelmChart
			return b, nil
		}
	}
	resp, err := p.httpGet(ctx, client, rs, u)
	if err != nil {
		return manifest.Blob{}, err
	}
	defer resp.Body.Close()
	b, err := p.cache.PutStream(ctx, manifest.MediaTypeHelmChart, io.LimitReader(resp.Body, maxChartSize))
	if err != nil {
		return b, fmt.Errorf("%w: download %s: %v", ErrSource, u, err)
	}
	if hexDigest != "" && b.Digest != "sha256:"+strings.ToLower(hexDigest) {
		return b, fmt.Errorf("%w: %s has digest %s, index.yaml says sha256:%s", ErrSource, u, b.Digest, hexDigest)
	}
	p.cache.PutRef(key, b)
	return b, nil
}

// loadChart loads a chart archive from the cache with Helm's loader.
func (p *planner) loadChart(b manifest.Blob, what string) (*chart.Chart, error) {
	rc, err := p.cache.OpenBlob(context.Background(), b)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	ch, err := loader.LoadArchive(rc)
	if err != nil {
		return nil, fmt.Errorf("%w: chart %s: %v", ErrChart, what, err)
	}
	return ch, nil
}

// fetchOCIChart resolves oci://<path>/<name>:<version> like an image, then
// downloads its chart layer.
func (p *planner) fetchOCIChart(ctx context.Context, src chartSource) (*fetchedChart, error) {
	repoPath := strings.TrimSuffix(src.RepoURL[len("oci://"):], "/") + "/" + src.Name
	var opts []name.Option
	if p.opts.PlainHTTP {
		opts = append(opts, name.Insecure)
	}
	repoRef, err := name.NewRepository(repoPath, opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	version, err := p.ociChartVersion(ctx, repoRef, src)
	if err != nil {
		return nil, err
	}
	tag := strings.ReplaceAll(version, "+", "_")
	refStr := repoRef.Name() + ":" + tag
	ir := *p.images
	// A chart's versions and layer are read from its own registry, so its
	// manifest is too: registry mirrors are for images.
	ir.platforms, ir.mirrors = nil, nil
	res, err := ir.resolveImage(ctx, refStr)
	if err != nil {
		return nil, fmt.Errorf("chart %s %s: %w", src.Name, version, err)
	}
	m, ok := p.cache.Lookup(res.artifact.Digest)
	if !ok {
		return nil, fmt.Errorf("chart %s: manifest %s vanished from the cache", refStr, res.artifact.Digest)
	}
	data, err := p.cache.ReadSmall(m, manifest.MaxManifestSize)
	if err != nil {
		return nil, err
	}
	var om ociManifest
	if err := jsonUnmarshal(data, &om); err != nil || om.Config.MediaType != manifest.MediaTypeHelmConfig {
		return nil, fmt.Errorf("%w: %s is not a Helm chart (config media type %q)", ErrNotFound, refStr, om.Config.MediaType)
	}
	var layer *manifest.Blob
	for _, l := range om.Layers {
		if l.MediaType == manifest.MediaTypeHelmChart {
			layer = &manifest.Blob{Digest: l.Digest, Size: l.Size, MediaType: l.MediaType}
		}
	}
	if layer == nil {
		return nil, fmt.Errorf("%w: %s has no %s layer", ErrNotFound, refStr, manifest.MediaTypeHelmChart)
	}
	if !p.cache.Has(*layer) {
		if err := p.downloadBlob(ctx, repoRef, *layer); err != nil {
			return nil, fmt.Errorf("chart %s: %w", refStr, err)
		}
	}
	ch, err := p.loadChart(*layer, src.Name+" "+version)
	if err != nil {
		return nil, err
	}
	prov, err := p.ociProvenance(ctx, repoRef, om.Layers, src.Name+" "+version)
	if err != nil {
		return nil, err
	}
	res.artifact.Kind = manifest.KindChart
	res.artifact.Dest = chartDest(ch.Metadata.Name, ch.Metadata.Version)
	res.artifact.Name = res.artifact.Dest.String()
	res.artifact.Source = "oci://" + refStr
	fc := &fetchedChart{res: res, chart: ch, version: ch.Metadata.Version}
	if err := p.checkProvenance(ctx, fc, *layer, prov, res.artifact.Source); err != nil {
		return nil, err
	}
	return fc, nil
}

// ociChartVersion turns a version range into the highest matching tag.
func (p *planner) ociChartVersion(ctx context.Context, repoRef name.Repository, src chartSource) (string, error) {
	if src.Version != "" {
		if _, err := semver.StrictNewVersion(strings.TrimPrefix(src.Version, "v")); err == nil {
			return src.Version, nil
		}
	}
	constraint := src.Version
	if constraint == "" {
		constraint = "*"
	}
	c, err := semver.NewConstraint(constraint)
	if err != nil {
		return "", fmt.Errorf("%s: version %q: %w", src, src.Version, err)
	}
	tags, err := p.images.puller.List(ctx, repoRef)
	if err != nil {
		return "", sourceErr(repoRef.Name(), err)
	}
	var best *semver.Version
	bestTag := ""
	for _, t := range tags {
		v, err := semver.NewVersion(strings.ReplaceAll(t, "_", "+"))
		if err != nil || !c.Check(v) {
			continue
		}
		if best == nil || v.GreaterThan(best) {
			best, bestTag = v, strings.ReplaceAll(t, "_", "+")
		}
	}
	if best == nil {
		return "", fmt.Errorf("%w: chart %s version %q in oci://%s (tags: %s)", ErrNotFound, src.Name, src.Version, repoRef.Name(), strings.Join(tags, ", "))
	}
	return bestTag, nil
}

// downloadBlob puts one blob of a source repository into the cache.
func (p *planner) downloadBlob(ctx context.Context, repoRef name.Repository, b manifest.Blob) error {
	l, err := p.images.puller.Layer(ctx, repoRef.Digest(b.Digest))
	if err != nil {
		return sourceErr(repoRef.Name()+"@"+b.Digest, err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return sourceErr(repoRef.Name()+"@"+b.Digest, err)
	}
	defer rc.Close()
	return p.cache.Put(ctx, b, rc)
}
