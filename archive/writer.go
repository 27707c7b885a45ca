package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/ferrytool/ferry/internal/digestio"
	"github.com/ferrytool/ferry/manifest"
)

// DefaultVolumeSize is the most a FAT32 file system holds in one file.
const DefaultVolumeSize = 4<<30 - 1

// minPart is the smallest part worth starting in the rest of a volume; a
// smaller rest is left empty and the part goes into the next volume.
const minPart = 64 << 10

// BlobSource provides the content of the blobs listed in a bill of materials.
type BlobSource interface {
	OpenBlob(ctx context.Context, b manifest.Blob) (io.ReadCloser, error)
}

// WriteOptions configure Write. The zero value of every optional field is
// documented beside it.
type WriteOptions struct {
	// Dir is where the volumes are written; empty means the current folder.
	Dir string
	// Name is the archive name; volumes are NAME.tar.zst, or NAME.tar.zst.001,
	// .002, ... when there is more than one.
	Name string
	// VolumeSize caps each volume file; zero means DefaultVolumeSize.
	VolumeSize int64
	// Signer signs the bill of materials. Required.
	Signer Signer
	// Tool names the ferry build in each volume index; optional.
	Tool string
	// Logger receives debug records; nil discards.
	Logger *slog.Logger
	// OnProgress is called with the number of content bytes just written.
	OnProgress func(n int64)
	// OnBlob is called after each blob is fully written.
	OnBlob func(b manifest.Blob)
	// OnVolume is called after each volume is complete (under its temporary name).
	OnVolume func(v VolumeInfo)
}

// VolumeInfo describes one written volume.
type VolumeInfo struct {
	Path   string `json:"path"`
	Number int    `json:"number"`
	Size   int64  `json:"size"`
	Blobs  int    `json:"blobs"`
	Parts  int    `json:"parts"`
}

// Result describes a written archive.
type Result struct {
	Volumes   []VolumeInfo
	BOMDigest string
}

// Write writes the archive for bom, taking every blob from src in the order
// the bill of materials lists them. On any error nothing is left behind: the
// volumes are written under temporary names and renamed only at the end.
func Write(ctx context.Context, bom *manifest.BOM, src BlobSource, opts WriteOptions) (res *Result, err error) {
	if opts.Signer == nil {
		return nil, fmt.Errorf("archive %s: no signer given", opts.Name)
	}
	if opts.Name == "" || filepath.Base(opts.Name) != opts.Name {
		return nil, fmt.Errorf("archive name %q must be a plain file name", opts.Name)
	}
	if opts.VolumeSize == 0 {
		opts.VolumeSize = DefaultVolumeSize
	}
	if opts.Dir == "" {
		opts.Dir = "."
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := bom.Validate(); err != nil {
		return nil, err
	}
	if err := refuseExisting(opts.Dir, opts.Name, bom.ArchiveID); err != nil {
		return nil, err
	}
	bomBytes, err := bom.Marshal()
	if err != nil {
		return nil, err
	}
	sig, err := opts.Signer.SignBOM(ctx, bomBytes)
	if err != nil {
		return nil, fmt.Errorf("sign bill of materials of %s: %w", opts.Name, err)
	}
	indexJSON, err := ociIndex(bom)
	if err != nil {
		return nil, err
	}
	w := &writer{
		opts:      opts,
		bom:       bom,
		bomBytes:  bomBytes,
		sig:       sig,
		indexJSON: indexJSON,
		created:   bom.Created.Truncate(time.Second),
		written:   make(map[string]bool, len(bom.Blobs)),
	}
	w.raw = newRawEncoder()
	if w.fast, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest)); err != nil {
		return nil, err
	}
	if w.best, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault)); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			w.abort()
		}
	}()
	if err := w.checkFits(); err != nil {
		return nil, err
	}
	if err := w.startVolume(); err != nil {
		return nil, err
	}
	for _, b := range bom.Blobs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := w.writeBlob(ctx, src, b); err != nil {
			return nil, err
		}
	}
	if err := w.finishVolume(ctx, true); err != nil {
		return nil, err
	}
	return w.commit(ctx)
}

