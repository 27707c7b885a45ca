package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/ferrytool/ferry/ingest"
)

// What `ferry ingest` shows: progress while it runs, then the report, the
// validation table or the journal's status.

// ingestProgress shows a byte bar for the whole run and one per volume,
// and a line per artifact as it settles.
func ingestProgress(prog progress, dryRun bool) ingest.Progress {
	var mu sync.Mutex
	var total bar
	vols := map[string]bar{}
	var once refusedOnce
	return ingest.Progress{
		OnStart: func(t ingest.Totals) {
			if dryRun {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			prog.Line("%d artifacts; up to %d blobs, %s, to send from the volumes given", t.Artifacts, t.Blobs, humanBytes(t.Bytes))
			total = prog.Bar("push", t.Bytes)
			names := make([]string, 0, len(t.VolumeBytes))
			for v := range t.VolumeBytes {
				names = append(names, v)
			}
			sort.Strings(names)
			for _, v := range names {
				if v != "" && len(names) > 1 {
					vols[v] = prog.Bar(filepath.Base(v), t.VolumeBytes[v])
				}
			}
		},
		OnBytes: func(volume string, n int64) {
			mu.Lock()
			t, v := total, vols[volume]
			mu.Unlock()
			if t != nil {
				t.Add(n)
			}
			if v != nil {
				v.Add(n)
			}
		},
		OnDockerProbe: func(p ingest.DockerProbe) { prog.Line("%s", probeLine(p, ingestConvertWays)) },
		OnArtifact: func(r ingest.ArtifactResult) {
			switch r.State {
			case ingest.StatePushed:
				prog.Line("pushed   %s -> %s", r.Name, r.Destination)
			case ingest.StateWaiting:
				prog.Line("waiting  %s: %s", r.Name, r.Reason)
			case ingest.StateRefused:
				mu.Lock()
				line := once.line(r.Name, r.Reason)
				mu.Unlock()
				prog.Line("%s", line)
			}
		},
	}
}

// The ways out of a registry that refuses Docker media types, as the
// probe line names them for each command.
const (
	ingestConvertWays = `enable "http": {"compat": ["docker2s2"]} in Zot, collect again with --convert-oci, or ingest with --convert-oci`
	syncConvertWays   = `enable "http": {"compat": ["docker2s2"]} in Zot, or run ferry sync --convert-oci`
	// ingestConvertAdvice and syncConvertAdvice end a refusal for the
	// Docker media type (ingest.CopyOptions.ConvertAdvice).
	ingestConvertAdvice = "collect again with --convert-oci (as a last resort, ingest --convert-oci converts while pushing, which changes the manifests' digests)"
	syncConvertAdvice   = "run ferry sync --convert-oci, which converts what it resolves before pushing (the manifests' digests change, layers do not)"
)

// probeLine says what the probe found, and what follows from it for this
// archive; ways names the ways out for the command that runs.
func probeLine(p ingest.DockerProbe, ways string) string {
	switch p.Result {
	case ingest.ProbeAccepts:
		s := "registry accepts Docker media types (probed in " + p.Repository + ")"
		if p.Cleanup != "" {
			s += "; " + p.Cleanup
		}
		return s
	case ingest.ProbeRefuses:
		s := "registry refuses Docker media types (probed in " + p.Repository + ": " + p.Detail + ")"
		switch {
		case p.Refused > 0:
			s += fmt.Sprintf("; %d artifact(s) with Docker manifests refused before any of their blobs was sent: %s", p.Refused, ways)
		case p.DockerArtifacts > 0:
			s += fmt.Sprintf("; %d artifact(s) have Docker manifests and would be refused: %s", p.DockerArtifacts, ways)
		}
		if p.ConvertedArtifacts > 0 {
			s += fmt.Sprintf("; %d artifact(s) have Docker manifests and will be converted to OCI (--convert-oci)", p.ConvertedArtifacts)
		}
		return s
	}
	return "could not tell whether the registry accepts Docker media types: " + p.Detail
}

func printIngestReport(w io.Writer, r *ingest.Report) { printPushReport(w, r, ingestConvertWays) }

// printPushReport is the report of an ingest or a sync; ways names how the
// command that ran converts Docker manifests.
func printPushReport(w io.Writer, r *ingest.Report, ways string) {
	if r.DockerProbe != nil {
		fmt.Fprintln(w, probeLine(*r.DockerProbe, ways))
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if r.DryRun {
		fmt.Fprintln(tw, "KIND\tARTIFACT\tDESTINATION\tSTATE\tTO SEND\tDETAIL")
	} else {
		fmt.Fprintln(tw, "KIND\tARTIFACT\tDESTINATION\tSTATE\tDETAIL")
	}
	refused := refusals(r.Artifacts)
	for _, a := range r.Artifacts {
		detail := a.Reason
		if a.State == ingest.StateRefused {
			detail = refusalRef(refused, a.Reason)
		}
		if a.State == ingest.StatePushed || a.State == ingest.StatePresent {
			detail = shortDigest(a.Digest)
			if a.PushedDigest != "" {
				detail = "as OCI " + shortDigest(a.PushedDigest)
			}
		}
		if r.DryRun {
			send := "-"
			if a.State == ingest.StateWouldPush {
				send = humanBytes(a.ToSend)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.Kind, a.Name, a.Destination, a.State, send, detail)
		} else {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.Kind, a.Name, a.Destination, a.State, detail)
		}
	}
	tw.Flush()
	printRefusals(w, refused)
	printIngestSupplyChain(w, r)
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
	printDigestChanges(w, r)
	b := r.Blobs
	vols := make([]string, 0, len(r.Volumes))
	for _, v := range r.Volumes {
		vols = append(vols, fmt.Sprint(v.Number))
	}
	if len(vols) > 0 { // none when `ferry sync` pushed straight from the sources
		fmt.Fprintf(w, "\narchive %s, volume(s) %s given\n", r.ArchiveID, strings.Join(vols, ", "))
	} else {
		fmt.Fprintln(w)
	}
	if r.DryRun {
		fmt.Fprintf(w, "registry has %d of the blobs already; %d are in volumes not given; nothing was pushed or recorded (dry run)\n", b.Found, b.Missing)
		if p := r.DockerProbe; p != nil && p.Result == ingest.ProbeAccepts && p.Cleanup == "" {
			fmt.Fprintf(w, "the Docker media type probe stored manifest %s by digest in %s and deleted it\n", shortDigest(p.Manifest), p.Repository)
		}
		return
	}
	fmt.Fprintf(w, "blobs: %d uploaded, %d resumed, %d mounted, %d already there, %d in volumes not given, %d bad; %s sent; %d manifests pushed\n",
		b.Uploaded, b.Resumed, b.Mounted, b.Found, b.Missing, b.Bad, humanBytes(b.BytesSent), b.Manifests)
	fmt.Fprintln(w, requestsLine(r))
	if r.PackSignatures != "" {
		fmt.Fprintf(w, "pack signatures: %s\n", r.PackSignatures)
	}
	for _, p := range r.PacksWritten {
		fmt.Fprintf(w, "  wrote %s\n", p)
	}
	if v := r.Validation; v != nil {
		if v.OK() {
			fmt.Fprintf(w, "validated: %d artifact(s) in the catalog (%d repositories), every tag resolves to its digest, every manifest pushed is reachable from a tag\n", len(v.Artifacts), v.CatalogRepositories)
		} else {
			fmt.Fprintln(w, "\nvalidation FAILED:")
			printValidation(w, v)
		}
	}
	if err := r.Err(); errors.Is(err, ingest.ErrIncomplete) {
		fmt.Fprintln(w, "run ingest again with the volumes named above; `ferry ingest --status` lists what waits")
	}
}

func printValidation(w io.Writer, v *ingest.Validation) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tREPOSITORY\tREF\tSTATUS\tDIGEST")
	for _, a := range v.Artifacts {
		d := shortDigest(a.Got)
		if a.Status == ingest.ValidWrongDigest {
			d = fmt.Sprintf("%s, want %s", a.Got, a.Want)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.Kind, a.Repository, a.Ref, a.Status, d)
	}
	tw.Flush()
	ok := 0
	for _, a := range v.Artifacts {
		if a.Status == ingest.ValidOK {
			ok++
		}
	}
	fmt.Fprintf(w, "%d of %d artifacts valid in %s (%d repositories in the catalog)\n", ok, len(v.Artifacts), v.Registry, v.CatalogRepositories)
}

