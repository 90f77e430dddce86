#!/usr/bin/env bash
# Failover benchmark: how long the partitions of a killed aggregator count
# nothing, and how long a full restore takes, at a given state size.
#
#   benchmarks/failover/run.sh [--events N] [--domains D] [--partitions P]
#
# 1. makes sure a broker runs on 127.0.0.1:$KAFKA_PORT (9092), starting one with
#    scripts/kafka-dev if none does (and stopping it at the end);
# 2. creates fresh topics (P partitions) and starts 1 ingest, aggregator A and
#    1 query node;
# 3. loads N events spread uniformly over D domains, each with an id
#    (catchall-bench --mode batch --workload uniform --idempotency-keys), and
#    waits until A has counted them all (its lag is 0);
# 4. starts aggregator B with an empty data dir: the group gives it half the
#    partitions, which it restores from the changelog and the ids log
#    ("join": restore of half the state);
# 5. kill -9 of A: after the session timeout B owns every partition and
#    restores A's ("failover": from the kill until B owns all P partitions and
#    restores none, polled from B's /metrics every 0.2 s);
# 6. SIGTERM of B, then aggregator C with an empty data dir restores all P
#    partitions ("full restore": from C's start until it owns all P and
#    restores none);
# and prints the three times, the records each restored, and the load average.
# Without warm standbys (aggregate.standby_replicas) the failover time is the
# session timeout plus a restore of the moved partitions.
set -euo pipefail
PROG=failover
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$ROOT/benchmarks/lib.sh"

EVENTS=12000000
DOMAINS=10000000
PARTITIONS=12
while (($#)); do
  case "$1" in
    --events) posint "$1" "${2:-}"; EVENTS="$2"; shift 2 ;;
    --domains) posint "$1" "${2:-}"; DOMAINS="$2"; shift 2 ;;
    --partitions) posint "$1" "${2:-}"; PARTITIONS="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done

BIN="${CATCHALL_BIN:-$ROOT/build/release/catchall}"
BENCH="${CATCHALL_BENCH_BIN:-$ROOT/build/release/catchall-bench}"
[[ -x "$BIN" && -x "$BENCH" ]] || die "build first: cmake --build --preset release --target catchall catchall-bench"
export KAFKA_PORT="${KAFKA_PORT:-9092}"
BROKERS="127.0.0.1:$KAFKA_PORT"
WORK="$(mktemp -d /tmp/catchall-failover.XXXXXX)"
PIDS=()
FLAGS=()
STARTED_BROKER=0
PREFIX="bench-failover-$(date +%Y%m%d%H%M%S)-$$"

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do stop_pid "$pid" 5; done
  local t
  for t in events status ids dlq; do
    "$ROOT/scripts/kafka-dev" topics --delete --topic "$PREFIX.$t" >/dev/null 2>&1 || true
  done
  ((STARTED_BROKER)) && "$ROOT/scripts/kafka-dev" stop >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT

if ! "$ROOT/scripts/kafka-dev" status >/dev/null 2>&1; then
  "$ROOT/scripts/kafka-dev" start >/dev/null
  STARTED_BROKER=1
fi
FLAGS=(--set "kafka.events_topic=$PREFIX.events" --set "kafka.status_topic=$PREFIX.status"
       --set "kafka.ids_topic=$PREFIX.ids" --set "kafka.dead_letter_topic=$PREFIX.dlq"
       --set "kafka.group_id=$PREFIX.group")
"$BIN" topics create --brokers "$BROKERS" --partitions "$PARTITIONS" "${FLAGS[@]}" >/dev/null

# start_role NAME ROLE [ARGS...]: starts a node on a free port; its port in
# PORT_<NAME>, its PID in PID_<NAME>.
start_role() {
  local name="$1" role="$2"; shift 2
  start_bg "$WORK/$name.log" "$BIN" "$role" --brokers "$BROKERS" --listen 127.0.0.1:0 \
    --port-file "$WORK/$name.port" "${FLAGS[@]}" "$@"
  printf -v "PID_$name" '%s' "$LAST_PID"
  local i
  for ((i = 0; i < 600; i++)); do [[ -s "$WORK/$name.port" ]] && break; sleep 0.1; done
  [[ -s "$WORK/$name.port" ]] || die "$name did not start: $(tail -n 5 "$WORK/$name.log")"
  printf -v "PORT_$name" '%s' "$(cat "$WORK/$name.port")"
}

