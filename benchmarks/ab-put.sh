#!/usr/bin/env bash
# Compares two catchall builds on single-event PUTs, alternating, so that a
# change's effect shows against the noise of a shared machine:
#
#   benchmarks/ab-put.sh [--rounds N] [--rate R] [--duration S] [--domains N]
#                        [--threads] [--keys] BINARY_A BINARY_B [-- catchall serve flags...]
#
# e.g. benchmarks/ab-put.sh /tmp/catchall-before build/release/catchall
#      benchmarks/ab-put.sh --rate 50000 --threads A B -- --set server.http_threads=2
#
# Each round runs A, then B (then B, then A in the next round, and so on), and
# each run is a fresh `catchall serve` on an empty data dir, 2 s of warm-up
# PUTs, then catchall-bench over 64 keep-alive connections and --domains
# uniform domains (5,000) for --duration seconds (8), closed loop or, with
# --rate, open loop
# at R PUTs/s; with --keys every PUT carries an Idempotency-Key (as
# compare-nginx.sh's --verify runs do). Printed per run: PUTs/s, p99, the server's CPU per PUT (all
# threads, utime+stime from /proc, divided by the PUTs sent) and, with
# --threads, the CPU per PUT of each thread (by thread id; catchall's threads
# are unnamed, so the id order is the start order: main, ..., the log's
# writer, the aggregation, then the HTTP I/O threads). The load average is
# printed with each run. Results: $OUT (default bench-results/ab).
# Env: BENCH (catchall-bench; default build/release/catchall-bench).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
PROG=ab-put
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$here/lib.sh"
BENCH="${BENCH:-$root/build/release/catchall-bench}"
OUT="${OUT:-bench-results/ab}"

rounds=3
rate=""
duration=8
domains=5000
threads=0
keys=0
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while (($#)); do
  case "$1" in
    --rounds) posint "$1" "${2:-}"; rounds="$2"; shift 2 ;;
    --rate) posint "$1" "${2:-}"; rate="$2"; shift 2 ;;
    --duration) posint "$1" "${2:-}"; duration="$2"; shift 2 ;;
    --domains) posint "$1" "${2:-}"; domains="$2"; shift 2 ;;
    --threads) threads=1; shift ;;
    --keys) keys=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) break ;;
  esac
done
(($# >= 2)) || { usage; exit 1; }
bin_a="$1" bin_b="$2"
shift 2
[[ "${1:-}" == "--" ]] && shift
serve_flags=("$@")
for b in "$bin_a" "$bin_b" "$BENCH"; do
  [[ -x "$b" ]] || die "$b is not an executable (build first: cmake --build build/release -j2)"
done
mkdir -p "$OUT"
port="$(free_port)"
url="http://127.0.0.1:$port"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do stop_pid "$p" 5; done; }
trap cleanup EXIT

# run LABEL BINARY: one fresh server, one measured run; prints one line.
run() {
  local label="$1" bin="$2" dir pid t0 t1
  dir="$(mktemp -d)"
  start_bg "$OUT/$label.server.log" "$bin" serve --listen "127.0.0.1:$port" --data-dir "$dir" \
    --log-level warn "${serve_flags[@]}"
  pid="$LAST_PID"
  for _ in $(seq 100); do curl -fs -o /dev/null "$url/healthz" && break; sleep 0.1; done
  curl -fs -o /dev/null "$url/healthz" || die "$label: the server did not start ($(tail -3 "$OUT/$label.server.log"))"
  local common=(--target "$url" --mode put --connections 64 --workload uniform --domains "$domains" --quiet)
  ((keys)) && common+=(--idempotency-keys)
  "$BENCH" "${common[@]}" --duration 2 --warmup 0 --out "$OUT/warmup" >/dev/null 2>&1
  thread_ticks "$pid" >"$OUT/$label.threads0"
  t0="$(cpu_ticks "$pid")"
  "$BENCH" "${common[@]}" ${rate:+--rate "$rate"} --duration "$duration" --warmup 0 \
    --out "$OUT/$label" >"$OUT/$label.log" 2>&1 || die "$label: catchall-bench failed: $(tail -3 "$OUT/$label.log")"
  t1="$(cpu_ticks "$pid")"
  thread_ticks "$pid" >"$OUT/$label.threads1"
  stop_pid "$pid" 10
  rm -rf "$dir"
  python3 - "$label" "$OUT/$label/results.json" "$t0" "$t1" "$HZ" "$threads" \
    "$OUT/$label.threads0" "$OUT/$label.threads1" "$(load1)" <<'PY'
import json, sys
label, results, t0, t1, hz, threads, s0, s1, load = sys.argv[1:]
r = json.load(open(results))
sent = r["requests"]["sent"]
def us(ticks):
    return ticks / float(hz) * 1e6 / sent
line = (f"{label:<10} {r['throughput_per_s']:>9,.0f} PUTs/s  p99 {r['latency_ms']['p99']:7.2f} ms  "
        f"server CPU {us(int(t1) - int(t0)):5.2f} us/PUT  load {load}")
if threads == "1":
    def ticks_by_tid(path):  # thread_ticks lines: ticks, name, id
        rows = (l.rstrip("\n").split("\t") for l in open(path))
        return {r[2]: r[0] for r in rows}
    before = ticks_by_tid(s0)
    after = ticks_by_tid(s1)
    per = {t: us(int(v) - int(before.get(t, 0))) for t, v in after.items()}
    line += "  threads " + " ".join(f"{t}:{v:.2f}" for t, v in sorted(per.items(), key=lambda x: int(x[0])) if v >= 0.05)
print(line, flush=True)
PY
}

say "A = $bin_a, B = $bin_b, $rounds rounds, ${rate:+open loop at $rate/s}${rate:-closed loop}, ${duration}s each"
for ((i = 1; i <= rounds; i++)); do
  if ((i % 2)); then
    run "A$i" "$bin_a"
    run "B$i" "$bin_b"
  else
    run "B$i" "$bin_b"
    run "A$i" "$bin_a"
  fi
done
