#!/usr/bin/env bash
# The day-2 numbers of a delta archive: month 1 (four images on one shared
# base layer) goes into a registry with a receipt; month 2 moves two images
# to new versions on the same base and keeps two. Month 2 is collected in
# full and as a delta against the receipt; the full archive goes into a copy
# of month 1's destination, the delta into the one the receipt describes.
# Prints the delta's size and ingest time as a share of the full one's. No
# target: read the numbers.
#
# Environment: BENCH_DELTA_BASE_MB (default 64) sizes the shared base layer,
# BENCH_DELTA_APP_MB (default 8) each image's own layer; FERRY (default
# bin/ferry, built when missing) and TESTBIN as in bench-lib.sh, whose crane
# it uses. It runs on its own, and from hack/bench.sh.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
testbin="${TESTBIN:-$root/.testbin}"
ferry="${FERRY:-$root/bin/ferry}"
[[ -x "$ferry" ]] || go build -o "$ferry" ./cmd/ferry
[[ -x "$testbin/registry" ]] || bash hack/testbin.sh registry
crane="$testbin/crane"
if [[ ! -x "$crane" ]]; then
  GOBIN="$testbin" go install "github.com/google/go-containerregistry/cmd/crane@$(go list -m -f '{{.Version}}' github.com/google/go-containerregistry)"
fi

source "$root/hack/bench-env.sh"
bench_work ferry-bench-delta

[[ -n "${BENCH_DEBUG:-}" ]] && set -x

base_mb="${BENCH_DELTA_BASE_MB:-64}"
app_mb="${BENCH_DELTA_APP_MB:-8}"

