package collect

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"sort"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/releaseutil"
	"sigs.k8s.io/yaml"
)

// DefaultKubeVersion renders charts that accept it and for which no version
// is given: the Kubernetes of PaletteAI's edge-k8s pack.
const DefaultKubeVersion = "v1.33.0"

// RenderOptions say how to render a chart for image discovery.
type RenderOptions struct {
	// ReleaseName and Namespace of the release; empty means the chart name
	// and "default".
	ReleaseName string `json:"releaseName,omitempty"`
	Namespace   string `json:"namespace,omitempty"`
	// Values are user values, merged over the chart's own.
	Values map[string]any `json:"values,omitempty"`
	// KubeVersion is the Kubernetes version to render for; empty means
	// DefaultKubeVersion, or another one the chart's kubeVersion accepts.
	KubeVersion string `json:"kubeVersion,omitempty"`
}

// FoundImage is an image reference found in a chart, with where it was
// found.
type FoundImage struct {
	// Ref is the reference as written.
	Ref string `json:"ref"`
	// Where names the template file and field path, or the annotation.
	Where string `json:"where"`
	// Hint is set for an image only a Chart.yaml annotation names: the
	// chart says it may use it, but what it renders does not. Collect
	// carries it when the source has it and lists it as a gap otherwise.
	Hint bool `json:"hint,omitempty"`
	// ValuesPath is the values path that set a rendered image, when the
	// chart's values hold the reference (or its repository) there, for
	// the advice on an image the source lacks.
	ValuesPath string `json:"valuesPath,omitempty"`
}

// RenderRequest is one chart to render for image discovery.
type RenderRequest struct {
	// Label names the chart in errors: "clearml 7.14.4", "pack x 1.0: charts/y.tgz".
	Label string `json:"label"`
	// Chart is the chart archive (.tgz) as Helm packages it.
	Chart []byte `json:"chart"`
	// Options say how to render it.
	Options RenderOptions `json:"options"`
}

// Renderer renders charts for image discovery. Rendering runs chart
// templates, which may loop without end or ask for any amount of memory:
// a caller that needs bounds supplies a Renderer that runs RenderArchive
// where it can be limited and killed (ferry runs it in a child process).
type Renderer interface {
	Render(ctx context.Context, req RenderRequest) (*Rendered, error)
}

// RendererFunc adapts a function to Renderer.
type RendererFunc func(ctx context.Context, req RenderRequest) (*Rendered, error)

// Render calls f.
func (f RendererFunc) Render(ctx context.Context, req RenderRequest) (*Rendered, error) {
	return f(ctx, req)
}

// InProcess renders in the calling process, without a time or memory
// bound: for tests and charts that are trusted. It is what a zero
// Options.Renderer means.
var InProcess Renderer = RendererFunc(func(_ context.Context, req RenderRequest) (*Rendered, error) {
	return RenderArchive(req)
})

// RenderArchive loads a chart archive and renders it with RenderImages.
func RenderArchive(req RenderRequest) (*Rendered, error) {
	ch, err := loader.LoadArchive(bytes.NewReader(req.Chart))
	if err != nil {
		return nil, fmt.Errorf("%w: chart %s does not load: %v", ErrChart, req.Label, err)
	}
	return RenderImages(ch, req.Options)
}

// Rendered is what rendering a chart found.
type Rendered struct {
	KubeVersion string       `json:"kubeVersion"`
	Images      []FoundImage `json:"images"`
	// Warnings name values that look like images but are not references.
	Warnings []string `json:"warnings,omitempty"`
}

