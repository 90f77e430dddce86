#!/usr/bin/env bash
# Failover benchmark: how long the partitions of a killed aggregator count
# nothing, with and without warm standbys, and how long a full restore takes,
# at a given state size.
#
#   benchmarks/failover/run.sh [--events N] [--domains D] [--partitions P]
#                              [--standby-replicas R] [--session-ms MS]
#                              [--txn-timeout-ms MS] [--probe-seconds S]
#
# 1. makes sure a broker runs on 127.0.0.1:$KAFKA_PORT (9092), starting one with
#    scripts/kafka-dev if none does (and stopping it at the end); a broker it
#    starts allows session timeouts down to 1 s and aborts expired
#    transactions every second (group.min.session.timeout.ms,
#    transaction.abort.timed.out.transaction.cleanup.interval.ms);
# 2. creates fresh topics (P partitions, 12) and starts 1 ingest, 1 query node
#    and aggregators A and B, each with aggregate.standby_replicas=R (0: none),
#    a consumer session timeout and a transaction timeout of MS (2000);
# 3. loads N events (12M) spread uniformly over D domains (10M), each with an
#    id (catchall-bench --mode batch --workload uniform --idempotency-keys),
#    waits until they are counted and, with standbys, until each aggregator
#    keeps the other's partitions warm to the end of their logs;
# 4. runs single PUTs at 1,000/s for S seconds (40) with freshness probes
#    (20/s: PUT a new domain, poll the query node until it shows it) and
#    --verify, and kill -9's A 10 s in. The failover as the probes see it is
#    the longest freshness; it is also timed from B's /metrics, from the kill
#    until B owns all P partitions and restores none;
# 5. SIGTERM of B, then aggregator C with an empty data dir restores all P
#    partitions ("full restore": from C's start until it owns all P and
#    restores none);
# and prints the times, the records each restore read, the verification and
# the load average.
set -euo pipefail
PROG=failover
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$ROOT/benchmarks/lib.sh"

EVENTS=12000000
DOMAINS=10000000
PARTITIONS=12
STANDBY=0
SESSION_MS=2000
TXN_MS=2000
PROBE_S=40
while (($#)); do
  case "$1" in
    --events) posint "$1" "${2:-}"; EVENTS="$2"; shift 2 ;;
    --domains) posint "$1" "${2:-}"; DOMAINS="$2"; shift 2 ;;
    --partitions) posint "$1" "${2:-}"; PARTITIONS="$2"; shift 2 ;;
    --standby-replicas)
      [[ "${2:-}" =~ ^[0-9]+$ ]] || die "--standby-replicas needs a number (got '${2:-}')"
      STANDBY="$2"; shift 2 ;;
    --session-ms) posint "$1" "${2:-}"; SESSION_MS="$2"; shift 2 ;;
    --txn-timeout-ms) posint "$1" "${2:-}"; TXN_MS="$2"; shift 2 ;;
    --probe-seconds) posint "$1" "${2:-}"; PROBE_S="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
((PROBE_S > 15)) || die "--probe-seconds must be above 15 (the kill comes 10 s in)"

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
  KAFKA_EXTRA_PROPERTIES="group.min.session.timeout.ms=1000
transaction.abort.timed.out.transaction.cleanup.interval.ms=1000" \
    "$ROOT/scripts/kafka-dev" start >/dev/null
  STARTED_BROKER=1
else
  say "using the broker on $BROKERS: its group.min.session.timeout.ms must allow $SESSION_MS ms"
fi
FLAGS=(--set "kafka.events_topic=$PREFIX.events" --set "kafka.status_topic=$PREFIX.status"
       --set "kafka.ids_topic=$PREFIX.ids" --set "kafka.dead_letter_topic=$PREFIX.dlq"
       --set "kafka.group_id=$PREFIX.group")
"$BIN" topics create --brokers "$BROKERS" --partitions "$PARTITIONS" "${FLAGS[@]}" >/dev/null

# The aggregators' failover settings: the group notices a dead member after
# the session timeout, and the dead member's open transaction (which holds
# back the committed offsets and the read_committed readers of its
# partitions) is aborted after the transaction timeout. librdkafka wants a
# transactional producer's message and socket timeouts within it.
AGG=(--set "aggregate.standby_replicas=$STANDBY"
     --set "kafka.consumer.session.timeout.ms=$SESSION_MS"
     --set "kafka.consumer.heartbeat.interval.ms=$((SESSION_MS / 4))"
     --set "kafka.producer.transaction.timeout.ms=$TXN_MS"
     --set "kafka.producer.message.timeout.ms=$TXN_MS"
     --set "kafka.producer.socket.timeout.ms=$TXN_MS")

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
# restores none.
wait_owning_all() {
  local port="$1" t0=$SECONDS
  until [[ "$(metric "$port" catchall_aggregate_owned_partitions)" == "$PARTITIONS" &&
           "$(metric "$port" catchall_aggregate_restoring_partitions)" == 0 ]]; do
    ((SECONDS - t0 < 3600)) || die "aggregator on $port did not take every partition in an hour"
    sleep 0.1
  done
}

