package collect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/google/go-containerregistry/pkg/name"
	"helm.sh/helm/v3/pkg/provenance"

	"github.com/ferrytool/ferry/internal/digestio"
	"github.com/ferrytool/ferry/manifest"
)

// maxProvSize caps a chart's provenance file: chart metadata and one hash
// under a signature, a few kilobytes in practice.
const maxProvSize = 1 << 20

// ChartKeyring holds the OpenPGP public keys that chart provenance files
// must be signed by. Given one, collect requires every chart it fetches
// from a repository to have a provenance file that one of these keys
// signed and whose hash is the chart archive's.
type ChartKeyring struct {
	file string
	sig  *provenance.Signatory
}

// LoadChartKeyring reads a keyring file: binary OpenPGP public keys, as
// `gpg --export` writes them and `helm verify --keyring` reads them, or the
// same keys ASCII-armored.
func LoadChartKeyring(path string) (*ChartKeyring, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: chart keyring: %v", ErrUsage, err)
	}
	var ring openpgp.EntityList
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("-----BEGIN PGP")) {
		ring, err = openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
	} else {
		ring, err = openpgp.ReadKeyRing(bytes.NewReader(data))
	}
	if err != nil {
		return nil, fmt.Errorf("%w: chart keyring %s: not an OpenPGP keyring: %v", ErrUsage, path, err)
	}
	if len(ring) == 0 {
		return nil, fmt.Errorf("%w: chart keyring %s holds no key", ErrUsage, path)
	}
	return &ChartKeyring{file: path, sig: &provenance.Signatory{KeyRing: ring}}, nil
}

// httpProvenance fetches the provenance file Helm looks for next to a chart
// archive, chartURL + ".prov", into the cache. A repository without one
// (404) gives nil, and so does an object store's 403 for a missing object
// when no keyring asks for provenance. Any other failure is an error naming
// the URL: carrying the chart without a file that exists would give it
// another digest, and `helm pull --verify` another answer, by chance.
func (p *planner) httpProvenance(ctx context.Context, client *http.Client, rs manifest.RepositorySpec, chartURL, label string) (*manifest.Blob, error) {
	u := chartURL + ".prov"
	resp, err := p.httpGet(ctx, client, rs, u)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, nil
	case errors.Is(err, errForbidden) && p.opts.ChartKeyring == nil:
		p.warn("chart %s: %v; carried without provenance", label, err)
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("chart %s: provenance: %w", label, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxProvSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: chart %s: read %s: %w", ErrSource, label, u, err)
	}
	if len(data) > maxProvSize {
		if p.opts.ChartKeyring == nil {
			p.warn("chart %s: %s is over %d bytes; carried without provenance", label, u, maxProvSize)
			return nil, nil
		}
		return nil, fmt.Errorf("%w: chart %s: %s is over %d bytes", ErrChartProvenance, label, u, maxProvSize)
	}
	if block, _ := clearsign.Decode(data); block == nil {
		// A server that answers every path with a page is not a signer;
		// carrying its answer would only break `helm pull --verify` later.
		if p.opts.ChartKeyring != nil {
			return nil, fmt.Errorf("%w: chart %s: %s is not a PGP signed message", ErrChartProvenance, label, u)
		}
		p.warn("chart %s: %s is not a PGP signed message; no provenance carried", label, u)
		return nil, nil
	}
	b, err := p.cache.PutBytes(ctx, manifest.MediaTypeHelmProvenance, data)
	if err != nil {
		return nil, err
	}
	return &b, nil
}

// ociProvenance finds the provenance layer of a chart manifest from a
// registry and puts it into the cache; nil when the manifest has none.
func (p *planner) ociProvenance(ctx context.Context, repoRef name.Repository, layers []ociDescriptor, label string) (*manifest.Blob, error) {
	for _, l := range layers {
		if l.MediaType != manifest.MediaTypeHelmProvenance {
			continue
		}
		b := manifest.Blob{Digest: l.Digest, Size: l.Size, MediaType: l.MediaType}
		if b.Size > maxProvSize {
			kind := ErrSource
			if p.opts.ChartKeyring != nil {
				kind = ErrChartProvenance
			}
			return nil, fmt.Errorf("%w: chart %s: provenance layer %s is %d bytes, over %d", kind, label, b.Digest, b.Size, maxProvSize)
		}
		if !p.cache.Has(b) {
			if err := p.downloadBlob(ctx, repoRef, b); err != nil {
				return nil, fmt.Errorf("chart %s: provenance: %w", label, err)
			}
		}
		return &b, nil
	}
	return nil, nil
}

