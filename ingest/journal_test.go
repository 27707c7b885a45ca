package ingest

import (
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	berrors "go.etcd.io/bbolt/errors"

	"github.com/ferrytool/ferry/internal/testbed"
	"github.com/ferrytool/ferry/store"
)

func openJournal(t *testing.T, path string, readOnly bool) *store.Journal {
	t.Helper()
	j, err := store.OpenJournal(path, store.JournalOptions{ReadOnly: readOnly})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

func TestJournalWriterReturnsFailedWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.db")
	openJournal(t, path, false).Close()
	// Opened read-only, every write fails, as on a full disk.
	w := newJournalWriter(openJournal(t, path, true), slog.New(slog.DiscardHandler))
	for _, d := range []string{"sha256:aa", "sha256:bb"} {
		w.add(func(jw *store.JournalWriter) error {
			return jw.PutBlob("registry.test/base", "images/x", d, store.BlobRecord{Size: 1, How: BlobUploaded})
		})
	}
	err := w.close()
	if !errors.Is(err, berrors.ErrDatabaseReadOnly) || !strings.Contains(err.Error(), path) {
		t.Fatalf("close: %v, want the write error naming %s", err, path)
	}
}

// A run whose journal records were lost says so: --status and the next
// run's resume would otherwise rest on records that are not there.
func TestPushFailsWhenJournalRecordsAreLost(t *testing.T) {
	reg := testbed.StartRegistry(t, testbed.RegistryOptions{})
	path := filepath.Join(t.TempDir(), "journal.db")
	j := openJournal(t, path, false)
	bom, src := twoImages(t)
	opts := packOptions(t, reg, "")
	opts.Journal = j
	// The journal goes away once the uploads are about to start, so only
	// the records queued during the run fail.
	opts.Progress.OnStart = func(Totals) { j.Close() }
	rep, err := push(t, bom, src, reg.Host+"/base", opts)
	if !errors.Is(err, berrors.ErrDatabaseNotOpen) || !strings.Contains(err.Error(), path) {
		t.Fatalf("push: %v, want the journal write error naming %s", err, path)
	}
	// The content went in all the same, and the report says what did.
	if rep == nil || len(rep.Artifacts) != 2 || rep.Artifacts[0].State != StatePushed {
		t.Fatalf("report: %+v", rep)
	}
}
