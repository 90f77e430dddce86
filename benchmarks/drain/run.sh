#!/usr/bin/env bash
# Drain benchmark: catchall's aggregator side by side with a Kafka Streams peer
# (benchmarks/peer/kafka-streams) on the same pre-filled topic of the same broker.
#
#   benchmarks/drain/run.sh [--events N] [--partitions P] [--threads T1,T2] ...
#
# 1. pre-fills drain.events (P partitions, created by `catchall topics create`) with N
#    events of the challenge or the uniform workload (gen_events.py | kcat, murmur2
#    partitioner), with an id per event if asked (both consumers then deduplicate);
# 2. runs `catchall aggregate` (fresh group and data dir) until the group's committed
#    offsets reach the topic's end, measured by the peer jar's lag watcher;
# 3. the same for the Kafka Streams app, once per stream-thread count;
# 4. checks each one's status topic against the generator's expected counts (a sample
#    of domains, and the totals over all);
# 5. writes results/drain/<timestamp>/results.json and cleans up (processes by PID,
#    topics, groups, state dirs).
#
# events/s = N / (time from the first record processed to all offsets committed); the
# cost is the CPU seconds of the process and of the broker per event.
# Run `--help` for every option.
set -euo pipefail

PROG=drain
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
REPO="$(cd "$SCRIPT_DIR/../.." && pwd -P)"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$SCRIPT_DIR/../lib.sh"
PEER_DIR="$REPO/benchmarks/peer/kafka-streams"
JAR="$PEER_DIR/target/catchall-streams-peer.jar"
CATCHALL="${CATCHALL_BIN:-$REPO/build/release/catchall}"
KAFKA_DEV="$REPO/scripts/kafka-dev"

EVENTS=10000000
PARTITIONS=12
THREADS="1,2"
SEED=42
COMMIT_MS=100
THRESHOLD=1000
SAMPLE=1000
TIMEOUT_S=1800
RUN_CATCHALL=1
RUN_STREAMS=1
REUSE=0
KEEP_TOPICS=0
KEEP_WORK=0
WAIT_LOAD=""
WAIT_MAX=600
IDS=0
WORKLOAD=challenge
DOMAINS=""
DUPLICATES=0
REPEAT=1
# What catchall's ingest nodes produce the events topic with (kafka_common.cc,
# ProducerDefaults): the aggregator and the peer then read what they would read
# in a cluster.
COMPRESSION=snappy
OUT=""
STREAMS_HEAP="${STREAMS_HEAP:--Xms512m -Xmx2g}"
STREAMS_PROPS=()
CATCHALL_SETS=()
BROKERS="127.0.0.1:${KAFKA_PORT:-9092}"

usage() {
  cat <<EOF
Usage: benchmarks/drain/run.sh [OPTIONS]

Drain N pre-filled events with catchall's aggregator and with a Kafka Streams peer
(exactly-once v2, RocksDB) on the same topic and broker; report events/s and the ratio.

Options:
  --events N           events to pre-fill                        [$EVENTS]
  --partitions P       partitions of drain.events                [$PARTITIONS]
  --threads LIST       Kafka Streams num.stream.threads to run, comma-separated [$THREADS]
  --workload W         challenge: bursts per domain, as the original challenge
                       (10M events: ~8,000 domains); uniform: every event picks one of
                       --domains domains uniformly at random            [$WORKLOAD]
  --domains N          uniform: domains to pick from             [10000000]
  --seed S             workload seed                             [$SEED]
  --compression C      codec of the pre-filled topic (none, gzip, snappy, lz4, zstd);
                       snappy is what catchall's ingest nodes produce [$COMPRESSION]
  --commit-ms MS       commit interval of both                   [$COMMIT_MS]
  --ids                give every event an "id": both catchall and the Kafka Streams
                       peer then deduplicate by (domain, id) within the id window
                       (aggregate.idempotency_window_s, 1 day)
  --duplicates P       with --ids: each record repeats one of the last 1000 events
                       (same id) with probability P; expected counts are unchanged [0]
  --repeat R           run every configuration R times, interleaved; the report gives
                       each run and the median per configuration       [$REPEAT]
  --sample K           domains to spot-check per run (0 = all)   [$SAMPLE]
  --only catchall|streams   run one side only
  --reuse              keep drain.events if it already holds N events of this seed
                       (skips the pre-fill; status topics are recreated anyway)
  --keep-topics        do not delete the topics at the end (for --reuse later)
  --keep-work          keep the work dir (logs, state) under /tmp/catchall-drain
  --wait-load L        before each measured run, wait until the 1-minute load average
                       is below L (at most --wait-max seconds, then run anyway)
  --wait-max S         [$WAIT_MAX]
  --timeout-s S        give up on a drain after S seconds        [$TIMEOUT_S]
  --streams-prop K=V   extra Kafka Streams property (repeatable)
  --catchall-set K=V   extra catchall setting (repeatable)
  --out DIR            results dir                               [results/drain/<timestamp>]
  -h, --help

Environment: KAFKA_PORT (broker port, 9092), CATCHALL_BIN, STREAMS_HEAP ("$STREAMS_HEAP").
The broker must be running (scripts/kafka-dev start); this script never starts or
stops it.
EOF
}