# start_plain NAME HOST: a plain HTTP Distribution registry.
start_plain() {
  local name="$1" host="$2"
  printf 'version: 0.1\nlog: {level: error, accesslog: {disabled: true}}\nstorage: {filesystem: {rootdirectory: "%s"}}\nhttp:\n  addr: "%s"\n' \
    "$work/$name-storage" "$host" > "$work/$name.yml"
  OTEL_TRACES_EXPORTER=none "$testbin/registry" serve "$work/$name.yml" > "$work/$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do curl -sf "http://$host/v2/" > /dev/null 2>&1 && return 0; sleep 0.1; done
  cat "$work/$name.log"
  echo "bench: registry $name did not start"
  exit 1
}
mklayer() { # NAME MIB: a gzip'd tar of one file of random bytes
  mkdir -p "$work/l/$1"
  head -c "$(( $2 * 1024 * 1024 ))" /dev/urandom > "$work/l/$1/data.bin"
  tar -C "$work/l/$1" -cf - data.bin | gzip -1 > "$work/l/$1.tar.gz"
  rm -rf "$work/l/$1"
}
push_app() { # NAME TAG
  mklayer "$1-$2" "$app_mb"
  "$crane" append --insecure --oci-empty-base -f "$work/l/base.tar.gz" -f "$work/l/$1-$2.tar.gz" -t "$src/day2/$1:$2" > /dev/null 2>&1
}
volsize() { local n=0 f; for f in "$@"; do n=$(( n + $(stat -c %s "$f") )); done; echo "$n"; }
collect() { # NAME IMAGE... [-- EXTRA...]
  local name="$1"; shift
  local args=()
  while (( $# )) && [[ "$1" != -- ]]; do args+=(--image "$1"); shift; done
  [[ "${1:-}" == -- ]] && shift
  "$ferry" collect --quiet --plain-http --key "$work/ferry.key" --output "$work/media/$name" \
    --cache-dir "$work/cache" --created 2026-12-01T00:00:00Z "${args[@]}" "$@" > /dev/null
}
ingest() { # BASE JOURNAL VOLUME... [extra flags after the volumes]
  local base="$1" journal="$2"; shift 2
  "$ferry" ingest --quiet --plain-http --registry "$dst/$base" --key "$work/ferry.pub" --journal "$journal" "$@" > /dev/null
}

src="127.0.0.1:$(freeport)"
start_plain source "$src"
dst="127.0.0.1:$(freeport)"
start_plain dest "$dst"
mkdir -p "$work/media"
"$ferry" key generate --output "$work/ferry" > /dev/null
"$ferry" key generate --output "$work/site" > /dev/null

echo "bench: month 1, four images of ${app_mb} MiB on a ${base_mb} MiB base layer, into $dst/delta (with a receipt) and $dst/full"
mklayer base "$base_mb"
for a in app1 app2 app3 app4; do push_app "$a" 1; done
month1=("$src/day2/app1:1" "$src/day2/app2:1" "$src/day2/app3:1" "$src/day2/app4:1")
collect month1 "${month1[@]}"
ingest delta "$work/j-delta.db" "$work"/media/month1.tar.zst* --receipt "$work/month1.receipt" --receipt-key "$work/site.key"
ingest full "$work/j-full.db" "$work"/media/month1.tar.zst*

echo "bench: month 2, app1 and app2 move to new versions on the same base"
push_app app1 2
push_app app2 2
month2=("$src/day2/app1:2" "$src/day2/app2:2" "$src/day2/app3:1" "$src/day2/app4:1")
collect month2-full "${month2[@]}"
collect month2-delta "${month2[@]}" -- --since "$work/month1.receipt" --receipt-pub "$work/site.pub"
full_bytes="$(volsize "$work"/media/month2-full.tar.zst*)"
delta_bytes="$(volsize "$work"/media/month2-delta.tar.zst*)"

sync
t0="$(now)"; ingest full "$work/j-full.db" "$work"/media/month2-full.tar.zst*; t1="$(now)"
full_s="$(echo "$t1 - $t0" | bc)"
sync
t0="$(now)"; ingest delta "$work/j-delta.db" "$work"/media/month2-delta.tar.zst*; t1="$(now)"
delta_s="$(echo "$t1 - $t0" | bc)"

state() { # BASE: every repository:tag under BASE with its digest
  python3 - "$dst" "$1" <<'PY'
import json, sys, urllib.request
dst, base = sys.argv[1], sys.argv[2]
get = lambda p, h={}: urllib.request.urlopen(urllib.request.Request("http://" + dst + p, headers=h))
accept = {"Accept": "application/vnd.oci.image.manifest.v1+json,application/vnd.oci.image.index.v1+json"}
for repo in sorted(json.load(get("/v2/_catalog"))["repositories"]):
    if not repo.startswith(base + "/"):
        continue
    for tag in sorted(json.load(get("/v2/%s/tags/list" % repo))["tags"] or []):
        r = get("/v2/%s/manifests/%s" % (repo, tag), accept)
        print(repo[len(base) + 1:] + ":" + tag, r.headers["Docker-Content-Digest"])
PY
}
state full > "$work/state-full"
state delta > "$work/state-delta"
if ! cmp -s "$work/state-full" "$work/state-delta"; then
  echo "bench: the delta and the full archive left different registry states"
  diff "$work/state-full" "$work/state-delta" || true
  exit 1
fi

printf 'bench: month 2 full archive   %8.1f MiB, ingest %6.2f s\n' "$(echo "scale=1; $full_bytes / 1048576" | bc)" "$full_s"
printf 'bench: month 2 delta archive  %8.1f MiB, ingest %6.2f s\n' "$(echo "scale=1; $delta_bytes / 1048576" | bc)" "$delta_s"
printf 'bench: delta/full size        %8.3f\n' "$(echo "scale=3; $delta_bytes / $full_bytes" | bc)"
printf 'bench: delta/full ingest time %8.3f\n' "$(echo "scale=3; $delta_s / $full_s" | bc)"
echo "bench: both destinations hold the same $(wc -l < "$work/state-full") tags, with the same digests"
