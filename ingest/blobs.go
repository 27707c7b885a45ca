package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/registry"
	"github.com/ferrytool/ferry/store"
)

// blobTask is one digest and the repositories that need it.
type blobTask struct {
	blob  manifest.Blob
	repos []string
}

// pushBlobs settles every blob the artifacts need in every repository: one
// worker per digest, so a blob goes up once and is mounted into the other
// repositories that need it.
func (in *ingester) pushBlobs(ctx context.Context) error {
	tasks := map[string]*blobTask{}
	var order []string
	for _, p := range in.plans {
		if p.res.State == StateRefused {
			// Refused before any upload (refuseDocker): only what another
			// artifact needs of its blobs goes.
			continue
		}
		in.mu.Lock()
		got := in.tags[p]
		in.mu.Unlock()
		if p.isAt(got) {
			continue // in already: its blobs are too
		}
		for _, b := range p.layers {
			t := tasks[b.Digest]
			if t == nil {
				t = &blobTask{blob: b}
				tasks[b.Digest] = t
				order = append(order, b.Digest)
			}
			if !contains(t.repos, p.repo) {
				t.repos = append(t.repos, p.repo)
			}
		}
	}
	pos := map[string]int{}
	for i, b := range in.vs.bom.Blobs {
		pos[b.Digest] = i
	}
	// Archive order: volume by volume, each read front to back.
	sort.SliceStable(order, func(i, j int) bool { return pos[order[i]] < pos[order[j]] })
	totals := Totals{Artifacts: len(in.plans), VolumeBytes: map[string]int64{}}
	for _, d := range order {
		t := tasks[d]
		if ok, vol := in.vs.available(t.blob); ok {
			totals.Blobs++
			totals.Bytes += t.blob.Size
			totals.VolumeBytes[vol] += t.blob.Size
		}
	}
	if in.opts.Progress.OnStart != nil {
		in.opts.Progress.OnStart(totals)
	}
	return fanOut(ctx, in.opts.Jobs, len(order), func(ctx context.Context, i int) error {
		d := order[i]
		if _, bad := in.isBad(d); bad {
			return nil
		}
		return in.settleBlob(ctx, tasks[d])
	})
}

func (in *ingester) outcome(b manifest.Blob, repo, outcome string) {
	in.mu.Lock()
	c := &in.report.Blobs
	switch outcome {
	case BlobUploaded:
		c.Uploaded++
	case BlobResumed:
		c.Resumed++
	case BlobMounted:
		c.Mounted++
	case BlobFound:
		c.Found++
	case BlobMissing:
		c.Missing++
	}
	in.mu.Unlock()
	if in.opts.Progress.OnBlob != nil {
		in.opts.Progress.OnBlob(b, repo, outcome)
	}
}

// settleBlob makes every repository of the task hold the blob, or finds
// that it cannot yet.
func (in *ingester) settleBlob(ctx context.Context, t *blobTask) error {
	b := t.blob
	avail, vol := in.vs.available(b)
	allIn := true
	for _, repo := range t.repos {
		if in.knownIn(repo, b.Digest) {
			// The journal recorded it in an earlier run: no request.
			in.setPresent(repo, b.Digest)
			in.outcome(b, repo, BlobFound)
			continue
		}
		if !avail || in.opts.DryRun {
			ok, err := in.reg.BlobExists(ctx, repo, b.Digest)
			if err != nil {
				return classify(in.dest.host, fmt.Errorf("HEAD %s@%s: %w", repo, b.Digest, err))
			}
			if ok {
				in.setPresent(repo, b.Digest)
				in.recordBlob(repo, b, BlobFound)
				in.outcome(b, repo, BlobFound)
				continue
			}
			allIn = false
			in.outcome(b, repo, BlobMissing)
			continue
		}
		outcome, bad, err := in.pushOne(ctx, repo, b, vol)
		if bad || err != nil {
			return err
		}
		in.setPresent(repo, b.Digest)
		in.recordBlob(repo, b, string(outcome))
		in.outcome(b, repo, string(outcome))
	}
	switch {
	case in.opts.DryRun || in.vs.whole[b.Digest] != nil:
	case allIn:
		in.vs.unstage(b.Digest) // a split blob is in everywhere: its staged parts go
	case !avail && len(in.vs.parts[b.Digest]) > 0:
		// Some parts are here, the rest in volumes to come: keep these.
		if _, err := in.vs.stage(ctx, b); err != nil {
			if isBadContent(err) {
				in.markBad(b.Digest, err.Error())
				return nil
			}
			return fmt.Errorf("stage parts of %s in %s: %w", b.Digest, in.vs.workDir, err)
		}
	}
	return nil
}

