package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// DefaultLockTimeout bounds how long opening a database waits for another
// process's lock.
const DefaultLockTimeout = 5 * time.Second

// open opens a bbolt file with a lock timeout, naming the file in errors.
// The file is one this process did not just write, so it is read whole
// before anyone uses it: see openChecked.
func open(path string, readOnly bool, timeout time.Duration) (*bolt.DB, error) {
	if timeout <= 0 {
		timeout = DefaultLockTimeout
	}
	db, err := openChecked(path, &bolt.Options{Timeout: timeout, ReadOnly: readOnly})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s (waited %s)", ErrLocked, path, timeout)
	}
	return db, err
}

// openChecked opens a bbolt file and walks every page its buckets reach
// before handing it out. bbolt trusts its file: a page cut off by a
// truncation faults (SIGBUS) when touched through the memory map, and a
// zeroed or garbled page trips its assertions, both of which would kill
// the process wherever the first read happens. Here both become a
// *DamagedError, once, at the door; a file that passes the walk and
// bbolt's own consistency check is safe to read afterwards. A lock timeout
// comes back wrapping berrors.ErrTimeout for the caller to explain.
//
// The walk runs on a read-only open: bbolt loads the free list of a
// writable one inside Open, where a panic leaves its memory map (and with
// it the file lock) behind. A writable open follows a walk that passed; an
// empty or missing file is created as bbolt does.
func openChecked(path string, o *bolt.Options) (*bolt.DB, error) {
	if !o.ReadOnly {
		if st, err := os.Stat(path); err != nil || st.Size() == 0 {
			return openGuarded(path, o, false)
		}
	}
	ro := *o
	ro.ReadOnly = true
	db, err := openGuarded(path, &ro, true)
	if err != nil || o.ReadOnly {
		return db, err
	}
	db.Close()
	return openGuarded(path, o, false)
}

// openGuarded opens path, walking it when walkIt is set, with bbolt's
// panics and memory faults turned into a *DamagedError.
func openGuarded(path string, o *bolt.Options, walkIt bool) (db *bolt.DB, err error) {
	var file *os.File
	opts := *o
	opts.OpenFile = func(name string, flag int, perm os.FileMode) (*os.File, error) {
		f, err := os.OpenFile(name, flag, perm)
		file = f
		return f, err
	}
	// Faults in the memory map become panics of this goroutine only, which
	// the deferred recover turns into an error.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			// Let go of the map and the lock: a panic inside a transaction
			// has rolled it back already.
			if db != nil {
				db.Close()
			} else if file != nil {
				file.Close()
			}
			reason := fmt.Sprint(r)
			if _, ok := r.(runtime.Error); ok {
				reason = "a page could not be read, the file is cut short or unreadable: " + reason
			}
			db, err = nil, &DamagedError{Path: path, Reason: reason}
		}
	}()
	db, err = bolt.Open(path, 0o600, &opts)
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) || errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
		// Everything else bbolt says at open (invalid magic, checksum,
		// version, a file too small for its meta pages) is about the
		// bytes, not about access to them.
		return nil, &DamagedError{Path: path, Reason: err.Error()}
	}
	if walkIt {
		if err := walk(db); err != nil {
			db.Close()
			return nil, &DamagedError{Path: path, Reason: err.Error()}
		}
	}
	return db, nil
}

// walk reads every bucket, key and value of db, touching the first and last
// byte of each value so that any page the file does not really hold faults
// here and now, then runs bbolt's consistency check (free pages that are
// also in use, pages referenced twice).
func walk(db *bolt.DB) error {
	return db.View(func(tx *bolt.Tx) error {
		// bbolt's check reads the freelist on a goroutine of its own, where
		// a page beyond the end of the file is a fault no recover catches:
		// a file shorter than the pages its meta page claims is refused
		// before anything reads them.
		if st, err := os.Stat(db.Path()); err != nil {
			return err
		} else if st.Size() < tx.Size() {
			return fmt.Errorf("cut short: %d bytes, its meta page claims %d", st.Size(), tx.Size())
		}
		var sink byte
		var visit func(b *bolt.Bucket) error
		visit = func(b *bolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error {
				if v == nil {
					if sub := b.Bucket(k); sub != nil {
						return visit(sub)
					}
					return nil
				}
				if len(v) > 0 {
					sink ^= v[0] ^ v[len(v)-1]
				}
				return nil
			})
		}
		if err := tx.ForEach(func(_ []byte, b *bolt.Bucket) error { return visit(b) }); err != nil {
			return err
		}
		_ = sink
		var errs []error
		for err := range tx.Check() {
			// Drained to the end, so the checking goroutine finishes; a
			// few reasons are enough to name the damage.
			if len(errs) < 3 {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	})
}

// putJSON stores v as JSON under key in bucket b.
func putJSON(b *bolt.Bucket, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	return b.Put([]byte(key), data)
}

// getJSON decodes the value under key into v; json.Unmarshal copies, so the
// result outlives the transaction. It reports whether the key exists.
func getJSON(b *bolt.Bucket, key string, v any) (bool, error) {
	data := b.Get([]byte(key))
	if data == nil {
		return false, nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return true, fmt.Errorf("%w: key %s: %v", ErrCorrupt, key, err)
	}
	return true, nil
}

// eachJSON decodes every value of bucket b in key order.
func eachJSON[T any](b *bolt.Bucket, fn func(key string, v T) error) error {
	return b.ForEach(func(k, data []byte) error {
		var v T
		if err := json.Unmarshal(data, &v); err != nil {
			return fmt.Errorf("%w: key %s: %v", ErrCorrupt, k, err)
		}
		return fn(string(k), v)
	})
}

// removeOnError deletes path when *err is set; used by writers that build a
// database file that must not survive a failure.
func removeOnError(path string, err *error) {
	if *err != nil {
		os.Remove(path)
	}
}
