package main

import (
	"fmt"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/ferrytool/ferry/collect"
)

// What `ferry collect` shows besides progress: warnings, the plan, the pack
// report.

// warnings keeps what collect warns of as it goes, for the error path: a
// failed run has no plan or result to read them from, and a warning such
// as a mirror taken on trust matters most when something went wrong.
type warnings struct {
	mu   sync.Mutex
	list []string
}

func (w *warnings) add(msg string) {
	w.mu.Lock()
	w.list = append(w.list, msg)
	w.mu.Unlock()
}

func (w *warnings) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.list...)
}

func printWarnings(env *environment, ws []string) {
	for _, w := range ws {
		fmt.Fprintf(env.stderr, "warning: %s\n", w)
	}
}

func printPlan(env *environment, plan *collect.Plan, volumeSize int64) {
	if len(plan.Packs) > 0 {
		printPacks(env, plan.Packs)
		fmt.Fprintln(env.stdout)
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tNAME\tDESTINATION\tSIZE\tREASON")
	size := map[string]int64{}
	for _, b := range plan.BOM.Blobs {
		size[b.Digest] = b.Size
	}
	for _, a := range plan.BOM.Artifacts {
		var total int64
		for _, d := range a.Blobs {
			total += size[d]
		}
		reasons := []string{""}
		for i, r := range a.Reasons {
			s := strings.TrimSpace(r.From + ": " + r.Detail)
			if i == 0 {
				reasons[0] = s
			} else {
				reasons = append(reasons, s)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.Kind, a.Name, a.Dest.String(), humanBytes(total), reasons[0])
		for _, r := range reasons[1:] {
			fmt.Fprintf(tw, "\t\t\t\t%s\n", r)
		}
	}
	tw.Flush()
	printConversions(env.stdout, plan.BOM.Artifacts)
	s := plan.Stats()
	vols := "volumes: "
	if n, err := plan.Volumes(volumeSize); err != nil {
		vols += err.Error()
	} else {
		vols = fmt.Sprintf("%d volume(s)", n)
	}
	fmt.Fprintf(env.stdout, "\n%d artifacts, %d blobs: %s in total, %s to store (deduplication saves %s), %s\n",
		s.Artifacts, s.Blobs, humanBytes(s.LogicalBytes), humanBytes(s.StoredBytes), humanBytes(s.Saved()), vols)
}

// printPacks prints the pack report of the bundles.
func printPacks(env *environment, needs []collect.PackNeed) {
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PACK\tVERSION\tNEEDED BY\tPROVIDED BY")
	for _, n := range needs {
		by := n.Provided
		if by == "" {
			by = "MISSING"
		}
		fmt.Fprintf(tw, "%s\t%s\tbundle %s, ClusterProfile %s\t%s\n", n.Name, n.Version, n.Bundle, n.Profile, by)
	}
	tw.Flush()
}
