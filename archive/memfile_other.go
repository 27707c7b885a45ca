//go:build !linux

package archive

import (
	"fmt"
	"os"
)

// memFile returns a file holding data. Without anonymous memory files the
// bytes, already verified, go to a temporary file that is removed at once:
// the open handle keeps it readable.
func memFile(name string, data []byte) (*os.File, error) {
	f, err := os.CreateTemp("", name+"-*")
	if err != nil {
		return nil, fmt.Errorf("index file: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return f, nil
}

func dupFile(f *os.File) (*os.File, error) { return os.Open(f.Name()) }
