package collect

import (
	"fmt"
	"sync"
	"time"

	"github.com/ferrytool/ferry/store"
)

// recorder writes cache records in the background, as many as have
// gathered in one transaction, so that recording a verified blob never
// waits for a disk sync. Until written, a record is served from memory;
// close writes the rest. Records lost to a crash cost a download, never a
// wrong blob: a blob file without its record is not trusted.
type recorder struct {
	idx *store.CacheIndex

	mu      sync.Mutex
	queue   map[string]store.CacheBlob
	writing map[string]store.CacheBlob // the batch being written
	// refs and writingRefs are the same for references, by key.
	refs, writingRefs map[string]store.CacheRef
	err               error
	kick              chan struct{}
	done              chan struct{}
	stop              chan struct{}
}

// gatherDelay is how long the recorder waits after the first record of a
// batch before writing it.
const gatherDelay = 50 * time.Millisecond

func newRecorder(idx *store.CacheIndex) *recorder {
	r := &recorder{idx: idx, queue: map[string]store.CacheBlob{}, refs: map[string]store.CacheRef{},
		kick: make(chan struct{}, 1), done: make(chan struct{}), stop: make(chan struct{})}
	go r.run()
	return r
}

func (r *recorder) add(b store.CacheBlob) {
	r.mu.Lock()
	r.queue[b.Digest] = b
	r.mu.Unlock()
	r.wake()
}

// addRef queues a reference; it is written with or after its blob's record.
func (r *recorder) addRef(ref store.CacheRef) {
	r.mu.Lock()
	r.refs[ref.Key] = ref
	r.mu.Unlock()
	r.wake()
}

func (r *recorder) wake() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// pendingRef returns a reference not written yet.
func (r *recorder) pendingRef(key string) (store.CacheRef, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return either(r.refs, r.writingRefs, key)
}

// pending returns a record not written yet.
func (r *recorder) pending(digest string) (store.CacheBlob, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return either(r.queue, r.writing, digest)
}

// either looks k up in queued, then in the batch being written.
func either[V any](queued, writing map[string]V, k string) (V, bool) {
	if v, ok := queued[k]; ok {
		return v, true
	}
	v, ok := writing[k]
	return v, ok
}

func (r *recorder) run() {
	defer close(r.done)
	for {
		select {
		case <-r.kick:
			// Let a few more records gather: every transaction costs two
			// disk syncs, and blobs verified one after another would each
			// get one of their own. Nothing waits for the write.
			select {
			case <-time.After(gatherDelay):
			case <-r.stop:
				r.flush()
				return
			}
			r.flush()
		case <-r.stop:
			r.flush()
			return
		}
	}
}

func (r *recorder) flush() {
	r.mu.Lock()
	batch, refs := r.queue, r.refs
	r.queue, r.refs = map[string]store.CacheBlob{}, map[string]store.CacheRef{}
	r.writing, r.writingRefs = batch, refs
	r.mu.Unlock()
	if len(batch) == 0 && len(refs) == 0 {
		return
	}
	list := make([]store.CacheBlob, 0, len(batch))
	for _, b := range batch {
		list = append(list, b)
	}
	refList := make([]store.CacheRef, 0, len(refs))
	for _, ref := range refs {
		refList = append(refList, ref)
	}
	err := r.idx.PutRecords(list, refList)
	r.mu.Lock()
	r.writing, r.writingRefs = nil, nil
	if err != nil && r.err == nil {
		r.err = fmt.Errorf("cache index %s: %d records not written: %w", r.idx.Path(), len(list)+len(refList), err)
	}
	r.mu.Unlock()
}

// close writes what is queued and returns the first write that failed.
func (r *recorder) close() error {
	close(r.stop)
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}
