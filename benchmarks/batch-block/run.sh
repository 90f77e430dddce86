#!/usr/bin/env bash
# Does a large batch hold up other requests? Alternates builds: each round
# starts a fresh `catchall serve` per binary and runs
# healthz_during_batches.py against it (2 connections posting 100,000-event
# batches, one timing GET /healthz every 10 ms).
#
# usage: benchmarks/batch-block/run.sh [--rounds N] [--seconds S] [--items N] BINARY...
#        BINARY: catchall binaries to compare (default build/release/catchall);
#        extra `catchall serve` flags after `--`.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
rounds=2 seconds=10 items=100000 bins=() extra=()
while (($#)); do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --items) items="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    *) bins+=("$1"); shift ;;
  esac
done
((${#bins[@]})) || bins=("$root/build/release/catchall")
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for ((r = 1; r <= rounds; r++)); do
  for bin in "${bins[@]}"; do
    rm -rf "$work/data"
    "$bin" serve --listen 127.0.0.1:0 --port-file "$work/port" --data-dir "$work/data" \
      --log-level warn "${extra[@]}" >"$work/serve.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do [[ -s "$work/port" ]] && break; sleep 0.05; done
    [[ -s "$work/port" ]] || { cat "$work/serve.log"; exit 1; }
    echo "round $r $bin (load $(cut -d' ' -f1 /proc/loadavg)): $(python3 "$root/benchmarks/batch-block/healthz_during_batches.py" "$(cat "$work/port")" "$seconds" "$items" 2)"
    kill "$pid"; wait "$pid" || true
    rm -f "$work/port"
  done
done
