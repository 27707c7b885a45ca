package registry

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// An upload location carries session state, and a storage back end's
// location a signature: neither reaches an error or a log.
func TestUploadLocationRedacted(t *testing.T) {
	const secret = "s3cr3t"
	for _, c := range []struct {
		name, location string
	}{
		{"location that fails", "/v2/x/blobs/uploads/sess?_state=" + secret + "&X-Amz-Signature=" + secret + "-sig"},
		{"location that does not parse", "/v2/x/blobs/uploads/%zz?_state=" + secret},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case r.URL.Path == "/v2/":
					w.WriteHeader(http.StatusOK)
				case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/blobs/uploads/"):
					w.Header().Set("Location", c.location)
					w.WriteHeader(http.StatusAccepted)
				case strings.Contains(r.URL.Path, "/blobs/uploads/"):
					// The connection drops on every request to the session.
					conn, _, err := w.(http.Hijacker).Hijack()
					if err == nil {
						conn.Close()
					}
				default:
					w.WriteHeader(http.StatusNotFound)
				}
			}))
			t.Cleanup(srv.Close)
			var logged bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug}))
			cl := testConnect(t, strings.TrimPrefix(srv.URL, "http://"), Options{PlainHTTP: true, Logger: logger,
				Retry: RetryPolicy{Attempts: 2, Base: time.Millisecond}}, "x")
			b := randomBlob(t, 4<<10)
			_, err := cl.PushBlob(t.Context(), b.push("x", b.data))
			if err == nil {
				t.Fatal("the push succeeded")
			}
			t.Logf("error: %v\nlog:\n%s", err, logged.String())
			if strings.Contains(err.Error(), secret) || strings.Contains(logged.String(), secret) {
				t.Errorf("the upload location's query is shown:\nerror: %v\nlog:\n%s", err, logged.String())
			}
			if !strings.Contains(err.Error(), "/v2/x/blobs/uploads/") {
				t.Errorf("the error does not say which request failed: %v", err)
			}
			var ue *url.Error
			if errors.As(err, &ue) && !strings.Contains(ue.URL, "_state=redacted") {
				t.Errorf("the failed request's URL: %s", ue.URL)
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	u, _ := url.Parse("https://user:pw@reg.example/v2/a/blobs/uploads/s?_state=abc&digest=sha256:1&X-Amz-Signature=def&from=b&mount=sha256:2")
	got := redactURL(u)
	for _, leak := range []string{"abc", "def", "pw", "user"} {
		if strings.Contains(got, leak) {
			t.Errorf("%s shows %q", got, leak)
		}
	}
	for _, keep := range []string{"/v2/a/blobs/uploads/s", "digest=sha256%3A1", "from=b", "mount=sha256%3A2", "_state=redacted"} {
		if !strings.Contains(got, keep) {
			t.Errorf("%s lacks %q", got, keep)
		}
	}
	if got := redactRawURL("/v2/a/%zz?_state=abc"); got != "/v2/a/%zz?redacted" {
		t.Errorf("unparsable location shown as %q", got)
	}
}