// RenderImages renders ch the way `helm install --dry-run` would (subcharts
// enabled by their conditions and tags, hooks included, no cluster) and
// returns every image it references: in containers, initContainers and
// ephemeralContainers of any workload, in `image:` fields of any other
// object, and in the `images` and `artifacthub.io/images` annotations of the
// chart and its subcharts. The chart is changed: disabled subcharts are
// removed from it.
func RenderImages(ch *chart.Chart, opts RenderOptions) (*Rendered, error) {
	name := ch.Metadata.Name + " " + ch.Metadata.Version
	kv, kerr := chooseKubeVersion(ch.Metadata.KubeVersion, opts.KubeVersion)
	if kerr != nil {
		kerr.Chart = name
		return nil, kerr
	}
	caps := chartutil.DefaultCapabilities.Copy()
	parsed, err := chartutil.ParseKubeVersion(kv)
	if err != nil {
		return nil, fmt.Errorf("%w: chart %s: kube version %q: %v", ErrChart, name, kv, err)
	}
	caps.KubeVersion = *parsed
	release := opts.ReleaseName
	if release == "" {
		release = ch.Metadata.Name
	}
	ns := opts.Namespace
	if ns == "" {
		ns = "default"
	}
	vals := copyMap(opts.Values) // Helm's dependency processing writes into it
	if err := chartutil.ProcessDependenciesWithMerge(ch, vals); err != nil {
		return nil, fmt.Errorf("%w: chart %s: dependencies: %v", ErrChart, name, err)
	}
	top, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{Name: release, Namespace: ns, Revision: 1, IsInstall: true}, caps)
	if err != nil {
		return nil, fmt.Errorf("%w: chart %s: values: %v", ErrChart, name, err)
	}
	files, err := engine.Render(ch, top)
	if err != nil {
		return nil, fmt.Errorf("%w: chart %s: render: %v", ErrChart, name, err)
	}
	out := &Rendered{KubeVersion: kv}
	names := make([]string, 0, len(files))
	for f := range files {
		names = append(names, f)
	}
	sort.Strings(names)
	for _, f := range names {
		base := path.Base(f)
		if strings.HasPrefix(base, "_") || strings.EqualFold(base, "NOTES.txt") || strings.TrimSpace(files[f]) == "" {
			continue
		}
		docs := releaseutil.SplitManifests(files[f])
		keys := make([]string, 0, len(docs))
		for k := range docs {
			keys = append(keys, k)
		}
		sort.Sort(releaseutil.BySplitManifestsOrder(keys))
		for _, k := range keys {
			var obj map[string]any
			if err := yaml.Unmarshal([]byte(docs[k]), &obj); err != nil {
				out.Warnings = append(out.Warnings, fmt.Sprintf("chart %s: %s does not parse as YAML: %v", name, f, err))
				continue
			}
			if obj == nil {
				continue
			}
			id := objectID(obj)
			for _, fi := range FindImages(obj) {
				out.Images = append(out.Images, FoundImage{Ref: fi.Ref, Where: f + " " + id + " " + fi.Where})
			}
		}
	}
	rendered := map[string]bool{}
	for _, fi := range out.Images {
		if n, err := NormalizeImage(fi.Ref); err == nil {
			rendered[n] = true
		}
	}
	for _, fi := range annotationImages(ch, ch.Metadata.Name) {
		n, err := NormalizeImage(fi.Ref)
		if err == nil && rendered[n] {
			continue // the chart renders it; the template is the better reason
		}
		fi.Hint = true
		out.Images = append(out.Images, fi)
	}
	for i := range out.Images {
		if !out.Images[i].Hint {
			out.Images[i].ValuesPath = valuesPathOf(top["Values"], out.Images[i].Ref)
		}
	}
	return out, nil
}

func objectID(obj map[string]any) string {
	kind, _ := obj["kind"].(string)
	md, _ := obj["metadata"].(map[string]any)
	n, _ := md["name"].(string)
	return kind + "/" + n
}

// candidateKubeVersions are tried, newest first, when the default does not
// satisfy a chart's kubeVersion.
func candidateKubeVersions() []string {
	var out []string
	for minor := 40; minor >= 16; minor-- {
		out = append(out, fmt.Sprintf("v1.%d.0", minor))
	}
	return out
}

