#!/usr/bin/env bash
# Benchmarks `ferry collect` against what an operator would otherwise do:
# `crane pull --format=oci` of the same images followed by `tar --zstd -cf` of
# that layout. Both read the same images from a local registry in one run; the
# script prints the time ratio (target: at most 0.7) and collect's peak RSS
# (target: under 200 MiB with a 1 GiB layer), and exits 1 when a target is
# missed.
#
# Environment: BENCH_LAYER_MB (default 1024) sizes the big layer; FERRY is the
# ferry binary (default bin/ferry, built when missing); TESTBIN as in testbin.sh.
set -euo pipefail

source "$(dirname "$0")/bench-lib.sh"

work="$(mktemp -d "${TMPDIR:-/tmp}/ferry-bench.XXXXXX")"
registry_pid=""
cleanup() {
  if [[ -n "$registry_pid" ]]; then kill "$registry_pid" 2>/dev/null || true; wait "$registry_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# A plain-HTTP registry on a free loopback port.
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"
host="127.0.0.1:$port"
cat > "$work/registry.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: "$work/storage"}}
http: {addr: "$host"}
EOF
OTEL_TRACES_EXPORTER=none "$testbin/registry" serve "$work/registry.yml" > "$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 100); do curl -sf "http://$host/v2/" > /dev/null && break; sleep 0.1; done
curl -sf "http://$host/v2/" > /dev/null || { cat "$work/registry.log"; echo "bench: registry did not start"; exit 1; }

# Images: one with a big random layer, three small ones sharing a base layer.
echo "bench: pushing a ${layer_mb} MiB layer and three small images to $host"
push_bench_images "$host"

"$ferry" key generate --output "$work/ferry" > /dev/null
images=()
for r in "${refs[@]}"; do images+=(--image "$r"); done

now() { date +%s.%N; }
run_ferry() { # prints seconds and peak RSS in KiB
  rm -rf "$work/cache" "$work/out" && mkdir -p "$work/out"
  sync # neither side pays for the other's writeback
  local t0 t1
  t0="$(now)"
  /usr/bin/time -f "%M" -o "$work/rss" "$ferry" collect --quiet --plain-http --key "$work/ferry.key" \
    --output "$work/out/bench" --cache-dir "$work/cache" "${images[@]}" > /dev/null
  t1="$(now)"
  echo "$(echo "$t1 - $t0" | bc) $(cat "$work/rss")"
}
run_crane() {
  rm -rf "$work/layout" "$work/crane.tar.zst"
  sync
  local t0 t1
  t0="$(now)"
  "$crane" pull --insecure --format=oci "${refs[@]}" "$work/layout" 2> /dev/null
  tar --zstd -cf "$work/crane.tar.zst" -C "$work/layout" .
  t1="$(now)"
  echo "$t1 - $t0" | bc
}
min() { if (( $(echo "$1 < $2" | bc) )); then echo "$1"; else echo "$2"; fi; }

# Alternate the two, twice each, and keep each one's best time, so neither
# profits alone from a warm page cache.
read -r f1 rss1 < <(run_ferry)
c1="$(run_crane)"
read -r f2 rss2 < <(run_ferry)
c2="$(run_crane)"
ferry_s="$(min "$f1" "$f2")"
crane_s="$(min "$c1" "$c2")"
rss_kib=$(( rss1 > rss2 ? rss1 : rss2 ))
ratio="$(echo "scale=3; $ferry_s / $crane_s" | bc)"
rss_mib=$(( rss_kib / 1024 ))

printf 'bench: images %s (big layer %d MiB)\n' "${#refs[@]}" "$layer_mb"
printf 'bench: ferry collect           %6.2f s (runs %.2f, %.2f)\n' "$ferry_s" "$f1" "$f2"
printf 'bench: crane pull + tar --zstd %6.2f s (runs %.2f, %.2f)\n' "$crane_s" "$c1" "$c2"
printf 'bench: ratio collect/crane     %6.3f (target <= 0.7)\n' "$ratio"
printf 'bench: collect peak RSS        %6d MiB (target < 200 MiB)\n' "$rss_mib"

fail=0
if (( $(echo "$ratio > 0.7" | bc) )); then echo "bench: ratio target missed"; fail=1; fi
if (( rss_mib >= 200 )); then echo "bench: RSS target missed"; fail=1; fi
exit "$fail"
