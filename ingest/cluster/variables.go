package cluster

import (
	"context"
	"fmt"
	"reflect"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
)

// wantVariable is one variable ferry keeps in the VariableSet.
type wantVariable struct{ name, value string }

func (v Variables) list() []wantVariable {
	return []wantVariable{
		{VarZotCertSecret, v.ZotCertSecret},
		{VarZotAuthSecret, v.ZotAuthSecret},
		{VarInternalZotURL, v.InternalZotURL},
	}
}

// variableEntry is how a string variable looks in spec.variables.
func variableEntry(name, value string) map[string]any {
	return map[string]any{"name": name, "variableType": "string", "value": map[string]any{"string": value}}
}

// upsertVariables sets the Zot variables in the project VariableSet by name:
// an entry that exists gets variableType string and value {string: ...}
// (its other fields stay); a missing one is appended. Every other variable
// and every unknown field is left as it is. The VariableSet is created only
// when CreateVariableSet says so.
func upsertVariables(ctx context.Context, s *settings, hub *kube, sr *StepResult) error {
	sv, err := hub.paletteKind("VariableSet")
	if err != nil {
		return err
	}
	ri := hub.dyn.Resource(sv.gvr).Namespace(s.ProjectNamespace)
	want := s.variables.list()
	it := Item{Kind: "VariableSet", Namespace: s.ProjectNamespace, Name: s.VariableSet}
	for attempt := 1; ; attempt++ {
		cur, err := ri.Get(ctx, s.VariableSet, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			if !s.CreateVariableSet {
				return fmt.Errorf("%w: %s/%s on the hub, and creating it was not asked for",
					ErrVariableSetMissing, s.ProjectNamespace, s.VariableSet)
			}
			var vars []any
			for _, w := range want {
				vars = append(vars, variableEntry(w.name, w.value))
			}
			obj := &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": sv.gvk.GroupVersion().String(),
				"kind":       sv.gvk.Kind,
				"metadata":   map[string]any{"name": s.VariableSet, "namespace": s.ProjectNamespace},
				"spec":       map[string]any{"variables": vars},
			}}
			if s.hooks.beforeWrite != nil {
				s.hooks.beforeWrite(StepVariables, attempt)
			}
			after, err := ri.Create(ctx, obj, metav1.CreateOptions{FieldManager: s.FieldManager, DryRun: dryRun(s.DryRun)})
			if apierrors.IsAlreadyExists(err) && attempt < maxAttempts {
				continue // created meanwhile: upsert into it instead
			}
			if err != nil {
				return hub.apiErr("create", sv.resourceName(), s.ProjectNamespace, s.VariableSet, err)
			}
			it.Action, it.Detail = ActionCreated, "created with "+VarZotCertSecret+", "+VarZotAuthSecret+", "+VarInternalZotURL
			it.Diff = diffObjects("variableset/"+s.VariableSet, nil, after.Object)
			break
		}
		if err != nil {
			return hub.apiErr("get", sv.resourceName(), s.ProjectNamespace, s.VariableSet, err)
		}
		ops, notes, err := variableOps(cur.Object, want)
		if err != nil {
			return fmt.Errorf("%w: VariableSet %s/%s: %v", ErrRejected, s.ProjectNamespace, s.VariableSet, err)
		}
		if len(ops) == 0 {
			it.Action, it.Detail = ActionUnchanged, "variables hold the expected values"
			break
		}
		patch, err := guardedPatch(cur.GetResourceVersion(), ops)
		if err != nil {
			return err
		}
		if s.hooks.beforeWrite != nil {
			s.hooks.beforeWrite(StepVariables, attempt)
		}
		after, err := ri.Patch(ctx, s.VariableSet, types.JSONPatchType, patch, metav1.PatchOptions{FieldManager: s.FieldManager, DryRun: dryRun(s.DryRun)})
		if apierrors.IsConflict(err) && attempt < maxAttempts {
			s.log.Debug("variable set changed while patching; retrying", "attempt", attempt)
			continue
		}
		if err != nil {
			return hub.apiErr("patch", sv.resourceName(), s.ProjectNamespace, s.VariableSet, err)
		}
		it.Action, it.Detail = ActionUpdated, joinNotes(notes)
		it.Diff = diffObjects("variableset/"+s.VariableSet, cur.Object, after.Object)
		break
	}
	sr.Items = append(sr.Items, it)
	return nil
}

// variableOps returns the JSON patch operations that make spec.variables
// hold want, each addressed by index (so nothing else is rewritten), and a
// note per variable changed.
func variableOps(obj map[string]any, want []wantVariable) ([]patchOp, []string, error) {
	spec, hasSpec := obj["spec"]
	if !hasSpec || spec == nil {
		var vars []any
		var notes []string
		for _, w := range want {
			vars = append(vars, variableEntry(w.name, w.value))
			notes = append(notes, w.name+" added")
		}
		return []patchOp{{Op: "add", Path: "/spec", Value: map[string]any{"variables": vars}}}, notes, nil
	}
	specMap, ok := spec.(map[string]any)
	if !ok {
		return nil, nil, fmt.Errorf("spec is a %T, not an object", spec)
	}
	var list []any
	switch v := specMap["variables"].(type) {
	case nil:
	case []any:
		list = v
	default:
		return nil, nil, fmt.Errorf("spec.variables is a %T, not a list", v)
	}
	var ops []patchOp
	var notes []string
	var appended []any
	for _, w := range want {
		value := map[string]any{"string": w.value}
		found := false
		for i, e := range list {
			m, ok := e.(map[string]any)
			if !ok || m["name"] != w.name {
				continue
			}
			found = true
			at := "/spec/variables/" + strconv.Itoa(i)
			// "add" on an existing member replaces it, and works when the
			// member is missing too.
			if m["variableType"] != "string" {
				ops = append(ops, patchOp{Op: "add", Path: at + "/variableType", Value: "string"})
			}
			if !reflect.DeepEqual(m["value"], value) {
				ops = append(ops, patchOp{Op: "add", Path: at + "/value", Value: value})
				old, _ := m["value"].(map[string]any)
				notes = append(notes, fmt.Sprintf("%s %v -> %s", w.name, describeValue(old), w.value))
			} else if m["variableType"] != "string" {
				notes = append(notes, fmt.Sprintf("%s variableType -> string", w.name))
			}
		}
		if !found {
			appended = append(appended, variableEntry(w.name, w.value))
			notes = append(notes, w.name+" added")
		}
	}
	if len(appended) > 0 {
		if _, present := specMap["variables"]; !present || specMap["variables"] == nil {
			ops = append(ops, patchOp{Op: "add", Path: "/spec/variables", Value: appended})
		} else {
			for _, e := range appended {
				ops = append(ops, patchOp{Op: "add", Path: "/spec/variables/-", Value: e})
			}
		}
	}
	return ops, notes, nil
}

func describeValue(v map[string]any) string {
	if s, ok := v["string"].(string); ok {
		return strconv.Quote(s)
	}
	if v == nil {
		return "(none)"
	}
	return fmt.Sprint(v)
}

func joinNotes(notes []string) string {
	out := ""
	for i, n := range notes {
		if i > 0 {
			out += "; "
		}
		out += n
	}
	return out
}
