#!/usr/bin/env bash
# make bench: ferry against its peers, side by side in one run, on the same
# content in the same test bed, medians of BENCH_ROUNDS rounds (default 3):
#
#   collect  vs crane pull and regctl copy to an OCI layout (+ tar --zstd)
#   ingest   vs crane push of the extracted layout, and vs the floor (a
#            bare POST+PUT per blob, hack/floor)
#
# on three workloads generated here (random, incompressible layers):
#   w1   BENCH_W1 images, default "4 2 32768 3 32768": 4 images, each of
#        2 shared and 3 own layers of 32 MiB
#   w2   BENCH_W2, default "60 2 1024 6 256": 60 images, each of 2 shared
#        1 MiB and 6 own 256 KiB layers; its ingest is measured a second
#        time into a registry that takes single-POST uploads (hack/floor
#        serve), against the floor only
#   big  one image of one BENCH_LAYER_MB layer (default 1024)
# (BENCH_Wn is "IMAGES SHARED SHARED_KIB OWN OWN_KIB"), then peak RSS of
# collect and ingest with one BENCH_RSS_LAYER_MB layer (default 2048).
# BENCH_CHUNK_SIZES (MiB, e.g. "32 128 1024") also times ingest of the big
# layer at each --chunk-size. BENCH_INGEST_FLAGS are added to every ingest.
# BENCH_REFERRERS (default none, as the peers) is collect's --referrers.
#
# Every part runs even when an earlier one missed its target, so one run
# prints every number; the exit status is 1 if any part failed or missed.
set -uo pipefail
source "$(dirname "$0")/bench-lib.sh"
source "$root/hack/bench-collect.sh"
source "$root/hack/bench-ingest.sh"

rounds="${BENCH_ROUNDS:-3}"
ingest_flags="${BENCH_INGEST_FLAGS:-}"
read -r -a w1 <<< "${BENCH_W1:-4 2 32768 3 32768}"
read -r -a w2 <<< "${BENCH_W2:-60 2 1024 6 256}"
layer_mb="${BENCH_LAYER_MB:-1024}"
rss_layer_mb="${BENCH_RSS_LAYER_MB:-2048}"
failed=()
t_start="$(now)"

if [[ -z "${BENCH_SKIP_GO:-}" ]]; then
  echo "== archive writer and reader (Go benchmarks)"
  go test -run '^$' -bench . -benchmem ./archive || failed+=(archive)
  echo
fi

echo "== test bed: source registry (plain HTTP), destination registry (TLS, htpasswd bcrypt cost $bcrypt_cost)"
start_testbed
echo "bench: source $src, destination $dst"
"$ferry" key generate --output "$work/ferry" > /dev/null

seed() { # W IMAGES SHARED SHARED_KIB OWN OWN_KIB
  "$floor" seed -work "$work" -images "$2" -shared "$3" -shared-kib "$4" -own "$5" -own-kib "$6" "$src/$1" > "$work/$1.refs"
}
echo "bench: w1 = ${w1[0]} images of ${w1[1]} shared ${w1[2]} KiB + ${w1[3]} own ${w1[4]} KiB layers"
seed w1 "${w1[@]}" || exit 1
echo "bench: w2 = ${w2[0]} images of ${w2[1]} shared ${w2[2]} KiB + ${w2[3]} own ${w2[4]} KiB layers"
seed w2 "${w2[@]}" || exit 1
echo "bench: big = 1 image of one $layer_mb MiB layer"
seed big 1 0 0 1 $((layer_mb * 1024)) || exit 1

workloads=(w1 w2 big)
for w in "${workloads[@]}"; do
  echo
  echo "== $w: collect, $rounds rounds"
  bench_collect "$w" || { failed+=("$w-collect"); continue; }
  echo "== $w: ingest, $rounds rounds"
  bench_ingest "$w" || failed+=("$w-ingest")
done

if [[ -d "$work/w2.archive" ]]; then
  echo
  echo "== w2: ingest into a registry that takes single-POST uploads, $rounds rounds"
  bench_ingest_single w2 || failed+=(w2-ingest-single)
fi

if [[ -n "${BENCH_CHUNK_SIZES:-}" && -d "$work/big.archive" ]]; then
  echo
  echo "== big: ingest by --chunk-size"
  for mib in $BENCH_CHUNK_SIZES; do
    read -r f kib req cpu < <(ingest_flags="$ingest_flags --chunk-size $mib" ingest_ferry big "chunk-$mib")
    printf 'bench: --chunk-size %5d: %6.2f s, CPU %.2f s, %s requests\n' "$mib" "$f" "$cpu" "$req"
  done
fi

echo
echo "== peak RSS with one $rss_layer_mb MiB layer"
seed rss 1 0 0 1 $((rss_layer_mb * 1024)) || exit 1
if read -r f kib cpu < <(collect_ferry rss) && [[ -n "$f" ]]; then
  rss[rss/collect]=$((kib / 1024))
  if read -r f kib req cpu < <(ingest_ferry rss rss) && [[ -n "$f" ]]; then
    rss[rss/ingest]=$((kib / 1024))
  else
    failed+=(rss-ingest)
  fi