// checkProvenance applies the chart keyring, if any, to a fetched chart (tgz
// is its archive) and its provenance (nil: the repository has none), and
// records what it found on the chart's artifact. With a keyring, a chart
// without provenance is refused: a keyring says every chart must be signed.
func (p *planner) checkProvenance(ctx context.Context, fc *fetchedChart, tgz manifest.Blob, prov *manifest.Blob, from string) error {
	label := fc.chart.Metadata.Name + " " + fc.version
	kr := p.opts.ChartKeyring
	if prov == nil {
		if kr != nil {
			return fmt.Errorf("chart %s from %s: %w: it has no provenance file, and with a chart keyring every chart must be signed", label, from, ErrChartProvenance)
		}
		return nil
	}
	a := &fc.res.artifact
	if a.Annotations == nil {
		a.Annotations = map[string]string{}
	}
	a.Annotations[manifest.AnnotationChartProvenance] = prov.Digest
	if kr == nil {
		return nil
	}
	fp, err := kr.verify(ctx, p.cache, tgz, *prov, fc.chart.Metadata.Name, fc.chart.Metadata.Version)
	if err != nil {
		return fmt.Errorf("chart %s from %s: %w", label, from, err)
	}
	a.Annotations[manifest.AnnotationChartProvenanceKeyID] = fp
	return nil
}

// verify checks a provenance file with Helm's own code: its signature
// against the keyring, then the chart archive's SHA-256 against the one it
// signs. Helm names the archive <name>-<version>.tgz when it pulls a chart
// from a registry, and so does the check here, so that what passes here
// passes `helm pull --verify` at the destination. It returns the signing
// key's fingerprint; a check that fails is an ErrChartProvenance.
func (k *ChartKeyring) verify(ctx context.Context, cache *Cache, chartBlob, provBlob manifest.Blob, name, version string) (string, error) {
	dir, err := os.MkdirTemp("", "ferry-provenance-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	chartPath := filepath.Join(dir, name+"-"+version+".tgz")
	provPath := chartPath + ".prov"
	for _, f := range []struct {
		path string
		blob manifest.Blob
	}{{chartPath, chartBlob}, {provPath, provBlob}} {
		if err := copyBlobToFile(ctx, cache, f.blob, f.path); err != nil {
			return "", err
		}
	}
	ver, err := k.sig.Verify(chartPath, provPath)
	switch {
	case err == nil:
		return fmt.Sprintf("%X", ver.SignedBy.PrimaryKey.Fingerprint), nil
	case ver != nil && ver.SignedBy != nil:
		// The signature is good: what it signs is not this archive.
		return "", fmt.Errorf("%w: the chart archive (%s) is not the one its provenance, signed by key %X, vouches for: it was changed after signing (%v)",
			ErrChartProvenance, chartBlob.Digest, ver.SignedBy.PrimaryKey.Fingerprint, err)
	case errors.Is(err, pgperrors.ErrUnknownIssuer):
		return "", fmt.Errorf("%w: the provenance is signed by key %s, which is not in the keyring %s (it holds %s)", ErrChartProvenance, provIssuer(provPath), k.file, k.fingerprints())
	default:
		return "", fmt.Errorf("%w: the provenance signature does not verify against the keyring %s: %v", ErrChartProvenance, k.file, err)
	}
}

// provIssuer names the key a provenance file says signed it: its
// fingerprint, else its key ID, else "(unnamed)".
func provIssuer(provPath string) string {
	data, err := os.ReadFile(provPath)
	if err != nil {
		return "(unnamed)"
	}
	block, _ := clearsign.Decode(data)
	if block == nil || block.ArmoredSignature == nil {
		return "(unnamed)"
	}
	pkt, err := packet.Read(block.ArmoredSignature.Body)
	sig, ok := pkt.(*packet.Signature)
	switch {
	case err != nil || !ok:
		return "(unnamed)"
	case len(sig.IssuerFingerprint) > 0:
		return fmt.Sprintf("%X", sig.IssuerFingerprint)
	case sig.IssuerKeyId != nil:
		return fmt.Sprintf("ID %016X", *sig.IssuerKeyId)
	}
	return "(unnamed)"
}

// fingerprints lists the keyring's primary keys, for an error message.
func (k *ChartKeyring) fingerprints() string {
	var fps []string
	for _, e := range k.sig.KeyRing {
		fps = append(fps, fmt.Sprintf("%X", e.PrimaryKey.Fingerprint))
	}
	sort.Strings(fps)
	return strings.Join(fps, ", ")
}

// copyBlobToFile writes a cached blob to path, checking its digest.
func copyBlobToFile(ctx context.Context, cache *Cache, b manifest.Blob, path string) (err error) {
	rc, err := cache.OpenBlob(ctx, b)
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	if _, err := io.Copy(f, digestio.ContextReader(ctx, digestio.NewReader(rc, b.Digest, b.Size))); err != nil {
		return fmt.Errorf("blob %s: %w", b.Digest, err)
	}
	return nil
}
