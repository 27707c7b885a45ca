package digestio

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
	"time"
)

func TestReader(t *testing.T) {
	content := bytes.Repeat([]byte("ferry"), 10000)
	d := FromBytes(content)
	cases := []struct {
		name    string
		data    []byte
		digest  string
		size    int64
		wantErr bool
	}{
		{"match", content, d, int64(len(content)), false},
		{"flipped byte", flip(content, 777), d, int64(len(content)), true},
		{"short", content[:len(content)-1], d, int64(len(content)), true},
		{"long", append(append([]byte{}, content...), 'x'), d, int64(len(content)), true},
		{"declared too small", content, d, int64(len(content)) - 1, true},
		{"empty", nil, FromBytes(nil), 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := NewReader(iotest.OneByteReader(bytes.NewReader(c.data)), c.digest, c.size)
			_, err := io.Copy(io.Discard, r)
			// io.Copy takes AsyncReader's WriteTo; a reader in front of it
			// hides that, so its Read is used.
			for _, via := range []string{"WriteTo", "Read"} {
				a := NewAsyncReader(iotest.HalfReader(bytes.NewReader(c.data)), c.digest, c.size)
				var src io.Reader = a
				if via == "Read" {
					src = iotest.OneByteReader(a)
				}
				var got bytes.Buffer
				_, aerr := io.Copy(&got, src)
				if (err == nil) != (aerr == nil) {
					t.Fatalf("Reader err %v, AsyncReader (%s) err %v", err, via, aerr)
				}
				if aerr == nil && (!bytes.Equal(got.Bytes(), c.data) || !a.Verified()) {
					t.Fatalf("AsyncReader (%s) changed the bytes or did not verify them", via)
				}
			}
			if c.wantErr != (err != nil) {
				t.Fatalf("err = %v, want error %v", err, c.wantErr)
			}
			if c.wantErr && !errors.Is(err, ErrMismatch) {
				t.Fatalf("err = %v, want ErrMismatch", err)
			}
			if !c.wantErr && !r.Verified() {
				t.Fatal("not marked verified after a good read")
			}
		})
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte{}, b...)
	c[i] ^= 0xff
	return c
}

func TestDigester(t *testing.T) {
	d := NewDigester()
	io.WriteString(d, "abc")
	if d.Digest() != FromBytes([]byte("abc")) || d.Size() != 3 {
		t.Fatalf("digest %s size %d", d.Digest(), d.Size())
	}
}

func TestAsyncReaderAbandoned(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 3<<20)
	a := NewAsyncReader(bytes.NewReader(data), FromBytes(data), int64(len(data)))
	buf := make([]byte, 1<<20)
	if _, err := io.ReadFull(a, buf); err != nil {
		t.Fatal(err)
	}
	a.Close() // must not block or leak the hashing goroutine
	a.Close()
	if _, err := a.Read(buf); err == nil {
		t.Error("a read after Close did not fail")
	}
	if _, err := a.WriteTo(io.Discard); err == nil {
		t.Error("WriteTo after Close did not fail")
	}
}

// A source that panics in the middle of WriteTo: the panic goes on, and
// nothing is left waiting for buffers.
func TestAsyncReaderWriteToPanic(t *testing.T) {
	data := make([]byte, 3*asyncChunk)
	a := NewAsyncReader(io.MultiReader(bytes.NewReader(data), panicReader{}), FromBytes(data), int64(len(data))+1)
	done := make(chan any)
	go func() {
		defer func() { done <- recover() }()
		a.WriteTo(io.Discard)
	}()
	select {
	case p := <-done:
		if p == nil {
			t.Error("the source's panic was swallowed")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WriteTo hung after its source panicked")
	}
}

type panicReader struct{}

func (panicReader) Read([]byte) (int, error) { panic("source failed") }

// TestAsyncReaderWriteTo checks WriteTo over many buffers, which it
// hashes where they are: the bytes written and the digest come out right,
// a mismatch in the last byte is caught, and a failing writer stops it.
func TestAsyncReaderWriteTo(t *testing.T) {
	data := make([]byte, 5*asyncChunk+123)
	for i := range data {
		data[i] = byte(i * 7)
	}
	a := NewAsyncReader(bytes.NewReader(data), FromBytes(data), int64(len(data)))
	var got bytes.Buffer
	if n, err := a.WriteTo(&got); err != nil || n != int64(len(data)) || !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("WriteTo wrote %d bytes, err %v", n, err)
	}
	bad := flip(data, len(data)-1)
	a = NewAsyncReader(bytes.NewReader(bad), FromBytes(data), int64(len(data)))
	if _, err := a.WriteTo(io.Discard); !errors.Is(err, ErrMismatch) {
		t.Fatalf("a flipped last byte: err %v, want ErrMismatch", err)
	}
	boom := errors.New("disk full")
	a = NewAsyncReader(bytes.NewReader(data), FromBytes(data), int64(len(data)))
	if _, err := a.WriteTo(&failAfter{n: asyncChunk + 1, err: boom}); !errors.Is(err, boom) {
		t.Fatalf("a failing writer: err %v, want %v", err, boom)
	}
	a.Close()
}

