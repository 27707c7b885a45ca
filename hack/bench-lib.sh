# Sourced by hack/bench.sh: tools, the test bed and helpers.
#
# Tools, each built or installed when missing: bin/ferry, hack/floor (the
# bench's image maker and the floor ingest is measured against), crane at
# the go-containerregistry version in go.mod, regctl at $regctl_version
# into .bench/bin (make bench only; make test never needs it).
#
# The test bed: a plain-HTTP Distribution registry as the source, and a TLS
# one with htpasswd basic auth as the destination. The destination checks
# the password with bcrypt on every request, as Zot does; BENCH_BCRYPT_COST
# (default 9, about 55 ms of CPU per check on the two cores this was tuned
# on, what Zot's check costs there) sets the hash's cost.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
testbin="${TESTBIN:-$root/.testbin}"
ferry="${FERRY:-$root/bin/ferry}"
regctl_version="v0.11.7"
bcrypt_cost="${BENCH_BCRYPT_COST:-9}"

[[ -x "$ferry" ]] || go build -o "$ferry" ./cmd/ferry
[[ -x "$testbin/registry" ]] || bash hack/testbin.sh registry
ggcr_version="$(go list -m -f '{{.Version}}' github.com/google/go-containerregistry)"
if [[ "$(cat "$testbin/crane.version" 2>/dev/null)" != "$ggcr_version" ]]; then
  echo "bench: installing crane $ggcr_version"
  GOBIN="$testbin" go install "github.com/google/go-containerregistry/cmd/crane@$ggcr_version"
  echo "$ggcr_version" > "$testbin/crane.version"
fi
crane="$testbin/crane"
mkdir -p "$root/.bench/bin"
regctl="$root/.bench/bin/regctl"
if [[ "$(cat "$regctl.version" 2>/dev/null)" != "$regctl_version" ]]; then
  echo "bench: installing regctl $regctl_version"
  GOBIN="$root/.bench/bin" go install "github.com/regclient/regclient/cmd/regctl@$regctl_version" || exit 1
  echo "$regctl_version" > "$regctl.version"
fi
floor="$root/.bench/bin/floor"
go build -o "$floor" ./hack/floor || exit 1

source "$root/hack/bench-env.sh"
bench_work ferry-bench

# start_registry NAME HOST [TLS]: a Distribution registry on HOST; with
# TLS, HTTPS with $work/server.crt and htpasswd auth from $work/htpasswd.
start_registry() {
  local name="$1" host="$2" tls="${3:-}"
  {
    echo "version: 0.1"
    echo "log: {level: error, accesslog: {disabled: true}}"
    echo "storage: {filesystem: {rootdirectory: \"$work/$name-storage\"}, delete: {enabled: true}}"
    echo "http:"
    echo "  addr: \"$host\""
    if [[ -n "$tls" ]]; then
      echo "  tls: {certificate: \"$work/server.crt\", key: \"$work/server.key\"}"
      echo "auth: {htpasswd: {realm: ferry-bench, path: \"$work/htpasswd\"}}"
    fi
  } > "$work/$name.yml"
  OTEL_TRACES_EXPORTER=none "$testbin/registry" serve "$work/$name.yml" > "$work/$name.log" 2>&1 &
  pids+=($!)
  local scheme=http
  [[ -n "$tls" ]] && scheme=https
  for _ in $(seq 100); do
    # 401 is an answer too: the registry is up.
    if curl -s -o /dev/null --cacert "$work/ca.crt" "$scheme://$host/v2/"; then return 0; fi
    sleep 0.1
  done
  cat "$work/$name.log"
  echo "bench: registry $name did not start"
  exit 1
}

# start_testbed: sets src (plain HTTP) and dst (TLS, basic auth), the
# credentials for ferry (FERRY_REGISTRY_PASSWORD), crane (DOCKER_CONFIG) and
# the floor (FLOOR_PASSWORD), and regctl's config (plain HTTP to src).
start_testbed() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=ferry bench CA" \
    -keyout "$work/ca.key" -out "$work/ca.crt" 2> /dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$work/server.key" -out "$work/server.csr" 2> /dev/null
  printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > "$work/ext.cnf"
  openssl x509 -req -in "$work/server.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial -days 1 \
    -extfile "$work/ext.cnf" -out "$work/server.crt" 2> /dev/null
  bench_user=bench
  bench_password="$(openssl rand -hex 12)"
  echo "$bench_password" | "$floor" htpasswd "$bench_user" "$bcrypt_cost" > "$work/htpasswd"

  src="127.0.0.1:$(freeport)"
  start_registry source "$src"
  dst="127.0.0.1:$(freeport)"
  start_registry dest "$dst" tls

  export FERRY_REGISTRY_PASSWORD="$bench_password" FLOOR_PASSWORD="$bench_password"
  export DOCKER_CONFIG="$work/docker"
  mkdir -p "$DOCKER_CONFIG"
  printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$dst" "$(printf '%s:%s' "$bench_user" "$bench_password" | base64 -w0)" \
    > "$DOCKER_CONFIG/config.json"
  export SSL_CERT_FILE="$work/ca.crt"
  regctl_home="$work/regctl-home"
  mkdir -p "$regctl_home"
  HOME="$regctl_home" "$regctl" registry set --tls disabled "$src" > /dev/null
}

# settle: no run pays for another's writeback, and when this runs as root
# every run reads its input cold, as from the media.
settle() {
  sync
  if [[ -w /proc/sys/vm/drop_caches ]]; then echo 3 > /proc/sys/vm/drop_caches 2> /dev/null || true; fi
}

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
ratio() { echo "scale=3; $1 / $2" | bc | sed 's/^\./0./'; }
runs() { local out="" x; for x in "$@"; do out+="$(printf '%.2f ' "$x")"; done; echo "${out% }"; }

# Results, keyed "W/what": seconds (median), runs, peak RSS in MiB, requests,
# ferry's CPU seconds (median).
declare -A secs allruns rss reqs cpusecs

# record KEY VALUES...: the median of the rounds.
record() { local k="$1"; shift; secs[$k]="$(median "$@")"; allruns[$k]="$(runs "$@")"; }
