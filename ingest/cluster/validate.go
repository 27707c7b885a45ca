package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferrytool/ferry/manifest"
)

// Report is the outcome of [Validate]: one check per expectation.
type Report struct {
	OK     bool    `json:"ok"`
	Checks []Check `json:"checks"`
}

// Check is one expectation about the end state.
type Check struct {
	Cluster string `json:"cluster"`
	Name    string `json:"name"`
	OK      bool   `json:"ok"`
	// Detail says what was found, or why the check failed.
	Detail string `json:"detail"`
}

// Validate checks the end state Apply produces, without changing anything:
// the Project's allow-list holds the workload namespace; the VariableSet
// holds the three variables with the expected values; the spoke's workload
// namespace holds Secret zot-ca, Opaque, with ca.crt; and every bundle object
// of a kind the hub serves exists in the project namespace. A failed API
// request fails its check rather than the whole report; the error return is
// for Options that cannot work.
func Validate(ctx context.Context, opts Options) (*Report, error) {
	s, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	r := &Report{OK: true}
	add := func(c Check) {
		r.Checks = append(r.Checks, c)
		if !c.OK {
			r.OK = false
		}
	}
	if s.Hub != nil {
		hub, err := newKube("hub", s.Hub)
		if err != nil {
			return nil, err
		}
		add(checkAllowList(ctx, s, hub))
		for _, c := range checkVariables(ctx, s, hub) {
			add(c)
		}
		if s.Bundle != nil {
			for _, c := range checkImported(ctx, s, hub) {
				add(c)
			}
		}
	}
	if s.Spoke != nil {
		spoke, err := newKube("spoke", s.Spoke)
		if err != nil {
			return nil, err
		}
		add(checkCASecret(ctx, s, spoke))
	}
	return r, nil
}

func checkAllowList(ctx context.Context, s *settings, hub *kube) Check {
	c := Check{Cluster: "hub", Name: fmt.Sprintf("Project %s/%s allows namespace %s", s.ProjectNamespace, s.Project, s.WorkloadNamespace)}
	sv, err := hub.paletteKind("Project")
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	p, err := hub.dyn.Resource(sv.gvr).Namespace(s.ProjectNamespace).Get(ctx, s.Project, metav1.GetOptions{})
	if err != nil {
		c.Detail = hub.apiErr("get", sv.resourceName(), s.ProjectNamespace, s.Project, err).Error()
		return c
	}
	_, present, err := allowListOps(p.Object, s.WorkloadNamespace)
	switch {
	case err != nil:
		c.Detail = err.Error()
	case present:
		c.OK, c.Detail = true, "allow-list holds "+s.WorkloadNamespace
	default:
		v, _ := manifest.Path(allowListPath).Get(p.Object)
		c.Detail = fmt.Sprintf("allow-list is %v", v)
	}
	return c
}

func checkVariables(ctx context.Context, s *settings, hub *kube) []Check {
	want := s.variables.list()
	checks := make([]Check, len(want))
	for i, w := range want {
		checks[i] = Check{Cluster: "hub", Name: fmt.Sprintf("VariableSet %s/%s: %s = %s", s.ProjectNamespace, s.VariableSet, w.name, w.value)}
	}
	fail := func(detail string) []Check {
		for i := range checks {
			checks[i].Detail = detail
		}
		return checks
	}
	sv, err := hub.paletteKind("VariableSet")
	if err != nil {
		return fail(err.Error())
	}
	vs, err := hub.dyn.Resource(sv.gvr).Namespace(s.ProjectNamespace).Get(ctx, s.VariableSet, metav1.GetOptions{})
	if err != nil {
		return fail(hub.apiErr("get", sv.resourceName(), s.ProjectNamespace, s.VariableSet, err).Error())
	}
	got := manifest.VariableSetOf(&manifest.Object{Content: vs.Object})
	for i, w := range want {
		checks[i].Detail = "not set"
		for _, v := range got.Variables {
			if v.Name != w.name {
				continue
			}
			sv, ok := v.StringValue()
			switch {
			case v.Type != "string":
				checks[i].Detail = fmt.Sprintf("variableType is %q", v.Type)
			case !ok:
				checks[i].Detail = fmt.Sprintf("value is %v", v.Value)
			case sv != w.value:
				checks[i].Detail = fmt.Sprintf("value is %q", sv)
			default:
				checks[i].OK, checks[i].Detail = true, "set"
			}
			break
		}
	}
	return checks
}

func checkImported(ctx context.Context, s *settings, hub *kube) []Check {
	var checks []Check
	for _, o := range s.Bundle.Objects {
		if o.Name() == "" {
			continue
		}
		sv, err := hub.lookup(o.APIVersion(), o.Kind())
		var ns errNotServed
		if errors.As(err, &ns) || (err == nil && !sv.namespaced) {
			continue // skipped by the import as well
		}
		c := Check{Cluster: "hub", Name: fmt.Sprintf("%s %s/%s exists", o.Kind(), s.ProjectNamespace, o.Name())}
		if err != nil {
			c.Detail = err.Error()
			checks = append(checks, c)
			continue
		}
		got, err := hub.dyn.Resource(sv.gvr).Namespace(s.ProjectNamespace).Get(ctx, o.Name(), metav1.GetOptions{})
		if err != nil {
			c.Detail = hub.apiErr("get", sv.resourceName(), s.ProjectNamespace, o.Name(), err).Error()
		} else {
			c.OK, c.Detail = true, "resourceVersion "+got.GetResourceVersion()
		}
		checks = append(checks, c)
	}
	return checks
}

func checkCASecret(ctx context.Context, s *settings, spoke *kube) Check {
	c := Check{Cluster: "spoke", Name: fmt.Sprintf("Secret %s/%s is Opaque with %s", s.WorkloadNamespace, DefaultCASecret, caKey)}
	sec, err := spoke.core.CoreV1().Secrets(s.WorkloadNamespace).Get(ctx, DefaultCASecret, metav1.GetOptions{})
	if err != nil {
		c.Detail = spoke.apiErr("get", "secrets", s.WorkloadNamespace, DefaultCASecret, err).Error()
		return c
	}
	var keys []string
	for k := range sec.Data {
		keys = append(keys, k)
	}
	switch {
	case sec.Type != corev1.SecretTypeOpaque:
		c.Detail = fmt.Sprintf("type is %s", sec.Type)
	case len(sec.Data[caKey]) == 0:
		c.Detail = "no " + caKey
	case len(sec.Data) != 1:
		c.Detail = "holds more keys than " + caKey + ": " + strings.Join(keys, ", ")
	default:
		if _, err := caFromSource(sec); err != nil {
			c.Detail = err.Error()
		} else {
			c.OK, c.Detail = true, fmt.Sprintf("%s: %d bytes", caKey, len(sec.Data[caKey]))
		}
	}
	return c
}
