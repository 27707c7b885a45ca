package main

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/ferrytool/ferry/archive"
	"github.com/ferrytool/ferry/collect"
	"github.com/ferrytool/ferry/manifest"
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
	under, orphans := attachedRows(plan.BOM)
	for _, a := range plan.BOM.Artifacts {
		if a.Kind == manifest.KindReferrer && !containsArtifact(orphans, a.Name) {
			continue // listed under its image
		}
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
		for _, at := range under[a.Name] {
			fmt.Fprintf(tw, "  %s\t  %s\t%s\t%s\t%s\n", at.Referrer.Kind, at.Name, at.Dest.String(), humanBytes(sizeOf(size, at)), at.Referrer.ArtifactType)
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

// printGaps lists what was found named but not carried.
func printGaps(env *environment, gaps []manifest.Gap) {
	if len(gaps) == 0 {
		return
	}
	fmt.Fprintf(env.stdout, "\n%d gap(s): named but not carried (recorded in the bill of materials; --strict makes them fatal):\n", len(gaps))
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tNAME\tWANTED BY\tREASON")
	for _, g := range gaps {
		var by []string
		for _, r := range g.WantedBy {
			by = append(by, strings.TrimSpace(r.From+": "+r.Detail))
		}
		if len(by) == 0 {
			by = []string{"-"}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", g.Kind, g.Name, by[0], g.Reason)
		for _, b := range by[1:] {
			fmt.Fprintf(tw, "\t\t%s\t\n", b)
		}
	}
	tw.Flush()
}

// collectReport is what --report writes.
type collectReport struct {
	ArchiveID string               `json:"archiveID"`
	Artifacts []manifest.Artifact  `json:"artifacts"`
	Gaps      []manifest.Gap       `json:"gaps"`
	Warnings  []string             `json:"warnings"`
	Volumes   []archive.VolumeInfo `json:"volumes,omitempty"`
	// Verifications are the image signature checks (--image-key).
	Verifications []manifest.ImageVerification `json:"verifications,omitempty"`
}

func writeCollectReport(path string, bom *manifest.BOM, warnings []string, volumes []archive.VolumeInfo) error {
	if path == "" {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--report: %w", err)
	}
	rep := collectReport{ArchiveID: bom.ArchiveID, Artifacts: bom.Artifacts, Gaps: bom.Gaps, Warnings: warnings, Volumes: volumes, Verifications: bom.Verifications}
	if rep.Gaps == nil {
		rep.Gaps = []manifest.Gap{}
	}
	if rep.Warnings == nil {
		rep.Warnings = []string{}
	}
	if err := writeJSON(f, rep); err != nil {
		f.Close()
		return fmt.Errorf("--report: %w", err)
	}
	return f.Close()
}
