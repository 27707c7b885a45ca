package manifest

import (
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// PaletteAI kinds ferry reads from bundles. Objects are found by kind alone:
// the real schemas, and for ClusterProfile even the apiVersion, are not
// public.
const (
	KindProfileBundle   = "ProfileBundle"
	KindClusterProfile  = "ClusterProfile"
	KindWorkloadProfile = "WorkloadProfile"
	KindVariableSet     = "VariableSet"
)

// scalarString renders a YAML scalar as text: "7.14" stays "7.14", an
// unquoted 1.33 (a float to YAML) becomes "1.33". Maps and lists give "".
func scalarString(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case int64:
		return strconv.FormatInt(t, 10)
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(t)
	default:
		return ""
	}
}

// firstKey returns the value and key of the first of keys present in m with
// a scalar value.
func firstKey(m map[string]any, keys ...string) (value, key string) {
	for _, k := range keys {
		if v, ok := m[k]; ok {
			if s := scalarString(v); s != "" {
				return s, k
			}
		}
	}
	return "", ""
}

// ObjectsOfKind returns the bundle's objects of one kind, in archive order.
func (b *Bundle) ObjectsOfKind(kind string) []*Object {
	var out []*Object
	for _, o := range b.Objects {
		if o.Kind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// ClusterProfile is a Palette cluster profile carried in a bundle.
type ClusterProfile struct {
	Object    *Object
	Name      string
	Version   string
	Type      string // cluster, infra, add-on, system
	CloudType string
	Packs     []PackRef
}

// PackRef is one entry of a cluster profile's packs list.
type PackRef struct {
	Name, Version, Tag string
	Layer              string // kernel, os, k8s, cni, csi, addon
	Type               string // spectro, helm, manifest, oci
	RegistryUID        string
	RegistryName       string
	// RegistryUIDPath is where RegistryUID sits in the object, for a
	// registry-map rewrite; nil when the pack names no registry UID.
	RegistryUIDPath Path
	// Values is the pack's values YAML, as a string.
	Values string
	// Path is the pack entry's place in the object.
	Path Path
}

// packListPaths are where cluster profiles keep their packs: Palette's import
// model nests them under spec.template; the bundle form seen in the air-gap
// guide has spec.packs.
var packListPaths = []Path{{"spec", "template", "packs"}, {"spec", "packs"}, {"packs"}}

// ClusterProfiles returns every ClusterProfile in the bundle.
func (b *Bundle) ClusterProfiles() []ClusterProfile {
	var out []ClusterProfile
	for _, o := range b.ObjectsOfKind(KindClusterProfile) {
		out = append(out, ClusterProfileOf(o))
	}
	return out
}

// ClusterProfileOf reads a ClusterProfile object; missing fields stay empty.
func ClusterProfileOf(o *Object) ClusterProfile {
	cp := ClusterProfile{
		Object:    o,
		Name:      o.Name(),
		Version:   firstString(o, Path{"spec", "version"}, Path{"version"}, Path{"metadata", "version"}),
		Type:      firstString(o, Path{"spec", "template", "type"}, Path{"spec", "type"}),
		CloudType: firstString(o, Path{"spec", "template", "cloudType"}, Path{"spec", "cloudType"}),
	}
	for _, lp := range packListPaths {
		v, ok := lp.Get(o.Content)
		list, isList := v.([]any)
		if !ok || !isList {
			continue
		}
		for i, e := range list {
			m, ok := e.(map[string]any)
			if !ok {
				continue
			}
			p := lp.Child(strconv.Itoa(i))
			pr := PackRef{Path: p}
			pr.Name, _ = firstKey(m, "name")
			pr.Version, _ = firstKey(m, "version")
			pr.Tag, _ = firstKey(m, "tag")
			pr.Layer, _ = firstKey(m, "layer")
			pr.Type, _ = firstKey(m, "type")
			pr.Values, _ = firstKey(m, "values")
			pr.RegistryUID, pr.RegistryUIDPath = registryUID(m, p)
			pr.RegistryName = registryName(m)
			cp.Packs = append(cp.Packs, pr)
		}
		break
	}
	return cp
}

// registryUID finds a pack's registry UID: registry.uid, registry.metadata.uid
// or registryUid (the field name of Palette's PackRef model).
func registryUID(pack map[string]any, at Path) (string, Path) {
	if reg, ok := pack["registry"].(map[string]any); ok {
		if v, k := firstKey(reg, "uid", "registryUid"); v != "" {
			return v, at.Child("registry", k)
		}
		if md, ok := reg["metadata"].(map[string]any); ok {
			if v, k := firstKey(md, "uid"); v != "" {
				return v, at.Child("registry", "metadata", k)
			}
		}
	}
	if v, k := firstKey(pack, "registryUid", "registryUID"); v != "" {
		return v, at.Child(k)
	}
	return "", nil
}

func registryName(pack map[string]any) string {
	if reg, ok := pack["registry"].(map[string]any); ok {
		if v, _ := firstKey(reg, "name"); v != "" {
			return v
		}
		if md, ok := reg["metadata"].(map[string]any); ok {
			if v, _ := firstKey(md, "name"); v != "" {
				return v
			}
		}
	}
	v, _ := firstKey(pack, "registryName")
	return v
}

func firstString(o *Object, paths ...Path) string {
	for _, p := range paths {
		if v, ok := p.Get(o.Content); ok {
			if s := scalarString(v); s != "" {
				return s
			}
		}
	}
	return ""
}

// WorkloadProfile is a PaletteAI workload profile carried in a bundle.
type WorkloadProfile struct {
	Object    *Object
	Name      string
	Namespace string
	Type      string // Application, Model, Infrastructure
	// Charts lists every Helm chart reference in the profile.
	Charts []ChartRef
	// Variables lists the user variables the profile uses as `{{ name }}`
	// macros, sorted, each once.
	Variables []string
}

// ChartRef is a Helm chart reference inside an object: a map holding a chart
// name under one of chart or chartName, with a version (version or
// chartVersion) and a repository (repository, repoURL, url or repo) beside
// it. The exact keys of the real schema are unknown, so all are tried.
type ChartRef struct {
	Name       string
	Version    string
	Repository string // https://..., oci://..., or a macro such as oci://{{ internal-zot-url }}/...
	// Path is the map holding the reference; NamePath, VersionPath and
	// RepositoryPath locate each value. VersionPath and RepositoryPath are
	// nil when the reference has no such key.
	Path, NamePath, VersionPath, RepositoryPath Path
}

// IsOCI reports whether the chart comes from an OCI registry.
func (c ChartRef) IsOCI() bool { return strings.HasPrefix(strings.ToLower(c.Repository), "oci://") }

// Templated reports whether the name, version or repository holds a macro
// that PaletteAI expands at deploy time, such as `{{ internal-zot-url }}`.
func (c ChartRef) Templated() bool {
	return strings.Contains(c.Name+c.Version+c.Repository, "{{")
}

var (
	chartNameKeys       = []string{"chart", "chartName"}
	chartVersionKeys    = []string{"version", "chartVersion"}
	chartRepositoryKeys = []string{"repository", "repoURL", "url", "repo"}
)

// WorkloadProfiles returns every WorkloadProfile in the bundle.
func (b *Bundle) WorkloadProfiles() []WorkloadProfile {
	var out []WorkloadProfile
	for _, o := range b.ObjectsOfKind(KindWorkloadProfile) {
		out = append(out, WorkloadProfileOf(o))
	}
	return out
}

// WorkloadProfileOf reads a WorkloadProfile object.
func WorkloadProfileOf(o *Object) WorkloadProfile {
	return WorkloadProfile{
		Object:    o,
		Name:      o.Name(),
		Namespace: o.Namespace(),
		Type:      firstString(o, Path{"spec", "type"}),
		Charts:    ChartRefs(o),
		Variables: ObjectMacroNames(o),
	}
}

// ChartRefs finds every chart reference anywhere in o outside metadata, in a
// stable order (map keys sorted). A chart reference's own children, such as
// its values, are not searched further.
func ChartRefs(o *Object) []ChartRef {
	var out []ChartRef
	var walk func(v any, at Path)
	walk = func(v any, at Path) {
		switch t := v.(type) {
		case map[string]any:
			if ref, ok := chartRefAt(t, at); ok {
				out = append(out, ref)
				return
			}
			for _, k := range sortedKeys(t) {
				if len(at) == 0 && k == "metadata" {
					continue
				}
				walk(t[k], at.Child(k))
			}
		case []any:
			for i, e := range t {
				walk(e, at.Child(strconv.Itoa(i)))
			}
		}
	}
	walk(o.Content, nil)
	return out
}

// chartRefAt reads a chart reference from m when m names a chart: directly
// (chart: clearml) or as a nested map (chart: {name: clearml, version: ...},
// where version and repository may also sit beside the nested map).
func chartRefAt(m map[string]any, at Path) (ChartRef, bool) {
	for _, nk := range chartNameKeys {
		switch v := m[nk].(type) {
		case map[string]any:
			name, key := firstKey(v, append([]string{"name"}, chartNameKeys...)...)
			if name == "" {
				continue
			}
			inner := at.Child(nk)
			ref := ChartRef{Name: name, Path: inner, NamePath: inner.Child(key)}
			ref.Version, ref.VersionPath = keyIn(v, inner, chartVersionKeys)
			if ref.Version == "" {
				ref.Version, ref.VersionPath = keyIn(m, at, chartVersionKeys)
			}
			ref.Repository, ref.RepositoryPath = keyIn(v, inner, chartRepositoryKeys)
			if ref.Repository == "" {
				ref.Repository, ref.RepositoryPath = keyIn(m, at, chartRepositoryKeys)
			}
			return ref, true
		default:
			name := scalarString(v)
			if name == "" {
				continue
			}
			ref := ChartRef{Name: name, Path: at, NamePath: at.Child(nk)}
			ref.Version, ref.VersionPath = keyIn(m, at, chartVersionKeys)
			ref.Repository, ref.RepositoryPath = keyIn(m, at, chartRepositoryKeys)
			return ref, true
		}
	}
	return ChartRef{}, false
}

func keyIn(m map[string]any, at Path, keys []string) (string, Path) {
	if v, k := firstKey(m, keys...); v != "" {
		return v, at.Child(k)
	}
	return "", nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// macroPattern matches a PaletteAI user-variable macro, `{{ name }}`. Palette
// system macros start with a dot (`{{.spectro.pack...}}`) and Helm template
// expressions hold spaces or dots, so neither matches.
var macroPattern = regexp.MustCompile(`\{\{\s*([A-Za-z_][A-Za-z0-9_-]*)\s*\}\}`)

// MacroNames returns the user-variable names used as `{{ name }}` in s, in
// order of first use, each once.
func MacroNames(s string) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range macroPattern.FindAllStringSubmatch(s, -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			out = append(out, m[1])
		}
	}
	return out
}

// ObjectMacroNames returns the user-variable names used in any string value
// of o, sorted, each once.
func ObjectMacroNames(o *Object) []string {
	seen := map[string]bool{}
	var walk func(v any)
	walk = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			for _, e := range t {
				walk(e)
			}
		case []any:
			for _, e := range t {
				walk(e)
			}
		case string:
			for _, n := range MacroNames(t) {
				seen[n] = true
			}
		}
	}
	walk(o.Content)
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// VariableSet is a PaletteAI VariableSet: named, typed values that macros
// refer to.
type VariableSet struct {
	Object    *Object
	Name      string
	Namespace string
	Variables []Variable
}

