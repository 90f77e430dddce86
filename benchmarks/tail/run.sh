#!/usr/bin/env bash
# The open-loop tail of an embedded catchall while its store compacts after a
# bulk load (issue 14): PUT and GET P99 at 80% of the server's own closed-loop
# maximum, at 10M domains.
#
#   benchmarks/tail/run.sh [--events N] [--bulk-rate R] [--domains N] [--duration S]
#                          [--put-rate R] [--get-rate R] [--fraction F]
#                          [--set KEY=VALUE]... [--label TEXT]
#
# One fresh `catchall serve` (data in a temporary directory, --set passed to it)
# runs these phases, one after the other, each with catchall-bench:
#   put-max   closed-loop PUTs for 10 s on the empty store (uniform, --domains)
#   bulk      --events uniform events (default 30,000,000) over --domains
#             (default 10,000,000), POSTed in batches of 1,000 at --bulk-rate
#             events/s (default 200,000: about what the aggregation sustains
#             here; faster, the server answers 503 and the phase fails)
#   put-open  right after the bulk load: PUTs at --put-rate (default: --fraction,
#             0.8, of put-max) for --duration s (default 30), latency from the
#             intended send time
#   get-max   closed-loop GETs for 10 s of the loaded domains
#   get-open  GETs at --get-rate (default: --fraction of get-max) for --duration s
# During put-open and get-open the server's metrics are sampled every second
# (RocksDB's pending compaction bytes, running compactions, write stalls), so
# the tail can be read against the compaction it ran beside.
# The summary (stdout, and $OUT/summary.json) gives each phase's rate, P50, P99,
# P99.9, the server's CPU per operation, the load average, the compaction
# seen, and the compactions' CPU over the run (from RocksDB's LOG). OUT defaults to bench-results/tail. Env: CATCHALL, BENCH (binaries;
# default build/release/...), KEEP_DATA=1 keeps the data directory.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
PROG=tail-latency
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$here/../lib.sh"
CATCHALL="${CATCHALL:-$root/build/release/catchall}"
BENCH="${BENCH:-$root/build/release/catchall-bench}"
OUT="${OUT:-bench-results/tail}"

events=30000000
bulk_rate=200000
domains=10000000
duration=30
put_rate=""
get_rate=""
fraction=0.8
label=""
sets=()
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while (($#)); do
  case "$1" in
    --events) posint "$1" "${2:-}"; events="$2"; shift 2 ;;
    --bulk-rate) posint "$1" "${2:-}"; bulk_rate="$2"; shift 2 ;;
    --domains) posint "$1" "${2:-}"; domains="$2"; shift 2 ;;
    --duration) posint "$1" "${2:-}"; duration="$2"; shift 2 ;;
    --put-rate) posint "$1" "${2:-}"; put_rate="$2"; shift 2 ;;
    --get-rate) posint "$1" "${2:-}"; get_rate="$2"; shift 2 ;;
    --fraction) fraction="${2:-}"; shift 2 ;;
    --set) [[ "${2:-}" == *=* ]] || die "--set needs KEY=VALUE"; sets+=(--set "$2"); shift 2 ;;
    --label) label="${2:-}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument '$1'" ;;
  esac
done
awk -v f="$fraction" 'BEGIN{exit !(f > 0 && f <= 1)}' || die "--fraction must be in (0, 1] (got '$fraction')"
[[ -x "$CATCHALL" && -x "$BENCH" ]] || die "build first: cmake --preset release && cmake --build build/release -j2"

mkdir -p "$OUT"
data="$(mktemp -d /tmp/catchall-tail.XXXXXX)"
server_pid=""
sampler_pid=""
cleanup() {
  if [[ -n "$sampler_pid" ]]; then kill "$sampler_pid" 2>/dev/null || true; fi
  [[ -n "$server_pid" ]] && stop_pid "$server_pid" 60
  if [[ "${KEEP_DATA:-0}" == 1 ]]; then say "data kept in $data"; else rm -rf "$data"; fi
}
trap cleanup EXIT

