#!/usr/bin/env bash
# Benchmarks `ferry ingest` against what an operator would otherwise do on
# the air-gapped side, on the same archive, into the same TLS registry, in
# one run:
#   A. `tar --zstd -xf` of the volumes, then `crane push` of each image from
#      the extracted OCI layout (target: ingest / A <= 0.5);
#   B. `crane push` alone, of the layout already extracted (target: ingest /
#      B <= 1.1);
# and ingest's peak RSS with a 1 GiB layer (target: under 200 MiB). Exits 1
# when a target is missed.
#
# Every run pushes into fresh repositories (its own base path) of the same
# registry, so nothing is skipped as already there; the crane pushes of one
# run go in parallel, one process per image, as a script would do.
#
# Environment: BENCH_LAYER_MB (default 1024) sizes the big layer; BENCH_ROUNDS
# (default 3) how often each is timed; FERRY is the
# ferry binary (default bin/ferry, built when missing); TESTBIN as in testbin.sh.
set -euo pipefail

source "$(dirname "$0")/bench-lib.sh"

work="$(mktemp -d "${TMPDIR:-/tmp}/ferry-bench-ingest.XXXXXX")"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
[[ -n "${BENCH_DEBUG:-}" ]] && set -x

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# start_registry NAME HOST [TLS]: a Distribution registry on HOST.
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
    fi
  } > "$work/$name.yml"
  OTEL_TRACES_EXPORTER=none "$testbin/registry" serve "$work/$name.yml" > "$work/$name.log" 2>&1 &
  pids+=($!)
  local scheme=http
  [[ -n "$tls" ]] && scheme=https
  for _ in $(seq 100); do curl -sf --cacert "$work/ca.crt" "$scheme://$host/v2/" > /dev/null 2>&1 && return 0; sleep 0.1; done
  cat "$work/$name.log"
  echo "bench: registry $name did not start"
  exit 1
}

# A private CA and a server certificate for 127.0.0.1, as on the appliance.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=ferry bench CA" \
  -keyout "$work/ca.key" -out "$work/ca.crt" 2> /dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
  -keyout "$work/server.key" -out "$work/server.csr" 2> /dev/null
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > "$work/ext.cnf"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial -days 1 \
  -extfile "$work/ext.cnf" -out "$work/server.crt" 2> /dev/null

src="127.0.0.1:$(freeport)"
start_registry source "$src"
dst="127.0.0.1:$(freeport)"
start_registry dest "$dst" tls

# Images: one with a big random layer, three small ones sharing a base layer.
echo "bench: pushing a ${layer_mb} MiB layer and three small images to the source $src"
push_bench_images "$src"

echo "bench: collecting them into an archive"
"$ferry" key generate --output "$work/ferry" > /dev/null
images=()
for r in "${refs[@]}"; do images+=(--image "$r"); done
mkdir -p "$work/media"
"$ferry" collect --quiet --plain-http --key "$work/ferry.key" --output "$work/media/bench" \
  --cache-dir "$work/cache" "${images[@]}" > /dev/null
rm -rf "$work/cache"
volumes=("$work"/media/bench.tar.zst*)