// Variable is one entry of spec.variables.
type Variable struct {
	Name string
	Type string // variableType; only "string" has been seen
	// Value is the value object keyed by type, e.g. {"string": "zot-ca"}.
	Value map[string]any
	// Path is the entry's place in the object.
	Path Path
}

// StringValue returns value.string and whether it is set.
func (v Variable) StringValue() (string, bool) {
	s, ok := v.Value["string"].(string)
	return s, ok
}

// VariableSets returns every VariableSet carried in the bundle.
func (b *Bundle) VariableSets() []VariableSet {
	var out []VariableSet
	for _, o := range b.ObjectsOfKind(KindVariableSet) {
		out = append(out, VariableSetOf(o))
	}
	return out
}

// VariableSetOf reads a VariableSet object, from the bundle or from a hub.
func VariableSetOf(o *Object) VariableSet {
	vs := VariableSet{Object: o, Name: o.Name(), Namespace: o.Namespace()}
	at := Path{"spec", "variables"}
	v, _ := at.Get(o.Content)
	list, _ := v.([]any)
	for i, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			continue
		}
		vr := Variable{Path: at.Child(strconv.Itoa(i))}
		vr.Name, _ = firstKey(m, "name")
		vr.Type, _ = firstKey(m, "variableType", "type")
		vr.Value, _ = m["value"].(map[string]any)
		vs.Variables = append(vs.Variables, vr)
	}
	return vs
}