type writer struct {
	opts      WriteOptions
	bom       *manifest.BOM
	bomBytes  []byte
	sig       []byte
	indexJSON []byte
	created   time.Time
	raw       *rawEncoder
	fast      *zstd.Encoder
	best      *zstd.Encoder
	written   map[string]bool
	volumes   []VolumeInfo
	vol       *volume
}

// volume is the volume being written.
type volume struct {
	number  int
	path    string
	f       *os.File
	cw      *countingWriter
	sw      *switchWriter
	tw      *tar.Writer
	entries []Entry
	head    int64 // where the first blob or part frame starts
	content int   // blob and part entries
	parts   int
	// used sums the bounds of the first counted entries (see room).
	used    int64
	counted int
}

// refuseExisting makes way for the archive: it refuses a file of its name
// that this writer did not leave unfinished, removes what an unfinished
// write left, and writes the marker of this write before any volume.
func refuseExisting(dir, name, archiveID string) error {
	left, err := leftovers(dir, name)
	if err != nil {
		return err
	}
	// What is left was never a complete set this writer finished: removing
	// it loses nothing.
	for _, p := range left {
		if err := os.Remove(p); err != nil && !isNotExist(err) {
			return fmt.Errorf("remove unfinished volume %s: %w", p, err)
		}
	}
	return writeMarker(dir, name, setMarker{ArchiveID: archiveID})
}

// layout is the placement's view of this archive.
func (w *writer) layout() layout {
	return newLayout(w.opts.VolumeSize, len(w.bomBytes), len(w.sig), len(w.indexJSON))
}

func (w *writer) checkFits() error { return w.layout().fits() }

// sealBound is the most the index seal takes: the statement, the signature
// (about as long as the bill of materials'), JSON around them.
func (w *writer) sealBound() int64 { return w.layout().sealBound() }

func (w *writer) startVolume() error {
	n := len(w.volumes) + 1
	path := filepath.Join(w.opts.Dir, fmt.Sprintf("%s.tar.zst.%03d.partial", w.opts.Name, n))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("create volume %d: %w", n, err)
	}
	cw := &countingWriter{w: f, flusher: newFlusher(f)}
	sw := &switchWriter{}
	w.vol = &volume{number: n, path: path, f: f, cw: cw, sw: sw, tw: tar.NewWriter(sw)}
	w.volumes = append(w.volumes, VolumeInfo{Path: path, Number: n})
	for _, e := range []struct {
		name string
		data []byte
	}{{NameBOM, w.bomBytes}, {NameSignature, w.sig}, {NameOCILayout, []byte(ociLayoutContent)}} {
		if _, err := w.writeEntry(e.name, bytes.NewReader(e.data), int64(len(e.data)), false); err != nil {
			return err
		}
	}
	w.vol.head = cw.n
	return nil
}

// writeEntry writes one tar entry as its own zstd frame and returns where the
// frame sits.
func (w *writer) writeEntry(name string, r io.Reader, size int64, compressed bool) (Entry, error) {
	v := w.vol
	var enc frameEncoder = w.best
	if compressed {
		enc = w.raw
	}
	start := v.cw.n
	enc.Reset(v.cw)
	v.sw.w = enc
	hdr := &tar.Header{Name: name, Mode: 0o644, Size: size, ModTime: w.created, Typeflag: tar.TypeReg}
	if err := v.tw.WriteHeader(hdr); err != nil {
		return Entry{}, fmt.Errorf("volume %d: write %s: %w", v.number, name, err)
	}
	n, err := io.Copy(v.tw, r)
	if err != nil {
		return Entry{}, fmt.Errorf("volume %d: write %s: %w", v.number, name, err)
	}
	if n != size {
		return Entry{}, fmt.Errorf("volume %d: write %s: got %d bytes, expected %d", v.number, name, n, size)
	}
	if err := v.tw.Flush(); err != nil {
		return Entry{}, fmt.Errorf("volume %d: write %s: %w", v.number, name, err)
	}
	if err := enc.Close(); err != nil {
		return Entry{}, fmt.Errorf("volume %d: write %s: %w", v.number, name, err)
	}
	return Entry{Path: name, Offset: start, Length: v.cw.n - start, Size: size}, nil
}

