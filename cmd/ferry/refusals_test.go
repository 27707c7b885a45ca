package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/ferrytool/ferry/ingest"
)

// TestRefusalsSaidOnce: a registry's long reason appears once in the
// report, with every artifact it refused under it, and the final error
// line stays short and points at the report.
func TestRefusalsSaidOnce(t *testing.T) {
	long := "MANIFEST_INVALID: manifest invalid; " + strings.Repeat("application/vnd.docker.distribution.manifest.v2+json is not supported; ", 40)
	rep := &ingest.Report{}
	for i := 0; i < 5; i++ {
		rep.Artifacts = append(rep.Artifacts, ingest.ArtifactResult{Name: fmt.Sprintf("docker.io/library/app%d:1", i), State: ingest.StateRefused, Reason: long})
	}
	rep.Artifacts = append(rep.Artifacts,
		ingest.ArtifactResult{Name: "quay.io/x/y:2", State: ingest.StateRefused, Reason: "DENIED: quota"},
		ingest.ArtifactResult{Name: "quay.io/x/z:3", State: ingest.StatePushed})
	var out bytes.Buffer
	printIngestReport(&out, rep)
	if n := strings.Count(out.String(), long); n != 1 {
		t.Errorf("the long reason appears %d times, want once:\n%s", n, out.String())
	}
	for i := 0; i < 5; i++ {
		if !strings.Contains(out.String(), fmt.Sprintf("app%d:1", i)) {
			t.Errorf("report does not name app%d", i)
		}
	}
	if !strings.Contains(out.String(), "DENIED: quota") || !strings.Contains(out.String(), "6 artifact(s) refused, for 2 reason(s)") {
		t.Errorf("report:\n%s", out.String())
	}
	msg := "ferry: " + rep.Err().Error()
	if len(msg) > 200 || !strings.Contains(msg, "report") {
		t.Errorf("final line has %d characters, want under 200 pointing at the report: %s", len(msg), msg)
	}
	var once refusedOnce
	if a, b := once.line("a", long), once.line("b", long); !strings.Contains(a, long) || strings.Contains(b, long) || !strings.Contains(b, "as a") {
		t.Errorf("progress lines %q / %q", a, b)
	}
}
