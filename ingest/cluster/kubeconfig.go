package cluster

import (
	"errors"
	"fmt"
	"os"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// KubeconfigSource says where a cluster's credentials come from, with
// kubectl's rules: an explicit file wins; otherwise the files of Paths are
// merged, the first file to set a value winning (how kubectl reads a
// KUBECONFIG of several files). The caller reads KUBECONFIG and passes its
// entries as Paths; this package reads no environment.
type KubeconfigSource struct {
	// Explicit is a kubeconfig file that must exist (--kubeconfig).
	Explicit string
	// Paths are merged when Explicit is empty; missing files are ignored,
	// as kubectl does.
	Paths []string
	// Context selects a context; "" means the current-context.
	Context string
}

// RESTConfig loads the client configuration of src. Errors wrap
// ErrInvalidOptions: a missing file, no such context, nothing configured.
func RESTConfig(src KubeconfigSource) (*rest.Config, error) {
	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: src.Explicit, Precedence: src.Paths}
	if src.Explicit != "" {
		if _, err := os.Stat(src.Explicit); err != nil {
			return nil, fmt.Errorf("%w: kubeconfig: %v", ErrInvalidOptions, err)
		}
	}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: src.Context}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	cfg, err := cc.ClientConfig()
	if err != nil {
		where := src.Explicit
		if where == "" {
			where = fmt.Sprint(src.Paths)
		}
		if clientcmd.IsEmptyConfig(err) || errors.Is(err, clientcmd.ErrEmptyConfig) {
			return nil, fmt.Errorf("%w: no cluster configured in kubeconfig %s", ErrInvalidOptions, where)
		}
		return nil, fmt.Errorf("%w: kubeconfig %s, context %q: %v", ErrInvalidOptions, where, src.Context, err)
	}
	return cfg, nil
}
