package cluster

import (
	"context"
	"fmt"
)

// Apply runs the cluster steps in order: bundle import, Project admission
// and variables on the hub, then the Zot CA on the spoke. A step without
// what it needs (no bundle, no spoke) is reported skipped. Apply stops at
// the first failing step and returns the results so far with the error; a
// second run after a successful one changes nothing.
func Apply(ctx context.Context, opts Options) (*Result, error) {
	s, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	res := &Result{DryRun: s.DryRun}
	var hub, spoke *kube
	if s.Hub != nil {
		if hub, err = newKube("hub", s.Hub); err != nil {
			return nil, err
		}
	}
	if s.Spoke != nil {
		if spoke, err = newKube("spoke", s.Spoke); err != nil {
			return nil, err
		}
	}
	type stepFunc func(context.Context, *settings, *kube, *StepResult) error
	steps := []struct {
		step    Step
		cluster string
		k       *kube
		run     stepFunc
		skip    string
	}{
		{StepBundleImport, "hub", hub, importBundle, skipIf(s.Bundle == nil, "no bundle given")},
		{StepProjectAdmission, "hub", hub, admitNamespace, ""},
		{StepVariables, "hub", hub, upsertVariables, ""},
		{StepSpokeCA, "spoke", spoke, copyZotCA, ""},
	}
	for _, st := range steps {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		sr := StepResult{Step: st.step, Cluster: st.cluster, DryRun: s.DryRun}
		switch {
		case st.k == nil:
			sr.Status, sr.Reason = StatusSkipped, fmt.Sprintf("no %s cluster given", st.cluster)
		case st.skip != "":
			sr.Status, sr.Reason = StatusSkipped, st.skip
		default:
			if s.OnStepStart != nil {
				s.OnStepStart(st.step)
			}
			s.log.Debug("step start", "step", st.step, "cluster", st.cluster, "dryRun", s.DryRun)
			if err := st.run(ctx, s, st.k, &sr); err != nil {
				sr.Status, sr.Reason = StatusFailed, err.Error()
				res.Steps = append(res.Steps, sr)
				if s.OnStep != nil {
					s.OnStep(sr)
				}
				return res, fmt.Errorf("%s: %w", st.step, err)
			}
			sr.finish()
		}
		s.log.Debug("step done", "step", st.step, "status", sr.Status)
		res.Steps = append(res.Steps, sr)
		if s.OnStep != nil {
			s.OnStep(sr)
		}
	}
	return res, nil
}

func skipIf(cond bool, reason string) string {
	if cond {
		return reason
	}
	return ""
}
