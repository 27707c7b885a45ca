package registry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// A caller waiting for another's setup of the same repository's client is
// not failed by the other's context: when the first caller gives up, the
// one still waiting sets the client up itself.
func TestReaderWaiterOutlivesTheFirstCallersContext(t *testing.T) {
	release := make(chan struct{})
	var pings atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			if pings.Add(1) == 1 {
				select { // the first version check hangs until its caller gives up
				case <-release:
				case <-r.Context().Done():
				}
			}
			w.WriteHeader(http.StatusOK)
			return
		}
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		w.Write([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}`))
	}))
	defer srv.Close()
	defer close(release)
	repo, err := name.NewRepository(strings.TrimPrefix(srv.URL, "http://")+"/apps/a", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	r := NewReader(authn.NewMultiKeychain(), http.DefaultTransport, "")
	first, cancel := context.WithCancel(context.Background())
	firstDone := make(chan error, 1)
	go func() { _, _, err := r.Manifest(first, repo, "1"); firstDone <- err }()
	for pings.Load() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	secondDone := make(chan error, 1)
	go func() { _, _, err := r.Manifest(context.Background(), repo, "1"); secondDone <- err }()
	time.Sleep(100 * time.Millisecond) // the second is waiting for the first's client
	cancel()
	<-firstDone
	select {
	case err := <-secondDone:
		if err != nil {
			t.Fatalf("the second caller, whose context is live, failed with the first caller's: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the second caller never finished")
	}
}
