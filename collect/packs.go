package collect

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"helm.sh/helm/v3/pkg/chart/loader"
	"sigs.k8s.io/yaml"

	"github.com/ferrytool/ferry/internal/digestio"
	"github.com/ferrytool/ferry/manifest"
)

// PackVerifier checks an Artifact Studio pack against the vendor's public
// key. cmd provides it (package verify); collect only calls it.
type PackVerifier interface {
	// VerifyPack reads content to its end and checks sig, the raw
	// .sig.bin, over it.
	VerifyPack(ctx context.Context, content io.Reader, sig []byte) error
	// KeyID names the key, for the archive's record.
	KeyID() string
}

// Limits on a pack tarball and what of it is read into memory. Each error
// that reports one names it.
const (
	maxPackSignature = 64 << 10
	// MaxPackYAMLSize caps pack.json and values.yaml, each.
	MaxPackYAMLSize = 8 << 20
	// MaxPackChartSize caps one chart archive under charts/.
	MaxPackChartSize = 64 << 20
	// MaxPackEntries caps the entries of a pack tarball, of any type.
	MaxPackEntries = 10000
	// MaxPackSize caps all entries of a pack tarball together, once
	// uncompressed, counting those ferry skips.
	MaxPackSize = 1 << 30
	// MaxPackHeldSize caps what of one pack tarball is held in memory at
	// once: pack.json, values.yaml and its charts together.
	MaxPackHeldSize = 256 << 20
)

// packLimits are the limits readPackTarball applies; tests lower them.
type packLimits struct {
	entries          int
	size, held       int64
	yamlSize, charts int64
}

var defaultPackLimits = packLimits{
	entries: MaxPackEntries, size: MaxPackSize, held: MaxPackHeldSize,
	yamlSize: MaxPackYAMLSize, charts: MaxPackChartSize,
}

// pack is one pack of the spec, resolved.
type pack struct {
	name, version string
	format        string // "zst" or "tarball"
	file          string // as given
	res           *resolved
}

// packFormat tells a .zst pack from a pack tarball.
func packFormat(file string) string {
	lower := strings.ToLower(file)
	if strings.HasSuffix(lower, ".zst") {
		return "zst"
	}
	return "tarball"
}

// splitNameVersion reads <name>-<version> from a file name without its
// extension, the version starting at the first "-" before a digit or "v"
// and a digit.
func splitNameVersion(base string) (string, string) {
	for i := 1; i < len(base); i++ {
		if base[i] != '-' {
			continue
		}
		rest := base[i+1:]
		if len(rest) > 0 && rest[0] >= '0' && rest[0] <= '9' || len(rest) > 1 && rest[0] == 'v' && rest[1] >= '0' && rest[1] <= '9' {
			return base[:i], rest
		}
	}
	return base, ""
}

