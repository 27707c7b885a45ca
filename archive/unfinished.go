package archive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// A set of volumes being written is announced by a marker file beside it,
// written before the first volume and removed after the last rename. A
// write cut off anywhere in between (a kill, a power cut) leaves the
// marker, which lets the next write of the same archive name recognise
// the set as its own and replace it. Before the renames the marker lists
// every final name with its size, so a file under a final name is replaced
// only when it is the very file this writer put there; any other file is
// never overwritten.

// setMarker is the content of the marker.
type setMarker struct {
	ArchiveID string `json:"archiveID"`
	// Volumes maps the final file names (base names) about to be renamed
	// into place to their sizes; empty until the renames start.
	Volumes map[string]int64 `json:"volumes,omitempty"`
}

func markerPath(dir, name string) string {
	return filepath.Join(dir, "."+name+".ferry-unfinished")
}

func readMarker(dir, name string) (setMarker, bool) {
	var m setMarker
	data, err := os.ReadFile(markerPath(dir, name))
	if err != nil || json.Unmarshal(data, &m) != nil {
		return setMarker{}, false
	}
	return m, true
}

// writeMarker replaces the marker atomically and makes it durable before
// anything it announces happens.
func writeMarker(dir, name string, m setMarker) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	path := markerPath(dir, name)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("archive %s: marker: %w", name, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("archive %s: marker: %w", name, err)
	}
	syncDir(dir)
	return nil
}

func removeMarker(dir, name string) {
	os.Remove(markerPath(dir, name))
	syncDir(dir)
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// CheckOutput reports whether an archive called name may be written into
// dir: nothing of that name is there, or only what an unfinished write
// left (volumes still under their temporary names, or renamed ones the
// marker of that write lists with their sizes). Anything else is
// ErrExists naming the file.
func CheckOutput(dir, name string) error {
	_, err := leftovers(dir, name)
	return err
}

// leftovers lists the files of an unfinished write of name in dir, or
// returns ErrExists for the first file that is not one.
func leftovers(dir, name string) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(dir, name+".tar.zst*"))
	if err != nil {
		return nil, err
	}
	m, marked := readMarker(dir, name)
	for _, p := range matches {
		if filepath.Ext(p) == ".partial" {
			continue
		}
		if size, listed := m.Volumes[filepath.Base(p)]; marked && listed {
			if st, err := os.Lstat(p); err == nil && st.Mode().IsRegular() && st.Size() == size {
				continue
			}
		}
		return nil, fmt.Errorf("%w: %s", ErrExists, p)
	}
	return matches, nil
}

// commitHookKey lets a test stop the process between two renames of
// commit, the way a kill does.
type commitHookKey struct{}

func commitHook(ctx context.Context, renamed int) {
	if h, ok := ctx.Value(commitHookKey{}).(func(renamed int)); ok {
		h(renamed)
	}
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