// ProfileBundle is the PaletteAI ProfileBundle object of a bundle.
type ProfileBundle struct {
	Object           *Object
	Name             string
	Namespace        string
	Type             string // Infrastructure, Application, Model, Fullstack
	Version          string
	ClusterProfiles  []ProfileRef
	WorkloadProfiles []ProfileRef
	// HelmRepositories and OCIRepositories are the repositories of
	// spec.workloadProfileDependencies, which PaletteAI creates on import.
	HelmRepositories []RepositoryRef
	OCIRepositories  []RepositoryRef
}

// ProfileRef names a profile and its version (or revision).
type ProfileRef struct {
	Name, Version string
}

// RepositoryRef is a Helm or OCI repository a bundle depends on.
type RepositoryRef struct {
	Name, URL string
	Path      Path
}

// ProfileBundles returns every ProfileBundle object in the bundle; a
// well-formed archive has exactly one.
func (b *Bundle) ProfileBundles() []ProfileBundle {
	var out []ProfileBundle
	for _, o := range b.ObjectsOfKind(KindProfileBundle) {
		out = append(out, ProfileBundleOf(o))
	}
	return out
}

// ProfileBundleOf reads a ProfileBundle object.
func ProfileBundleOf(o *Object) ProfileBundle {
	pb := ProfileBundle{
		Object:    o,
		Name:      o.Name(),
		Namespace: o.Namespace(),
		Type:      firstString(o, Path{"spec", "type"}),
		Version:   firstString(o, Path{"spec", "version"}),
	}
	pb.ClusterProfiles = profileRefs(o, Path{"spec", "clusterProfiles"})
	pb.WorkloadProfiles = profileRefs(o, Path{"spec", "workloadProfiles"})
	deps := Path{"spec", "workloadProfileDependencies"}
	pb.HelmRepositories = repositoryRefs(o, deps.Child("helmRepositories"))
	pb.OCIRepositories = repositoryRefs(o, deps.Child("ociRepositories"))
	return pb
}

func profileRefs(o *Object, at Path) []ProfileRef {
	var out []ProfileRef
	v, _ := at.Get(o.Content)
	list, _ := v.([]any)
	for _, e := range list {
		switch t := e.(type) {
		case map[string]any:
			r := ProfileRef{}
			r.Name, _ = firstKey(t, "name")
			r.Version, _ = firstKey(t, "version", "revision")
			out = append(out, r)
		case string:
			out = append(out, ProfileRef{Name: t})
		}
	}
	return out
}

func repositoryRefs(o *Object, at Path) []RepositoryRef {
	var out []RepositoryRef
	v, _ := at.Get(o.Content)
	list, _ := v.([]any)
	for i, e := range list {
		if m, ok := e.(map[string]any); ok {
			r := RepositoryRef{Path: at.Child(strconv.Itoa(i))}
			r.Name, _ = firstKey(m, "name")
			r.URL, _ = firstKey(m, "url", "repoURL", "repository")
			out = append(out, r)
		}
	}
	return out
}
