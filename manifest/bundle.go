package manifest

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/yaml"
)

// ErrInvalidBundle is returned for a Profile Bundle archive that is not a
// (gzip-compressed) tar, breaks a size limit, or holds an entry that is unsafe
// to unpack: a path that climbs out with "..", an absolute path, a link or a
// device.
var ErrInvalidBundle = errors.New("invalid profile bundle")

// Limits of [ReadBundle]. A Profile Bundle is a handful of YAML files; the
// limits only stop a hostile or broken archive from exhausting memory or
// time. Each error that reports one names it.
const (
	// MaxBundleFileSize caps one YAML file held in memory.
	MaxBundleFileSize = 8 << 20
	// MaxBundleSize caps every entry together, uncompressed, including
	// files that are not YAML and are skipped.
	MaxBundleSize = 512 << 20
	// MaxBundleEntries caps the number of tar entries.
	MaxBundleEntries = 10000
	// MaxBundleDocuments caps the YAML documents over all files.
	MaxBundleDocuments = 10000
	// MaxBundleDecodedSize caps what the YAML of a bundle decodes to, over
	// all files, counting every alias as a copy of what it names: a few
	// kilobytes of anchors and aliases can otherwise stand for gigabytes.
	MaxBundleDecodedSize = 64 << 20
)

// BundleLimits caps what [ReadBundleLimits] reads. A zero field takes the
// matching Default value.
type BundleLimits struct {
	// MaxFileSize caps one YAML file; a larger one fails the read.
	MaxFileSize int64
	// MaxTotalSize caps all entries together after decompression, including
	// files that are not YAML and are skipped.
	MaxTotalSize int64
	// MaxEntries caps the number of tar entries.
	MaxEntries int
	// MaxDocuments caps the number of YAML documents over all files.
	MaxDocuments int
	// MaxDecodedSize caps the decoded size of all YAML documents, aliases
	// expanded (see [YAMLDecodedSize]).
	MaxDecodedSize int64
}

func (l BundleLimits) withDefaults() BundleLimits {
	if l.MaxFileSize <= 0 {
		l.MaxFileSize = MaxBundleFileSize
	}
	if l.MaxTotalSize <= 0 {
		l.MaxTotalSize = MaxBundleSize
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = MaxBundleEntries
	}
	if l.MaxDocuments <= 0 {
		l.MaxDocuments = MaxBundleDocuments
	}
	if l.MaxDecodedSize <= 0 {
		l.MaxDecodedSize = MaxBundleDecodedSize
	}
	return l
}

// Bundle is what a Profile Bundle archive holds: every object found in its
// YAML files, kept as unstructured maps so fields ferry does not know survive
// a round trip. The typed accessors in palette.go read the PaletteAI kinds.
type Bundle struct {
	// Files lists every regular file in archive order.
	Files []BundleFile
	// Objects lists every YAML document that is a mapping with a non-empty
	// string "kind", in archive order. Items of a "kind: List" document are
	// listed one by one.
	Objects []*Object
	// Unparsed lists YAML documents that are not valid YAML. They do not fail
	// the read: a bundle may carry templates that only render later; callers
	// decide whether to report them.
	Unparsed []DocumentError
}

// BundleFile is one regular file of the archive.
type BundleFile struct {
	Path string
	Size int64
}

// DocumentError says which YAML document of which file did not parse.
type DocumentError struct {
	File string
	Doc  int // 0-based position in File
	Err  error
}

func (e DocumentError) Error() string {
	return fmt.Sprintf("%s: document %d: %v", e.File, e.Doc, e.Err)
}

func (e DocumentError) Unwrap() error { return e.Err }

// ReadBundle reads a Profile Bundle archive (`<bundle>-<version>.tar.gz`, or
// an uncompressed tar) with the default limits. Every `.yaml` and `.yml` file
// in any folder is parsed; multi-document files and CRLF line endings are
// fine. Nothing is written to disk.
func ReadBundle(r io.Reader) (*Bundle, error) {
	return ReadBundleLimits(r, BundleLimits{})
}

