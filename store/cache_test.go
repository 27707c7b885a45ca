package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func digestN(i int) string { return fmt.Sprintf("sha256:%064x", i) }

func openTestCache(t *testing.T) *CacheIndex {
	t.Helper()
	ci, err := OpenCacheIndex(filepath.Join(t.TempDir(), "index.db"), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ci.Check(); err != nil {
			t.Errorf("cache index inconsistent at cleanup: %v", err)
		}
		ci.Close()
	})
	return ci
}

func TestCacheIndexBlobsAndRefs(t *testing.T) {
	ci := openTestCache(t)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := ci.PutBlob(CacheBlob{Digest: digestN(i), Size: int64(i), MediaType: "m", Added: now, Used: now}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	b, ok, err := ci.Blob(digestN(7))
	if err != nil || !ok || b.Size != 7 || !b.Added.Equal(now) {
		t.Fatalf("Blob: %+v %v %v", b, ok, err)
	}
	if _, ok, _ := ci.Blob(digestN(99)); ok {
		t.Error("unknown blob found")
	}
	all, err := ci.Blobs()
	if err != nil || len(all) != 20 || all[0].Digest != digestN(0) {
		t.Fatalf("Blobs: %d %v", len(all), err)
	}
	later := now.Add(time.Hour)
	if err := ci.Touch([]string{digestN(3), digestN(99)}, later); err != nil {
		t.Fatal(err)
	}
	if b, _, _ := ci.Blob(digestN(3)); !b.Used.Equal(later) || !b.Added.Equal(now) {
		t.Errorf("Touch: %+v", b)
	}

	if err := ci.PutRef(CacheRef{Key: "chart https://x/a-1.tgz", Digest: digestN(5), Size: 5, Resolved: now}); err != nil {
		t.Fatal(err)
	}
	if err := ci.PutRef(CacheRef{Key: "dangling", Digest: digestN(99)}); err == nil {
		t.Error("a ref to an unrecorded blob was accepted")
	}
	r, ok, err := ci.Ref("chart https://x/a-1.tgz")
	if err != nil || !ok || r.Digest != digestN(5) {
		t.Fatalf("Ref: %+v %v %v", r, ok, err)
	}
	// Forgetting a blob forgets the references to it.
	if err := ci.DeleteBlob(digestN(5)); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := ci.Ref("chart https://x/a-1.tgz"); ok {
		t.Error("ref survived its blob")
	}
	if err := ci.PutBlob(CacheBlob{Digest: "sha256:short"}); err == nil {
		t.Error("bad digest accepted")
	}
}

func TestCacheIndexLockAndReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	ci, err := OpenCacheIndex(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	ci.PutBlob(CacheBlob{Digest: digestN(1), Size: 1})
	if _, err := OpenCacheIndex(path, 100*time.Millisecond); !errors.Is(err, ErrLocked) {
		t.Errorf("second open: %v, want ErrLocked", err)
	}
	ci.Close()
	ci, err = OpenCacheIndex(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ci.Close()
	if _, ok, _ := ci.Blob(digestN(1)); !ok {
		t.Error("blob lost across reopen")
	}
	if err := ci.Check(); err != nil {
		t.Error(err)
	}
}
