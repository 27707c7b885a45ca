package ingest

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/store"
)

// journalWriter records what a run does without holding the workers up: a
// record per blob, each with its own disk sync, would cost more than small
// uploads themselves. Records queue and go in together, one transaction
// while the next ones gather. Losing the last few to a crash costs nothing
// but a HEAD: every run asks the registry before it uploads.
//
// A batch that cannot be written (a full disk, a journal gone read-only)
// does not stop the uploads, but it is kept and returned by close: a run
// whose journal lost records must not report success, or --status and the
// next run's resume would rest on records that are not there.
type journalWriter struct {
	j   *store.Journal
	log *slog.Logger

	mu      sync.Mutex
	pending []func(*store.JournalWriter) error
	err     error // the first batch that failed
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
}

func newJournalWriter(j *store.Journal, log *slog.Logger) *journalWriter {
	w := &journalWriter{j: j, log: log, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
}

func (w *journalWriter) add(fn func(*store.JournalWriter) error) {
	w.mu.Lock()
	w.pending = append(w.pending, fn)
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *journalWriter) run() {
	defer close(w.done)
	for {
		select {
		case <-w.kick:
			w.flush()
		case <-w.stop:
			w.flush()
			return
		}
		// Let a few more gather before the next sync.
		time.Sleep(20 * time.Millisecond)
	}
}

func (w *journalWriter) flush() {
	w.mu.Lock()
	batch := w.pending
	w.pending = nil
	w.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	err := w.j.Write(func(jw *store.JournalWriter) error {
		for _, fn := range batch {
			if err := fn(jw); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		w.log.Warn("journal", "path", w.j.Path(), "records", len(batch), "error", err)
		w.mu.Lock()
		if w.err == nil {
			w.err = fmt.Errorf("journal %s: %d records not written: %w", w.j.Path(), len(batch), err)
		}
		w.mu.Unlock()
	}
}

// close writes what is still queued and returns the first write that
// failed during the run, if any.
func (w *journalWriter) close() error {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// CauseRollback (ArtifactResult.Cause): the artifact's tag was set by a
// newer archive than this one; setting it would move the tag back.
const CauseRollback = "rollback"

// rollbackCheck decides whether this archive may set repo:tag in dest,
// from the journal's record of the archive that set it last. An older
// archive (by the creation time its signed bill of materials states) is
// refused, naming both archives, unless allow is set, in which case the
// warning says what is being moved back. Without a record, or for the
// same or a newer archive, both strings are empty.
func rollbackCheck(j *store.Journal, dest, repo, tag string, bom *manifest.BOM, allow bool) (refusal, warning string, err error) {
	if j == nil {
		return "", "", nil
	}
	rec, ok, err := j.Tag(dest, repo, tag)
	if err != nil {
		// A journal that stopped answering mid-run also fails the run's
		// own records, which the run reports; the push itself goes on.
		return "", "", nil
	}
	if !ok || !rec.RollsBack(bom.ArchiveID, bom.Created) {
		return "", "", nil
	}
	what := fmt.Sprintf("tag %s:%s was set by archive %s (created %s, %s); archive %s is older (created %s)",
		repo, tag, rec.ArchiveID, rec.Created.UTC().Format(time.RFC3339), rec.Digest, bom.ArchiveID, bom.Created.UTC().Format(time.RFC3339))
	if allow {
		return "", what + ": rollback allowed, the tag is moved back", nil
	}
	return what + ": refused, it would move the tag back to older content", "", nil
}

// recordTag queues the record that this archive set repo:tag in dest to
// digest, for later runs' rollbackCheck.
func recordTag(w *journalWriter, dest, repo, tag, digest string, bom *manifest.BOM, at time.Time) {
	if w == nil {
		return
	}
	rec := store.TagRecord{ArchiveID: bom.ArchiveID, Created: bom.Created, Digest: digest, At: at}
	w.add(func(jw *store.JournalWriter) error { return jw.PutTag(dest, repo, tag, rec) })
}