while (($#)); do
  case "$1" in
    --events) EVENTS="$2"; shift 2 ;;
    --partitions) PARTITIONS="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    --seed) SEED="$2"; shift 2 ;;
    --compression) COMPRESSION="$2"; shift 2 ;;
    --commit-ms) COMMIT_MS="$2"; shift 2 ;;
    --ids) IDS=1; shift ;;
    --workload) WORKLOAD="$2"; shift 2 ;;
    --domains) DOMAINS="$2"; shift 2 ;;
    --duplicates) DUPLICATES="$2"; shift 2 ;;
    --repeat) REPEAT="$2"; shift 2 ;;
    --sample) SAMPLE="$2"; shift 2 ;;
    --only)
      case "$2" in
        catchall) RUN_STREAMS=0 ;;
        streams) RUN_CATCHALL=0 ;;
        *) die "--only takes catchall or streams" ;;
      esac
      shift 2 ;;
    --reuse) REUSE=1; shift ;;
    --keep-topics) KEEP_TOPICS=1; shift ;;
    --keep-work) KEEP_WORK=1; shift ;;
    --wait-load) WAIT_LOAD="$2"; shift 2 ;;
    --wait-max) WAIT_MAX="$2"; shift 2 ;;
    --timeout-s) TIMEOUT_S="$2"; shift 2 ;;
    --streams-prop) STREAMS_PROPS+=("$2"); shift 2 ;;
    --catchall-set) CATCHALL_SETS+=("$2"); shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
posint --events "$EVENTS"
posint --partitions "$PARTITIONS"
[[ "$THREADS" =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--threads must be a comma-separated list of numbers"
posint --repeat "$REPEAT"
case "$COMPRESSION" in
  none|gzip|snappy|lz4|zstd) ;;
  *) die "--compression takes none, gzip, snappy, lz4 or zstd" ;;
esac
case "$WORKLOAD" in
  challenge) [[ -z "$DOMAINS" ]] || die "--domains is for --workload uniform (the challenge's domains follow from --events)" ;;
  uniform) DOMAINS="${DOMAINS:-10000000}"; posint --domains "$DOMAINS" ;;
  *) die "--workload takes challenge or uniform" ;;
esac
[[ "$DUPLICATES" =~ ^(0|0?\.[0-9]+)$ ]] || die "--duplicates takes a probability below 1 (got '$DUPLICATES')"
if ((IDS == 0)) && [[ ! "$DUPLICATES" =~ ^0?\.?0*$ ]]; then
  die "--duplicates needs --ids (a repeated event without an id is a new event)"
fi

# ------------------------------------------------------------------ prerequisites

[[ -x "$CATCHALL" ]] || die "$CATCHALL is missing: build it (cmake --preset release && cmake --build --preset release)"
for tool in kcat java mvn python3; do
  command -v "$tool" >/dev/null || die "'$tool' not found on PATH"
done
"$KAFKA_DEV" status >/dev/null 2>&1 || die "no broker on $BROKERS: start one with scripts/kafka-dev start"
BROKER_PID="$(kafka_dev_broker_pid)"

# Build the peer jar when it is missing or older than its sources.
if [[ ! -f "$JAR" ]] || [[ -n "$(find "$PEER_DIR/src" "$PEER_DIR/pom.xml" -newer "$JAR" -print -quit)" ]]; then
  say "building the Kafka Streams peer (mvn package)..."
  mvn -B -q -f "$PEER_DIR/pom.xml" package >&2 || die "mvn package failed"
fi
PEER=(java -Xms64m -Xmx256m -XX:TieredStopAtLevel=1 -Dorg.slf4j.simpleLogger.defaultLogLevel=warn
      -cp "$JAR" catchall.peer.Main)
peer() { "${PEER[@]}" "$@"; }

TS="$(date -u +%Y%m%dT%H%M%SZ)"
TAG="$(date -u +%Y%m%d%H%M%S)"
OUT="${OUT:-$REPO/results/drain/$TS}"
WORK_ROOT=/tmp/catchall-drain
WORK="$WORK_ROOT/$TS"
mkdir -p "$OUT" "$WORK"
OUT="$(cd "$OUT" && pwd -P)"

