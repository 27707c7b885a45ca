package testbed_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/ferrytool/ferry/internal/testbed"
)

func TestRegistryTLSAuth(t *testing.T) {
	t.Parallel()
	reg := testbed.StartRegistry(t, testbed.RegistryOptions{TLS: true, Username: "ferry", Password: "s3cret"})
	if !strings.HasPrefix(reg.URL(), "https://127.0.0.1:") {
		t.Fatalf("URL() = %q, want https://127.0.0.1:PORT", reg.URL())
	}

	shared := testbed.RandomLayer(t, 8<<10)
	img := testbed.PushRandomImage(t, reg, "app/web:v1", 2, 64<<10, shared)
	want := digestOf(t, img)
	ref := reg.Ref(t, "app/web:v1")

	t.Run("pull with credentials", func(t *testing.T) {
		got, err := remote.Image(ref, append(reg.Options(), remote.WithContext(t.Context()))...)
		if err != nil {
			t.Fatalf("pulling %s: %v", ref, err)
		}
		if d := digestOf(t, got); d != want {
			t.Fatalf("pulled digest %s, pushed %s", d, want)
		}
		if mt, _ := got.MediaType(); mt != types.OCIManifestSchema1 {
			t.Errorf("media type %s, want %s", mt, types.OCIManifestSchema1)
		}
		if err := validate.Image(got); err != nil {
			t.Fatalf("pulled image does not validate: %v", err)
		}
		layers, err := got.Layers()
		if err != nil {
			t.Fatal(err)
		}
		if len(layers) != 3 {
			t.Fatalf("%d layers, want 2 random + 1 shared", len(layers))
		}
		if d, _ := layers[2].Digest(); d != digestOfLayer(t, shared) {
			t.Errorf("last layer %s is not the shared layer %s", d, digestOfLayer(t, shared))
		}
	})

	t.Run("wrong password is 401", func(t *testing.T) {
		opts := []remote.Option{
			remote.WithTransport(reg.HTTPClient().Transport),
			remote.WithAuth(&authn.Basic{Username: "ferry", Password: "wrong"}),
			remote.WithContext(t.Context()),
		}
		_, err := remote.Head(ref, opts...)
		var terr *transport.Error
		if !errors.As(err, &terr) || terr.StatusCode != http.StatusUnauthorized {
			t.Fatalf("HEAD with a wrong password: err = %v, want a 401 transport error", err)
		}
	})

	t.Run("anonymous http is 401", func(t *testing.T) {
		resp := registryGet(t, reg.HTTPClient(), reg.URL()+"/v2/", "", "")
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("anonymous GET /v2/: %s, want 401", resp.Status)
		}
		resp = registryGet(t, reg.HTTPClient(), reg.URL()+"/v2/", reg.Username, reg.Password)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("authenticated GET /v2/: %s, want 200", resp.Status)
		}
	})

	t.Run("client without the CA gets an x509 error", func(t *testing.T) {
		_, err := remote.Head(ref, remote.WithAuth(&authn.Basic{Username: "ferry", Password: "s3cret"}), remote.WithContext(t.Context()))
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Fatalf("HEAD without trusting the CA: err = %v, want x509.UnknownAuthorityError", err)
		}
	})

	t.Run("CA file trusts the server", func(t *testing.T) {
		path := reg.CA.WriteCert(t, t.TempDir())
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(data) {
			t.Fatalf("%s holds no PEM certificate", path)
		}
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		if resp := registryGet(t, client, reg.URL()+"/v2/", "", ""); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("GET /v2/ trusting %s: %s, want 401", path, resp.Status)
		}
	})
}

