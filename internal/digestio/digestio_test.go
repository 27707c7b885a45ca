package digestio

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
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
			a := NewAsyncReader(bytes.NewReader(c.data), c.digest, c.size)
			var got bytes.Buffer
			_, aerr := io.Copy(&got, a)
			if (err == nil) != (aerr == nil) {
				t.Fatalf("Reader err %v, AsyncReader err %v", err, aerr)
			}
			if aerr == nil && !bytes.Equal(got.Bytes(), c.data) {
				t.Fatal("AsyncReader changed the bytes")
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
}
