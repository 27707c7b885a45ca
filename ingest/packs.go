package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
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
// writes the verified files to CopyOptions.PacksDir, before the pack's
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
	// A detached signature is a few hundred bytes. Anything larger is
	// refused before a byte is read: a capped read would stop short of the
	// end, where the verifying reader checks the digest.
	if pl.sig.Size < 0 || pl.sig.Size > maxPackSig {
		return &packRefusal{msg: fmt.Sprintf("pack %s: signature file %s%s (%s) declares %d bytes, more than the %d a signature may have",
			pl.name, pl.name, packSigSuffix, pl.sig.Digest, pl.sig.Size, maxPackSig)}
	}
	sigRC, err := in.blobReader(ctx, p.repo, pl.sig)
	if err != nil {
		return err
	}
	// Read to the end, which the verifying reader bounds by the size
	// checked above, so the digest is checked too.
	sig, err := io.ReadAll(sigRC)
	sigRC.Close()
	if err != nil {
		if isBadContent(err) {
			return &packRefusal{msg: fmt.Sprintf("pack %s: signature file %s%s (%s): %v", pl.name, pl.name, packSigSuffix, pl.sig.Digest, err)}
		}
		return err
	}
	rc, err := in.blobReader(ctx, p.repo, pl.content)
	if err != nil {
		return err
	}
	defer rc.Close()
	var content io.Reader = rc
	var out *packOutput
	if in.opts.PacksDir != "" {
		if out, err = newPackOutput(in.opts.PacksDir, pl.name); err != nil {
			return err
		}
		defer out.discard()
		content = io.TeeReader(rc, out)
	}
	if in.opts.PackVerifier != nil {
		err = in.opts.PackVerifier.VerifyPack(ctx, content, sig)
	}
	if err == nil {
		// Whatever the verifier left unread: the digest is checked at the
		// end, and the copy in the packs folder must be whole.
		_, err = io.Copy(io.Discard, content)
	}
	if out != nil && out.err != nil {
		// The packs folder failed, not the pack.
		return out.err
	}
	if err != nil {
		if isBadContent(err) || in.opts.PackVerifier != nil {
			return &packRefusal{msg: fmt.Sprintf("pack %s (%s%s %s, signature %s%s %s): %v",
				pl.name, pl.name, packSuffix, pl.content.Digest, pl.name, packSigSuffix, pl.sig.Digest, err)}
		}
		return err
	}
	if out != nil {
		zst, sigPath, err := out.commit(sig)
		if err != nil {
			return err
		}
		in.mu.Lock()
		in.report.PacksWritten = append(in.report.PacksWritten, zst, sigPath)
		in.mu.Unlock()
	}
	return nil
}

// packOutput writes one pack into the packs folder: both files go to
// temporary files beside their final names and are renamed only once the
// content verified, the signature first, so that a <name>.zst there always
// has its <name>.sig.bin and a failure leaves nothing of the pack.
type packOutput struct {
	dir, name string
	tmp       *os.File // the .zst being written
	err       error    // the first write to tmp that failed
	done      bool
}

func newPackOutput(dir, name string) (*packOutput, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("packs folder %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, ".pack-*"+packSuffix)
	if err != nil {
		return nil, fmt.Errorf("packs folder %s: pack %s: %w", dir, name, err)
	}
	return &packOutput{dir: dir, name: name, tmp: tmp}, nil
}

func (o *packOutput) Write(p []byte) (int, error) {
	n, err := o.tmp.Write(p)
	if err != nil && o.err == nil {
		o.err = fmt.Errorf("packs folder %s: writing %s%s: %w", o.dir, o.name, packSuffix, err)
	}
	return n, err
}

// commit puts the verified content and its signature in place.
func (o *packOutput) commit(sig []byte) (zst, sigPath string, err error) {
	fail := func(what string, err error) (string, string, error) {
		return "", "", fmt.Errorf("packs folder %s: %s: %w", o.dir, what, err)
	}
	zst = filepath.Join(o.dir, o.name+packSuffix)
	sigPath = filepath.Join(o.dir, o.name+packSigSuffix)
	if err := o.tmp.Sync(); err != nil {
		return fail(o.name+packSuffix, err)
	}
	if err := o.tmp.Close(); err != nil {
		return fail(o.name+packSuffix, err)
	}
	sigTmp, err := os.CreateTemp(o.dir, ".pack-*"+packSigSuffix)
	if err != nil {
		return fail(o.name+packSigSuffix, err)
	}
	defer func() {
		if err != nil {
			sigTmp.Close()
			os.Remove(sigTmp.Name())
		}
	}()
	if _, err := sigTmp.Write(sig); err != nil {
		return fail(o.name+packSigSuffix, err)
	}
	if err := sigTmp.Sync(); err != nil {
		return fail(o.name+packSigSuffix, err)
	}
	if err := sigTmp.Close(); err != nil {
		return fail(o.name+packSigSuffix, err)
	}
	if err := os.Rename(sigTmp.Name(), sigPath); err != nil {
		return fail(o.name+packSigSuffix, err)
	}
	if err := os.Rename(o.tmp.Name(), zst); err != nil {
		// A signature without its pack would be harmless, but not tidy.
		os.Remove(sigPath)
		return fail(o.name+packSuffix, err)
	}
	o.done = true
	return zst, sigPath, nil
}

// discard removes the temporary file unless commit put it in place.
func (o *packOutput) discard() {
	if o.done {
		return
	}
	o.tmp.Close()
	os.Remove(o.tmp.Name())
}

// blobReader reads a blob, verified, from this run's volumes or else from
// the registry.
func (in *ingester) blobReader(ctx context.Context, repo string, b manifest.Blob) (io.ReadCloser, error) {
	if ok, _ := in.vs.available(b); ok {
		return in.vs.opener(b)(ctx)
	}
	rc, err := in.reg.FetchBlob(ctx, repo, b.Digest)
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{digestio.NewReader(rc, b.Digest, b.Size), rc}, nil
}
