package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// DefaultLockTimeout bounds how long opening a database waits for another
// process's lock.
const DefaultLockTimeout = 5 * time.Second

// open opens a bbolt file with a lock timeout, naming the file in errors.
func open(path string, readOnly bool, timeout time.Duration) (*bolt.DB, error) {
	if timeout <= 0 {
		timeout = DefaultLockTimeout
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout, ReadOnly: readOnly})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s (waited %s)", ErrLocked, path, timeout)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
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
