package ingest

import (
	"context"
	"fmt"
	"strings"

	"github.com/ferrytool/ferry/archive"
	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/registry"
	"github.com/ferrytool/ferry/store"
)

// Validation statuses.
const (
	ValidOK                = "ok"
	ValidMissingRepository = "repository not in catalog"
	ValidMissingTag        = "tag missing"
	// ValidUntagged: the artifact's manifest is in the registry by digest,
	// but no tag reaches it, so a registry that collects garbage deletes
	// it (an artifact collected by digest only, pushed untagged by an older
	// ferry or by another tool).
	ValidUntagged    = "reachable from no tag"
	ValidWrongDigest = "wrong digest"
	// ValidNotListed: an OCI 1.1 referrer is in the registry, but its
	// subject does not list it (referrers API or tag schema), so nothing
	// finds it and a registry that collects garbage may delete it.
	ValidNotListed = "not listed by its subject"
)

// Validation is the registry checked against bills of materials: the
// catalog lists every destination repository and every tag resolves to the
// digest the bill of materials names.
type Validation struct {
	Registry string `json:"registry"`
	// CatalogRepositories counts the repositories the catalog lists.
	CatalogRepositories int                 `json:"catalogRepositories"`
	Artifacts           []ValidatedArtifact `json:"artifacts"`
}

// ValidatedArtifact is one artifact's check.
type ValidatedArtifact struct {
	Name       string                `json:"name"`
	Kind       manifest.ArtifactKind `json:"kind"`
	Repository string                `json:"repository"`
	// Ref is the tag, or the digest for an artifact without one.
	Ref       string `json:"ref"`
	Want      string `json:"want"`
	Got       string `json:"got,omitempty"`
	InCatalog bool   `json:"inCatalog"`
	Status    string `json:"status"`
}

// OK reports whether every artifact checked out.
func (v *Validation) OK() bool {
	for _, a := range v.Artifacts {
		if a.Status != ValidOK {
			return false
		}
	}
	return true
}

// Err is nil when everything checked out, else ErrValidation naming what
// did not, also wrapping ErrWrongDigest when a tag resolves to other
// content.
func (v *Validation) Err() error {
	var bad []string
	wrong := false
	for _, a := range v.Artifacts {
		if a.Status != ValidOK {
			bad = append(bad, fmt.Sprintf("%s:%s (%s)", a.Repository, a.Ref, a.Status))
			wrong = wrong || a.Status == ValidWrongDigest
		}
	}
	if len(bad) == 0 {
		return nil
	}
	if wrong {
		return fmt.Errorf("%w: %w: %d of %d: %s", ErrValidation, ErrWrongDigest, len(bad), len(v.Artifacts), strings.Join(bad, "; "))
	}
	return fmt.Errorf("%w: %d of %d: %s", ErrValidation, len(bad), len(v.Artifacts), strings.Join(bad, "; "))
}

// Validate checks the registry against the bill of materials of the volumes
// given, or, with none, of every archive the journal recorded for the
// destination.
func Validate(ctx context.Context, volumes []string, dst registry.Destination, vopts ValidateOptions) (*Validation, error) {
	opts := vopts.config(dst)
	opts.ConvertOCI = vopts.ConvertOCI
	dest, err := parseDestination(opts.Registry)
	if err != nil {
		return nil, err
	}
	var plans []*artifactPlan
	data := map[string][]byte{}
	if len(volumes) > 0 {
		vs, err := openVolumes(ctx, volumes, opts.Verifier, opts.WorkDir)
		if err != nil {
			return nil, err
		}
		if plans, err = planArtifacts(vs.bom, dest, opts.Mappings); err != nil {
			vs.close()
			return nil, err
		}
		// Docker manifests, to know the digests of their OCI form.
		for d, b := range dockerManifests(plans) {
			if ok, _ := vs.available(b); ok {
				if m, err := vs.readManifest(ctx, b); err == nil {
					data[d] = m
				}
			}
		}
		vs.close()
	} else {
		if opts.Journal == nil {
			return nil, fmt.Errorf("%w: give the archive's volumes, or a journal that recorded ingests into %s", ErrNoJournal, dest.key())
		}
		boms, err := journalBOMs(ctx, &opts, dest)
		if err != nil {
			return nil, err
		}
		if len(boms) == 0 {
			return nil, fmt.Errorf("%w: journal %s has no ingest into %s; give the archive's volumes", ErrNoJournal, opts.Journal.Path(), dest.key())
		}
		for _, jb := range boms {
			ps, err := planArtifacts(jb.bom, dest, jb.mappings)
			if err != nil {
				return nil, err
			}
			plans = append(plans, ps...)
		}
	}
	get := func(d string) []byte {
		if m, ok := data[d]; ok {
			return m
		}
		if opts.Journal != nil {
			if m, ok, err := opts.Journal.ManifestData(d); err == nil && ok && digestOf(m.Data) == d {
				return m.Data
			}
		}
		return nil
	}
	tagDigestOnly(plans, dest)
	if opts.ConvertOCI {
		if err := convertPlans(plans, get); err != nil {
			return nil, err
		}
	} else {
		noteOCIForms(plans, get)
	}
	var repos []string
	for _, p := range plans {
		repos = append(repos, p.repo)
	}
	reg, err := connect(ctx, &opts, dest, repos)
	if err != nil {
		return nil, err
	}
	return validate(ctx, reg, plans, nil, nil)
}

