package registry

import (
	"errors"
	"testing"
)

func TestParseDestination(t *testing.T) {
	good := map[string]Destination{
		"10.10.233.0:30003/spectro-content": {Host: "10.10.233.0", Port: "30003", Base: "spectro-content"},
		"zot.example.com:443/a/b/":          {Host: "zot.example.com", Port: "443", Base: "a/b"},
		"[fd00::1]:30003/base":              {Host: "fd00::1", Port: "30003", Base: "base"},
		"registry.local":                    {Host: "registry.local"},
		"Registry.Local:5000/a__b/c-d.e":    {Host: "Registry.Local", Port: "5000", Base: "a__b/c-d.e"},
	}
	for in, want := range good {
		got, err := ParseDestination(in)
		if err != nil || got != want {
			t.Errorf("ParseDestination(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{
		"", "https://h:5000/x", "http://h/x", "oci://h/x", "127.0.0.1:notaport/x", "h:0/x", "h:65536", "h:/x",
		"h/UPPER", "h/a/../b", "h/a//b", "h/-a", "h/a_", "h/a b", ":5000/x", "/x", "h:5000:1/x",
	} {
		if d, err := ParseDestination(in); !errors.Is(err, ErrDestination) {
			t.Errorf("ParseDestination(%q) = %+v, %v; want ErrDestination", in, d, err)
		}
	}
	d, _ := ParseDestination("[fd00::1]:30003/base")
	if d.String() != "[fd00::1]:30003/base" || d.Repository("images/x") != "base/images/x" {
		t.Errorf("round trip: %s, %s", d, d.Repository("images/x"))
	}
}

func FuzzParseDestination(f *testing.F) {
	f.Add("10.10.233.0:30003/spectro-content")
	f.Add("[::1]:5000/a/b")
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDestination(s)
		if err != nil {
			return
		}
		again, err := ParseDestination(d.String())
		if err != nil || again != d {
			t.Errorf("%q parsed to %+v, whose String %q parses to %+v, %v", s, d, d.String(), again, err)
		}
	})
}
