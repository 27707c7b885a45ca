# Sourced by hack/bench.sh. bench_ingest W: `ferry ingest` of the archive
# bench_collect left in $work/W.archive/ into the TLS registry with basic
# auth, against:
#   crane push  `crane push` of each image from the archive's OCI layout,
#               extracted beforehand (not timed), four images at a time;
#   floor       hack/floor: a POST and a monolithic PUT per blob of each
#               image into its repository, four at a time, then the
#               manifests: no existence checks, no mounts, no journal, no
#               verification; the least a registry must be sent.
# Every run pushes into repositories of its own (a base path per run), so
# nothing is skipped as already there. The medians are recorded as
# W/ingest, W/crane-push and W/floor, with ingest's peak RSS and the
# requests ferry and the floor sent.

# One OCI layout per image, sharing the extracted blobs, for `crane push`
# (which takes a layout holding a single image).
split_layout() { # LAYOUT: writes LAYOUT.img/N/ for each image of index.json
  python3 - "$1" << 'PY'
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

ingest_ferry() { # W RUN: prints seconds, peak RSS in KiB, requests sent and CPU seconds
  local w="$1" run="$2"
  settle
  local t0 t1
  t0="$(now)"
  /usr/bin/time -f "%M %U %S" -o "$work/rss" "$ferry" ingest --quiet --registry "$dst/ferry-$run" --key "$work/ferry.pub" \
    --username "$bench_user" --ca-file "$work/ca.crt" --journal "$work/journal-$run.db" \
    $ingest_flags "$work/$w.archive"/bench.tar.zst* > "$work/ingest.out" || { cat "$work/ingest.out" >&2; return 1; }
  t1="$(now)"
  local req kib u s
  req="$(sed -n 's/.*requests: \([0-9]*\) sent.*/\1/p' "$work/ingest.out" | head -1)"
  read -r kib u s < "$work/rss"
  echo "$(echo "$t1 - $t0" | bc) $kib ${req:-?} $(echo "$u + $s" | bc)"
}

ingest_crane() { # LAYOUT RUN: every image, four at a time
  local lay="$1" run="$2"
  settle
  local t0 t1
  t0="$(now)"
  for d in "$lay".img/*/; do echo "$d"; done |
    xargs -P 4 -I{} sh -c '"$1" push "$2" "$3/$(cat "$2/repo"):1" > /dev/null 2>&1' _ "$crane" {} "$dst/crane-$run" ||
    return 1
  t1="$(now)"
  echo "$t1 - $t0" | bc
}

ingest_floor() { # LAYOUT RUN: prints seconds, requests sent and blobs pushed
  local lay="$1" run="$2"
  settle
  local t0 t1 out
  t0="$(now)"
  out="$("$floor" push --ca-file "$work/ca.crt" --username "$bench_user" --jobs 4 "$lay" "$dst/floor-$run")" || return 1
  t1="$(now)"
  echo "$(echo "$t1 - $t0" | bc) $(echo "$out" | awk '{print $2, $4}')"
}

bench_ingest() { # W
  local w="$1" lay="$work/$w.layout" r f kib req cpu c fl freq fblobs fs=() cs=() fls=() cpus=() max=0
  rm -rf "$lay" "$lay.img" && mkdir -p "$lay"
  for v in "$work/$w.archive"/bench.tar.zst*; do tar --zstd -xf "$v" -C "$lay" || return 1; done
  split_layout "$lay"
  for r in $(seq "$rounds"); do
    read -r f kib req cpu < <(ingest_ferry "$w" "$w-$r")
    [[ -n "$f" ]] || { echo "bench: $w: ferry ingest failed"; return 1; }
    c="$(ingest_crane "$lay" "$w-$r")" || { echo "bench: $w: crane push failed"; return 1; }
    read -r fl freq fblobs < <(ingest_floor "$lay" "$w-$r")
    [[ -n "$fl" ]] || { echo "bench: $w: floor push failed"; return 1; }
    fs+=("$f") cs+=("$c") fls+=("$fl") cpus+=("$cpu")
    max=$((kib > max ? kib : max))
    printf 'bench: %s ingest round %d: ferry %.2f s (CPU %.2f s, %d MiB, %s requests), crane push %.2f s, floor %.2f s (%s requests)\n' \
      "$w" "$r" "$f" "$cpu" $((kib / 1024)) "$req" "$c" "$fl" "$freq"
  done
  record "$w/ingest" "${fs[@]}"
  record "$w/crane-push" "${cs[@]}"
  record "$w/floor" "${fls[@]}"
  rss[$w/ingest]=$((max / 1024))
  cpusecs[$w/ingest]="$(median "${cpus[@]}")"
  reqs[$w/ingest]="$req"
  reqs[$w/floor]="$freq"
  reqs[$w/blobs]="$fblobs"
  rm -rf "$lay" "$lay.img"
}

# bench_ingest_single W: ferry against the floor again, into a registry
# that takes a blob in a single POST, as Zot does and the Distribution
# registry above does not (hack/floor serve: go-containerregistry's
# in-memory registry, TLS, bcrypt checked on every request). The floor
# still sends a POST and a PUT per blob. Recorded as W/ingest-1post and
# W/floor-1post, with their requests.
bench_ingest_single() { # W
  local w="$1" lay="$work/$w.layout" one r f kib req cpu fl freq fblobs fs=() fls=()
  one="127.0.0.1:$(freeport)"
  "$floor" serve -addr "$one" -cert "$work/server.crt" -key "$work/server.key" -htpasswd "$work/htpasswd" &
  pids+=($!)
  for _ in $(seq 100); do
    curl -s -o /dev/null --cacert "$work/ca.crt" "https://$one/v2/" && break
    sleep 0.1
  done
  rm -rf "$lay" "$lay.img" && mkdir -p "$lay"
  for v in "$work/$w.archive"/bench.tar.zst*; do tar --zstd -xf "$v" -C "$lay" || return 1; done
  for r in $(seq "$rounds"); do
    read -r f kib req cpu < <(dst="$one" ingest_ferry "$w" "1post-$w-$r")
    [[ -n "$f" ]] || { echo "bench: $w: ferry ingest (single POST) failed"; return 1; }
    read -r fl freq fblobs < <(dst="$one" ingest_floor "$lay" "1post-$w-$r")
    [[ -n "$fl" ]] || { echo "bench: $w: floor push (single POST) failed"; return 1; }
    fs+=("$f") fls+=("$fl")
    printf 'bench: %s ingest, single-POST registry, round %d: ferry %.2f s (%s requests), floor %.2f s (%s requests)\n' \
      "$w" "$r" "$f" "$req" "$fl" "$freq"
  done
  record "$w/ingest-1post" "${fs[@]}"
  record "$w/floor-1post" "${fls[@]}"
  reqs[$w/ingest-1post]="$req"
  reqs[$w/floor-1post]="$freq"
  rm -rf "$lay"
}