// failAfter takes n bytes, then fails with err.
type failAfter struct {
	n   int
	err error
}

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		n := f.n
		f.n = 0
		return n, f.err
	}
	f.n -= len(p)
	return len(p), nil
}

func TestReadAhead(t *testing.T) {
	content := bytes.Repeat([]byte("0123456789abcdef"), 100000)
	d := FromBytes(content)
	for _, size := range []int{1, 7, 4096, len(content), len(content) + 1} {
		ra := NewReadAhead(NewReader(iotest.HalfReader(bytes.NewReader(content)), d, int64(len(content))), 3, size)
		got, err := io.ReadAll(iotest.OneByteReader(io.LimitReader(ra, 1<<30)))
		if err != nil || !bytes.Equal(got, content) {
			t.Fatalf("buffer size %d: %d bytes, err %v", size, len(got), err)
		}
		ra.Close()
	}
	// A mismatch still arrives after every byte, in place of io.EOF.
	bad := flip(content, len(content)-1)
	ra := NewReadAhead(NewReader(bytes.NewReader(bad), d, int64(len(bad))), 2, 1000)
	defer ra.Close()
	got, err := io.ReadAll(ra)
	if !errors.Is(err, ErrMismatch) || len(got) != len(bad) {
		t.Fatalf("tampered: %d bytes, err %v", len(got), err)
	}
	if _, err := ra.Read(make([]byte, 1)); !errors.Is(err, ErrMismatch) {
		t.Fatalf("read after the error: %v", err)
	}
}

func TestReadAheadClose(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 1<<20)
	ra := NewReadAhead(bytes.NewReader(data), 2, 4096)
	if _, err := io.ReadFull(ra, make([]byte, 10000)); err != nil {
		t.Fatal(err)
	}
	ra.Close() // must not block with the goroutine waiting for a free buffer
	ra.Close()
	if _, err := ra.Read(make([]byte, 1)); err == nil {
		t.Fatal("read after Close succeeded")
	}
}

// errAfter returns its bytes and err with the last of them, once, then
// io.EOF: the source's own error must reach the consumer as it was, not
// become io.EOF or vanish.
type errAfter struct {
	data []byte
	err  error
	said bool
}

func (e *errAfter) Read(p []byte) (int, error) {
	if e.said {
		return 0, io.EOF
	}
	n := copy(p, e.data)
	e.data = e.data[n:]
	if len(e.data) == 0 {
		e.said = true
		return n, e.err
	}
	return n, nil
}

func TestReadAheadKeepsSourceErrors(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name string
		n    int
		err  error
	}{
		{"unexpected EOF from the source, short buffer", 5000, io.ErrUnexpectedEOF},
		{"error with the bytes that fill the buffer", 8192, boom},
	} {
		ra := NewReadAhead(&errAfter{data: make([]byte, tc.n), err: tc.err}, 2, 4096)
		got, err := io.ReadAll(ra)
		ra.Close()
		if !errors.Is(err, tc.err) || len(got) != tc.n {
			t.Errorf("%s: %d bytes, err %v; want %d bytes and %v", tc.name, len(got), err, tc.n, tc.err)
		}
	}
}

func TestReadCloserNamesItsKind(t *testing.T) {
	kind := errors.New("archive blob damaged")
	content := []byte("layer bytes")
	d := FromBytes(content)
	closed := false
	rc := NewReadCloser(closeFunc{bytes.NewReader(flip(content, 3)), func() { closed = true }}, d, int64(len(content)), kind)
	_, err := io.Copy(io.Discard, rc)
	if !errors.Is(err, kind) || !bytes.Contains([]byte(err.Error()), []byte(d)) {
		t.Fatalf("err = %v, want %v naming %s", err, kind, d)
	}
	if rc.Close(); !closed {
		t.Fatal("Close did not reach the underlying reader")
	}
}

type closeFunc struct {
	io.Reader
	close func()
}

func (c closeFunc) Close() error { c.close(); return nil }