# One OCI layout per image, sharing the extracted blobs, for `crane push`
# (which takes a layout holding a single image).
split_layout() { # LAYOUT: writes LAYOUT.img/N/ for each image of index.json
  python3 - "$1" <<'PY'
import json, os, sys
lay = sys.argv[1]
idx = json.load(open(os.path.join(lay, "index.json")))
for i, m in enumerate(idx["manifests"]):
    d = os.path.join(lay + ".img", str(i))
    os.makedirs(d)
    os.symlink(os.path.join(lay, "blobs"), os.path.join(d, "blobs"))
    with open(os.path.join(d, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    with open(os.path.join(d, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [m]}, f)
    name = m.get("annotations", {}).get("org.opencontainers.image.ref.name", str(i))
    repo = name.split("/", 1)[1].rsplit(":", 1)[0]
    with open(os.path.join(d, "repo"), "w") as f:
        f.write(repo)
PY
}

now() { date +%s.%N; }
# settle: no run pays for another's writeback, and when this runs as root
# every run reads the archive (or the layout) cold, as from the media.
settle() {
  sync
  if [[ -w /proc/sys/vm/drop_caches ]]; then echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; fi
}
crane_push_all() { # LAYOUT BASE: every image, in parallel
  local jobs=()
  for d in "$1".img/*/; do
    SSL_CERT_FILE="$work/ca.crt" "$crane" push "$d" "$dst/$2/$(cat "$d/repo"):1" > /dev/null 2>&1 &
    jobs+=($!)
  done
  for j in "${jobs[@]}"; do wait "$j"; done
}
# Each run takes its number as argument: they run in subshells.
run_ferry() { # RUN: prints seconds and peak RSS in KiB
  local run="$1"
  settle
  local t0 t1
  t0="$(now)"
  /usr/bin/time -f "%M" -o "$work/rss" "$ferry" ingest --quiet --registry "$dst/ferry-$run" --key "$work/ferry.pub" \
    --ca-file "$work/ca.crt" --journal "$work/journal-$run.db" "${volumes[@]}" > /dev/null
  t1="$(now)"
  echo "$(echo "$t1 - $t0" | bc) $(cat "$work/rss")"
}
run_extract_push() { # RUN: A, extract then push
  local run="$1"
  rm -rf "$work/layout" "$work/layout.img"
  settle
  local t0 t1
  t0="$(now)"
  mkdir -p "$work/layout"
  for v in "${volumes[@]}"; do tar --zstd -xf "$v" -C "$work/layout"; done
  split_layout "$work/layout"
  crane_push_all "$work/layout" "extract-$run"
  t1="$(now)"
  echo "$t1 - $t0" | bc
}
run_push() { # RUN: B, push the layout A left behind
  local run="$1"
  settle
  local t0 t1
  t0="$(now)"
  crane_push_all "$work/layout" "push-$run"
  t1="$(now)"
  echo "$t1 - $t0" | bc
}
min() { if (( $(echo "$1 < $2" | bc) )); then echo "$1"; else echo "$2"; fi; }

# Alternate the three, BENCH_ROUNDS times (default 3), and keep each one's
# best time, so none profits alone from a warm page cache or suffers alone
# from another's writeback.
rounds="${BENCH_ROUNDS:-3}"
echo "bench: ingesting (${#volumes[@]} volume(s)) and pushing, $rounds rounds"
fs=() as=() bs=() rss_kib=0
for r in $(seq "$rounds"); do
  read -r f rss < <(run_ferry "$r")
  fs+=("$f"); as+=("$(run_extract_push "$r")"); bs+=("$(run_push "$r")")
  rss_kib=$(( rss > rss_kib ? rss : rss_kib ))
done
best() { local b="$1"; shift; for x in "$@"; do b="$(min "$b" "$x")"; done; echo "$b"; }
runs() { local out=""; for x in "$@"; do out+="$(printf '%.2f ' "$x")"; done; echo "${out% }"; }
ferry_s="$(best "${fs[@]}")"
a_s="$(best "${as[@]}")"
b_s="$(best "${bs[@]}")"
rss_mib=$(( rss_kib / 1024 ))
ratio_a="$(echo "scale=3; $ferry_s / $a_s" | bc)"
ratio_b="$(echo "scale=3; $ferry_s / $b_s" | bc)"

printf 'bench: images %s (big layer %d MiB), TLS registry\n' "${#refs[@]}" "$layer_mb"
printf 'bench: ferry ingest                 %6.2f s (runs %s)\n' "$ferry_s" "$(runs "${fs[@]}")"
printf 'bench: tar --zstd -xf + crane push  %6.2f s (runs %s)\n' "$a_s" "$(runs "${as[@]}")"
printf 'bench: crane push (extracted)       %6.2f s (runs %s)\n' "$b_s" "$(runs "${bs[@]}")"
printf 'bench: so extraction took about     %6.2f s\n' "$(echo "$a_s - $b_s" | bc)"
printf 'bench: ratio ingest/(extract+push)  %6.3f (target <= 0.5)\n' "$ratio_a"
printf 'bench: ratio ingest/push            %6.3f (target <= 1.1)\n' "$ratio_b"
printf 'bench: ingest peak RSS              %6d MiB (target < 200 MiB)\n' "$rss_mib"

fail=0
if (( $(echo "$ratio_a > 0.5" | bc) )); then echo "bench: extract+push ratio target missed"; fail=1; fi
if (( $(echo "$ratio_b > 1.1" | bc) )); then echo "bench: push ratio target missed"; fail=1; fi
if (( rss_mib >= 200 )); then echo "bench: RSS target missed"; fail=1; fi
exit "$fail"