// ReadBundleLimits is [ReadBundle] with explicit limits.
func ReadBundleLimits(r io.Reader, limits BundleLimits) (*Bundle, error) {
	lim := limits.withDefaults()
	br := bufio.NewReader(r)
	var stream io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: gzip: %v", ErrInvalidBundle, err)
		}
		defer zr.Close()
		stream = zr
	}
	counted := &cappedReader{r: stream, left: lim.MaxTotalSize, limit: lim.MaxTotalSize}
	tr := tar.NewReader(counted)

	b := &Bundle{}
	seen := map[string]bool{}
	tally := &bundleTally{lim: lim}
	for entries := 0; ; entries++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if errors.Is(err, ErrInvalidBundle) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: tar: %v", ErrInvalidBundle, err)
		}
		if entries >= lim.MaxEntries {
			return nil, fmt.Errorf("%w: more than %d entries (MaxBundleEntries) at %q", ErrInvalidBundle, lim.MaxEntries, hdr.Name)
		}
		name, err := bundleEntryName(hdr.Name)
		if err != nil {
			return nil, err
		}
		switch hdr.Typeflag {
		case tar.TypeDir, tar.TypeXGlobalHeader:
			continue
		case tar.TypeReg, tar.TypeRegA: //nolint:staticcheck // old archivers still write TypeRegA
		default:
			return nil, fmt.Errorf("%w: entry %q is a %s, not a regular file or folder", ErrInvalidBundle, hdr.Name, entryType(hdr.Typeflag))
		}
		if name == "" {
			return nil, fmt.Errorf("%w: regular file with empty name %q", ErrInvalidBundle, hdr.Name)
		}
		if seen[name] {
			return nil, fmt.Errorf("%w: entry %q appears twice", ErrInvalidBundle, name)
		}
		seen[name] = true
		b.Files = append(b.Files, BundleFile{Path: name, Size: hdr.Size})
		if !isYAMLName(name) {
			continue // tar.Reader skips the content, still through the cap
		}
		if hdr.Size > lim.MaxFileSize {
			return nil, fmt.Errorf("%w: %s is %d bytes, more than the %d a YAML file may have (MaxBundleFileSize)", ErrInvalidBundle, name, hdr.Size, lim.MaxFileSize)
		}
		data, err := io.ReadAll(io.LimitReader(tr, lim.MaxFileSize+1))
		if err != nil {
			if errors.Is(err, ErrInvalidBundle) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: reading %s: %v", ErrInvalidBundle, name, err)
		}
		if err := b.addYAML(name, data, tally); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// bundleTally counts what the YAML files of one bundle add up to.
type bundleTally struct {
	lim     BundleLimits
	docs    int
	decoded int64
}

// addYAML parses every document of one file.
func (b *Bundle) addYAML(file string, data []byte, tally *bundleTally) error {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	data = bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
	docs := splitYAMLDocuments(data)
	tally.docs += len(docs)
	if tally.docs > tally.lim.MaxDocuments {
		return fmt.Errorf("%w: %s brings the bundle past %d YAML documents (MaxBundleDocuments)", ErrInvalidBundle, file, tally.lim.MaxDocuments)
	}
	for i, doc := range docs {
		// Aliases are counted before anything is expanded.
		size, err := YAMLDecodedSize(doc, tally.lim.MaxDecodedSize-tally.decoded)
		if errors.Is(err, ErrYAMLTooLarge) {
			return fmt.Errorf("%w: %s: document %d brings the bundle past %d decoded bytes (MaxBundleDecodedSize)", ErrInvalidBundle, file, i, tally.lim.MaxDecodedSize)
		}
		if err != nil {
			b.Unparsed = append(b.Unparsed, DocumentError{File: file, Doc: i, Err: err})
			continue
		}
		tally.decoded += size
		v, err := decodeYAMLDocument(doc)
		if err != nil {
			b.Unparsed = append(b.Unparsed, DocumentError{File: file, Doc: i, Err: err})
			continue
		}
		m, ok := v.(map[string]any)
		if !ok {
			continue
		}
		kind, _ := m["kind"].(string)
		if kind == "" {
			continue
		}
		if kind == "List" {
			if items, ok := m["items"].([]any); ok {
				for _, it := range items {
					if im, ok := it.(map[string]any); ok {
						if k, _ := im["kind"].(string); k != "" {
							b.Objects = append(b.Objects, &Object{File: file, Doc: i, Content: im})
						}
					}
				}
				continue
			}
		}
		b.Objects = append(b.Objects, &Object{File: file, Doc: i, Content: m})
	}
	return nil
}

// decodeYAMLDocument turns one YAML document into JSON-typed values: maps,
// slices, strings, bool, nil, and int64 or float64 for numbers (as the
// Kubernetes unstructured types expect). An empty document gives nil.
func decodeYAMLDocument(doc []byte) (any, error) {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, err
	}
	var v any
	if err := utiljson.Unmarshal(js, &v); err != nil {
		return nil, err
	}
	return v, nil
}