// signaturePath finds the .sig.bin of a .zst pack: <name>.sig.bin beside
// it, or <name>.zst.sig.bin, or <name>.zst.bin.
func signaturePath(zst string) (string, error) {
	stem := strings.TrimSuffix(zst, filepath.Ext(zst))
	tried := []string{stem + ".sig.bin", zst + ".sig.bin", zst + ".bin"}
	for _, p := range tried {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: pack %s: no signature file (looked for %s)", ErrBadPackSignature, zst, strings.Join(tried, ", "))
}

// verifyZstPack checks a .zst pack's signature, hashing the file in the
// same read, and builds its artifact: the pack file and its signature as
// two layers.
func (p *planner) verifyZstPack(ctx context.Context, ps manifest.PackSpec) (*pack, error) {
	file := p.spec.Path(ps.File)
	if p.opts.PackVerifier == nil {
		return nil, fmt.Errorf("%w: pack %s: %w; give it as packKey in the spec", ErrUsage, file, ErrNoPackKey)
	}
	sigPath := p.spec.Path(ps.Signature)
	if sigPath == "" {
		var err error
		if sigPath, err = signaturePath(file); err != nil {
			return nil, err
		}
	}
	sig, err := readLimited(sigPath, maxPackSignature)
	if err != nil {
		return nil, fmt.Errorf("%w: pack %s: signature %s: %v", ErrBadPackSignature, file, sigPath, err)
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("%w: pack %s: %v", ErrMissingPack, file, err)
	}
	defer f.Close()
	d := newDigester()
	if err := p.opts.PackVerifier.VerifyPack(ctx, io.TeeReader(f, d), sig); err != nil {
		return nil, fmt.Errorf("%w: pack %s (signature %s): %w", ErrBadPackSignature, file, sigPath, err)
	}
	zb := manifest.Blob{Digest: d.Digest(), Size: d.Size(), MediaType: manifest.MediaTypeFerryFileZstd}
	sb, err := p.cache.PutBytes(ctx, manifest.MediaTypeFerryPackSignature, sig)
	if err != nil {
		return nil, err
	}
	// The signature layer is always titled <pack>.sig.bin, whatever the
	// file was called, so the air-gapped side pairs the two by title.
	sigTitle := strings.TrimSuffix(filepath.Base(file), filepath.Ext(file)) + ".sig.bin"
	name, version := ps.Name, ps.Version
	if name == "" || version == "" {
		n, v := splitNameVersion(strings.TrimSuffix(filepath.Base(file), filepath.Ext(file)))
		if name == "" {
			name = n
		}
		if version == "" {
			version = v
		}
	}
	if version == "" {
		return nil, fmt.Errorf("%w: pack %s: its file name says no version; give name and version in the spec", ErrUsage, file)
	}
	res, err := buildArtifact(ctx, p.cache, artifactSpec{
		kind:       manifest.KindPack,
		source:     file,
		dest:       packDest(name, version),
		configType: manifest.MediaTypeFerryPackConfig,
		config: map[string]string{
			"name": name, "version": version, "format": "zst",
			"file": filepath.Base(file), "signature": sigTitle, "signatureKeyID": p.opts.PackVerifier.KeyID(),
		},
		layers: []artifactLayer{
			{blob: zb, file: file, title: filepath.Base(file)},
			{blob: sb, title: sigTitle},
		},
		annotations: map[string]string{manifest.AnnotationTitle: name, manifest.AnnotationVersion: version},
	})
	if err != nil {
		return nil, err
	}
	res.artifact.Annotations = map[string]string{
		manifest.AnnotationPackFormat:    "zst",
		manifest.AnnotationPackFile:      zb.Digest,
		manifest.AnnotationPackSignature: sb.Digest,
		manifest.AnnotationPackKeyID:     p.opts.PackVerifier.KeyID(),
	}
	return &pack{name: name, version: version, format: "zst", file: file, res: res}, nil
}

func packDest(name, version string) manifest.Destination {
	return manifest.Destination{Repository: "spectro-packs/archive/" + name, Tag: strings.ReplaceAll(version, "+", "_")}
}

func readLimited(file string, limit int64) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	if len(data) == 0 {
		return nil, errors.New("empty")
	}
	return data, nil
}

// packContent is what ferry reads of a pack tarball.
type packContent struct {
	packJSON []byte
	values   []byte
	charts   map[string][]byte // charts/<x>.tgz -> archive
}