func TestSourceRegistry(t *testing.T) {
	t.Parallel()
	src := testbed.StartSourceRegistry(t)
	if src.CA != nil || !strings.HasPrefix(src.URL(), "http://") {
		t.Fatalf("source registry: CA %v, URL %s; want plain HTTP", src.CA, src.URL())
	}
	opts := append(src.Options(), remote.WithContext(t.Context()))

	t.Run("random image", func(t *testing.T) {
		img := testbed.PushRandomImage(t, src, "lib/tool:1.0", 1, 4<<10)
		desc, err := remote.Head(src.Ref(t, "lib/tool:1.0"), opts...)
		if err != nil {
			t.Fatal(err)
		}
		if desc.Digest != digestOf(t, img) {
			t.Fatalf("HEAD digest %s, pushed %s", desc.Digest, digestOf(t, img))
		}
	})

	t.Run("multi-arch index", func(t *testing.T) {
		idx := testbed.PushIndex(t, src, "lib/multi:1.0", "linux/amd64", "linux/arm64", "linux/arm/v7")
		got, err := remote.Index(src.Ref(t, "lib/multi:1.0"), opts...)
		if err != nil {
			t.Fatal(err)
		}
		wantDigest, _ := idx.Digest()
		if d, _ := got.Digest(); d != wantDigest {
			t.Fatalf("pulled index %s, pushed %s", d, wantDigest)
		}
		if err := validate.Index(got); err != nil {
			t.Fatalf("pulled index does not validate: %v", err)
		}
		im, err := got.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		if im.MediaType != types.OCIImageIndex {
			t.Errorf("index media type %s, want %s", im.MediaType, types.OCIImageIndex)
		}
		var platforms []string
		layerCount := map[v1.Hash]int{}
		for _, m := range im.Manifests {
			if m.Platform == nil {
				t.Fatalf("descriptor %s has no platform", m.Digest)
			}
			platforms = append(platforms, m.Platform.String())
			child, err := got.Image(m.Digest)
			if err != nil {
				t.Fatal(err)
			}
			cf, err := child.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if cf.Platform().String() != m.Platform.String() {
				t.Errorf("image %s config platform %s, descriptor says %s", m.Digest, cf.Platform(), m.Platform)
			}
			layers, err := child.Layers()
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range layers {
				layerCount[digestOfLayer(t, l)]++
			}
		}
		if got, want := strings.Join(platforms, ","), "linux/amd64,linux/arm64,linux/arm/v7"; got != want {
			t.Errorf("platforms %s, want %s", got, want)
		}
		shared := 0
		for _, n := range layerCount {
			if n == len(im.Manifests) {
				shared++
			}
		}
		if shared == 0 {
			t.Errorf("no layer is shared by all %d images: %v", len(im.Manifests), layerCount)
		}
	})

	t.Run("docker media types", func(t *testing.T) {
		img := testbed.PushDockerImage(t, src, "lib/old:1")
		got, err := remote.Image(src.Ref(t, "lib/old:1"), opts...)
		if err != nil {
			t.Fatal(err)
		}
		if digestOf(t, got) != digestOf(t, img) {
			t.Fatalf("pulled %s, pushed %s", digestOf(t, got), digestOf(t, img))
		}
		m, err := got.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		if m.MediaType != types.DockerManifestSchema2 || m.Config.MediaType != types.DockerConfigJSON {
			t.Errorf("manifest %s config %s, want Docker schema 2", m.MediaType, m.Config.MediaType)
		}
		for _, l := range m.Layers {
			if l.MediaType != types.DockerLayer {
				t.Errorf("layer %s media type %s, want %s", l.Digest, l.MediaType, types.DockerLayer)
			}
		}
	})
}

func TestRegistryStop(t *testing.T) {
	t.Parallel()
	reg := testbed.StartRegistry(t, testbed.RegistryOptions{TLS: true})
	testbed.PushRandomImage(t, reg, "down/app:1", 1, 1<<10)
	reg.Stop()
	reg.Stop() // idempotent; the cleanup calls it again too

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, reg.URL()+"/v2/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := reg.HTTPClient().Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("GET /v2/ after Stop answered %s, want a connection error", resp.Status)
	}
	if _, err := remote.Head(reg.Ref(t, "down/app:1"), append(reg.Options(), remote.WithContext(ctx))...); err == nil {
		t.Fatal("HEAD after Stop succeeded")
	}
}

