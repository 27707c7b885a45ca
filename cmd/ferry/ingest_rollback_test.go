package main

import (
	"crypto/rand"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrytool/ferry/internal/testbed"
	"github.com/ferrytool/ferry/manifest"
)

// TestIngestRefusesRollback replays an older archive signed with the same
// key after a newer one: the tags the newer one set stay, unless
// --allow-rollback, which says so.
func TestIngestRefusesRollback(t *testing.T) {
	reg := testbed.StartRegistry(t, testbed.RegistryOptions{TLS: true, Username: "zot-admin", Password: "s3cret-" + strings.Repeat("y", 8)})
	dir := t.TempDir()
	caFile := reg.CA.WriteCert(t, dir)
	journal := filepath.Join(dir, "state", "ingest-journal.db")
	t.Setenv(envRegistryPassword, reg.Password)

	chartCfg, chartTgz := helmChart(t, "clearml", "7.14.7")
	archiveWith := func(bundle string, created time.Time, keyFrom *fixtureArchive) *fixtureArchive {
		fx := &fixtureArchive{dir: t.TempDir(), created: created}
		if keyFrom != nil {
			fx.key, fx.pub = keyFrom.key, keyFrom.pub
		}
		fx.artifacts = append(fx.artifacts,
			// The same chart in both archives: it is simply there already.
			ociArtifact(manifest.KindChart, "chart clearml 7.14.7", manifest.Destination{Repository: "charts/clearml/clearml", Tag: "7.14.7"},
				manifest.MediaTypeHelmConfig, chartCfg, map[string]fxBlob{"clearml-7.14.7.tgz": {mediaType: manifest.MediaTypeHelmChart, data: chartTgz}}),
			// The bundle under one tag, with other content in each archive.
			ociArtifact(manifest.KindBundle, "bundle clearml 1.0.0", manifest.Destination{Repository: "bundles/clearml", Tag: "1.0.0"},
				"application/vnd.ferry.bundle.config.v1+json", []byte(`{"name":"clearml","version":"1.0.0"}`),
				map[string]fxBlob{"clearml-1.0.0.tar.gz": {mediaType: manifest.MediaTypeFerryFile, data: []byte(bundle + rand.Text())}}))
		fx.write(t, 0)
		return fx
	}
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	older := archiveWith("the older bundle", t0, nil)
	newer := archiveWith("the newer bundle", t0.Add(24*time.Hour), older)
	args := func(fx *fixtureArchive, extra ...string) []string {
		a := []string{"ingest", "--quiet", "--registry", reg.Host + "/" + ingestBase, "--key", fx.pub,
			"--ca-file", caFile, "--username", reg.Username, "--journal", journal}
		return append(append(a, extra...), fx.volumes...)
	}
	bundleTag := ingestBase + "/bundles/clearml:1.0.0"
	newDigest := newer.artifacts[1].root().digest()
	oldDigest := older.artifacts[1].root().digest()

	mustFerry(t, args(newer)...)
	if got := destDigest(t, reg, bundleTag); got != newDigest {
		t.Fatalf("after the newer archive the tag is %s, want %s", got, newDigest)
	}

	r := wantFail(t, ExitPartial, []string{"bundle clearml 1.0.0", newer.bom.ArchiveID, older.bom.ArchiveID, "older", "--allow-rollback"}, args(older)...)
	if strings.Contains(r.stdout, "REFUSED") && !strings.Contains(r.stdout, "bundles/clearml") {
		t.Errorf("the refusal does not name the destination:\n%s", r.stdout)
	}
	if got := destDigest(t, reg, bundleTag); got != newDigest {
		t.Errorf("the older archive moved the tag back: %s, want %s (newer) not %s (older)", got, newDigest, oldDigest)
	}

	r = mustFerry(t, args(older, "--allow-rollback")...)
	for _, want := range []string{"rollback allowed", newer.bom.ArchiveID, older.bom.ArchiveID} {
		if !strings.Contains(r.stdout+r.stderr, want) {
			t.Errorf("--allow-rollback does not say %q:\n%s%s", want, r.stdout, r.stderr)
		}
	}
	if got := destDigest(t, reg, bundleTag); got != oldDigest {
		t.Errorf("with --allow-rollback the tag is %s, want the older archive's %s", got, oldDigest)
	}
	// The newer archive again is no rollback: the journal now names the
	// older one as the tag's setter.
	mustFerry(t, args(newer)...)
	if got := destDigest(t, reg, bundleTag); got != newDigest {
		t.Errorf("the newer archive again: tag %s, want %s", got, newDigest)
	}
}