// tarballPack reads a pack tarball (a .tar.gz, or a folder that ferry packs
// into one) and builds its artifact. Its images and charts are returned for
// discovery.
func (p *planner) tarballPack(ctx context.Context, ps manifest.PackSpec) (*pack, *packContent, error) {
	file := p.spec.Path(ps.File)
	st, err := os.Stat(file)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: pack %s: %v", ErrMissingPack, file, err)
	}
	var blob manifest.Blob
	layerFile := ""
	if st.IsDir() {
		if blob, err = p.packFolder(ctx, file); err != nil {
			return nil, nil, err
		}
	} else {
		if blob, err = hashFile(ctx, file, manifest.MediaTypeTarGzip); err != nil {
			return nil, nil, fmt.Errorf("pack %s: %w", file, err)
		}
		layerFile = file
	}
	var rc io.ReadCloser
	if layerFile != "" {
		rc, err = os.Open(layerFile)
	} else {
		rc, err = p.cache.OpenBlob(ctx, blob)
	}
	if err != nil {
		return nil, nil, err
	}
	content, err := readPackTarball(ctx, rc, defaultPackLimits)
	rc.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: pack %s: %v", ErrPack, file, err)
	}
	if _, err := manifest.YAMLDecodedSize(content.values, manifest.MaxYAMLDecodedSize); err != nil {
		if errors.Is(err, manifest.ErrYAMLTooLarge) {
			return nil, nil, fmt.Errorf("%w: pack %s: values.yaml decodes to more than %d bytes, aliases expanded (MaxYAMLDecodedSize)", ErrPack, file, manifest.MaxYAMLDecodedSize)
		}
		// A values file that does not parse is reported where it is read.
	}
	var meta struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	}
	if err := json.Unmarshal(content.packJSON, &meta); err != nil {
		return nil, nil, fmt.Errorf("%w: pack %s: pack.json: %v", ErrPack, file, err)
	}
	name, version := ps.Name, ps.Version
	if name == "" {
		name = meta.Name
	}
	if version == "" {
		version = meta.Version
	}
	if name == "" || version == "" {
		return nil, nil, fmt.Errorf("%w: pack %s: pack.json gives no name or version", ErrPack, file)
	}
	title := filepath.Base(file)
	if st.IsDir() {
		title = name + "-" + version + ".tar.gz"
	}
	var packJSON any
	json.Unmarshal(content.packJSON, &packJSON)
	res, err := buildArtifact(ctx, p.cache, artifactSpec{
		kind:       manifest.KindPack,
		source:     file,
		dest:       packDest(name, version),
		configType: manifest.MediaTypeFerryPackConfig,
		config: map[string]any{
			"name": name, "version": version, "format": "tarball", "file": title, "pack": packJSON,
		},
		layers:      []artifactLayer{{blob: blob, file: layerFile, title: title}},
		annotations: map[string]string{manifest.AnnotationTitle: name, manifest.AnnotationVersion: version},
	})
	if err != nil {
		return nil, nil, err
	}
	res.artifact.Annotations = map[string]string{
		manifest.AnnotationPackFormat: "tarball",
		manifest.AnnotationPackFile:   blob.Digest,
	}
	return &pack{name: name, version: version, format: "tarball", file: file, res: res}, content, nil
}

