package cluster

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// maxAttempts bounds the read-modify-write retries on conflict.
const maxAttempts = 6

// allowListPath is where a Project lists the namespaces its workloads may
// deploy to.
var allowListPath = []string{"spec", "admissionConfiguration", "workloadConfiguration", "deploymentNamespaces", "allow"}

// admitNamespace adds the workload namespace to the Project's allow-list
// when it is not there, creating missing parent objects, and touches nothing
// else (disallow in particular).
func admitNamespace(ctx context.Context, s *settings, hub *kube, sr *StepResult) error {
	sv, err := hub.paletteKind("Project")
	if err != nil {
		return err
	}
	ri := hub.dyn.Resource(sv.gvr).Namespace(s.ProjectNamespace)
	it := Item{Kind: "Project", Namespace: s.ProjectNamespace, Name: s.Project}
	for attempt := 1; ; attempt++ {
		cur, err := ri.Get(ctx, s.Project, metav1.GetOptions{})
		if err != nil {
			return hub.apiErr("get", sv.resourceName(), s.ProjectNamespace, s.Project, err)
		}
		ops, present, err := allowListOps(cur.Object, s.WorkloadNamespace)
		if err != nil {
			return fmt.Errorf("%w: Project %s/%s: %v", ErrRejected, s.ProjectNamespace, s.Project, err)
		}
		if present {
			it.Action = ActionUnchanged
			it.Detail = fmt.Sprintf("allow-list already holds %s", s.WorkloadNamespace)
			break
		}
		patch, err := guardedPatch(cur.GetResourceVersion(), ops)
		if err != nil {
			return err
		}
		if s.hooks.beforeWrite != nil {
			s.hooks.beforeWrite(StepProjectAdmission, attempt)
		}
		after, err := ri.Patch(ctx, s.Project, types.JSONPatchType, patch, metav1.PatchOptions{FieldManager: s.FieldManager, DryRun: dryRun(s.DryRun)})
		if apierrors.IsConflict(err) && attempt < maxAttempts {
			s.log.Debug("project changed while patching; retrying", "attempt", attempt)
			continue
		}
		if err != nil {
			return hub.apiErr("patch", sv.resourceName(), s.ProjectNamespace, s.Project, err)
		}
		it.Action = ActionUpdated
		it.Detail = fmt.Sprintf("added %s to %s", s.WorkloadNamespace, strings.Join(allowListPath, "."))
		it.Diff = diffObjects("project/"+s.Project, cur.Object, after.Object)
		break
	}
	sr.Items = append(sr.Items, it)
	return nil
}

// allowListOps returns the JSON patch operations that add ns to the
// allow-list of project, or present=true when it is already there. The
// first missing (or null) level is added whole, so a Project without
// admissionConfiguration gets one holding just the allow-list.
func allowListOps(project map[string]any, ns string) (ops []patchOp, present bool, err error) {
	cur := project
	for i, k := range allowListPath {
		v, ok := cur[k]
		if !ok || v == nil {
			value := nestedValue(allowListPath[i+1:], []any{ns})
			return []patchOp{{Op: "add", Path: pointer(allowListPath[:i+1]...), Value: value}}, false, nil
		}
		if i == len(allowListPath)-1 {
			list, ok := v.([]any)
			if !ok {
				return nil, false, fmt.Errorf("%s is a %T, not a list", strings.Join(allowListPath, "."), v)
			}
			for _, e := range list {
				if e == ns {
					return nil, true, nil
				}
			}
			return []patchOp{{Op: "add", Path: pointer(allowListPath...) + "/-", Value: ns}}, false, nil
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false, fmt.Errorf("%s is a %T, not an object", strings.Join(allowListPath[:i+1], "."), v)
		}
		cur = m
	}
	return nil, false, nil
}