now_ms() { date +%s%3N; }
secs_since() { awk -v a="$1" -v b="$(now_ms)" 'BEGIN { printf "%.1f", (b - a) / 1000 }'; }

say "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
start_role ingest ingest
start_role query query --data-dir "$WORK/q"
start_role a aggregate --data-dir "$WORK/a" --set kafka.instance_id="$PREFIX-a" "${AGG[@]}"
start_role b aggregate --data-dir "$WORK/b" --set kafka.instance_id="$PREFIX-b" "${AGG[@]}"
until (( $(metric "$PORT_a" catchall_aggregate_owned_partitions) > 0 &&
         $(metric "$PORT_b" catchall_aggregate_owned_partitions) > 0 &&
         $(metric "$PORT_a" catchall_aggregate_owned_partitions) +
         $(metric "$PORT_b" catchall_aggregate_owned_partitions) == PARTITIONS )); do
  sleep 0.2
done
owned_a="$(metric "$PORT_a" catchall_aggregate_owned_partitions)"
say "A owns $owned_a partitions, B the rest"

say "loading $EVENTS events over $DOMAINS domains, an id each"
t="$(now_ms)"
"$BENCH" --target "http://127.0.0.1:$PORT_ingest" --mode batch --workload uniform \
  --domains "$DOMAINS" --max-events "$EVENTS" --duration 0 --batch-size 1000 --connections 8 \
  --idempotency-keys --out "$WORK/load" >"$WORK/load.txt" 2>&1 \
  || die "load failed: $(tail -n 5 "$WORK/load.txt")"
say "waiting until A and B have counted everything"
until (( $(metric "$PORT_a" catchall_aggregate_records_total) +
         $(metric "$PORT_b" catchall_aggregate_records_total) >= EVENTS )) &&
      [[ "$(metric "$PORT_a" catchall_aggregate_lag_records)" == 0 &&
         "$(metric "$PORT_b" catchall_aggregate_lag_records)" == 0 ]]; do
  sleep 1
done
count_s="$(secs_since "$t")"
warm=""
if ((STANDBY > 0)); then
  say "waiting until each keeps the other's partitions warm to the end of their logs"
  until [[ "$(metric "$PORT_a" catchall_aggregate_standby_behind_partitions)" == 0 &&
           "$(metric "$PORT_b" catchall_aggregate_standby_behind_partitions)" == 0 ]] &&
        (( $(metric "$PORT_a" catchall_aggregate_standby_partitions) +
           $(metric "$PORT_b" catchall_aggregate_standby_partitions) == PARTITIONS )); do
    sleep 1
  done
  warm=", standbys warm after $(secs_since "$t") s"
fi
domains="$(metric "$PORT_a" catchall_state_domains)"

say "single PUTs at 1,000/s with freshness probes for $PROBE_S s; kill -9 of A 10 s in"
"$BENCH" --target "http://127.0.0.1:$PORT_ingest" --query-target "http://127.0.0.1:$PORT_query" \
  --mode put --workload uniform --domains 1000000 --rate 1000 --duration "$PROBE_S" \
  --connections 16 --freshness --freshness-rate 20 --verify --settle-timeout 120 \
  --out "$WORK/probe" >"$WORK/probe.txt" 2>&1 &
probe_pid=$!
sleep 10
restored_b="$(metric "$PORT_b" catchall_aggregate_restored_records_total)"
t="$(now_ms)"
kill -KILL "$PID_a"
wait_owning_all "$PORT_b"
failover_s="$(secs_since "$t")"
failover_records=$(( $(metric "$PORT_b" catchall_aggregate_restored_records_total) - restored_b ))
probe_rc=0
wait "$probe_pid" || probe_rc=$?
freshness="$(grep -E '^ *freshness' "$WORK/probe.txt" | head -n 1 | sed 's/^ *//')"
verified="$(grep -iE 'verif' "$WORK/probe.txt" | tail -n 1 | sed 's/^ *//')"

say "full restore: B stops, aggregator C starts with an empty data dir"
stop_pid "$PID_b" 30
t="$(now_ms)"
start_role c aggregate --data-dir "$WORK/c" --set kafka.instance_id="$PREFIX-c" "${AGG[@]}"
wait_owning_all "$PORT_c"
full_s="$(secs_since "$t")"
full_records="$(metric "$PORT_c" catchall_aggregate_restored_records_total)"

cat <<EOF
failover benchmark: $EVENTS events over $DOMAINS domains (ids on), $PARTITIONS partitions,
  standby replicas $STANDBY, session timeout $SESSION_MS ms, transaction timeout $TXN_MS ms
  state: ~$domains domains (RocksDB's estimate on A); A owned $owned_a partitions
  load counted in $count_s s$warm
  failover (kill -9 of A until B owns all $PARTITIONS, restoring none)  $failover_s s, $failover_records records restored
  probes during the failover: $freshness
  verification (catchall-bench exit $probe_rc): $verified
  full restore (C, empty data dir, all $PARTITIONS)  $full_s s, $full_records records restored
  load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)
EOF