// journalBOM is an archive the journal recorded for a destination.
type journalBOM struct {
	da       store.DestArchive
	bom      *manifest.BOM
	mappings []Mapping
	raw      []byte
}

// journalBOMs reads the bills of materials of the archives ingested into
// dest, checking their signatures again when a verifier is given.
func journalBOMs(ctx context.Context, opts *config, dest destination) ([]journalBOM, error) {
	das, err := opts.Journal.DestArchives(dest.key())
	if err != nil {
		return nil, err
	}
	var out []journalBOM
	for _, da := range das {
		_, raw, sig, ok, err := opts.Journal.Archive(da.ArchiveID)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		if opts.Verifier != nil {
			if err := opts.Verifier.VerifyBOM(ctx, raw, sig); err != nil {
				return nil, fmt.Errorf("journal %s: archive %s: %w: %v", opts.Journal.Path(), da.ArchiveID, archive.ErrSignature, err)
			}
		}
		bom, err := manifest.ParseBOM(raw)
		if err != nil {
			return nil, fmt.Errorf("journal %s: archive %s: %w", opts.Journal.Path(), da.ArchiveID, err)
		}
		jb := journalBOM{da: da, bom: bom, raw: raw}
		for _, s := range da.Mappings {
			m, err := ParseMapping(s)
			if err == nil {
				jb.mappings = append(jb.mappings, m)
			}
		}
		out = append(out, jb)
	}
	return out, nil
}

// validate checks the plans for which keep returns true (all when nil).
// put holds what this run PUT under an artifact's tag and the registry
// took with 201: that answer stands, and the tag is not asked again.
func validate(ctx context.Context, reg *registry.Client, plans []*artifactPlan, keep func(*artifactPlan) bool, put map[*artifactPlan]string) (*Validation, error) {
	host := reg.Destination().HostPort()
	catalog, err := reg.Catalog(ctx)
	if err != nil {
		return nil, classify(host, fmt.Errorf("GET /v2/_catalog: %w", err))
	}
	inCatalog := make(map[string]bool, len(catalog))
	for _, r := range catalog {
		inCatalog[r] = true
	}
	v := &Validation{Registry: reg.Destination().String(), CatalogRepositories: len(catalog)}
	var checked []*artifactPlan
	for _, p := range plans {
		if keep == nil || keep(p) {
			checked = append(checked, p)
		}
	}
	v.Artifacts = make([]ValidatedArtifact, len(checked))
	err = fanOut(ctx, 8, len(checked), func(ctx context.Context, i int) error {
		p := checked[i]
		va := ValidatedArtifact{Name: p.a.Name, Kind: p.a.Kind, Repository: p.repo, Ref: p.ref, Want: p.digest, InCatalog: inCatalog[p.repo]}
		got, ok := put[p]
		if !ok {
			var err error
			if got, err = reg.ManifestDigest(ctx, p.repo, p.ref); err != nil {
				return classify(host, fmt.Errorf("HEAD %s:%s: %w", p.repo, p.ref, err))
			}
		}
		va.Got = got
		switch {
		case got == "" && strings.HasPrefix(p.ref, DigestTagPrefix):
			va.Status = ValidMissingTag
			byDigest, err := reg.ManifestDigest(ctx, p.repo, p.digest)
			if err != nil {
				return classify(host, fmt.Errorf("HEAD %s@%s: %w", p.repo, p.digest, err))
			}
			if byDigest != "" {
				va.Got, va.Status = byDigest, ValidUntagged
			}
		case got == "":
			va.Status = ValidMissingTag
		case got != p.digest && got != p.a.Digest && (p.ociDigest == "" || got != p.ociDigest):
			// The archive's digest and that of its OCI form are both
			// the signed content; anything else is not.
			va.Status = ValidWrongDigest
		case !va.InCatalog:
			va.Status = ValidMissingRepository
		default:
			va.Status = ValidOK
		}
		if va.Status == ValidOK && p.bySubject() {
			// Reached through its subject, not a tag: it must be listed.
			listed, err := referrerListed(ctx, reg, p)
			if err != nil {
				return classify(host, err)
			}
			if !listed {
				va.Status = ValidNotListed
			}
		}
		v.Artifacts[i] = va
		return nil
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}