say "starting catchall serve (data $data${sets:+, ${sets[*]}})"
start_bg "$OUT/server.log" "$CATCHALL" serve --listen 127.0.0.1:0 --port-file "$data/port" \
  --data-dir "$data/store" --log-level warn "${sets[@]}"
server_pid=$LAST_PID
for _ in $(seq 100); do [[ -s "$data/port" ]] && break; sleep 0.1; done
[[ -s "$data/port" ]] || die "the server did not start: $(tail -5 "$OUT/server.log")"
url="http://127.0.0.1:$(cat "$data/port")"

# sample_metrics FILE: every second, "seconds pending_compaction_bytes
# running_compactions stall_seconds aggregation_lag_records" until killed.
sample_metrics() {
  local t0=$SECONDS
  : >"$1"
  while true; do
    curl -fsS "$url/metrics" 2>/dev/null | awk -v t=$((SECONDS - t0)) '
      $1 == "catchall_store_pending_compaction_bytes" {p=$2}
      $1 == "catchall_store_running_compactions" {r=$2}
      $1 == "catchall_store_write_stall_seconds_total" {s=$2}
      $1 == "catchall_aggregate_lag_records" {l+=$2}
      END {printf "%d %s %s %s %s\n", t, p+0, r+0, s+0, l+0}' >>"$1"
    sleep 1
  done
}

# phase NAME BENCH-ARGS...: one catchall-bench run into $OUT/NAME; records the
# server's CPU seconds and the load average around it.
declare -A cpu_s load_avg
phase() {
  local name="$1"; shift
  local t0 t1
  t0="$(cpu_ticks "$server_pid")"
  "$BENCH" --target "$url" --quiet --out "$OUT/$name" --label "tail $name $label" "$@" \
    >"$OUT/$name.log" 2>&1 || die "$name failed: $(tail -5 "$OUT/$name.log")"
  t1="$(cpu_ticks "$server_pid")"
  cpu_s[$name]="$(ticks_to_s "$t0" "$t1")"
  load_avg[$name]="$(load1)"
}
# rate_of NAME: the achieved operations per second of a phase.
rate_of() { python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["throughput_per_s"]))' "$OUT/$1/results.json"; }

common=(--workload uniform --domains "$domains" --seed 7)

say "put-max: closed-loop PUTs, 10 s"
phase put-max --mode put "${common[@]}" --connections 64 --duration 10 --warmup 2
[[ -n "$put_rate" ]] || put_rate="$(awk -v r="$(rate_of put-max)" -v f="$fraction" 'BEGIN{printf "%d", r * f}')"

say "bulk: $events events over $domains domains at $bulk_rate/s"
phase bulk --mode batch "${common[@]}" --connections 8 --duration 0 --max-events "$events" \
  --rate "$bulk_rate"
acked="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["events"]["acked"])' \
  "$OUT/bulk/results.json")"
((acked == events)) || die "bulk: only $acked of $events events were accepted (503s: the aggregation fell behind; lower --bulk-rate)"

say "put-open: $put_rate PUTs/s for ${duration}s while the store compacts"
sample_metrics "$OUT/put-open.compaction" &
sampler_pid=$!
phase put-open --mode put "${common[@]}" --connections 64 --rate "$put_rate" --duration "$duration" --warmup 2
kill "$sampler_pid" 2>/dev/null || true

say "get-max: closed-loop GETs, 10 s"
phase get-max --mode get "${common[@]}" --connections 64 --duration 10 --warmup 2
[[ -n "$get_rate" ]] || get_rate="$(awk -v r="$(rate_of get-max)" -v f="$fraction" 'BEGIN{printf "%d", r * f}')"

