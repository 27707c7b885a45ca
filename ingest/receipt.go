package ingest

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/registry"
	"github.com/ferrytool/ferry/store"
)

// ReceiptOptions configure BuildReceipt. Zero values are documented per
// field.
type ReceiptOptions struct {
	// Check asks the registry for every artifact the journal says is in
	// (its tag, child manifests and blobs) and leaves out those that are
	// gone. Without it the journal is taken as it is: right after an
	// ingest, which recorded only what the registry confirmed.
	Check bool
	// Client is how the registry is reached when Check is set.
	Client registry.Options
	// Jobs bounds parallel checks; zero means 4.
	Jobs int
	// Now stamps the receipt; nil means time.Now.
	Now func() time.Time
	// Tool names the ferry build in the receipt.
	Tool string
}

// ReceiptResult is a receipt and what was left out of it.
type ReceiptResult struct {
	Receipt *manifest.Receipt
	// Left lists, one message each, what the journal recorded but the
	// receipt does not list: artifacts the registry no longer holds, and
	// archives ingested with repository mappings.
	Left []string
}

// BuildReceipt says what ferry's destination holds, from the journal: every
// artifact of every archive ingested into dst whose tag (or, without one,
// manifest) the journal records as in with the artifact's digest, so a tag a
// later archive moved names only its new manifest. Repositories are
// relative to dst's base, as in a bill of materials.
func BuildReceipt(ctx context.Context, j *store.Journal, dst registry.Destination, opts ReceiptOptions) (*ReceiptResult, error) {
	if j == nil {
		return nil, fmt.Errorf("%w: a receipt is built from the ingest journal", ErrNoJournal)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Jobs <= 0 {
		opts.Jobs = 4
	}
	key := dst.String()
	ingested, err := j.DestArchives(key)
	if err != nil {
		return nil, fmt.Errorf("journal %s: %w", j.Path(), err)
	}
	res := &ReceiptResult{}
	held := map[string]manifest.Holding{}
	var archives []manifest.ReceivedArchive
	for _, da := range ingested {
		rec, raw, _, ok, err := j.Archive(da.ArchiveID)
		if err != nil {
			return nil, fmt.Errorf("journal %s: %w", j.Path(), err)
		}
		if !ok {
			continue
		}
		if len(da.Mappings) > 0 {
			res.Left = append(res.Left, fmt.Sprintf("archive %s went in with repository mappings (%v): its artifacts are not listed", da.ArchiveID, da.Mappings))
			continue
		}
		bom, err := manifest.ParseBOM(raw)
		if err != nil {
			return nil, fmt.Errorf("journal %s: archive %s: %w", j.Path(), da.ArchiveID, err)
		}
		contributed := false
		for _, h := range manifest.BOMHoldings(bom) {
			in, err := recordedIn(j, key, dst.Repository(h.Repository), h)
			if err != nil {
				return nil, fmt.Errorf("journal %s: %w", j.Path(), err)
			}
			if in {
				held[holdingKey(h)] = h
				contributed = true
			}
		}
		if contributed {
			archives = append(archives, manifest.ReceivedArchive{ArchiveID: rec.ArchiveID, BOMDigest: rec.BOMDigest})
		}
	}
	holdings := make([]manifest.Holding, 0, len(held))
	for _, h := range held {
		holdings = append(holdings, h)
	}
	sort.Slice(holdings, func(a, b int) bool { return holdingKey(holdings[a]) < holdingKey(holdings[b]) })
	if opts.Check && len(holdings) > 0 {
		kept, gone, err := checkHoldings(ctx, dst, holdings, opts)
		if err != nil {
			return nil, err
		}
		holdings = kept
		res.Left = append(res.Left, gone...)
	}
	r, err := manifest.NewReceipt(key, opts.Now(), archives, holdings)
	if err != nil {
		return nil, err
	}
	r.Tool = opts.Tool
	res.Receipt = r
	return res, nil
}

func holdingKey(h manifest.Holding) string {
	return manifest.Destination{Repository: h.Repository, Tag: h.Tag}.Key(h.Manifest.Digest)
}

// recordedIn reports whether the journal records the holding's manifest
// under its tag (or, without a tag, in its repository).
func recordedIn(j *store.Journal, dest, repo string, h manifest.Holding) (bool, error) {
	if h.Tag == "" {
		_, ok, err := j.Manifest(dest, repo, h.Manifest.Digest)
		return ok, err
	}
	t, ok, err := j.Tag(dest, repo, h.Tag)
	return ok && t.Digest == h.Manifest.Digest, err
}

// checkHoldings asks the registry for every holding: its tag must resolve
// to its manifest, and its child manifests and blobs be in its
// repository. Those that are not are left out, each named.
func checkHoldings(ctx context.Context, dst registry.Destination, holdings []manifest.Holding, opts ReceiptOptions) (kept []manifest.Holding, gone []string, err error) {
	repos := map[string]bool{}
	var list []string
	for _, h := range holdings {
		if r := dst.Repository(h.Repository); !repos[r] {
			repos[r] = true
			list = append(list, r)
		}
	}
	reg, err := registry.Connect(ctx, dst, list, opts.Client)
	if err != nil {
		return nil, nil, err
	}
	host := dst.HostPort()
	why := make([]string, len(holdings))
	var mu sync.Mutex
	known := map[string]bool{} // repo + " " + digest found
	err = fanOut(ctx, opts.Jobs, len(holdings), func(ctx context.Context, i int) error {
		h := holdings[i]
		repo := dst.Repository(h.Repository)
		ref := h.Tag
		if ref == "" {
			ref = h.Manifest.Digest
		}
		got, err := reg.ManifestDigest(ctx, repo, ref)
		if err != nil {
			return classify(host, fmt.Errorf("HEAD %s:%s: %w", repo, ref, err))
		}
		if got != h.Manifest.Digest {
			what := "is gone"
			if got != "" {
				what = "now names " + got
			}
			why[i] = fmt.Sprintf("%s:%s %s, not %s", repo, ref, what, h.Manifest.Digest)
			return nil
		}
		check := func(d string, isManifest bool) (bool, error) {
			mu.Lock()
			ok := known[repo+" "+d]
			mu.Unlock()
			if ok {
				return true, nil
			}
			var err error
			if isManifest {
				var got string
				got, err = reg.ManifestDigest(ctx, repo, d)
				ok = got == d
			} else {
				ok, err = reg.BlobExists(ctx, repo, d)
			}
			if err != nil {
				return false, classify(host, fmt.Errorf("HEAD %s@%s: %w", repo, d, err))
			}
			if ok {
				mu.Lock()
				known[repo+" "+d] = true
				mu.Unlock()
			}
			return ok, nil
		}
		for _, m := range h.Manifests {
			ok, err := check(m.Digest, true)
			if err != nil {
				return err
			}
			if !ok {
				why[i] = fmt.Sprintf("%s:%s lacks manifest %s", repo, ref, m.Digest)
				return nil
			}
		}
		for _, b := range h.Blobs {
			ok, err := check(b.Digest, false)
			if err != nil {
				return err
			}
			if !ok {
				why[i] = fmt.Sprintf("%s:%s lacks blob %s", repo, ref, b.Digest)
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	for i, h := range holdings {
		if why[i] != "" {
			gone = append(gone, "not listed: "+why[i])
			continue
		}
		kept = append(kept, h)
	}
	return kept, gone, nil
}