# metric PORT NAME: the sum of a metric's samples on a node's /metrics.
metric() {
  curl -fsS "http://127.0.0.1:$1/metrics" 2>/dev/null \
    | awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $NF } END { printf "%.0f\n", s }'
}

# wait_owning_all PORT: until the aggregator owns every partition and
# restores none; prints the seconds it took.
wait_owning_all() {
  local port="$1" t0=$SECONDS
  until [[ "$(metric "$port" catchall_aggregate_owned_partitions)" == "$PARTITIONS" &&
           "$(metric "$port" catchall_aggregate_restoring_partitions)" == 0 ]]; do
    ((SECONDS - t0 < 3600)) || die "aggregator on $port did not take every partition in an hour"
    sleep 0.2
  done
}

now_ms() { date +%s%3N; }
secs_since() { awk -v a="$1" -v b="$(now_ms)" 'BEGIN { printf "%.1f", (b - a) / 1000 }'; }

say "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
start_role ingest ingest
start_role a aggregate --data-dir "$WORK/a" --set kafka.instance_id="$PREFIX-a"
start_role query query --data-dir "$WORK/q"
say "loading $EVENTS events over $DOMAINS domains, an id each"
"$BENCH" --target "http://127.0.0.1:$PORT_ingest" --mode batch --workload uniform \
  --domains "$DOMAINS" --max-events "$EVENTS" --duration 0 --batch-size 1000 --connections 8 \
  --idempotency-keys >"$WORK/load.txt" 2>&1 || die "load failed: $(tail -n 5 "$WORK/load.txt")"
say "waiting until aggregator A has counted everything"
until (( $(metric "$PORT_a" catchall_aggregate_records_total) >= EVENTS )) &&
      [[ "$(metric "$PORT_a" catchall_aggregate_lag_records)" == 0 ]]; do sleep 1; done
domains="$(metric "$PORT_a" catchall_state_domains)"

say "aggregator B joins with an empty data dir"
t="$(now_ms)"
start_role b aggregate --data-dir "$WORK/b" --set kafka.instance_id="$PREFIX-b"
until (( $(metric "$PORT_b" catchall_aggregate_owned_partitions) > 0 )) &&
      [[ "$(metric "$PORT_b" catchall_aggregate_restoring_partitions)" == 0 ]]; do sleep 0.2; done
join_s="$(secs_since "$t")"
join_records="$(metric "$PORT_b" catchall_aggregate_restored_records_total)"

say "kill -9 of aggregator A"
t="$(now_ms)"
kill -KILL "$PID_a"
wait_owning_all "$PORT_b"
failover_s="$(secs_since "$t")"
failover_records=$(( $(metric "$PORT_b" catchall_aggregate_restored_records_total) - join_records ))

say "full restore: B stops, aggregator C starts with an empty data dir"
stop_pid "$PID_b" 30
t="$(now_ms)"
start_role c aggregate --data-dir "$WORK/c" --set kafka.instance_id="$PREFIX-c"
wait_owning_all "$PORT_c"
full_s="$(secs_since "$t")"
full_records="$(metric "$PORT_c" catchall_aggregate_restored_records_total)"

cat <<EOF
failover benchmark: $EVENTS events over $DOMAINS domains (ids on), $PARTITIONS partitions
  state: ~$domains domains (RocksDB's estimate on A)
  join    (B takes half, empty data dir)          ${join_s} s, ${join_records} records restored
  failover (kill -9 of A until B owns all $PARTITIONS)  ${failover_s} s, ${failover_records} records restored
  full restore (C, empty data dir, all $PARTITIONS)      ${full_s} s, ${full_records} records restored
  load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)
EOF
