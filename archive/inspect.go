package archive

import (
	"context"
	"fmt"
	"io"
	"sort"

	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/store"
)

// Inspection is what the indexes of a set of volumes say, without any blob
// being decompressed.
type Inspection struct {
	ArchiveID string            `json:"archiveID"`
	BOMDigest string            `json:"bomDigest"`
	Created   string            `json:"created"`
	Tool      string            `json:"tool,omitempty"`
	Artifacts []ArtifactSummary `json:"artifacts"`
	Stats     manifest.Stats    `json:"stats"`
	Volumes   []VolumeSummary   `json:"volumes"`
	Missing   []int             `json:"missingVolumes,omitempty"`
	LastSeen  bool              `json:"lastVolumeSeen"`
}

// ArtifactSummary is one artifact with its total size.
type ArtifactSummary struct {
	manifest.Artifact
	// TotalSize is the sum of the artifact's blobs.
	TotalSize int64 `json:"totalSize"`
}

// VolumeSummary describes one volume.
type VolumeSummary struct {
	Name   string `json:"name"`
	Number int    `json:"number"`
	Final  bool   `json:"final"`
	Size   int64  `json:"size"`
	Blobs  int    `json:"blobs"`
	Parts  int    `json:"parts"`
}

// VolumeSource is a volume to inspect: a name for messages and random access
// to its bytes.
type VolumeSource struct {
	Name string
	R    io.ReaderAt
	Size int64
}

// Inspect reads only the trailer and index of each volume.
func Inspect(ctx context.Context, vols []VolumeSource, tmpDir string) (*Inspection, error) {
	if len(vols) == 0 {
		return nil, fmt.Errorf("no volumes given")
	}
	in := &Inspection{}
	seen := map[int]string{}
	for _, vs := range vols {
		v, err := OpenVolume(ctx, vs.R, vs.Size, vs.Name, tmpDir)
		if err != nil {
			return nil, err
		}
		ix := v.Index()
		if in.ArchiveID == "" {
			in.ArchiveID, in.BOMDigest, in.Tool = ix.Meta.ArchiveID, ix.Meta.BOMDigest, ix.Meta.Tool
			in.Created = ix.Meta.Created.UTC().Format("2006-01-02T15:04:05Z")
			in.fill(ix)
		} else if ix.Meta.BOMDigest != in.BOMDigest {
			return nil, fmt.Errorf("%w: %s belongs to archive %s, not %s", ErrFormat, vs.Name, ix.Meta.ArchiveID, in.ArchiveID)
		}
		if other, dup := seen[ix.Meta.Volume]; dup {
			return nil, fmt.Errorf("%w: %s and %s are both volume %d", ErrFormat, other, vs.Name, ix.Meta.Volume)
		}
		seen[ix.Meta.Volume] = vs.Name
		s := VolumeSummary{Name: vs.Name, Number: ix.Meta.Volume, Final: ix.Meta.Final, Size: vs.Size}
		for _, e := range ix.Entries {
			if e.Part != nil {
				s.Parts++
			} else {
				s.Blobs++
			}
		}
		in.LastSeen = in.LastSeen || ix.Meta.Final
		in.Volumes = append(in.Volumes, s)
	}
	sort.Slice(in.Volumes, func(i, j int) bool { return in.Volumes[i].Number < in.Volumes[j].Number })
	last := in.Volumes[len(in.Volumes)-1].Number
	for n := 1; n <= last; n++ {
		if _, ok := seen[n]; !ok {
			in.Missing = append(in.Missing, n)
		}
	}
	return in, nil
}

func (in *Inspection) fill(ix *store.VolumeIndex) {
	size := map[string]int64{}
	for _, b := range ix.Blobs {
		size[b.Digest] = b.Size
	}
	for _, a := range ix.Artifacts {
		var total int64
		for _, d := range a.Blobs {
			total += size[d]
		}
		in.Artifacts = append(in.Artifacts, ArtifactSummary{Artifact: a, TotalSize: total})
	}
	bom := manifest.BOM{Artifacts: ix.Artifacts, Blobs: ix.Blobs}
	in.Stats = bom.Stats()
}