func TestRegistryRestartKeepsStorage(t *testing.T) {
	t.Parallel()
	ca := testbed.NewCA(t)
	opts := testbed.RegistryOptions{TLS: true, CA: ca, Username: "u", Password: "p", StorageDir: t.TempDir()}
	first := testbed.StartRegistry(t, opts)
	img := testbed.PushRandomImage(t, first, "keep/app:1", 1, 2<<10)
	first.Stop()

	second := testbed.StartRegistry(t, opts)
	if second.CA != ca {
		t.Fatal("registry did not use the CA from its options")
	}
	desc, err := remote.Head(second.Ref(t, "keep/app:1"), append(second.Options(), remote.WithContext(t.Context()))...)
	if err != nil {
		t.Fatalf("HEAD after restart: %v", err)
	}
	if desc.Digest != digestOf(t, img) {
		t.Fatalf("digest after restart %s, pushed %s", desc.Digest, digestOf(t, img))
	}
}

func TestCAIssue(t *testing.T) {
	t.Parallel()
	ca := testbed.NewCA(t)
	certPEM, keyPEM := ca.Issue(t, "registry.local", "10.0.0.5")
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatalf("issued pair does not load: %v", err)
	}
	block, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"127.0.0.1", "localhost", "registry.local", "10.0.0.5"} {
		_, err := cert.Verify(x509.VerifyOptions{DNSName: host, Roots: ca.Pool()})
		if err != nil {
			t.Errorf("certificate not valid for %s: %v", host, err)
		}
	}
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: "127.0.0.1", Roots: testbed.NewCA(t).Pool()}); err == nil {
		t.Error("certificate verified against another CA")
	}
	if !strings.Contains(string(ca.CertPEM()), "BEGIN CERTIFICATE") {
		t.Error("CertPEM is not PEM")
	}
}

func TestBinaryFound(t *testing.T) {
	path := testbed.Binary(t, "registry")
	if filepath.Dir(path) != testbed.BinDir(t) {
		t.Fatalf("Binary = %s, not in BinDir %s", path, testbed.BinDir(t))
	}
}

func TestBinaryMissingFailsWithHint(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("FERRY_TESTBIN", dir)
	if got := testbed.BinDir(t); got != dir {
		t.Fatalf("BinDir = %s, want %s from FERRY_TESTBIN", got, dir)
	}

	ft := &fatalTB{TB: t}
	var path string
	msg, failed := ft.run(func() { path = testbed.Binary(ft, "registry") })
	if !failed {
		t.Fatalf("Binary returned %q for an empty FERRY_TESTBIN", path)
	}
	want := filepath.Join(dir, "registry")
	if !strings.Contains(msg, "make testbin") || !strings.Contains(msg, want) {
		t.Fatalf("Fatalf message %q should name %s and say to run `make testbin`", msg, want)
	}
}

// fatalTB records Fatalf instead of failing the real test. testing.T's
// Fatalf ends the goroutine with runtime.Goexit; this one panics with a
// sentinel that run recovers, so the code under test stops at the same point.
type fatalTB struct {
	testing.TB
	msg string
}

type fatalSentinel struct{}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(fatalSentinel{})
}

func (f *fatalTB) Fatal(args ...any) {
	f.msg = fmt.Sprint(args...)
	panic(fatalSentinel{})
}

func (f *fatalTB) FailNow() { panic(fatalSentinel{}) }

func (f *fatalTB) run(fn func()) (msg string, failed bool) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(fatalSentinel); !ok {
				panic(r)
			}
			msg, failed = f.msg, true
		}
	}()
	fn()
	return "", false
}

func registryGet(t *testing.T, client *http.Client, url, user, pass string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp
}

func digestOf(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func digestOfLayer(t *testing.T, l v1.Layer) v1.Hash {
	t.Helper()
	d, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}
