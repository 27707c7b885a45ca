package cluster

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// paletteGroup is the API group of PaletteAI's resources.
const paletteGroup = "spectrocloud.com"

// kube is one cluster's clients. Discovery runs once, on first need.
type kube struct {
	name  string // "hub" or "spoke", for messages
	dyn   dynamic.Interface
	core  kubernetes.Interface
	disco discovery.DiscoveryInterface

	groups []*restmapper.APIGroupResources
	mapper meta.RESTMapper
}

func newKube(name string, cfg *rest.Config) (*kube, error) {
	cfg = rest.CopyConfig(cfg)
	// client-go's default of 5 requests a second would make a large bundle
	// import crawl; the API server's own priority and fairness still applies.
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 50, 100
	}
	cfg.UserAgent = "ferry"
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %s client: %v", ErrInvalidOptions, name, err)
	}
	core, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %s client: %v", ErrInvalidOptions, name, err)
	}
	return &kube{name: name, dyn: dyn, core: core, disco: core.Discovery()}, nil
}

// apiErr wraps err from the API server, naming verb and resource.
func (k *kube) apiErr(verb, resource, namespace, name string, err error) error {
	if err == nil {
		return nil
	}
	return &APIError{Cluster: k.name, Verb: verb, Resource: resource, Namespace: namespace, Name: name, Err: err}
}

// discover reads the served API groups and resources once. A group that
// fails discovery (an aggregated API that is down) is left out rather than
// failing the run: its kinds are then reported as not served.
func (k *kube) discover() error {
	if k.mapper != nil {
		return nil
	}
	groups, err := restmapper.GetAPIGroupResources(k.disco)
	if err != nil {
		return k.apiErr("list", "API discovery", "", "", err)
	}
	k.groups = groups
	k.mapper = restmapper.NewDiscoveryRESTMapper(groups)
	return nil
}

// served is a kind the API server serves, found through discovery.
type served struct {
	gvk        schema.GroupVersionKind
	gvr        schema.GroupVersionResource
	namespaced bool
}

// resourceName is how messages name the resource: "projects.spectrocloud.com",
// or "secrets" for the core group.
func (s served) resourceName() string {
	if s.gvr.Group == "" {
		return s.gvr.Resource
	}
	return s.gvr.Resource + "." + s.gvr.Group
}

// errNotServed explains why a kind cannot be written.
type errNotServed struct{ reason string }

func (e errNotServed) Error() string { return e.reason }

// lookup finds how the API server serves apiVersion/kind. An empty
// apiVersion matches the kind in any group, when exactly one serves it.
func (k *kube) lookup(apiVersion, kind string) (served, error) {
	if err := k.discover(); err != nil {
		return served{}, err
	}
	if apiVersion == "" {
		var found []served
		for _, g := range k.groups {
			v := g.Group.PreferredVersion.Version
			for _, r := range g.VersionedResources[v] {
				if r.Kind == kind && !strings.Contains(r.Name, "/") {
					found = append(found, served{
						gvk:        schema.GroupVersionKind{Group: g.Group.Name, Version: v, Kind: kind},
						gvr:        schema.GroupVersionResource{Group: g.Group.Name, Version: v, Resource: r.Name},
						namespaced: r.Namespaced,
					})
				}
			}
		}
		switch len(found) {
		case 0:
			return served{}, errNotServed{fmt.Sprintf("the %s serves no kind %s in any API group", k.name, kind)}
		case 1:
			return found[0], nil
		default:
			var gs []string
			for _, f := range found {
				gs = append(gs, f.gvk.GroupVersion().String())
			}
			return served{}, errNotServed{fmt.Sprintf("no apiVersion, and the %s serves kind %s in several groups: %s", k.name, kind, strings.Join(gs, ", "))}
		}
	}
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return served{}, errNotServed{fmt.Sprintf("bad apiVersion %q: %v", apiVersion, err)}
	}
	m, err := k.mapper.RESTMapping(gv.WithKind(kind).GroupKind(), gv.Version)
	if err != nil {
		if meta.IsNoMatchError(err) {
			if other, err2 := k.mapper.RESTMapping(gv.WithKind(kind).GroupKind()); err2 == nil {
				return served{}, errNotServed{fmt.Sprintf("the %s serves %s only as %s", k.name, kind, other.GroupVersionKind.GroupVersion())}
			}
			return served{}, errNotServed{fmt.Sprintf("the %s does not serve kind %s (%s)", k.name, kind, apiVersion)}
		}
		return served{}, err
	}
	return served{gvk: m.GroupVersionKind, gvr: m.Resource, namespaced: m.Scope.Name() == meta.RESTScopeNameNamespace}, nil
}

// paletteKind finds a PaletteAI kind at whatever version the hub prefers.
func (k *kube) paletteKind(kind string) (served, error) {
	if err := k.discover(); err != nil {
		return served{}, err
	}
	m, err := k.mapper.RESTMapping(schema.GroupKind{Group: paletteGroup, Kind: kind})
	if err != nil {
		if meta.IsNoMatchError(err) {
			return served{}, fmt.Errorf("%w: the %s serves no kind %s in API group %s; is PaletteAI installed?", ErrNotFound, k.name, kind, paletteGroup)
		}
		return served{}, err
	}
	return served{gvk: m.GroupVersionKind, gvr: m.Resource, namespaced: m.Scope.Name() == meta.RESTScopeNameNamespace}, nil
}

// dryRun returns the DryRun value of write options.
func dryRun(on bool) []string {
	if on {
		return []string{metav1.DryRunAll}
	}
	return nil
}
