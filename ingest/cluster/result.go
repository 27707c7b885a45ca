package cluster

// Step names one of the cluster steps.
type Step string

// The steps, in the order [Apply] runs them.
const (
	StepBundleImport     Step = "bundle-import"
	StepProjectAdmission Step = "project-admission"
	StepVariables        Step = "mural-variables"
	StepSpokeCA          Step = "spoke-zot-ca"
)

// Steps lists every step in run order.
var Steps = []Step{StepBundleImport, StepProjectAdmission, StepVariables, StepSpokeCA}

// Action is what happened to one object. In a dry run, created, updated and
// deleted mean that the step would do so.
type Action string

const (
	ActionCreated   Action = "created"
	ActionUpdated   Action = "updated"
	ActionUnchanged Action = "unchanged"
	ActionSkipped   Action = "skipped"
	ActionWaited    Action = "waited"
)

// StepResult is the outcome of one step.
type StepResult struct {
	Step    Step   `json:"step"`
	Cluster string `json:"cluster"` // "hub" or "spoke"
	// Status is "changed", "unchanged", "skipped" or "failed".
	Status string `json:"status"`
	// Reason says why a step was skipped or failed.
	Reason string `json:"reason,omitempty"`
	DryRun bool   `json:"dryRun,omitempty"`
	Items  []Item `json:"items,omitempty"`
}

// Step statuses.
const (
	StatusChanged   = "changed"
	StatusUnchanged = "unchanged"
	StatusSkipped   = "skipped"
	StatusFailed    = "failed"
)

// Changed reports whether the step changed (or in a dry run would change)
// anything.
func (r StepResult) Changed() bool { return r.Status == StatusChanged }

// Item is one object a step looked at.
type Item struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	Action    Action `json:"action"`
	// Detail says what changed, or why the object was skipped.
	Detail string `json:"detail,omitempty"`
	// Diff is a unified diff of the object, before to after, without
	// server-managed metadata; empty when nothing changed.
	Diff string `json:"diff,omitempty"`
}

// Result is the outcome of [Apply]: one StepResult per step, in run order,
// up to and including a failed one.
type Result struct {
	DryRun bool         `json:"dryRun"`
	Steps  []StepResult `json:"steps"`
}

// Changed reports whether any step changed anything.
func (r *Result) Changed() bool {
	for _, s := range r.Steps {
		if s.Changed() {
			return true
		}
	}
	return false
}

// Step returns the result of one step, and false when it did not run.
func (r *Result) Step(s Step) (StepResult, bool) {
	for _, sr := range r.Steps {
		if sr.Step == s {
			return sr, true
		}
	}
	return StepResult{}, false
}

// finish sets the step's status from its items.
func (r *StepResult) finish() {
	if r.Status != "" {
		return
	}
	r.Status = StatusUnchanged
	for _, it := range r.Items {
		if it.Action == ActionCreated || it.Action == ActionUpdated {
			r.Status = StatusChanged
		}
	}
}
