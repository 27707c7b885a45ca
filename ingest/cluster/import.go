package cluster

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ferrytool/ferry/manifest"
)

// importBundle applies the bundle's objects to the project namespace with
// server-side apply, as `paletteai studio import --namespace` does. Kinds
// come from API discovery; an object of a kind the hub does not serve (a
// ClusterProfile is a Palette object, not a hub resource) is skipped with the
// reason.
func importBundle(ctx context.Context, s *settings, hub *kube, sr *StepResult) error {
	for _, d := range s.Bundle.Unparsed {
		sr.Items = append(sr.Items, Item{Kind: "(YAML)", Name: fmt.Sprintf("%s#%d", d.File, d.Doc), Action: ActionSkipped,
			Detail: fmt.Sprintf("does not parse: %v", d.Err)})
	}
	for _, o := range importOrder(s.Bundle.Objects) {
		it, err := importObject(ctx, s, hub, o)
		if err != nil {
			return err
		}
		sr.Items = append(sr.Items, it)
	}
	return nil
}

// importOrder puts the ProfileBundle last, after the profiles and variable
// sets it refers to; otherwise the archive order stays.
func importOrder(objs []*manifest.Object) []*manifest.Object {
	out := append([]*manifest.Object(nil), objs...)
	sort.SliceStable(out, func(i, j int) bool {
		return out[i].Kind() != manifest.KindProfileBundle && out[j].Kind() == manifest.KindProfileBundle
	})
	return out
}

func importObject(ctx context.Context, s *settings, hub *kube, o *manifest.Object) (Item, error) {
	it := Item{Kind: o.Kind(), Name: o.Name(), Namespace: s.ProjectNamespace}
	if it.Name == "" {
		it.Action, it.Detail = ActionSkipped, fmt.Sprintf("no metadata.name (%s, document %d)", o.File, o.Doc)
		return it, nil
	}
	sv, err := hub.lookup(o.APIVersion(), o.Kind())
	var ns errNotServed
	if errors.As(err, &ns) {
		it.Namespace, it.Action, it.Detail = "", ActionSkipped, ns.reason
		return it, nil
	}
	if err != nil {
		return it, err
	}
	if !sv.namespaced {
		it.Namespace, it.Action = "", ActionSkipped
		it.Detail = "cluster-scoped; a bundle import writes only into the project namespace"
		return it, nil
	}
	if sv.gvk.Group == paletteGroup && sv.gvk.Kind == manifest.KindVariableSet && it.Name == s.VariableSet {
		// Its variables list is atomic to server-side apply: applying the
		// bundle's copy would drop every variable the bundle does not name.
		it.Action = ActionSkipped
		it.Detail = "the project VariableSet is not replaced by an import; the " + string(StepVariables) + " step upserts ferry's variables into it"
		return it, nil
	}
	obj, notes := prepareForImport(o, s, sv)
	ri := hub.dyn.Resource(sv.gvr).Namespace(s.ProjectNamespace)
	before, err := ri.Get(ctx, it.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		before = nil
	case err != nil:
		return it, hub.apiErr("get", sv.resourceName(), s.ProjectNamespace, it.Name, err)
	}
	if s.hooks.beforeWrite != nil {
		s.hooks.beforeWrite(StepBundleImport, 0)
	}
	after, err := ri.Apply(ctx, it.Name, &unstructured.Unstructured{Object: obj}, metav1.ApplyOptions{
		FieldManager: s.FieldManager,
		// The bundle is the source of truth for the fields it sets, as for
		// `kubectl apply --server-side --force-conflicts`.
		Force:  true,
		DryRun: dryRun(s.DryRun),
	})
	if err != nil {
		return it, hub.apiErr("apply", sv.resourceName(), s.ProjectNamespace, it.Name, err)
	}
	var beforeObj map[string]any
	if before != nil {
		beforeObj = before.Object
	}
	it.Diff = diffObjects(strings.ToLower(it.Kind)+"/"+it.Name, beforeObj, after.Object)
	switch {
	case before == nil:
		it.Action = ActionCreated
	case s.DryRun && it.Diff == "", !s.DryRun && before.GetResourceVersion() == after.GetResourceVersion():
		// A server-side apply that changes nothing keeps the resourceVersion.
		it.Action, it.Diff = ActionUnchanged, ""
	default:
		it.Action = ActionUpdated
	}
	it.Detail = strings.Join(notes, "; ")
	return it, nil
}

