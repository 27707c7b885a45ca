package archive

import (
	"context"
	"fmt"

	"github.com/ferrytool/ferry/manifest"
)

// Inspection is what a set of volumes holds, read from their signed bills
// of materials and sealed indexes, without any blob being decompressed.
type Inspection struct {
	ArchiveID string            `json:"archiveID"`
	BOMDigest string            `json:"bomDigest"`
	Created   string            `json:"created"`
	Tool      string            `json:"tool,omitempty"`
	Artifacts []ArtifactSummary `json:"artifacts"`
	// SupplyChain lists per image what is attached to it and the check of
	// its signatures recorded at collect; empty when there is neither.
	SupplyChain []manifest.ImageSupplyChain `json:"supplyChain,omitempty"`
	Stats       manifest.Stats              `json:"stats"`
	Volumes     []VolumeSummary             `json:"volumes"`
	Missing     []int                       `json:"missingVolumes,omitempty"`
	LastSeen    bool                        `json:"lastVolumeSeen"`
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

// Inspect summarises an open set. A volume that failed its checks is an
// error: inspect lists only what is signed.
func Inspect(_ context.Context, s *Set) (*Inspection, error) {
	in := &Inspection{ArchiveID: s.bom.ArchiveID, BOMDigest: s.bomDigest, Created: s.bom.Created.UTC().Format("2006-01-02T15:04:05Z")}
	for _, v := range s.vols {
		if v.Err != nil {
			return nil, v.Err
		}
		if v.Tampered != nil {
			return nil, v.Tampered
		}
		if in.Tool == "" {
			in.Tool = v.meta.Tool
		}
		in.Volumes = append(in.Volumes, VolumeSummary{Name: v.Path, Number: v.Number, Final: v.Final, Size: v.Size, Blobs: v.Blobs, Parts: v.Parts})
	}
	if len(in.Volumes) == 0 {
		return nil, fmt.Errorf("%w: no volume verified", ErrNotFound)
	}
	for _, a := range s.bom.Artifacts {
		var total int64
		for _, d := range a.Blobs {
			total += s.blobs[d].Size
		}
		in.Artifacts = append(in.Artifacts, ArtifactSummary{Artifact: a, TotalSize: total})
	}
	in.SupplyChain = s.bom.SupplyChain()
	in.Stats = s.bom.Stats()
	in.Missing, in.LastSeen = s.Missing()
	return in, nil
}
