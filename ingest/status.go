package ingest

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/ferrytool/ferry/archive"
	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/store"
)

// StatusReport is what the journal says, without any volume or network:
// per destination and archive, which artifacts are in and what the others
// wait for.
type StatusReport struct {
	Journal      string       `json:"journal"`
	Destinations []DestStatus `json:"destinations"`
}

// DestStatus is one destination's archives.
type DestStatus struct {
	Registry string          `json:"registry"`
	Archives []ArchiveStatus `json:"archives"`
	// Uploads counts upload sessions an interrupted run left open; the next
	// run resumes them.
	Uploads int `json:"uploadsInFlight,omitempty"`
}

// ArchiveStatus is one archive's progress into a destination.
type ArchiveStatus struct {
	ArchiveID string    `json:"archiveID"`
	BOMDigest string    `json:"bomDigest"`
	FirstRun  time.Time `json:"firstRun"`
	LastRun   time.Time `json:"lastRun"`
	// VolumesSeen lists the volume numbers ingested so far.
	VolumesSeen []int `json:"volumesSeen"`
	// LastVolume is the number of the final volume, 0 until it is seen.
	LastVolume int              `json:"lastVolume,omitempty"`
	Complete   int              `json:"complete"`
	Artifacts  []ArtifactResult `json:"artifacts"`
}

// Done reports whether every artifact of the archive is in.
func (a ArchiveStatus) Done() bool { return a.Complete == len(a.Artifacts) }

// Status reads the journal. registry limits it to one destination (""
// means all). verifier, when given, checks each recorded bill of
// materials' signature again.
func Status(ctx context.Context, j *store.Journal, registry string, verifier archive.Verifier) (*StatusReport, error) {
	if j == nil {
		return nil, ErrNoJournal
	}
	rep := &StatusReport{Journal: j.Path()}
	dests, err := j.Destinations()
	if err != nil {
		return nil, err
	}
	if registry != "" {
		d, err := parseDestination(registry)
		if err != nil {
			return nil, err
		}
		dests = []string{d.key()}
	}
	for _, key := range dests {
		dest, err := parseDestination(key)
		if err != nil {
			return nil, err
		}
		opts := &config{Journal: j, Verifier: verifier}
		boms, err := journalBOMs(ctx, opts, dest)
		if err != nil {
			return nil, err
		}
		ds := DestStatus{Registry: key}
		if ds.Uploads, err = j.Uploads(key); err != nil {
			return nil, err
		}
		for _, jb := range boms {
			as, err := archiveStatus(j, dest, jb)
			if err != nil {
				return nil, err
			}
			ds.Archives = append(ds.Archives, as)
		}
		rep.Destinations = append(rep.Destinations, ds)
	}
	return rep, nil
}

func archiveStatus(j *store.Journal, dest destination, jb journalBOM) (ArchiveStatus, error) {
	da := jb.da
	rec, _, _, _, err := j.Archive(jb.bom.ArchiveID)
	if err != nil {
		return ArchiveStatus{}, err
	}
	as := ArchiveStatus{ArchiveID: jb.bom.ArchiveID, BOMDigest: rec.BOMDigest, FirstRun: da.FirstRun, LastRun: da.LastRun}
	for n, v := range rec.Volumes {
		as.VolumesSeen = append(as.VolumesSeen, n)
		if v.Final {
			as.LastVolume = n
		}
	}
	sort.Ints(as.VolumesSeen)
	plans, err := planArtifacts(jb.bom, dest, jb.mappings)
	if err != nil {
		return as, err
	}
	loc := newLocator(jb.bom, rec.Volumes)
	noteOCIForms(plans, func(d string) []byte {
		if m, ok, err := j.ManifestData(d); err == nil && ok && digestOf(m.Data) == d {
			return m.Data
		}
		return nil
	})
	for _, p := range plans {
		res := p.res
		pushed := false
		// The archive's form, or the OCI form an ingest --convert-oci pushed.
		for _, d := range []string{p.a.Digest, p.ociDigest} {
			if d == "" || pushed {
				continue
			}
			m, ok, err := j.Manifest(dest.key(), p.repo, d)
			if err != nil {
				return as, err
			}
			if ok && (p.a.Dest.Tag == "" || m.Tag == p.a.Dest.Tag) {
				pushed = true
				if d != p.a.Digest {
					res.PushedDigest = d
				}
			}
		}
		if pushed {
			res.State = StatePushed
			as.Complete++
			as.Artifacts = append(as.Artifacts, res)
			continue
		}
		if why, ok := da.Refused[p.a.Name]; ok {
			res.State, res.Reason = StateRefused, why
			as.Artifacts = append(as.Artifacts, res)
			continue
		}
		var ranges []volumeRange
		blobs := append(append([]manifest.Blob(nil), p.layers...), p.manifests...)
		for _, b := range blobs {
			if why, ok := da.Bad[b.Digest]; ok {
				res.State, res.Reason = StateRefused, "blob "+b.Digest+" failed verification: "+why
				break
			}
			if manifest.IsManifest(b.MediaType) || b.Digest == p.a.Digest {
				if _, ok, _ := j.ManifestData(b.Digest); ok {
					continue
				}
				if _, ok, _ := j.Manifest(dest.key(), p.repo, b.Digest); ok {
					continue
				}
			} else if _, ok, _ := j.Blob(dest.key(), p.repo, b.Digest); ok {
				continue
			}
			res.MissingBlobs++
			res.MissingBytes += b.Size
			ranges = append(ranges, loc.where(b.Digest)...)
		}
		if res.State == StateRefused {
			as.Artifacts = append(as.Artifacts, res)
			continue
		}
		res.State = StateWaiting
		if res.MissingBlobs > 0 {
			res.WaitingFor = describeVolumes(ranges)
			res.Reason = fmt.Sprintf("%d blob(s), %s, are in %s", res.MissingBlobs, humanSize(res.MissingBytes), res.WaitingFor)
		} else {
			res.WaitingFor = "another run (everything it needs has been seen)"
			res.Reason = "every blob has been seen; run ingest again to push its manifests"
		}
		as.Artifacts = append(as.Artifacts, res)
	}
	return as, nil
}
