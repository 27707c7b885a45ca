package collect

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/ferrytool/ferry/manifest"
)

// The errors a spec can fix name the spec field and carry what a caller
// needs to name its own way (a flag) to the same end; none names a flag.
func TestErrorsNameSpecFieldsNotFlags(t *testing.T) {
	check := func(t *testing.T, err error, want ...string) {
		t.Helper()
		if err == nil {
			t.Fatal("no error")
		}
		msg := err.Error()
		if strings.Contains(msg, "--") {
			t.Errorf("error names a flag: %s", msg)
		}
		for _, w := range want {
			if !strings.Contains(msg, w) {
				t.Errorf("error does not name %q: %s", w, msg)
			}
		}
	}

	t.Run("bundle chart without an upstream repository", func(t *testing.T) {
		doc := "apiVersion: spectrocloud.com/v1alpha1\nkind: WorkloadProfile\nmetadata: {name: app}\nspec:\n  workload:\n    components:\n" +
			"      - name: app\n        type: helm-release\n        properties:\n          chart: app\n          version: 1.0.0\n" +
			"          repository: oci://{{ internal-zot-url }}/charts/app\n"
		p := &planner{spec: manifest.NewTransferSpec(), cache: testCache(t)}
		bd, err := p.readBundle(context.Background(), manifest.BundleSpec{File: bundleFile(t, doc)})
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.bundleCharts(bd)
		var ue *UnreachableChartError
		if !errors.As(err, &ue) || !errors.Is(err, ErrUsage) {
			t.Fatalf("err = %v, want an UnreachableChartError that is ErrUsage", err)
		}
		if ue.Chart != "app" || ue.Repository != "oci://{{ internal-zot-url }}/charts/app" {
			t.Errorf("error carries chart %q from %q", ue.Chart, ue.Repository)
		}
		check(t, err, "chart app", "WorkloadProfile app", "upstreamRepositories")
	})

	t.Run("packs not provided", func(t *testing.T) {
		need := PackNeed{Bundle: "edge 1.0.0", Profile: "infra", Name: "cni", Version: "1.17.4"}
		p := &planner{spec: manifest.NewTransferSpec()}
		err := p.matchPacks([]PackNeed{need}, nil)
		var me *MissingPacksError
		if !errors.As(err, &me) || !errors.Is(err, ErrMissingPack) {
			t.Fatalf("err = %v, want a MissingPacksError that is ErrMissingPack", err)
		}
		if len(me.Packs) != 1 || me.Packs[0] != need {
			t.Errorf("error carries %+v, want %+v", me.Packs, need)
		}
		check(t, err, "cni 1.17.4", "bundle edge 1.0.0", "ClusterProfile infra", "allowMissingPacks")

		p.spec.AllowMissingPacks = true
		p.opts.Logger = slog.New(slog.DiscardHandler)
		if err := p.matchPacks([]PackNeed{need}, nil); err != nil {
			t.Fatalf("missing packs allowed: %v", err)
		}
		if len(p.warnings) != 1 {
			t.Fatalf("warnings %q, want one", p.warnings)
		}
		check(t, errors.New(p.warnings[0]), "cni 1.17.4", "collected without it")
	})

	t.Run("pack without a vendor key", func(t *testing.T) {
		p := &planner{spec: manifest.NewTransferSpec()}
		_, err := p.verifyZstPack(context.Background(), manifest.PackSpec{File: "/packs/cni-1.17.4.zst"})
		if !errors.Is(err, ErrNoPackKey) || !errors.Is(err, ErrUsage) {
			t.Fatalf("err = %v, want ErrNoPackKey and ErrUsage", err)
		}
		check(t, err, "/packs/cni-1.17.4.zst", "packKey")
	})

	t.Run("chart no Kubernetes version suits", func(t *testing.T) {
		for _, given := range []string{"", "1.30.0"} {
			ch := testChart()
			ch.Metadata.KubeVersion = ">=2.0.0"
			_, err := RenderImages(ch, RenderOptions{KubeVersion: given})
			var ke *KubeVersionError
			if !errors.As(err, &ke) || !errors.Is(err, ErrChart) {
				t.Fatalf("err = %v, want a KubeVersionError that is ErrChart", err)
			}
			if ke.Chart != "parent 2.0.0" || ke.Constraint != ">=2.0.0" {
				t.Errorf("error carries chart %q, constraint %q", ke.Chart, ke.Constraint)
			}
			check(t, err, "chart parent 2.0.0", `">=2.0.0"`, "kubeVersion in the spec")
		}
	})
}