// room is how many bytes the next content entry may take in this volume,
// counting the entries written so far by their bounds (see placement.go).
func (w *writer) room() int64 {
	v := w.vol
	for ; v.counted < len(v.entries); v.counted++ {
		v.used += entryBound(v.entries[v.counted].Size)
	}
	return w.layout().room(v.used, len(v.entries))
}

func (w *writer) writeBlob(ctx context.Context, src BlobSource, b manifest.Blob) error {
	rc, err := src.OpenBlob(ctx, b)
	if err != nil {
		return fmt.Errorf("open blob %s: %w", b.Digest, err)
	}
	defer rc.Close()
	// Hashing runs beside the write, so a large layer costs one pass of
	// whichever is slower, not both.
	vr := digestio.NewAsyncReader(rc, b.Digest, b.Size)
	defer vr.Close()
	var r io.Reader = progressReader{r: vr, fn: w.opts.OnProgress}
	if manifest.IsManifest(b.MediaType) {
		// Manifests are small; read them whole to check that everything they
		// reference is already in the archive.
		if b.Size > manifest.MaxManifestSize {
			return fmt.Errorf("manifest %s is %d bytes, over the %d byte limit", b.Digest, b.Size, manifest.MaxManifestSize)
		}
		data, err := io.ReadAll(r)
		if err != nil {
			return fmt.Errorf("read manifest %s: %w", b.Digest, err)
		}
		if err := w.checkChildren(b, data); err != nil {
			return err
		}
		r = bytes.NewReader(data)
	}
	compressed := manifest.IsCompressed(b.MediaType)
	switch w.layout().placeWhole(b.Size, w.room()) {
	case placeNext:
		if err := w.nextVolume(ctx); err != nil {
			return err
		}
	case placeSplit:
		return w.writeParts(ctx, b, r, compressed)
	}
	e, err := w.writeEntry(blobName(b.Digest), r, b.Size, compressed)
	if err != nil {
		return fmt.Errorf("blob %s: %w", b.Digest, err)
	}
	e.Digest = b.Digest
	w.vol.entries = append(w.vol.entries, e)
	w.vol.content++
	w.written[b.Digest] = true
	if w.opts.OnBlob != nil {
		w.opts.OnBlob(b)
	}
	return nil
}

func (w *writer) checkChildren(b manifest.Blob, data []byte) error {
	children, err := manifest.Children(b.MediaType, data)
	if err != nil {
		return fmt.Errorf("manifest %s: %w", b.Digest, err)
	}
	for _, c := range children {
		if _, expected := w.bom.ExpectedBlob(c.Digest); expected {
			continue // a delta leaves it out: the destination holds it
		}
		if !w.written[c.Digest] {
			return fmt.Errorf("%w: manifest %s references %s, which the bill of materials does not list before it", ErrFormat, b.Digest, c.Digest)
		}
	}
	return nil
}

// writeParts spreads a blob larger than a volume over as many volumes as it
// needs, each part its own entry with its own digest.
func (w *writer) writeParts(ctx context.Context, b manifest.Blob, r io.Reader, compressed bool) error {
	var off int64
	for off < b.Size {
		n := nextPart(w.room(), b.Size-off, w.vol.content)
		if n == 0 {
			if err := w.nextVolume(ctx); err != nil {
				return err
			}
			continue
		}
		d := digestio.NewDigester()
		e, err := w.writeEntry(partName(b.Digest, off), io.TeeReader(io.LimitReader(r, n), d), n, compressed)
		if err != nil {
			return fmt.Errorf("blob %s part at %d: %w", b.Digest, off, err)
		}
		e.Digest = b.Digest
		e.Part = &Part{Offset: off, Digest: d.Digest()}
		w.vol.entries = append(w.vol.entries, e)
		w.vol.content++
		w.vol.parts++
		off += n
		if off < b.Size {
			if err := w.nextVolume(ctx); err != nil {
				return err
			}
		}
	}
	// The last read reaches EOF of the verifying reader, which checks the
	// whole blob's digest.
	if _, err := io.Copy(io.Discard, r); err != nil {
		return fmt.Errorf("blob %s: %w", b.Digest, err)
	}
	w.written[b.Digest] = true
	if w.opts.OnBlob != nil {
		w.opts.OnBlob(b)
	}
	return nil
}

