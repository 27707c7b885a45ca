package testbed

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestProxyForwardsAndCounts(t *testing.T) {
	reg := StartRegistry(t, RegistryOptions{TLS: true, Username: "u", Password: "p"})
	p := StartProxy(t, reg, ProxyOptions{})
	img := randomLayer(t, 64<<10, "application/vnd.oci.image.layer.v1.tar+gzip")
	size, _ := img.Size()
	// Push a blob through the proxy with go-containerregistry, which follows
	// the registry's Location headers: they must point back at the proxy.
	through := &Registry{Host: p.Host, CA: reg.CA, Username: "u", Password: "p", transport: reg.transport}
	repo := through.Ref(t, "proxied/blob:1").Context()
	if err := remote.WriteLayer(repo, img, through.Options()...); err != nil {
		t.Fatal(err)
	}
	if got := p.RequestBytes(); got < size {
		t.Errorf("counted %d request bytes for a %d byte blob", got, size)
	}
	d, _ := img.Digest()
	if _, err := remote.Layer(reg.Ref(t, "proxied/blob:1").Context().Digest(d.String()), reg.Options()...); err != nil {
		t.Errorf("the blob did not reach the registry: %v", err)
	}
	if p.Requests() == 0 || len(p.Faults()) != 0 {
		t.Errorf("requests %d, faults %v", p.Requests(), p.Faults())
	}
	p.ResetCounters()
	if p.RequestBytes() != 0 || p.Requests() != 0 {
		t.Error("counters not reset")
	}
}

func TestProxyInjectsFaults(t *testing.T) {
	reg := StartSourceRegistry(t)
	client := &http.Client{Transport: reg.transport}
	do := func(p *Proxy, method string, body []byte) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(t.Context(), method, p.URL()+"/v2/any/blobs/uploads/", bytes.NewReader(body))
		return client.Do(req)
	}

	p500 := StartProxy(t, reg, ProxyOptions{Err500: 1, MaxFaultsInARow: 1})
	if resp, err := do(p500, http.MethodPost, nil); err != nil || resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("500 fault: %v %v", resp, err)
	}
	// The cap on faults in a row lets the next one through.
	if resp, err := do(p500, http.MethodPost, nil); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("after a fault: %v %v", resp, err)
	}

	p429 := StartProxy(t, reg, ProxyOptions{Err429: 1, RetryAfter: 2 * time.Second})
	resp, err := do(p429, http.MethodPost, nil)
	if err != nil || resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "2" {
		t.Fatalf("429 fault: %v %v", resp, err)
	}
	time.Sleep(150 * time.Millisecond)
	do(p429, http.MethodPost, nil)
	if v := p429.RetryAfterViolations(); len(v) != 1 {
		t.Errorf("an early retry was not seen: %v", v)
	}

	pReset := StartProxy(t, reg, ProxyOptions{Reset: 1, Only: func(r *http.Request) bool { return r.Method == http.MethodPut }})
	body := make([]byte, 4<<20)
	rand.Read(body)
	_, err = do(pReset, http.MethodPut, body)
	var opErr *net.OpError // how a reset shows depends on where the client was: reading, writing
	if err == nil || !(errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.EPIPE) || errors.As(err, &opErr)) {
		t.Errorf("reset fault: %v", err)
	}
	if got := pReset.RequestBytes(); got < 1<<20 || got > 3<<20 {
		t.Errorf("the reset came after %d of %d body bytes, want about half", got, len(body))
	}
	if pReset.Faults()["reset"] != 1 {
		t.Errorf("faults: %v", pReset.Faults())
	}
}

func TestProxyThrottles(t *testing.T) {
	reg := StartSourceRegistry(t)
	p := StartProxy(t, reg, ProxyOptions{BytesPerSecond: 2 << 20})
	layer := randomLayer(t, 1<<20, "application/vnd.oci.image.layer.v1.tar+gzip")
	through := &Registry{Host: p.Host, transport: reg.transport}
	start := time.Now()
	if err := remote.WriteLayer(through.Ref(t, "slow/blob:1").Context(), layer, through.Options()...); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Errorf("1 MiB at 2 MiB/s took %s", d)
	}
}
