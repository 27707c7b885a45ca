package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	berrors "go.etcd.io/bbolt/errors"
)

func openTestJournal(t *testing.T, path string) *Journal {
	t.Helper()
	j, err := OpenJournal(path, JournalOptions{LockTimeout: 200 * time.Millisecond, Holder: Holder{Command: "ferry ingest (test)"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := j.Check(); err != nil && !errors.Is(err, berrors.ErrDatabaseNotOpen) {
			t.Errorf("journal consistency: %v", err)
		}
		j.Close()
	})
	return j
}

func TestJournalLockNamesHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "journal.db")
	j := openTestJournal(t, path)
	if _, err := os.Stat(HolderPath(path)); err != nil {
		t.Fatalf("no holder record: %v", err)
	}
	start := time.Now()
	_, err := OpenJournal(path, JournalOptions{LockTimeout: 300 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
	if waited := time.Since(start); waited < 250*time.Millisecond {
		t.Errorf("gave up after %s, before the timeout", waited)
	}
	var le *LockedError
	if !errors.As(err, &le) || le.Holder == nil || le.Holder.PID != os.Getpid() {
		t.Fatalf("error does not name the holder: %v", err)
	}
	for _, want := range []string{path, "ferry ingest (test)", "pid ", "waited 300ms"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
	j.Close()
	if _, err := os.Stat(HolderPath(path)); !os.IsNotExist(err) {
		t.Errorf("holder record left after close: %v", err)
	}
	// A stale holder record (a killed process) does not stop the next open.
	os.WriteFile(HolderPath(path), []byte(`{"pid":1,"host":"elsewhere"}`), 0o600)
	j2 := openTestJournal(t, path)
	j2.Close()
}

func TestJournalRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.db")
	j := openTestJournal(t, path)
	now := time.Now().UTC().Truncate(time.Second)
	dest := "registry.local:5000/spectro-content"
	d1 := "sha256:" + strings.Repeat("a", 64)

	if err := j.PutArchive("arch1", "sha256:bom", []byte("{bom}"), []byte("sig"), now); err != nil {
		t.Fatal(err)
	}
	if err := j.PutArchive("arch1", "sha256:other", nil, nil, now); !errors.Is(err, ErrCorrupt) {
		t.Errorf("same archive ID with another bill of materials: %v", err)
	}
	if err := j.AddVolume("arch1", 2, VolumeRecord{Path: "v.002", Blobs: []string{d1}, Seen: now}); err != nil {
		t.Fatal(err)
	}
	rec, bom, sig, ok, err := j.Archive("arch1")
	if err != nil || !ok || string(bom) != "{bom}" || string(sig) != "sig" || len(rec.Volumes[2].Blobs) != 1 {
		t.Fatalf("archive record: %+v %q %q %v %v", rec, bom, sig, ok, err)
	}

	for _, repo := range []string{"spectro-content/images/a", "spectro-content/images/b"} {
		if err := j.PutBlob(dest, repo, d1, BlobRecord{Archive: "arch1", At: now, Size: 10, How: "uploaded"}); err != nil {
			t.Fatal(err)
		}
	}
	repos, err := j.BlobRepos(dest, d1)
	if err != nil || len(repos) != 2 || repos[0] != "spectro-content/images/a" {
		t.Fatalf("BlobRepos: %v %v", repos, err)
	}
	if _, ok, _ := j.Blob(dest, "spectro-content/images/c", d1); ok {
		t.Error("blob recorded in a repository it was never pushed to")
	}
	if err := j.DeleteBlob(dest, "spectro-content/images/b", d1); err != nil {
		t.Fatal(err)
	}
	if repos, _ := j.BlobRepos(dest, d1); len(repos) != 1 {
		t.Errorf("after delete: %v", repos)
	}

	if err := j.PutUpload(dest, "r", d1, UploadSession{Location: "https://x/v2/r/blobs/uploads/u", Started: now}); err != nil {
		t.Fatal(err)
	}
	if s, ok, _ := j.Upload(dest, "r", d1); !ok || s.Location == "" {
		t.Error("upload session lost")
	}
	if n, _ := j.Uploads(dest); n != 1 {
		t.Errorf("Uploads = %d", n)
	}
	j.DeleteUpload(dest, "r", d1)
	if _, ok, _ := j.Upload(dest, "r", d1); ok {
		t.Error("upload session survives delete")
	}

	if err := j.PutManifestData(map[string]ManifestData{d1: {MediaType: "application/x", Data: []byte("{}")}}); err != nil {
		t.Fatal(err)
	}
	if m, ok, _ := j.ManifestData(d1); !ok || string(m.Data) != "{}" {
		t.Errorf("manifest data: %+v", m)
	}
	if err := j.PutManifest(dest, "r", d1, ManifestRecord{Archive: "arch1", Tag: "1.0", At: now}); err != nil {
		t.Fatal(err)
	}
	if m, ok, _ := j.Manifest(dest, "r", d1); !ok || m.Tag != "1.0" {
		t.Errorf("manifest record: %+v", m)
	}
	if err := j.PutDestArchive(dest, DestArchive{ArchiveID: "arch1", FirstRun: now, Bad: map[string]string{d1: "tampered"}}); err != nil {
		t.Fatal(err)
	}
	das, err := j.DestArchives(dest)
	if err != nil || len(das) != 1 || das[0].Bad[d1] != "tampered" {
		t.Errorf("dest archives: %+v %v", das, err)
	}
	dests, _ := j.Destinations()
	if len(dests) != 1 || dests[0] != dest {
		t.Errorf("destinations: %v", dests)
	}
	j.Close()

	// Read-only: the records survive a reopen.
	ro, err := OpenJournal(path, JournalOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, ok, _ := ro.Blob(dest, "spectro-content/images/a", d1); !ok {
		t.Error("blob record lost after reopen")
	}
	if _, err := ro.BlobRepos("other", d1); err != nil {
		t.Error(err)
	}
}
