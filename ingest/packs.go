package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/ferrytool/ferry/internal/digestio"
	"github.com/ferrytool/ferry/manifest"
)

// An Artifact Studio pack travels as an OCI artifact whose layers are the
// pack file and its detached signature, told apart by their
// org.opencontainers.image.title annotations: <name>.zst and <name>.sig.bin.
const (
	annotationTitle = "org.opencontainers.image.title"
	packSigSuffix   = ".sig.bin"
	packSuffix      = ".zst"
	maxPackSig      = 64 << 10
)

// packRefusal is a pack whose signature does not verify.
type packRefusal struct{ msg string }

func (e *packRefusal) Error() string { return e.msg }

type packLayers struct {
	name     string // <name>, from the title
	content  manifest.Blob
	sig      manifest.Blob
	hasFiles bool
}

// packFiles finds the pack file and its signature among a manifest's layers.
func packFiles(data []byte) (packLayers, error) {
	var m struct {
		Layers []struct {
			manifest.Descriptor
			Annotations map[string]string `json:"annotations"`
		} `json:"layers"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return packLayers{}, err
	}
	byTitle := map[string]manifest.Blob{}
	for _, l := range m.Layers {
		if t := l.Annotations[annotationTitle]; t != "" {
			byTitle[t] = manifest.Blob{Digest: l.Digest, Size: l.Size, MediaType: l.MediaType}
		}
	}
	for t, sig := range byTitle {
		name, ok := strings.CutSuffix(t, packSigSuffix)
		if !ok {
			continue
		}
		if content, ok := byTitle[name+packSuffix]; ok {
			return packLayers{name: filepath.Base(name), content: content, sig: sig, hasFiles: true}, nil
		}
	}
	return packLayers{}, nil
}

// checkPack checks an Artifact Studio pack's vendor signature again, and
// writes the verified files to Options.PacksDir, before the pack's
// manifest is pushed. The files are read from the volumes, or from the
// registry when an earlier run pushed them.
func (in *ingester) checkPack(ctx context.Context, p *artifactPlan) error {
	if p.a.Kind != manifest.KindPack {
		return nil
	}
	pl, err := packFiles(in.manifests[p.a.Digest])
	if err != nil || !pl.hasFiles {
		return nil // a pack tarball: no vendor signature travels with it
	}
	in.mu.Lock()
	if in.opts.PackVerifier == nil {
		in.report.PackSignatures = "not checked again: no vendor key given (the archive signature covers the packs)"
	} else {
		in.report.PackSignatures = "checked again against the vendor key"
	}
	in.mu.Unlock()
	if in.opts.PackVerifier == nil && in.opts.PacksDir == "" {
		return nil
	}
	sigRC, err := in.blobReader(ctx, p.repo, pl.sig)
	if err != nil {
		return err
	}
	sig, err := io.ReadAll(io.LimitReader(sigRC, maxPackSig+1))
	sigRC.Close()
	if err != nil {
		if isBadContent(err) {
			return &packRefusal{msg: fmt.Sprintf("pack %s: signature file %s: %v", pl.name, pl.sig.Digest, err)}
		}
		return err
	}
	rc, err := in.blobReader(ctx, p.repo, pl.content)
	if err != nil {
		return err
	}
	defer rc.Close()
	var content io.Reader = rc
	var tmp *os.File
	if in.opts.PacksDir != "" {
		if err := os.MkdirAll(in.opts.PacksDir, 0o755); err != nil {
			return fmt.Errorf("packs folder: %w", err)
		}
		if tmp, err = os.CreateTemp(in.opts.PacksDir, ".pack-*"); err != nil {
			return fmt.Errorf("packs folder: %w", err)
		}
		defer func() {
			if tmp != nil {
				tmp.Close()
				os.Remove(tmp.Name())
			}
		}()
		content = io.TeeReader(rc, tmp)
	}
	if in.opts.PackVerifier != nil {
		err = in.opts.PackVerifier.VerifyPack(ctx, content, sig)
	} else {
		_, err = io.Copy(io.Discard, content)
	}
	if err != nil {
		if isBadContent(err) || in.opts.PackVerifier != nil {
			return &packRefusal{msg: fmt.Sprintf("pack %s (%s%s, signature %s%s): %v", pl.name, pl.name, packSuffix, pl.name, packSigSuffix, err)}
		}
		return err
	}
	if tmp != nil {
		zst := filepath.Join(in.opts.PacksDir, pl.name+packSuffix)
		if err := tmp.Close(); err != nil {
			return err
		}
		if err := os.Rename(tmp.Name(), zst); err != nil {
			return fmt.Errorf("packs folder: %w", err)
		}
		tmp = nil
		sigPath := filepath.Join(in.opts.PacksDir, pl.name+packSigSuffix)
		if err := os.WriteFile(sigPath, sig, 0o644); err != nil {
			return fmt.Errorf("packs folder: %w", err)
		}
		in.mu.Lock()
		in.report.PacksWritten = append(in.report.PacksWritten, zst, sigPath)
		in.mu.Unlock()
	}
	return nil
}

// blobReader reads a blob, verified, from this run's volumes or else from
// the registry.
func (in *ingester) blobReader(ctx context.Context, repo string, b manifest.Blob) (io.ReadCloser, error) {
	if ok, _ := in.vs.available(b); ok {
		return in.vs.opener(b)(ctx)
	}
	resp, err := in.reg.do(ctx, http.MethodGet, in.reg.repoURL(repo, "blobs/"+b.Digest), nil, nil)
	if err != nil {
		return nil, classify(in.dest.host, err)
	}
	if err := checkStatus(resp, http.StatusOK); err != nil {
		return nil, classify(in.dest.host, fmt.Errorf("GET %s@%s: %w", repo, b.Digest, err))
	}
	return struct {
		io.Reader
		io.Closer
	}{digestio.NewReader(resp.Body, b.Digest, b.Size), resp.Body}, nil
}