func (w *writer) nextVolume(ctx context.Context) error {
	if err := w.finishVolume(ctx, false); err != nil {
		return err
	}
	return w.startVolume()
}

// finishVolume writes index.json, the index database and its seal, the tar
// end marker and the trailer, then syncs and closes the file.
func (w *writer) finishVolume(ctx context.Context, final bool) error {
	v := w.vol
	entriesBytes := v.cw.n
	if _, err := w.writeEntry(NameIndexJSON, bytes.NewReader(w.indexJSON), int64(len(w.indexJSON)), false); err != nil {
		return err
	}
	ix := &VolumeIndex{
		Meta: VolumeMeta{
			ArchiveID: w.bom.ArchiveID, Volume: v.number, Final: final,
			BOMDigest: digestio.FromBytes(w.bomBytes), Created: w.bom.Created,
			Tool: w.opts.Tool, HeadBytes: v.head, EntriesBytes: entriesBytes,
		},
		Entries: v.entries,
	}
	db, err := w.indexBytes(ix)
	if err != nil {
		return fmt.Errorf("volume %d: %w", v.number, err)
	}
	sealed, err := makeSeal(ctx, w.opts.Signer, statement{
		ArchiveID: ix.Meta.ArchiveID, BOMDigest: ix.Meta.BOMDigest, Volume: v.number, Final: final,
		IndexDigest: digestio.FromBytes(db), IndexSize: int64(len(db)),
	})
	if err != nil {
		return err
	}
	if int64(len(sealed)) > w.sealBound() {
		return fmt.Errorf("volume %d: index seal of %d bytes is larger than reserved", v.number, len(sealed))
	}
	ie, err := w.writeEntry(NameIndexDB, bytes.NewReader(db), int64(len(db)), false)
	if err != nil {
		return err
	}
	se, err := w.writeEntry(NameIndexSeal, bytes.NewReader(sealed), int64(len(sealed)), false)
	if err != nil {
		return err
	}
	w.fast.Reset(v.cw)
	v.sw.w = w.fast
	if err := v.tw.Close(); err != nil {
		return fmt.Errorf("volume %d: close tar: %w", v.number, err)
	}
	if err := w.fast.Close(); err != nil {
		return fmt.Errorf("volume %d: close tar: %w", v.number, err)
	}
	if _, err := v.cw.Write(trailer{indexOffset: ie.Offset, indexLength: ie.Length, sealOffset: se.Offset, sealLength: se.Length}.marshal()); err != nil {
		return fmt.Errorf("volume %d: trailer: %w", v.number, err)
	}
	if v.cw.n > w.opts.VolumeSize {
		return fmt.Errorf("%w: volume %d came out at %d bytes, over the %d byte limit (index larger than reserved)", ErrVolumeSize, v.number, v.cw.n, w.opts.VolumeSize)
	}
	if err := v.cw.flusher.stop(); err != nil {
		return fmt.Errorf("volume %d: sync: %w", v.number, err)
	}
	if err := v.f.Sync(); err != nil {
		return fmt.Errorf("volume %d: sync: %w", v.number, err)
	}
	if err := v.f.Close(); err != nil {
		return fmt.Errorf("volume %d: close: %w", v.number, err)
	}
	info := &w.volumes[len(w.volumes)-1]
	info.Size, info.Blobs, info.Parts = v.cw.n, v.content-v.parts, v.parts
	if w.opts.OnVolume != nil {
		w.opts.OnVolume(*info)
	}
	w.opts.Logger.Debug("volume written", "volume", v.number, "bytes", v.cw.n, "entries", len(v.entries))
	w.vol = nil
	return nil
}

// indexBytes writes the index database to a temporary file beside the
// volumes (bbolt writes only to files) and returns its bytes.
func (w *writer) indexBytes(ix *VolumeIndex) ([]byte, error) {
	f, err := os.CreateTemp(w.opts.Dir, ".ferry-index-*.db")
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	path := f.Name()
	f.Close()
	os.Remove(path)
	defer os.Remove(path)
	if err := writeIndexDB(path, ix); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	if len(data) > MaxIndexSize {
		return nil, fmt.Errorf("%w: index of %d bytes is over the %d byte limit (MaxIndexSize); use a smaller volume size", ErrLimit, len(data), MaxIndexSize)
	}
	return data, nil
}