EVENTS_TOPIC=drain.events
STATUS_TOPIC=drain.status
DLQ_TOPIC=drain.dlq
IDS_TOPIC=drain.ids                    # catchall's event ids (made by catchall topics create)
STREAMS_PREFIX=drain-streams-          # application ids and their internal topics
STREAMS_OUT_PREFIX=drain.streams-status-t
# The generator's expected counts and summary, named after everything that shapes them
# (--reuse finds them again).
EXPECTED="$WORK_ROOT/expected-$WORKLOAD-$EVENTS-$SEED-$PARTITIONS-ids$IDS-d${DOMAINS:-0}-dup$DUPLICATES-$COMPRESSION"
GEN_STATS="$EXPECTED.stats.json"
PIDFILE="$WORK_ROOT/pids"

# ------------------------------------------------------------------ processes

# start_bg (lib.sh) records every process in PIDFILE too; processes left there by an
# earlier, interrupted run of this script are stopped first.
stop_recorded_pids

GROUPS_CREATED=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local pid
  for pid in "${PIDS[@]}"; do stop_pid "$pid" 30; done
  rm -f "$PIDFILE"
  if ((KEEP_TOPICS == 0)); then
    say "deleting the benchmark's topics and groups"
    peer delete-topics --bootstrap "$BROKERS" \
      --topics "$EVENTS_TOPIC,$STATUS_TOPIC,$IDS_TOPIC,$DLQ_TOPIC,${STREAMS_OUT_PREFIX}*,${STREAMS_PREFIX}*" >/dev/null 2>&1 || true
    rm -f "$EXPECTED" "$GEN_STATS"
  else
    peer delete-topics --bootstrap "$BROKERS" \
      --topics "$STATUS_TOPIC,$IDS_TOPIC,$DLQ_TOPIC,${STREAMS_OUT_PREFIX}*,${STREAMS_PREFIX}*" >/dev/null 2>&1 || true
  fi
  if ((${#GROUPS_CREATED[@]})); then
    peer delete-groups --bootstrap "$BROKERS" --groups "$(IFS=,; echo "${GROUPS_CREATED[*]}")" >/dev/null 2>&1 || true
  fi
  if ((KEEP_WORK == 0)); then
    # Logs are copied to the results dir; the state dirs go.
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ helpers

# load1, cpu_ticks, machine_ticks, wait_quiet, free_port, wait_for_line: lib.sh.

# Watch one drain: starts the lag watcher, then the process (CMD...), waits until done,
# samples CPU of the broker, the process and the machine, snapshots top, stops the
# process, and writes $OUT/<name>.watch.json and <name>.cpu.json.
measure() {
  local name="$1" group="$2" metrics_url="$3" first_file="$4"; shift 4
  local wlog="$WORK/$name.watch.log" plog="$WORK/$name.log"
  local wargs=(--bootstrap "$BROKERS" --group "$group" --topic "$EVENTS_TOPIC" --label "$name"
               --timeout-s "$TIMEOUT_S" --out "$OUT/$name.watch.json")
  [[ -n "$metrics_url" ]] && wargs+=(--metrics-url "$metrics_url")
  [[ -n "$first_file" ]] && wargs+=(--first-record-file "$first_file")

  wait_quiet
  local load_before; load_before="$(cat /proc/loadavg)"
  local started_ms; started_ms="$(date +%s%3N)"
  # The watcher is ready (end offsets read) before the process starts.
  start_bg "$wlog" "${PEER[@]}" watch "${wargs[@]}"
  local wpid=$LAST_PID
  wait_for_line "$wlog" ": ready: " 60 "$wpid" || { cat "$wlog" >&2; die "$name: the lag watcher did not start"; }
  started_ms="$(date +%s%3N)"
  local b0 p0 m0 w0
  b0="$(cpu_ticks "$BROKER_PID")"; m0="$(machine_ticks)"; w0="$(cpu_ticks "$wpid")"
  start_bg "$plog" "$@"
  local ppid=$LAST_PID
  p0="$(cpu_ticks "$ppid")"
  say "$name: started PID $ppid (log $plog)"

  # While it runs: a top snapshot every 5 s, and check it is alive.
  local topf="$OUT/$name.top.txt" n=0
  : >"$topf"
  WATCHER_TICKS="$w0"
  while kill -0 "$wpid" 2>/dev/null; do
    # The watcher's CPU so far, without forking (this loop must stay cheap).
    read_cpu_ticks "$wpid"
    ((CPU_TICKS > 0)) && WATCHER_TICKS=$CPU_TICKS
    if ! kill -0 "$ppid" 2>/dev/null; then
      tail -n 40 "$plog" >&2
      die "$name: the process exited before the topic was drained"
    fi
    if ((n % 50 == 25)); then
      { echo "=== +$((n / 10)) s"; top -b -n 1 -w 200 | head -n 16
        echo "--- threads of $name (PID $ppid)"; top -H -b -n 1 -w 200 -p "$ppid" | sed -n '7,17p'
        if [[ -n "$BROKER_PID" ]]; then
          echo "--- threads of the broker (PID $BROKER_PID)"; top -H -b -n 1 -w 200 -p "$BROKER_PID" | sed -n '7,14p'
        fi; } >>"$topf" 2>/dev/null || true
    fi
    sleep 0.1
    n=$((n + 1))
  done
  local wrc=0
  wait "$wpid" || wrc=$?
  local b1 p1 m1 w1
  b1="$(cpu_ticks "$BROKER_PID")"; p1="$(cpu_ticks "$ppid")"; m1="$(machine_ticks)"
  w1="$WATCHER_TICKS"
  local load_after; load_after="$(cat /proc/loadavg)"
  local hwm_kb; hwm_kb="$(awk '/^VmHWM:/{print $2}' "/proc/$ppid/status" 2>/dev/null || echo 0)"
  # CPU time per thread of the process (where its time went), before it stops.
  thread_ticks "$ppid" >"$WORK/$name.threads.tsv"
  if [[ -n "$metrics_url" ]]; then
    curl -fsS "$metrics_url" >"$OUT/$name.metrics.txt" 2>/dev/null || true
  fi
  stop_pid "$ppid" 60
  cp "$plog" "$OUT/$name.log" 2>/dev/null || true
  cp "$wlog" "$OUT/$name.watch.log" 2>/dev/null || true
  ((wrc == 0)) || die "$name: the drain did not complete (watcher exit $wrc; see $OUT/$name.watch.log)"

  python3 - "$OUT/$name.cpu.json" "$HZ" "$started_ms" "$load_before" "$load_after" \
    "$b0" "$b1" "$p0" "$p1" "$m0" "$m1" "$w0" "$w1" "${hwm_kb:-0}" "$WORK/$name.threads.tsv" <<'PY'
import json, sys
out, hz, started_ms, lb, la, b0, b1, p0, p1, m0, m1, w0, w1, hwm_kb, threads_file = sys.argv[1:]
hz = float(hz)
mb0, mt0, mi0 = map(int, m0.split()); mb1, mt1, mi1 = map(int, m1.split())
broker = (int(b1) - int(b0)) / hz
proc = (int(p1) - int(p0)) / hz
watcher = max(0, int(w1) - int(w0)) / hz
busy = (mb1 - mb0) / hz
irq = (mi1 - mi0) / hz
# Threads of the process by CPU time, those of the same name (with digits dropped:
# "StreamThread-1", "StreamThread-2") added up.
threads = {}
try:
    for line in open(threads_file):
        ticks, comm = line.rstrip("\n").split("\t")[:2]
        key = "".join(c if not c.isdigit() else "#" for c in comm) or "?"
        threads[key] = threads.get(key, 0) + int(ticks) / hz
except OSError:
    pass
threads = {k: round(v, 2) for k, v in sorted(threads.items(), key=lambda kv: -kv[1]) if v >= 0.05}
json.dump({
    "process_started_ms": int(started_ms),
    "loadavg_before": lb, "loadavg_after": la,
    "peak_rss_mb": round(int(hwm_kb) / 1024, 1),
    "threads_cpu_s": threads,
    # From process start to drained. "irq": interrupts and softirqs (loopback
    # networking), charged to no process; "other": every other process on the machine.
    "cpu_s": {"broker": round(broker, 2), "process": round(proc, 2), "watcher": round(watcher, 2),
              "irq": round(irq, 2), "machine_busy": round(busy, 2),
              "other": round(busy - broker - proc - watcher - irq, 2),
              "machine_capacity": round((mt1 - mt0) / hz, 2)},
}, open(out, "w"))
PY
}

verify_topic() {  # verify_topic NAME TOPIC
  local name="$1" topic="$2"
  kcat -C -b "$BROKERS" -t "$topic" -X isolation.level=read_committed -e -q -f '%k\t%s\n' \
    | python3 "$SCRIPT_DIR/verify_status.py" --expected "$EXPECTED" --sample "$SAMPLE" \
        --threshold "$THRESHOLD" >"$OUT/$name.verify.json" || true
  say "$name: verify $(python3 -c 'import json,sys; v=json.load(open(sys.argv[1])); print("OK" if v["ok"] else "FAILED", "checked", v["checked_domains"], "of", v["expected_domains"], "domains, mismatches", v["mismatches"], "missing", v["missing"], "extra", v["extra_domains"], "totals", v["topic_totals"], "expected", v["expected_totals"])' "$OUT/$name.verify.json")"
  return 0
}

# ------------------------------------------------------------------ topics and pre-fill

LOAD_START="$(cat /proc/loadavg)"
say "load average at start: $LOAD_START (2 cores); results -> $OUT"

have_events() {  # true if drain.events holds exactly N records in P partitions
  [[ -f "$EXPECTED" && -f "$GEN_STATS" ]] || return 1
  local n
  n="$(peer end-offsets --bootstrap "$BROKERS" --topic "$EVENTS_TOPIC" 2>/dev/null)" || return 1
  [[ "$n" == "$EVENTS" ]] || return 1
  kcat -L -b "$BROKERS" -t "$EVENTS_TOPIC" 2>/dev/null | grep -q "topic \"$EVENTS_TOPIC\" with $PARTITIONS partitions"
}

PREFILL_S=null
if ((REUSE)) && have_events; then
  say "reusing $EVENTS_TOPIC ($EVENTS events, $PARTITIONS partitions)"
  peer delete-topics --bootstrap "$BROKERS" \
    --topics "$STATUS_TOPIC,$IDS_TOPIC,$DLQ_TOPIC,${STREAMS_OUT_PREFIX}*,${STREAMS_PREFIX}*" >&2
else
  say "deleting earlier benchmark topics, if any"
  peer delete-topics --bootstrap "$BROKERS" \
    --topics "$EVENTS_TOPIC,$STATUS_TOPIC,$IDS_TOPIC,$DLQ_TOPIC,${STREAMS_OUT_PREFIX}*,${STREAMS_PREFIX}*" >&2
  rm -f "$WORK_ROOT"/expected-*
fi
CATCHALL_TOPIC_SETS=(--set "kafka.events_topic=$EVENTS_TOPIC" --set "kafka.status_topic=$STATUS_TOPIC"
                     --set "kafka.ids_topic=$IDS_TOPIC" --set "kafka.dead_letter_topic=$DLQ_TOPIC")
EXTRA_SETS=()
for s in "${CATCHALL_SETS[@]}"; do EXTRA_SETS+=(--set "$s"); done
# With the extra settings too: the ids topic's retention is aggregate.idempotency_window_s.
create_topics() {
  "$CATCHALL" topics create --brokers "$BROKERS" --partitions "$PARTITIONS" \
    "${CATCHALL_TOPIC_SETS[@]}" "${EXTRA_SETS[@]}" >&2
}
create_topics

if [[ ! -f "$EXPECTED" || ! -f "$GEN_STATS" ]]; then
  say "pre-filling $EVENTS_TOPIC with $EVENTS events ($WORKLOAD workload, seed $SEED, $PARTITIONS partitions, $COMPRESSION)..."
  gen_args=(--events "$EVENTS" --seed "$SEED" --workload "$WORKLOAD" --expected "$EXPECTED.tmp"
            --stats "$GEN_STATS.tmp")
  [[ "$WORKLOAD" == uniform ]] && gen_args+=(--domains "$DOMAINS")
  ((IDS)) && gen_args+=(--ids --duplicates "$DUPLICATES")
  t0="$(date +%s%3N)"
  python3 "$SCRIPT_DIR/gen_events.py" "${gen_args[@]}" 2>"$WORK/gen.log" \
    | kcat -P -b "$BROKERS" -t "$EVENTS_TOPIC" -K $'\t' \
        -X partitioner=murmur2_random -X enable.idempotence=true -X "compression.codec=$COMPRESSION" \
        -X linger.ms=20 -X batch.num.messages=10000 -X queue.buffering.max.messages=1000000 \
        2>"$WORK/kcat.log" \
    || { cat "$WORK/gen.log" "$WORK/kcat.log" >&2; die "pre-fill failed"; }
  t1="$(date +%s%3N)"
  PREFILL_S="$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", (b-a)/1000}')"
  cat "$WORK/gen.log" >&2
  n="$(peer end-offsets --bootstrap "$BROKERS" --topic "$EVENTS_TOPIC")"
  [[ "$n" == "$EVENTS" ]] || die "$EVENTS_TOPIC holds $n records after the pre-fill, expected $EVENTS (see $WORK/kcat.log)"
  mv "$EXPECTED.tmp" "$EXPECTED"
  mv "$GEN_STATS.tmp" "$GEN_STATS"
  say "pre-filled $EVENTS events in ${PREFILL_S}s"
fi
EXPECTED_DOMAINS="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["domains"])' "$GEN_STATS")"
# The Kafka Streams peer deduplicates ids within the same window as catchall.
ID_WINDOW_S="$("$CATCHALL" config "${EXTRA_SETS[@]}" 2>/dev/null | awk '$1 == "idempotency_window_s" {print $3}')"
posint "catchall's aggregate.idempotency_window_s" "$ID_WINDOW_S"

# ------------------------------------------------------------------ the runs

# One catchall run: fresh group, instance id, data dir, status and ids topics (with an
# empty data dir, a changelog left by an earlier run would be restored and counted
# twice, and ids left by it would be duplicates).
run_catchall() {
  local rep="$1" suffix="" name group port csets
  ((rep > 1)) && suffix=".$rep"
  name="catchall$suffix"
  group="drain-catchall-$TAG-r$rep"
  GROUPS_CREATED+=("$group")
  if ((rep > 1)); then
    peer delete-topics --bootstrap "$BROKERS" --topics "$STATUS_TOPIC,$IDS_TOPIC,$DLQ_TOPIC" >&2
    create_topics
  fi
  port="$(free_port)"
  csets=("${CATCHALL_TOPIC_SETS[@]}" --set "kafka.group_id=$group" --set "kafka.instance_id=drain-$TAG-r$rep"
         --set "aggregate.commit_interval_ms=$COMMIT_MS" --set "aggregate.catchall_threshold=$THRESHOLD")
  csets+=("${EXTRA_SETS[@]}")
  say "$name: catchall aggregate, group $group, metrics on 127.0.0.1:$port"
  measure "$name" "$group" "http://127.0.0.1:$port/metrics" "" \
    "$CATCHALL" aggregate --brokers "$BROKERS" --listen "127.0.0.1:$port" \
      --data-dir "$WORK/$name-data" "${csets[@]}"
  rm -rf "$WORK/$name-data"
  verify_topic "$name" "$STATUS_TOPIC"
  RUNS+=("$name")
}

# One Kafka Streams run with T stream threads: fresh application.id (so fresh group,
# internal changelog topic and state dir) and output topic.
run_streams() {
  local t="$1" rep="$2" suffix="" name app out_topic sargs p
  ((rep > 1)) && suffix=".$rep"
  name="streams-t$t$suffix"
  app="${STREAMS_PREFIX}$TAG-t$t-r$rep"
  out_topic="${STREAMS_OUT_PREFIX}$t-r$rep"
  GROUPS_CREATED+=("$app")
  peer create-topic --bootstrap "$BROKERS" --topic "$out_topic" --partitions "$PARTITIONS" \
    --config cleanup.policy=compact >&2
  sargs=(--bootstrap "$BROKERS" --input "$EVENTS_TOPIC" --output "$out_topic" --application-id "$app"
         --threads "$t" --state-dir "$WORK/$name-state" --commit-interval-ms "$COMMIT_MS"
         --threshold "$THRESHOLD" --first-record-file "$WORK/$name.first"
         --id-window-ms "$((ID_WINDOW_S * 1000))")
  for p in "${STREAMS_PROPS[@]}"; do sargs+=(--prop "$p"); done
  say "$name: Kafka Streams, $t stream thread(s), application.id $app"
  # shellcheck disable=SC2086
  measure "$name" "$app" "" "$WORK/$name.first" \
    java $STREAMS_HEAP -cp "$JAR" catchall.peer.Main count "${sargs[@]}"
  rm -rf "$WORK/$name-state"
  verify_topic "$name" "$out_topic"
  RUNS+=("$name")
}

# Repetitions are interleaved (catchall, streams..., catchall, streams...), so that a
# change of background load over time affects every side alike.
RUNS=()
IFS=, read -r -a thread_list <<<"$THREADS"
for ((rep = 1; rep <= REPEAT; rep++)); do
  if ((RUN_CATCHALL)); then run_catchall "$rep"; fi
  if ((RUN_STREAMS)); then
    for t in "${thread_list[@]}"; do run_streams "$t" "$rep"; done
  fi
done

# ------------------------------------------------------------------ report

LOAD_END="$(cat /proc/loadavg)"
DRAIN_REPEAT="$REPEAT" DRAIN_COMPRESSION="$COMPRESSION" DRAIN_GEN_STATS="$GEN_STATS" DRAIN_ID_WINDOW_S="$ID_WINDOW_S" python3 - "$OUT" "$TS" "$EVENTS" "$PARTITIONS" "$SEED" "$COMMIT_MS" "$THRESHOLD" "$IDS" \
  "$PREFILL_S" "$LOAD_START" "$LOAD_END" "$EXPECTED_DOMAINS" "$BROKERS" \
  "$("$CATCHALL" --version 2>/dev/null | head -n1 || echo unknown), binary $CATCHALL modified $(stat -c %y "$CATCHALL" | cut -d. -f1)" \
  "$(IFS=' '; echo "${STREAMS_PROPS[*]:-}")" "$(IFS=' '; echo "${CATCHALL_SETS[*]:-}")" \
  "${RUNS[@]}" <<'PY'
import json, os, sys
(out, ts, events, partitions, seed, commit_ms, threshold, ids, prefill_s, load_start, load_end,
 domains, brokers, catchall_version, streams_props, catchall_sets) = sys.argv[1:17]
runs = sys.argv[17:]
def load(p):
    try:
        with open(p) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
gen = load(os.environ["DRAIN_GEN_STATS"]) or {}
res = {
    "tool": "drain", "schema_version": 1, "started_at": ts,
    "settings": {
        "events": int(events), "partitions": int(partitions), "seed": int(seed),
        "workload": gen.get("workload"), "domains": int(domains), "domain_space": gen.get("domain_space"),
        "event_ids": ids == "1", "topic_compression": os.environ["DRAIN_COMPRESSION"], "duplicate_records": gen.get("duplicates"),
        "distinct_events": gen.get("events"), "id_window_s": int(os.environ["DRAIN_ID_WINDOW_S"]),
        "commit_interval_ms": int(commit_ms), "threshold": int(threshold),
        "brokers": brokers, "broker": "Apache Kafka 3.9.2 (scripts/kafka-dev, KRaft, 1 node)",
        "catchall_version": catchall_version,
        "kafka_streams": "3.9.2, exactly_once_v2, RocksDB store" + (
            ", ids deduplicated in a RocksDB window store" if ids == "1" else ""),
        "streams_extra_props": streams_props, "catchall_extra_settings": catchall_sets,
        "cores": os.cpu_count(),
    },
    "prefill_s": None if prefill_s == "null" else float(prefill_s),
    "load": {"at_start": load_start, "at_end": load_end},
    "runs": {},
}
under_load = False
for name in runs:
    w = load(os.path.join(out, name + ".watch.json")) or {}
    c = load(os.path.join(out, name + ".cpu.json")) or {}
    v = load(os.path.join(out, name + ".verify.json")) or {}
    w.pop("timeline", None)
    r = {k: w.get(k) for k in ("records", "complete", "drain_s", "events_per_s", "steady_events_per_s")}
    started = c.get("process_started_ms")
    if started and w.get("done_ms") and w.get("first_record_ms"):
        r["startup_s"] = round((w["first_record_ms"] - started) / 1000, 3)
        r["wall_from_start_s"] = round((w["done_ms"] - started) / 1000, 3)
        r["events_per_s_from_start"] = round(w["records"] / r["wall_from_start_s"], 1)
    r["cpu_s"] = c.get("cpu_s")
    if r["cpu_s"] and w.get("drain_s"):
        r["process_cpu_per_event_us"] = round(r["cpu_s"]["process"] / w["records"] * 1e6, 3)
    # The cost: CPU seconds from the process's start to drained (startup included) of
    # the process and of the broker, per event drained; the total is the two together
    # (the lag watcher is the measurement, not the job: listed, not in the total).
    if r["cpu_s"] and w.get("records"):
        n = w["records"]
        role = "aggregate" if name.startswith("catchall") else "streams"
        cost = lambda sec: {"seconds": sec, "us_per_event": round(sec / n * 1e6, 3)}
        r["cpu"] = {role: cost(r["cpu_s"]["process"]), "broker": cost(r["cpu_s"]["broker"]),
                    "watcher": cost(r["cpu_s"]["watcher"])}
        r["cpu_us_per_event_total"] = round((r["cpu_s"]["process"] + r["cpu_s"]["broker"]) / n * 1e6, 3)
    r["peak_rss_mb"] = c.get("peak_rss_mb")
    r["loadavg_before"] = c.get("loadavg_before")
    lb = float((c.get("loadavg_before") or "0").split()[0])
    # Other processes' CPU while this one ran, in cores (from /proc/stat; the load
    # average alone misses short-lived processes such as a polling script's forks).
    cpu = c.get("cpu_s") or {}
    if cpu and w.get("done_ms") and started:
        r["other_cores"] = round(cpu.get("other", 0) / max((w["done_ms"] - started) / 1000, 1e-3), 2)
    r["measured_under_load"] = lb > 1.5 or r.get("other_cores", 0) > 0.25
    under_load |= r["measured_under_load"]
    r["verify"] = {k: v.get(k) for k in ("ok", "checked_domains", "expected_domains", "mismatches",
                                          "missing", "extra_domains", "topic_totals", "expected_totals")}
    res["runs"][name] = r
res["measured_under_load"] = under_load
res["settings"]["repeat"] = int(os.environ.get("DRAIN_REPEAT", "1"))
# Per configuration (runs of the same name without the ".N" repetition suffix).
def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return None if n == 0 else (xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2)
configs = {}
for name, r in res["runs"].items():
    configs.setdefault(name.split(".")[0], []).append(r)
res["configs"] = {}
for cfg, rs in configs.items():
    eps = [r["events_per_s"] for r in rs if r.get("events_per_s")]
    res["configs"][cfg] = {
        "runs": len(rs),
        "events_per_s_median": round(median(eps), 1) if eps else None,
        "events_per_s_all": [round(x) for x in eps],
        "steady_events_per_s_median": round(median([r["steady_events_per_s"] for r in rs
                                                    if r.get("steady_events_per_s")]) or 0, 1),
        "process_cpu_per_event_us_median": median([r["process_cpu_per_event_us"] for r in rs
                                                   if r.get("process_cpu_per_event_us")]),
        "broker_cpu_per_event_us_median": median([r["cpu"]["broker"]["us_per_event"] for r in rs
                                                  if r.get("cpu")]),
        "cpu_us_per_event_total_median": median([r["cpu_us_per_event_total"] for r in rs
                                                 if r.get("cpu_us_per_event_total") is not None]),
        "verify_ok": all((r.get("verify") or {}).get("ok") for r in rs),
        "any_under_load": any(r.get("measured_under_load") for r in rs),
    }
ca = (res["configs"].get("catchall") or {}).get("events_per_s_median")
ratios = {}
for cfg, c in res["configs"].items():
    if cfg.startswith("streams") and ca and c.get("events_per_s_median"):
        ratios["catchall_vs_" + cfg.replace("-", "_")] = round(ca / c["events_per_s_median"], 2)
res["ratio"] = ratios
with open(os.path.join(out, "results.json"), "w") as f:
    json.dump(res, f, indent=2)
    f.write("\n")
print(f"\nDrain of {events} events ({gen.get('workload')} workload"
      f"{', ids, %s duplicates' % gen.get('duplicates') if ids == '1' else ''}), {partitions} partitions, {domains} domains "
      f"(load at start {load_start.split()[0]}{', MEASURED UNDER LOAD' if under_load else ''}):")
print(f"{'run':<14}{'events/s':>12}{'steady/s':>12}{'drain s':>9}{'startup s':>10}"
      f"{'cpu s: proc':>12}{'broker':>8}{'irq':>6}{'other':>7}"
      f"{'us/event: proc':>16}{'broker':>8}{'total':>8}{'rss MB':>8}  verify")
for name, r in res["runs"].items():
    cpu = r.get("cpu_s") or {}
    v = r.get("verify") or {}
    def f(x, spec):
        return format(x, spec) if isinstance(x, (int, float)) else "-"
    print(f"{name:<14}{f(r.get('events_per_s'), ',.0f'):>12}{f(r.get('steady_events_per_s'), ',.0f'):>12}"
          f"{f(r.get('drain_s'), '.1f'):>9}{f(r.get('startup_s'), '.1f'):>10}"
          f"{f(cpu.get('process'), '.1f'):>12}{f(cpu.get('broker'), '.1f'):>8}{f(cpu.get('irq'), '.1f'):>6}"
          f"{f(cpu.get('other'), '.1f'):>7}{f(r.get('process_cpu_per_event_us'), '.2f'):>16}"
          f"{f(((r.get('cpu') or {}).get('broker') or {}).get('us_per_event'), '.2f'):>8}"
          f"{f(r.get('cpu_us_per_event_total'), '.2f'):>8}{f(r.get('peak_rss_mb'), '.0f'):>8}"
          f"  {'ok' if v.get('ok') else 'FAILED'} ({v.get('mismatches')} of {v.get('checked_domains')} differ)"
          f"{'  [under load]' if r.get('measured_under_load') else ''}")
print("(cpu s: from the process's start to drained; us/event: those CPU s per event drained, "
      "total = process + broker)")
if any(c["runs"] > 1 for c in res["configs"].values()):
    for cfg, c in res["configs"].items():
        print(f"{cfg}: median {c['events_per_s_median']:,.0f} events/s of {c['runs']} runs, "
              f"{c['cpu_us_per_event_total_median'] or 0:.2f} us of CPU per event (process + broker)")
for k, x in ratios.items():
    print(f"{k}: {x}x (medians)" if res["settings"]["repeat"] > 1 else f"{k}: {x}x")
print(f"results: {os.path.join(out, 'results.json')}")
PY