func printStatus(w io.Writer, st *ingest.StatusReport) {
	fmt.Fprintf(w, "journal %s\n", st.Journal)
	if len(st.Destinations) == 0 {
		fmt.Fprintln(w, "nothing ingested yet")
	}
	for _, d := range st.Destinations {
		for _, a := range d.Archives {
			last := "last volume not seen yet"
			if a.LastVolume > 0 {
				last = fmt.Sprintf("%d volumes in all", a.LastVolume)
			}
			seen := make([]string, len(a.VolumesSeen))
			for i, n := range a.VolumesSeen {
				seen[i] = fmt.Sprint(n)
			}
			fmt.Fprintf(w, "\n%s: archive %s: %d of %d artifacts in; volumes seen: %s (%s); last run %s\n",
				d.Registry, a.ArchiveID, a.Complete, len(a.Artifacts), strings.Join(seen, ", "), last, a.LastRun.Local().Format(time.RFC3339))
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KIND\tARTIFACT\tDESTINATION\tSTATE\tWAITS FOR")
			for _, r := range a.Artifacts {
				waits := r.WaitingFor
				if r.State == ingest.StateRefused {
					waits = r.Reason
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Kind, r.Name, r.Destination, r.State, waits)
			}
			tw.Flush()
		}
		if d.Uploads > 0 {
			fmt.Fprintf(w, "%d upload(s) interrupted; the next run resumes them\n", d.Uploads)
		}
	}
}

