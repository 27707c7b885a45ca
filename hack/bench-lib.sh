# Sourced by the bench scripts: the ferry binary, the registry and crane at
# the go-containerregistry version in go.mod, each built when missing.
# Sets root, testbin, layer_mb, ferry and crane.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
testbin="${TESTBIN:-$root/.testbin}"
layer_mb="${BENCH_LAYER_MB:-1024}"
ferry="${FERRY:-$root/bin/ferry}"

[[ -x "$ferry" ]] || go build -o "$ferry" ./cmd/ferry
[[ -x "$testbin/registry" ]] || bash hack/testbin.sh registry
ggcr_version="$(go list -m -f '{{.Version}}' github.com/google/go-containerregistry)"
if [[ "$(cat "$testbin/crane.version" 2>/dev/null)" != "$ggcr_version" ]]; then
  echo "bench: installing crane $ggcr_version"
  GOBIN="$testbin" go install "github.com/google/go-containerregistry/cmd/crane@$ggcr_version"
  echo "$ggcr_version" > "$testbin/crane.version"
fi
crane="$testbin/crane"
