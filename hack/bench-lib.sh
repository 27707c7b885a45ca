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

# push_bench_images HOST: one image with a ${layer_mb} MiB random layer and
# three small ones sharing a base layer, pushed to HOST (plain HTTP); sets
# refs. Needs $work.
push_bench_images() {
  local host="$1" i
  mklayer() { # NAME MIB: a gzip'd tar of one file of random bytes
    mkdir -p "$work/l/$1"
    head -c "$(( $2 * 1024 * 1024 ))" /dev/urandom > "$work/l/$1/data.bin"
    tar -C "$work/l/$1" -cf - data.bin | gzip -1 > "$work/l/$1.tar.gz"
    rm -rf "$work/l/$1"
  }
  mklayer big "$layer_mb"
  mklayer base 32
  "$crane" append --insecure --oci-empty-base -f "$work/l/big.tar.gz" -t "$host/bench/big:1" > /dev/null 2>&1
  refs=("$host/bench/big:1")
  for i in 1 2 3; do
    mklayer "app$i" 8
    "$crane" append --insecure --oci-empty-base -f "$work/l/base.tar.gz" -f "$work/l/app$i.tar.gz" -t "$host/bench/app$i:1" > /dev/null 2>&1
    refs+=("$host/bench/app$i:1")
  done
  rm -rf "$work/l"
}