// commit renames the finished volumes to their final names. The marker
// lists them first, so a cut between two renames leaves a set the next
// write recognises as its own; it goes last, once every name is durable.
func (w *writer) commit(ctx context.Context) (*Result, error) {
	final := make([]string, len(w.volumes))
	m := setMarker{ArchiveID: w.bom.ArchiveID, Volumes: map[string]int64{}}
	for i, v := range w.volumes {
		if len(w.volumes) == 1 {
			final[i] = filepath.Join(w.opts.Dir, w.opts.Name+".tar.zst")
		} else {
			final[i] = filepath.Join(w.opts.Dir, fmt.Sprintf("%s.tar.zst.%03d", w.opts.Name, i+1))
		}
		m.Volumes[filepath.Base(final[i])] = v.Size
	}
	if err := writeMarker(w.opts.Dir, w.opts.Name, m); err != nil {
		return nil, err
	}
	for i, v := range w.volumes {
		if err := os.Rename(v.Path, final[i]); err != nil {
			for j := 0; j < i; j++ {
				os.Remove(final[j])
			}
			return nil, fmt.Errorf("rename volume %d: %w", v.Number, err)
		}
		commitHook(ctx, i+1)
	}
	res := &Result{BOMDigest: digestio.FromBytes(w.bomBytes)}
	for i, v := range w.volumes {
		v.Path = final[i]
		res.Volumes = append(res.Volumes, v)
	}
	syncDir(w.opts.Dir)
	removeMarker(w.opts.Dir, w.opts.Name)
	return res, nil
}

// abort removes every volume written so far, then the marker.
func (w *writer) abort() {
	if w.vol != nil {
		w.vol.cw.flusher.stop()
		w.vol.f.Close()
	}
	for _, v := range w.volumes {
		os.Remove(v.Path)
	}
	removeMarker(w.opts.Dir, w.opts.Name)
}

// ociIndex builds index.json: one entry per artifact, named by
// org.opencontainers.image.ref.name, sorted for a stable file.
func ociIndex(bom *manifest.BOM) ([]byte, error) {
	type desc struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Size        int64             `json:"size"`
		Annotations map[string]string `json:"annotations,omitempty"`
	}
	idx := struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType"`
		Manifests     []desc `json:"manifests"`
	}{SchemaVersion: 2, MediaType: manifest.MediaTypeOCIIndex, Manifests: []desc{}}
	for _, a := range bom.Artifacts {
		idx.Manifests = append(idx.Manifests, desc{
			MediaType: a.MediaType, Digest: a.Digest, Size: a.Size,
			Annotations: map[string]string{"org.opencontainers.image.ref.name": a.Name},
		})
	}
	sort.Slice(idx.Manifests, func(i, j int) bool {
		return idx.Manifests[i].Annotations["org.opencontainers.image.ref.name"] < idx.Manifests[j].Annotations["org.opencontainers.image.ref.name"]
	})
	return json.Marshal(idx)
}

// progressReader reports bytes as they pass.
type progressReader struct {
	r  io.Reader
	fn func(int64)
}

func (p progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 && p.fn != nil {
		p.fn(int64(n))
	}
	return n, err
}

// WriteTo lets io.Copy reach the source's own WriteTo, which hashes the
// buffers it writes rather than copies of them.
func (p progressReader) WriteTo(w io.Writer) (int64, error) {
	wt, ok := p.r.(io.WriterTo)
	if !ok {
		return io.Copy(w, struct{ io.Reader }{p})
	}
	return wt.WriteTo(progressWriter{w: w, fn: p.fn})
}

// progressWriter reports bytes as they are written.
type progressWriter struct {
	w  io.Writer
	fn func(int64)
}

func (p progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	if n > 0 && p.fn != nil {
		p.fn(int64(n))
	}
	return n, err
}