// chooseKubeVersion picks the version to render with: the given one, which
// must satisfy the constraint, else DefaultKubeVersion, else the newest
// candidate the constraint accepts.
func chooseKubeVersion(constraint, given string) (string, *KubeVersionError) {
	if given != "" {
		if !strings.HasPrefix(given, "v") {
			given = "v" + given
		}
		if constraint != "" && !chartutil.IsCompatibleRange(constraint, given) {
			return "", &KubeVersionError{Constraint: constraint, Given: given}
		}
		return given, nil
	}
	if constraint == "" || chartutil.IsCompatibleRange(constraint, DefaultKubeVersion) {
		return DefaultKubeVersion, nil
	}
	for _, v := range candidateKubeVersions() {
		if chartutil.IsCompatibleRange(constraint, v) {
			return v, nil
		}
		// Constraints with "-0" accept pre-releases; ".99" catches "<1.30.5".
		if p := strings.TrimSuffix(v, ".0") + ".99"; chartutil.IsCompatibleRange(constraint, p) {
			return p, nil
		}
	}
	return "", &KubeVersionError{Constraint: constraint}
}

// KubeVersionError is a chart whose kubeVersion constraint accepts no
// Kubernetes version to render it for: not the one given
// (RenderOptions.KubeVersion), or, when none was, none from v1.16 to
// v1.40. It is ErrChart; its fields travel as JSON from a rendering
// process.
type KubeVersionError struct {
	Chart      string `json:"chart"`      // name and version
	Constraint string `json:"constraint"` // the chart's kubeVersion
	Given      string `json:"given,omitempty"`
}

func (e *KubeVersionError) Error() string {
	if e.Given != "" {
		return fmt.Sprintf("%v: chart %s: its kubeVersion %q does not accept Kubernetes %s; give one it accepts as kubeVersion in the spec",
			ErrChart, e.Chart, e.Constraint, e.Given)
	}
	return fmt.Sprintf("%v: chart %s: its kubeVersion %q accepts no Kubernetes version from v1.16 to v1.40; give one as kubeVersion in the spec",
		ErrChart, e.Chart, e.Constraint)
}

func (e *KubeVersionError) Unwrap() error { return ErrChart }

// annotationImages reads the image lists charts carry in their annotations,
// for the chart and every subchart still enabled.
func annotationImages(ch *chart.Chart, at string) []FoundImage {
	var out []FoundImage
	for _, key := range []string{"images", "artifacthub.io/images"} {
		v := ch.Metadata.Annotations[key]
		if v == "" {
			continue
		}
		var list []any
		if err := yaml.Unmarshal([]byte(v), &list); err != nil {
			continue
		}
		for i, e := range list {
			ref := ""
			switch t := e.(type) {
			case string:
				ref = t
			case map[string]any:
				ref, _ = t["image"].(string)
			}
			if ref != "" {
				out = append(out, FoundImage{Ref: ref, Where: fmt.Sprintf("%s Chart.yaml annotation %s[%d]", at, key, i)})
			}
		}
	}
	for _, d := range ch.Dependencies() {
		out = append(out, annotationImages(d, at+"/charts/"+d.Metadata.Name)...)
	}
	return out
}

// valuesPathOf finds where the render values hold ref, or its repository
// without registry and tag: "mongodb.image.repository". Empty when no
// value does.
func valuesPathOf(values any, ref string) string {
	repo := ref
	if i := strings.LastIndex(repo, "@"); i > 0 {
		repo = repo[:i]
	}
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	want := []string{ref, repo}
	if i := strings.Index(repo, "/"); i > 0 && strings.ContainsAny(repo[:i], ".:") {
		want = append(want, repo[i+1:])
	}
	var found string
	var walk func(v any, at string)
	walk = func(v any, at string) {
		if found != "" {
			return
		}
		switch t := v.(type) {
		case chartutil.Values:
			walk(map[string]any(t), at)
		case map[string]any:
			keys := make([]string, 0, len(t))
			for k := range t {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				p := k
				if at != "" {
					p = at + "." + k
				}
				walk(t[k], p)
			}
		case string:
			for _, w := range want {
				if t == w && w != "" {
					found = at
					return
				}
			}
		}
	}
	walk(values, "")
	return found
}