// readPackTarball finds pack.json, values.yaml and charts/*.tgz in a pack
// tarball, at its top or in its one top folder. Entries are counted and
// their sizes summed as they go by, so a tarball of many small entries, or
// of entries that each pass but together do not, stops at a limit.
func readPackTarball(ctx context.Context, r io.Reader, lim packLimits) (*packContent, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("not a gzip'd tar: %v", err)
	}
	defer zr.Close()
	// The cap counts headers and skipped content too: the declared sizes
	// below stop an honest header early, this stops everything else.
	capped := &packCap{r: digestio.ContextReader(ctx, zr), left: lim.size + 1}
	tr := tar.NewReader(capped)
	packJSON := map[string][]byte{} // by folder
	values := map[string][]byte{}
	charts := map[string][]byte{} // by path
	var declared, held int64
	for entries := 0; ; entries++ {
		h, err := tr.Next()
		if capped.left <= 0 {
			return nil, fmt.Errorf("more than %d bytes once uncompressed (MaxPackSize)", lim.size)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if entries >= lim.entries {
			return nil, fmt.Errorf("more than %d entries (MaxPackEntries) at %q", lim.entries, h.Name)
		}
		if h.Size > 0 {
			declared += h.Size
		}
		if declared > lim.size {
			return nil, fmt.Errorf("entries up to %q add up to %d bytes, more than %d (MaxPackSize)", h.Name, declared, lim.size)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		n := path.Clean(strings.TrimPrefix(strings.ReplaceAll(h.Name, `\`, "/"), "./"))
		if n == ".." || strings.HasPrefix(n, "../") || strings.HasPrefix(n, "/") {
			return nil, fmt.Errorf("entry %q climbs out of the pack", h.Name)
		}
		dir, base := path.Split(n)
		depth := strings.Count(dir, "/")
		var into map[string][]byte
		key, limit, limitName := dir, lim.yamlSize, "MaxPackYAMLSize"
		switch {
		case base == "pack.json" && depth <= 1:
			into = packJSON
		case base == "values.yaml" && depth <= 1:
			into = values
		case strings.HasSuffix(dir, "charts/") && depth <= 2 && (strings.HasSuffix(base, ".tgz") || strings.HasSuffix(base, ".tar.gz")):
			into, key, limit, limitName = charts, n, lim.charts, "MaxPackChartSize"
		default:
			continue
		}
		if h.Size > limit {
			return nil, fmt.Errorf("%s is %d bytes, over the %d byte limit (%s)", h.Name, h.Size, limit, limitName)
		}
		if held += h.Size; held > lim.held {
			return nil, fmt.Errorf("%s brings what is read into memory to %d bytes, over the %d byte limit (MaxPackHeldSize)", h.Name, held, lim.held)
		}
		data, err := io.ReadAll(io.LimitReader(tr, h.Size))
		if err != nil {
			if capped.left <= 0 {
				return nil, fmt.Errorf("more than %d bytes once uncompressed (MaxPackSize)", lim.size)
			}
			return nil, fmt.Errorf("%s: %w", h.Name, err)
		}
		into[key] = data
	}
	if len(packJSON) != 1 {
		return nil, fmt.Errorf("want one pack.json at the top or in one top folder, found %d", len(packJSON))
	}
	c := &packContent{charts: map[string][]byte{}}
	for dir, data := range packJSON {
		c.packJSON, c.values = data, values[dir]
		for n, data := range charts {
			if strings.HasPrefix(n, dir+"charts/") {
				c.charts[n] = data
			}
		}
	}
	return c, nil
}

// packCap reads until left runs out, then reports EOF; readPackTarball
// tells that from a real end by left.
type packCap struct {
	r    io.Reader
	left int64
}

func (c *packCap) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, io.ErrUnexpectedEOF
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// packFolder packs a pack folder into a reproducible tar.gz in the cache:
// sorted entries, no owners, zero times.
func (p *planner) packFolder(ctx context.Context, dir string) (manifest.Blob, error) {
	var files []string
	err := filepath.WalkDir(dir, func(pth string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%s is a symbolic link; pack folders hold regular files", pth)
		}
		if !d.IsDir() {
			files = append(files, pth)
		}
		return nil
	})
	if err != nil {
		return manifest.Blob{}, fmt.Errorf("pack %s: %w", dir, err)
	}
	sort.Strings(files)
	pr, pw := io.Pipe()
	go func() {
		zw, _ := gzip.NewWriterLevel(pw, gzip.BestSpeed)
		tw := tar.NewWriter(zw)
		top := filepath.Base(dir)
		err := func() error {
			for _, f := range files {
				rel, _ := filepath.Rel(dir, f)
				st, err := os.Stat(f)
				if err != nil {
					return err
				}
				h := &tar.Header{Name: top + "/" + filepath.ToSlash(rel), Mode: 0o644, Size: st.Size(), Typeflag: tar.TypeReg, Format: tar.FormatPAX}
				if err := tw.WriteHeader(h); err != nil {
					return err
				}
				in, err := os.Open(f)
				if err != nil {
					return err
				}
				_, err = io.Copy(tw, in)
				in.Close()
				if err != nil {
					return err
				}
			}
			if err := tw.Close(); err != nil {
				return err
			}
			return zw.Close()
		}()
		pw.CloseWithError(err)
	}()
	b, err := p.cache.PutStream(ctx, manifest.MediaTypeTarGzip, pr)
	pr.CloseWithError(err)
	if err != nil {
		return b, fmt.Errorf("pack %s: %w", dir, err)
	}
	return b, nil
}

// packImages lists the images a pack's values.yaml names in
// pack.content.images; values holding a Palette macro are reported, not
// guessed.
func packImages(values []byte, where string) (refs []FoundImage, warnings []string) {
	if len(values) == 0 {
		return nil, nil
	}
	// Callers refuse values that decode past the limit before they get
	// here; this keeps any other caller bounded too.
	if _, err := manifest.YAMLDecodedSize(values, manifest.MaxYAMLDecodedSize); errors.Is(err, manifest.ErrYAMLTooLarge) {
		return nil, []string{fmt.Sprintf("%s: values decode to more than %d bytes, aliases expanded (MaxYAMLDecodedSize); not read", where, manifest.MaxYAMLDecodedSize)}
	}
	var doc map[string]any
	if err := yaml.Unmarshal(values, &doc); err != nil {
		return nil, []string{fmt.Sprintf("%s: values do not parse: %v", where, err)}
	}
	pk, _ := doc["pack"].(map[string]any)
	content, _ := pk["content"].(map[string]any)
	list, _ := content["images"].([]any)
	for i, e := range list {
		ref := ""
		switch t := e.(type) {
		case string:
			ref = t
		case map[string]any:
			ref = scalar(t["image"])
		}
		field := "pack.content.images[" + strconv.Itoa(i) + "].image"
		switch {
		case ref == "":
		case isPaletteMacro(ref):
			warnings = append(warnings, fmt.Sprintf("%s: %s is %q, a Palette macro only Palette can expand; not collected", where, field, ref))
		default:
			refs = append(refs, FoundImage{Ref: ref, Where: field})
		}
	}
	return refs, warnings
}

// packCharts renders the charts a pack tarball carries, each with the
// values values.yaml gives it under charts.<name>. A chart that does not
// load or render fails the collect, or is a gap when broken charts are
// allowed.
func (p *planner) packCharts(ctx context.Context, pk *pack, c *packContent, reasonFrom string) error {
	var doc map[string]any
	yaml.Unmarshal(c.values, &doc)
	chartVals, _ := doc["charts"].(map[string]any)
	packSec, _ := doc["pack"].(map[string]any)
	ns, _ := packSec["namespace"].(string)
	overrides, _ := packSec["releaseNameOverride"].(map[string]any)
	names := make([]string, 0, len(c.charts))
	for n := range c.charts {
		names = append(names, n)
	}
	sort.Strings(names)
	label := "pack " + pk.name + " " + pk.version
	for _, n := range names {
		why := manifest.Reason{From: reasonFrom, Detail: label + ": " + n}
		ch, err := loader.LoadArchive(bytes.NewReader(c.charts[n]))
		if err != nil {
			err = fmt.Errorf("%w: %s (%s): %s does not load: %v", ErrChart, label, pk.file, n, err)
			if err := p.brokenChart(label+": "+n, why, err); err != nil {
				return err
			}
			continue
		}
		vals, _ := chartVals[ch.Metadata.Name].(map[string]any)
		release, _ := overrides[ch.Metadata.Name].(string)
		if isPaletteMacro(ns) {
			ns = ""
		}
		r, err := p.opts.Renderer.Render(ctx, RenderRequest{Label: label + ": " + n, Chart: c.charts[n],
			Options: RenderOptions{ReleaseName: release, Namespace: ns, Values: vals, KubeVersion: p.spec.KubeVersion}})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err := p.brokenChart(label+": "+n, why, fmt.Errorf("%s (%s): %s: %w", label, pk.file, n, err)); err != nil {
				return err
			}
			continue
		}
		for _, w := range r.Warnings {
			p.warn("%s: %s", label, w)
		}
		for _, fi := range r.Images {
			p.wantFound(fi, manifest.Reason{From: reasonFrom, Detail: fmt.Sprintf("%s: %s: %s", label, n, fi.Where)})
		}
	}
	return nil
}