// printDigestChanges lists every digest --convert-oci changed, per
// artifact, and the digest-pinned references left stale by it or by
// collect's conversion.
func printDigestChanges(w io.Writer, r *ingest.Report) {
	n, byCollect := 0, 0
	for _, a := range r.Artifacts {
		n += len(a.Converted)
		byCollect += len(a.ConvertedByCollect)
	}
	if n > 0 {
		verb := "converted to OCI"
		if r.DryRun {
			verb = "would convert to OCI"
		}
		fmt.Fprintf(w, "\n%s: %d manifest(s); their digests changed, layers did not:\n", verb, n)
		for _, a := range r.Artifacts {
			if len(a.Converted) == 0 {
				continue
			}
			fmt.Fprintf(w, "  %s\n", a.Name)
			for _, c := range a.Converted {
				what := "child"
				if c.Root {
					what = "tag"
				}
				fmt.Fprintf(w, "    %s %s -> %s\n", what, c.From, c.To)
			}
		}
	}
	if byCollect > 0 {
		fmt.Fprintf(w, "\n%d manifest(s) were converted to OCI by collect --convert-oci (both digests are in the signed bill of materials)\n", byCollect)
	}
	if len(r.StaleReferences) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%d reference(s) pin a digest that changed and no longer match:\n", len(r.StaleReferences))
	for _, s := range r.StaleReferences {
		fmt.Fprintf(w, "  %s: now @%s\n", s.Reference, s.To)
		for _, where := range s.Where {
			fmt.Fprintf(w, "    from %s\n", where)
		}
	}
	fmt.Fprintln(w, "  a chart or pack pinning them needs the new digest; the cluster import rewrites bundle objects with --rewrite-digests")
}

// requestsLine says how many requests the run sent the registry, and how
// many that makes per blob settled (a registry that checks a password
// with bcrypt pays for each).
func requestsLine(r *ingest.Report) string {
	b := r.Blobs
	blobs := b.Uploaded + b.Resumed + b.Mounted + b.Found
	if blobs == 0 {
		return fmt.Sprintf("requests: %d sent", r.Requests)
	}
	return fmt.Sprintf("requests: %d sent, %.2f per blob", r.Requests, float64(r.Requests)/float64(blobs))
}
