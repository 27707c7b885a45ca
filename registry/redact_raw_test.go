package registry

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

// A URL that does not parse still loses its user information and query
// values: a Location with a bad escape may carry credentials all the same.
func TestRedactRawURLThatDoesNotParse(t *testing.T) {
	for _, raw := range []string{
		"https://user:secret@storage.example/blob/%zz",
		"https://user:secret@storage.example/blob/%zz?X-Amz-Signature=secret",
		"https://storage.example/b%zz?token=secret",
		"https://storage.example/b%zz#access_token=secret",
	} {
		if _, err := url.Parse(raw); err == nil {
			t.Fatalf("%s parses", raw)
		}
		if got := redactRawURL(raw); strings.Contains(got, "secret") {
			t.Errorf("redactRawURL(%q) = %q", raw, got)
		}
		err := redactErr(&url.Error{Op: "Get", URL: raw, Err: errors.New("boom")})
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("redactErr: %v", err)
		}
	}
}

func TestRedactURLDropsTheFragment(t *testing.T) {
	u, _ := url.Parse("https://storage.example/blob#access_token=secret")
	if got := redactURL(u); strings.Contains(got, "secret") {
		t.Errorf("redactURL = %q", got)
	}
}