// prepareForImport returns the object to apply: a copy placed in the project
// namespace, without server-maintained metadata, with chart references
// pointing at the registry and pack registry UIDs remapped. notes say what
// was rewritten.
func prepareForImport(o *manifest.Object, s *settings, sv served) (map[string]any, []string) {
	c := o.DeepCopy()
	obj := c.Content
	obj["apiVersion"] = sv.gvk.GroupVersion().String()
	md, _ := obj["metadata"].(map[string]any)
	for _, k := range append(volatileMetadata, "deletionTimestamp", "deletionGracePeriodSeconds", "ownerReferences") {
		delete(md, k)
	}
	md["namespace"] = s.ProjectNamespace
	var notes []string
	if o.Kind() == manifest.KindWorkloadProfile {
		notes = append(notes, rewriteCharts(c, s.registry)...)
	}
	notes = append(notes, rewriteRegistryUIDs(obj, s.RegistryMap)...)
	notes = append(notes, rewriteDigests(obj, s.DigestMap)...)
	return obj, notes
}

// rewriteCharts points every chart reference of o at the registry the chart
// was pushed to. A reference holding a macro, such as
// oci://{{ internal-zot-url }}/..., is left alone: PaletteAI expands it from
// the variables this run sets.
func rewriteCharts(o *manifest.Object, reg Registry) []string {
	var notes []string
	for _, ref := range manifest.ChartRefs(o) {
		chart := path.Base(ref.Name)
		if ref.Templated() {
			notes = append(notes, fmt.Sprintf("chart %s: templated repository %q kept", chart, ref.Repository))
			continue
		}
		want := reg.ChartRepository(chart)
		if ref.Repository == want {
			continue
		}
		at := ref.RepositoryPath
		if at == nil {
			at = ref.Path.Child("repository")
		}
		if err := at.Set(o.Content, want); err != nil {
			notes = append(notes, fmt.Sprintf("chart %s: cannot rewrite repository: %v", chart, err))
			continue
		}
		from := ref.Repository
		if from == "" {
			from = "(none)"
		}
		notes = append(notes, fmt.Sprintf("chart %s: repository %s -> %s", chart, from, want))
	}
	return notes
}

// rewriteRegistryUIDs replaces pack registry UIDs found anywhere in obj:
// registryUid / registryUID keys, and uid under a registry map or its
// metadata (the shapes of Palette's pack model).
func rewriteRegistryUIDs(obj map[string]any, m map[string]string) []string {
	if len(m) == 0 {
		return nil
	}
	counts := map[string]int{}
	swap := func(holder map[string]any, key string) {
		if old, ok := holder[key].(string); ok {
			if to, ok := m[old]; ok && to != old {
				holder[key] = to
				counts[old]++
			}
		}
	}
	var walk func(v any)
	walk = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			swap(t, "registryUid")
			swap(t, "registryUID")
			if reg, ok := t["registry"].(map[string]any); ok {
				swap(reg, "uid")
				if md, ok := reg["metadata"].(map[string]any); ok {
					swap(md, "uid")
				}
			}
			for _, e := range t {
				walk(e)
			}
		case []any:
			for _, e := range t {
				walk(e)
			}
		}
	}
	walk(obj)
	var notes []string
	for old, n := range counts {
		notes = append(notes, fmt.Sprintf("registry UID %s -> %s (%d)", old, m[old], n))
	}
	sort.Strings(notes)
	return notes
}

// rewriteDigests replaces "@old" by "@new" in every string of obj, keys
// untouched: an image pinned by a digest that conversion changed names a
// manifest the registry does not hold. Only whole digests after "@" are
// replaced, so a digest quoted elsewhere (a checksum) stays.
func rewriteDigests(obj map[string]any, m map[string]string) []string {
	if len(m) == 0 {
		return nil
	}
	olds := make([]string, 0, len(m))
	for old := range m {
		olds = append(olds, old)
	}
	sort.Strings(olds)
	counts := map[string]int{}
	swap := func(v string) string {
		for _, old := range olds {
			if to := m[old]; to != old && strings.Contains(v, "@"+old) {
				counts[old] += strings.Count(v, "@"+old)
				v = strings.ReplaceAll(v, "@"+old, "@"+to)
			}
		}
		return v
	}
	var walk func(v any) any
	walk = func(v any) any {
		switch t := v.(type) {
		case string:
			return swap(t)
		case map[string]any:
			for k, e := range t {
				t[k] = walk(e)
			}
		case []any:
			for i, e := range t {
				t[i] = walk(e)
			}
		}
		return v
	}
	walk(obj)
	var notes []string
	for _, old := range olds {
		if n := counts[old]; n > 0 {
			notes = append(notes, fmt.Sprintf("image digest %s -> %s (%d)", old, m[old], n))
		}
	}
	return notes
}
