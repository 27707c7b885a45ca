package main

import (
	"fmt"
	"io"

	"github.com/ferrytool/ferry/ingest"
)

// A registry that refuses one kind of manifest refuses every artifact of
// that kind with the same words, often kilobytes of them. The report says
// each distinct reason once, with the artifacts it applies to under it.

// refusal is one distinct reason and the artifacts refused for it.
type refusal struct {
	reason    string
	artifacts []string
}

// refusals groups the refused artifacts of a report by reason, in the
// order the reasons first appear.
func refusals(arts []ingest.ArtifactResult) []refusal {
	var out []refusal
	at := map[string]int{}
	for _, a := range arts {
		if a.State != ingest.StateRefused {
			continue
		}
		i, ok := at[a.Reason]
		if !ok {
			i = len(out)
			at[a.Reason] = i
			out = append(out, refusal{reason: a.Reason})
		}
		out[i].artifacts = append(out[i].artifacts, a.Name)
	}
	return out
}

// refusalRef is what the report's table says of a refused artifact: the
// number of its reason in the list below the table.
func refusalRef(groups []refusal, reason string) string {
	for i, g := range groups {
		if g.reason == reason {
			return fmt.Sprintf("reason %d below", i+1)
		}
	}
	return reason
}

// printRefusals lists each distinct reason once, its artifacts under it.
func printRefusals(w io.Writer, groups []refusal) {
	if len(groups) == 0 {
		return
	}
	n := 0
	for _, g := range groups {
		n += len(g.artifacts)
	}
	fmt.Fprintf(w, "\n%d artifact(s) refused, for %d reason(s):\n", n, len(groups))
	for i, g := range groups {
		fmt.Fprintf(w, "  reason %d: %s\n", i+1, g.reason)
		for _, a := range g.artifacts {
			fmt.Fprintf(w, "    %s\n", a)
		}
	}
}

// refusedOnce says a refused artifact's reason the first time it is seen,
// and refers to that artifact after.
type refusedOnce struct {
	first map[string]string // reason -> first artifact refused for it
}

func (r *refusedOnce) line(name, reason string) string {
	if r.first == nil {
		r.first = map[string]string{}
	}
	if prev, ok := r.first[reason]; ok {
		return fmt.Sprintf("REFUSED  %s: as %s", name, prev)
	}
	r.first[reason] = name
	return fmt.Sprintf("REFUSED  %s: %s", name, reason)
}
