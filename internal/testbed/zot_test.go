package testbed_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/ferrytool/ferry/internal/testbed"
)

func TestZotRulesRefuseDockerManifests(t *testing.T) {
	backend := testbed.StartRegistry(t, testbed.RegistryOptions{TLS: true, Username: "admin", Password: "s3cret"})
	zot := testbed.StartZotRules(t, backend)
	src := testbed.StartSourceRegistry(t)
	docker := testbed.PushDockerImage(t, src, "d/img:1")
	err := remote.Write(zot.Ref(t, "d/img:1"), docker, zot.Options()...)
	var terr *transport.Error
	if !errors.As(err, &terr) || terr.StatusCode != 400 || !strings.Contains(err.Error(), "MANIFEST_INVALID") {
		t.Fatalf("docker manifest push: err = %v, want 400 MANIFEST_INVALID", err)
	}
	if zot.Refused.Load() != 1 {
		t.Fatalf("refused %d, want 1", zot.Refused.Load())
	}
	oci := testbed.PushRandomImage(t, src, "o/img:1", 1, 1024)
	if err := remote.Write(zot.Ref(t, "o/img:1"), oci, zot.Options()...); err != nil {
		t.Fatalf("OCI push through the Zot rules: %v", err)
	}
	if _, err := remote.Head(backend.Ref(t, "o/img:1"), backend.Options()...); err != nil {
		t.Fatalf("OCI image did not reach the backend: %v", err)
	}
}
