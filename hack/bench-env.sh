# Sourced by hack/bench-lib.sh and hack/bench-delta.sh, which run on their
# own too: a work folder removed on exit together with the processes
# started into pids, a free port, and the time.

# bench_work PREFIX: makes $work and kills $pids and removes $work on exit.
bench_work() {
  work="$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")"
  pids=()
  trap bench_cleanup EXIT
}

bench_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; wait "$p" 2> /dev/null || true; done
  rm -rf "$work"
}

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
now() { date +%s.%N; }