// pushOne puts a blob read from this run's volumes into repo; bad says
// the content failed verification (the blob is marked, the error nil).
func (in *ingester) pushOne(ctx context.Context, repo string, b manifest.Blob, vol string) (_ registry.Outcome, bad bool, _ error) {
	outcome, err := in.reg.PushBlob(ctx, registry.BlobPush{
		Repo:      repo,
		Digest:    b.Digest,
		Size:      b.Size,
		Open:      in.vs.opener(b),
		MountFrom: in.presentRepos(b.Digest),
		Sessions:  in.sessions(),
		OnBytes: func(n int64) {
			in.sent.Add(n)
			if in.opts.Progress.OnBytes != nil {
				in.opts.Progress.OnBytes(vol, n)
			}
		},
	})
	var ce *registry.ContentError
	if errors.As(err, &ce) && isBadContent(err) {
		in.markBad(b.Digest, err.Error())
		in.outcome(b, repo, BlobBad)
		return "", true, nil
	}
	if err != nil {
		return "", false, classify(in.dest.host, err)
	}
	return outcome, false, nil
}

// repairBlobs puts back the blobs of an artifact that the registry says
// it lacks although the journal recorded them (a registry emptied or
// restored since): each is looked for, and uploaded again from this run's
// volumes when they hold it.
func (in *ingester) repairBlobs(ctx context.Context, p *artifactPlan) error {
	for _, b := range p.layers {
		ok, err := in.reg.BlobExists(ctx, p.repo, b.Digest)
		if err != nil {
			return classify(in.dest.host, fmt.Errorf("HEAD %s@%s: %w", p.repo, b.Digest, err))
		}
		avail, vol := in.vs.available(b)
		if ok || !avail {
			continue
		}
		in.opts.Logger.Debug("blob recorded but missing; uploading again", "repo", p.repo, "digest", b.Digest)
		outcome, bad, err := in.pushOne(ctx, p.repo, b, vol)
		if bad || err != nil {
			return err
		}
		in.recordBlob(p.repo, b, string(outcome))
	}
	return nil
}

func (in *ingester) recordBlob(repo string, b manifest.Blob, outcome string) {
	if in.journal == nil || in.opts.DryRun {
		return
	}
	archive := in.vs.bom.ArchiveID
	if outcome == BlobFound {
		archive = ""
	}
	dest, rec := in.dest.key(), store.BlobRecord{Archive: archive, At: in.opts.Now(), Size: b.Size, How: outcome}
	in.jw.add(func(w *store.JournalWriter) error { return w.PutBlob(dest, repo, b.Digest, rec) })
}

// knownIn reports whether the journal recorded the blob in the repository
// of this destination: the registry answered so in an earlier run, and is
// not asked again.
func (in *ingester) knownIn(repo, digest string) bool {
	if in.journal == nil {
		return false
	}
	_, ok, err := in.journal.Blob(in.dest.key(), repo, digest)
	return err == nil && ok
}

// sessions returns the journal's upload sessions for this destination.
func (in *ingester) sessions() registry.Sessions {
	if in.journal == nil || in.opts.DryRun {
		return nil
	}
	return journalSessions{j: in.journal, w: in.jw, dest: in.dest.key(), now: in.opts.Now, log: in.opts.Logger}
}

type journalSessions struct {
	j    *store.Journal
	w    *journalWriter
	dest string
	now  func() time.Time
	log  *slog.Logger
}

func (s journalSessions) Load(repo, digest string) (string, bool) {
	u, ok, err := s.j.Upload(s.dest, repo, digest)
	if err != nil {
		s.log.Warn("journal", "error", err)
	}
	return u.Location, ok && u.Location != ""
}

func (s journalSessions) Save(repo, digest, location string) {
	u := store.UploadSession{Location: location, Started: s.now()}
	s.w.add(func(w *store.JournalWriter) error { return w.PutUpload(s.dest, repo, digest, u) })
}

func (s journalSessions) Drop(repo, digest string) {
	s.w.add(func(w *store.JournalWriter) error { return w.DeleteUpload(s.dest, repo, digest) })
}
