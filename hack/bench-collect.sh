# Sourced by hack/bench.sh. bench_collect W: `ferry collect` of workload W's
# images (the references in $work/W.refs, in the source registry) against
# what an operator would otherwise do, pull to an OCI layout and pack it
# with `tar --zstd`:
#   crane   `crane pull --format=oci` of every image in one process;
#   regctl  `regctl image copy` of each image into one OCI layout, one
#           image after the other (regctl copies one image per command).
# After one untimed pull that warms the source registry, the three
# alternate, $rounds times; the medians are recorded as W/collect,
# W/crane-pull and W/regctl, with collect's peak RSS. The last archive stays
# in $work/W.archive/ for bench_ingest.

collect_ferry() { # W: prints seconds, peak RSS in KiB and CPU seconds
  local w="$1" images=() r
  while read -r r; do images+=(--image "$r"); done < "$work/$w.refs"
  rm -rf "$work/cache" "$work/$w.archive" && mkdir -p "$work/$w.archive"
  settle
  local t0 t1
  t0="$(now)"
  # The peers carry no signatures or SBOMs, so neither does ferry here by
  # default: like for like. BENCH_REFERRERS=all adds the attachment lookups
  # (about five requests per image and platform manifest).
  /usr/bin/time -f "%M %U %S" -o "$work/rss" "$ferry" collect --quiet --plain-http --key "$work/ferry.key" \
    --referrers "${BENCH_REFERRERS:-none}" \
    --output "$work/$w.archive/bench" --cache-dir "$work/cache" "${images[@]}" > /dev/null || return 1
  t1="$(now)"
  rm -rf "$work/cache"
  local kib u s
  read -r kib u s < "$work/rss"
  echo "$(echo "$t1 - $t0" | bc) $kib $(echo "$u + $s" | bc)"
}

collect_crane() { # W
  local w="$1" refs
  mapfile -t refs < "$work/$w.refs"
  rm -rf "$work/layout" "$work/peer.tar.zst"
  settle
  local t0 t1
  t0="$(now)"
  "$crane" pull --insecure --format=oci "${refs[@]}" "$work/layout" 2> /dev/null || return 1
  tar --zstd -cf "$work/peer.tar.zst" -C "$work/layout" . || return 1
  t1="$(now)"
  rm -rf "$work/layout" "$work/peer.tar.zst"
  echo "$t1 - $t0" | bc
}

collect_regctl() { # W
  local w="$1" r i=0
  rm -rf "$work/layout" "$work/peer.tar.zst"
  settle
  local t0 t1
  t0="$(now)"
  while read -r r; do
    HOME="$regctl_home" "$regctl" image copy "$r" "ocidir://$work/layout:t$i" > /dev/null 2>&1 || return 1
    i=$((i + 1))
  done < "$work/$w.refs"
  tar --zstd -cf "$work/peer.tar.zst" -C "$work/layout" . || return 1
  t1="$(now)"
  rm -rf "$work/layout" "$work/peer.tar.zst"
  echo "$t1 - $t0" | bc
}

bench_collect() { # W
  local w="$1" r f kib cpu c g fs=() cs=() gs=() cpus=() max=0
  # One untimed pull first. The first read of a workload's blobs after
  # they were written was measurably slower than every later one (1 GiB
  # layer: 4.3-4.7 s against 2.0-2.6 s, whichever tool came first), from
  # caches below this machine's page cache that settle cannot drop; it
  # fell on ferry, which runs first in each round. Page caches are still
  # dropped before every timed run.
  collect_crane "$w" > /dev/null || { echo "bench: $w: warm-up pull failed"; return 1; }
  for r in $(seq "$rounds"); do
    read -r f kib cpu < <(collect_ferry "$w")
    [[ -n "$f" ]] || { echo "bench: $w: ferry collect failed"; return 1; }
    c="$(collect_crane "$w")" || { echo "bench: $w: crane pull failed"; return 1; }
    g="$(collect_regctl "$w")" || { echo "bench: $w: regctl copy failed"; return 1; }
    fs+=("$f") cs+=("$c") gs+=("$g") cpus+=("$cpu")
    max=$((kib > max ? kib : max))
    printf 'bench: %s collect round %d: ferry %.2f s (CPU %.2f s, %d MiB), crane %.2f s, regctl %.2f s\n' "$w" "$r" "$f" "$cpu" $((kib / 1024)) "$c" "$g"
  done
  record "$w/collect" "${fs[@]}"
  record "$w/crane-pull" "${cs[@]}"
  record "$w/regctl" "${gs[@]}"
  rss[$w/collect]=$((max / 1024))
  cpusecs[$w/collect]="$(median "${cpus[@]}")"
}