say "get-open: $get_rate GETs/s for ${duration}s"
sample_metrics "$OUT/get-open.compaction" &
sampler_pid=$!
phase get-open --mode get "${common[@]}" --connections 64 --rate "$get_rate" --duration "$duration" --warmup 2
kill "$sampler_pid" 2>/dev/null || true
sampler_pid=""

# RocksDB's own account of its compactions over the whole run (its LOG): how
# many, and the CPU they took.
cat "$data"/store/LOG.old.* "$data/store/LOG" 2>/dev/null | python3 -c '
import json, sys
n = cpu = 0
for line in sys.stdin:
    if "\"compaction_finished\"" not in line:
        continue
    e = json.loads(line[line.index("{"):])
    n += 1
    cpu += e.get("compaction_time_cpu_micros", 0)
json.dump({"compactions": n, "cpu_s": cpu / 1e6}, sys.stdout)' >"$OUT/compactions.json" || true

python3 - "$OUT" "$label" "${sets[*]:-}" \
  "${cpu_s[put-max]}" "${cpu_s[bulk]}" "${cpu_s[put-open]}" "${cpu_s[get-max]}" "${cpu_s[get-open]}" \
  "${load_avg[put-max]}" "${load_avg[bulk]}" "${load_avg[put-open]}" "${load_avg[get-max]}" \
  "${load_avg[get-open]}" <<'PY'
import json, os, sys
out, label, sets = sys.argv[1:4]
names = ["put-max", "bulk", "put-open", "get-max", "get-open"]
cpu = dict(zip(names, map(float, sys.argv[4:9])))
load = dict(zip(names, sys.argv[9:14]))
summary = {"label": label, "settings": sets, "phases": {}}
print(f"{'phase':9} {'ops/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'p99.9 ms':>9} "
      f"{'CPU us/op':>9} {'load':>5}  compaction during the phase")
for n in names:
    r = json.load(open(os.path.join(out, n, "results.json")))
    lat = r.get("latency_ms", {})
    # CPU over the whole phase (warm-up included) per operation sent in it.
    sent = r["events"]["sent"] + r["lookups"]["sent"]
    row = {"ops_per_s": r["throughput_per_s"], "p50_ms": lat.get("p50"),
           "p99_ms": lat.get("p99"), "p999_ms": lat.get("p999"),
           "server_cpu_s": cpu[n], "server_cpu_us_per_op": 1e6 * cpu[n] / max(1, sent),
           "load1": float(load[n])}
    comp = ""
    path = os.path.join(out, n + ".compaction")
    if os.path.exists(path):
        rows = [list(map(float, l.split())) for l in open(path) if l.strip()]
        if rows:
            row["max_pending_compaction_mb"] = max(x[1] for x in rows) / 2**20
            row["seconds_compacting"] = sum(1 for x in rows if x[2] > 0)
            row["write_stall_s"] = rows[-1][3] - rows[0][3]
            row["max_aggregation_lag"] = max(x[4] for x in rows)
            comp = (f"pending <= {row['max_pending_compaction_mb']:.0f} MB, compacting "
                    f"{row['seconds_compacting']}/{len(rows)} s, stalled {row['write_stall_s']:.2f} s, "
                    f"lag <= {row['max_aggregation_lag']:.0f} events")
    summary["phases"][n] = row
    fmt = lambda v: "-" if v is None else f"{v:.2f}"
    print(f"{n:9} {row['ops_per_s']:9.0f} {fmt(row['p50_ms']):>8} {fmt(row['p99_ms']):>8} "
          f"{fmt(row['p999_ms']):>9} {row['server_cpu_us_per_op']:9.1f} {load[n]:>5}  {comp}")
try:
    summary["compactions"] = json.load(open(os.path.join(out, "compactions.json")))
    c = summary["compactions"]
    print(f"RocksDB compactions over the run: {c['compactions']}, {c['cpu_s']:.1f} s of CPU")
except (OSError, ValueError):
    pass
with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump(summary, f, indent=1)
PY