// splitYAMLDocuments cuts a YAML stream at "---" lines. Content after "--- "
// on the marker line belongs to the new document; "..." ends a document.
// Documents holding only blanks and comments are dropped.
func splitYAMLDocuments(data []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	flush := func() {
		if hasYAMLContent(cur.Bytes()) {
			docs = append(docs, bytes.Clone(cur.Bytes()))
		}
		cur.Reset()
	}
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i+1], data[i+1:]
		} else {
			data = nil
		}
		text := bytes.TrimRight(line, "\n")
		switch {
		case bytes.Equal(text, []byte("---")):
			flush()
		case bytes.HasPrefix(text, []byte("--- ")) || bytes.HasPrefix(text, []byte("---\t")):
			flush()
			cur.Write(text[4:])
			cur.WriteByte('\n')
		case bytes.Equal(bytes.TrimRight(text, " \t"), []byte("...")):
			flush()
		default:
			cur.Write(line)
		}
	}
	flush()
	return docs
}

func hasYAMLContent(doc []byte) bool {
	for _, line := range bytes.Split(doc, []byte("\n")) {
		t := bytes.TrimSpace(line)
		if len(t) > 0 && t[0] != '#' {
			return true
		}
	}
	return false
}

// bundleEntryName checks a tar entry name and returns it cleaned, without a
// leading "./" or trailing "/". Both "/" and "\" count as separators so an
// archive written on Windows cannot climb out either.
func bundleEntryName(name string) (string, error) {
	if strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("%w: entry name %q holds a NUL byte", ErrInvalidBundle, name)
	}
	slashed := strings.ReplaceAll(name, `\`, "/")
	if strings.HasPrefix(slashed, "/") || (len(slashed) >= 2 && slashed[1] == ':') {
		return "", fmt.Errorf("%w: entry %q has an absolute path", ErrInvalidBundle, name)
	}
	for _, part := range strings.Split(slashed, "/") {
		if part == ".." {
			return "", fmt.Errorf("%w: entry %q climbs out of the archive with ..", ErrInvalidBundle, name)
		}
	}
	clean := path.Clean(slashed)
	if clean == "." {
		return "", nil
	}
	return clean, nil
}

func isYAMLName(name string) bool {
	lower := strings.ToLower(name)
	return strings.HasSuffix(lower, ".yaml") || strings.HasSuffix(lower, ".yml")
}

func entryType(flag byte) string {
	switch flag {
	case tar.TypeSymlink:
		return "symbolic link"
	case tar.TypeLink:
		return "hard link"
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeFifo:
		return "named pipe"
	default:
		return fmt.Sprintf("entry of type %q", flag)
	}
}

// cappedReader fails once more than left bytes were read, so a gzip bomb
// stops at the cap instead of filling memory or disk.
type cappedReader struct {
	r           io.Reader
	left, limit int64
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// One byte more tells a stream that ends exactly at the cap from
		// one that goes on.
		var one [1]byte
		if n, _ := c.r.Read(one[:]); n == 0 {
			return 0, io.EOF
		}
		return 0, fmt.Errorf("%w: more than %d bytes once uncompressed (MaxBundleSize)", ErrInvalidBundle, c.limit)
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// ParseBundleFileName splits a bundle archive name of the form
// `<bundle>-<version>.tar.gz` (also `.tgz` and `.tar`): the version starts at
// the first "-" followed by a digit or by "v" and a digit, so
// "clearml-bundle-v1.tar.gz" gives "clearml-bundle" and "v1". ok is false when
// the name has no such version.
func ParseBundleFileName(file string) (name, version string, ok bool) {
	base := path.Base(strings.ReplaceAll(file, `\`, "/"))
	for _, ext := range []string{".tar.gz", ".tgz", ".tar"} {
		if strings.HasSuffix(strings.ToLower(base), ext) {
			base = base[:len(base)-len(ext)]
			break
		}
	}
	for i := 0; i < len(base); i++ {
		if base[i] != '-' || i == 0 {
			continue
		}
		rest := base[i+1:]
		if len(rest) > 0 && isDigit(rest[0]) || len(rest) > 1 && rest[0] == 'v' && isDigit(rest[1]) {
			return base[:i], rest, true
		}
	}
	return base, "", false
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