else
  failed+=(rss-collect)
fi
rm -rf "$work/rss.archive"

# The table: seconds (medians) and ferry/peer ratios.
echo
echo "== results: medians of $rounds rounds, seconds; ratio = ferry / peer"
cell() { [[ -n "${secs[$1]:-}" ]] && printf '%.2f' "${secs[$1]}" || printf -- '-'; }
rat() { [[ -n "${secs[$1]:-}" && -n "${secs[$2]:-}" ]] && ratio "${secs[$1]}" "${secs[$2]}" || printf -- '-'; }
printf '%-5s %-8s %8s | %-11s %8s %6s | %-11s %8s %6s\n' "" "" "ferry" "peer" "s" "ratio" "peer" "s" "ratio"
for w in "${workloads[@]}"; do
  printf '%-5s %-8s %8s | %-11s %8s %6s | %-11s %8s %6s\n' "$w" collect "$(cell "$w/collect")" \
    "crane pull" "$(cell "$w/crane-pull")" "$(rat "$w/collect" "$w/crane-pull")" \
    regctl "$(cell "$w/regctl")" "$(rat "$w/collect" "$w/regctl")"
  printf '%-5s %-8s %8s | %-11s %8s %6s | %-11s %8s %6s\n' "$w" ingest "$(cell "$w/ingest")" \
    "crane push" "$(cell "$w/crane-push")" "$(rat "$w/ingest" "$w/crane-push")" \
    floor "$(cell "$w/floor")" "$(rat "$w/ingest" "$w/floor")"
done
echo
echo "runs (s):"
for k in $(printf '%s\n' "${!allruns[@]}" | sort); do printf '  %-14s %s\n' "$k" "${allruns[$k]}"; done
echo
echo "requests sent to the destination (last round), per blob pushed into a repository:"
for w in "${workloads[@]}"; do
  b="${reqs[$w/blobs]:-}"
  fr="${reqs[$w/ingest]:-?}" flr="${reqs[$w/floor]:-?}"
  if [[ -n "$b" && "$fr" != "?" && "$flr" != "?" ]]; then
    printf '  %-4s ferry %5s (%s per blob), floor %5s (%s per blob), %s blobs\n' "$w" "$fr" "$(ratio "$fr" "$b")" "$flr" "$(ratio "$flr" "$b")" "$b"
  fi
done
if [[ -n "${secs[w2/ingest-1post]:-}" ]]; then
  printf '  w2 on a single-POST registry: ferry %5s requests, %.2f s; floor %5s requests, %.2f s; ratio %s (no target: the target is the test bed registry'"'"'s)\n' \
    "${reqs[w2/ingest-1post]:-?}" "${secs[w2/ingest-1post]}" "${reqs[w2/floor-1post]:-?}" "${secs[w2/floor-1post]}" "$(rat w2/ingest-1post w2/floor-1post)"
fi
echo
echo "ferry's peak RSS (MiB) and CPU time (s, user + system, median):"
for k in $(printf '%s\n' "${!rss[@]}" | sort); do printf '  %-12s %5s MiB %8s s\n' "$k" "${rss[$k]}" "${cpusecs[$k]:--}"; done

echo
echo "== targets"
check() { # NAME VALUE OP LIMIT
  local name="$1" v="$2" op="$3" lim="$4" ok
  if [[ -z "$v" || "$v" == "-" ]]; then
    printf '  %-34s %8s          missed (not measured)\n' "$name" "-"
    failed+=("$name")
    return
  fi
  case "$op" in
    "<=") ok="$(echo "$v <= $lim" | bc)" ;;
    "<") ok="$(echo "$v < $lim" | bc)" ;;
  esac
  if [[ "$ok" == 1 ]]; then
    printf '  %-34s %8s %s %-6s met\n' "$name" "$v" "$op" "$lim"
  else
    printf '  %-34s %8s %s %-6s MISSED\n' "$name" "$v" "$op" "$lim"
    failed+=("$name")
  fi
}
for w in w1 w2; do
  check "$w collect / crane pull" "$(rat "$w/collect" "$w/crane-pull")" "<=" 0.7
  check "$w collect / regctl" "$(rat "$w/collect" "$w/regctl")" "<=" 0.7
done
check "w1 ingest / floor" "$(rat w1/ingest w1/floor)" "<=" 1.0
check "w2 ingest / floor" "$(rat w2/ingest w2/floor)" "<=" 0.8
check "w2 ingest / crane push" "$(rat w2/ingest w2/crane-push)" "<=" 0.6
check "collect peak RSS, $rss_layer_mb MiB layer (MiB)" "${rss[rss/collect]:-}" "<" 200
check "ingest peak RSS, $rss_layer_mb MiB layer (MiB)" "${rss[rss/ingest]:-}" "<" 200

echo
echo "== day 2: a delta archive against a receipt"
bash "$root/hack/bench-delta.sh" || failed+=(delta)

echo
printf 'bench: %.0f s in all\n' "$(echo "$(now) - $t_start" | bc)"
if ((${#failed[@]} > 0)); then
  echo "bench: target missed or bench failed: ${failed[*]}"
  exit 1
fi
echo "bench: every target met"
