#!/usr/bin/env bash
# Cluster benchmark: catchall's cluster mode end to end on this machine, with a
# real Apache Kafka broker (scripts/kafka-dev).
#
#   benchmarks/cluster/run.sh [--rate N] [--runs batch,put,open,get] ...
#
# 1. makes sure a broker runs on 127.0.0.1:$KAFKA_PORT (9092): starts one with
#    scripts/kafka-dev only if none runs, and then stops it at the end;
# 2. creates fresh topics under a unique prefix (P partitions, `catchall topics create`);
# 3. starts 1 ingest, 1 aggregate (fresh data dir, unique instance id and group) and
#    1 query node (fresh data dir), each on 127.0.0.1:<free port> (--port-file), and
#    waits for /readyz on each;
# 4. runs catchall-bench with --target the ingest node and --query-target the query
#    node:
#      batch  --mode batch --batch-size 1000, 8 connections, --max-events 2,000,000,
#             --verify --freshness
#      put    --mode put, 64 connections, --duration 15, --freshness (closed loop)
#      open   --mode put --rate 10000 --freshness (open loop: latency and freshness
#             percentiles under a steady load)
#      get    --mode get against the query node, once per --get-rates entry (0 =
#             closed loop), 64 connections, --duration 10 (not by default)
#    before each run it waits until the cluster has caught up (a barrier batch of
#    probe events is visible on the query node), and after each run it saves the
#    three nodes' /metrics;
#    the cost of each run: CPU seconds (utime+stime, all threads) of the three nodes
#    and of the broker's JVM from the bench's start until the cluster has caught up
#    after it, and of catchall-bench itself, each also in us per event acknowledged
#    (per lookup for get runs);
# 5. after the runs, records each node's resident memory (now and peak), its data
#    dir's size and the size of the topics in the broker's log dir (resources.json);
# 6. writes everything to results/cluster/<timestamp>/ (one directory per run with
#    results.json, run.json, the summaries, metrics, node logs, summary.json) and
#    prints a summary (with the CPU per event of each process); the load average is
#    printed before and after.
# At the end (also on failure or Ctrl-C) it stops the processes it started, by PID,
# and deletes its topics and consumer group.
#
# Run `--help` for every option.
set -euo pipefail

PROG=cluster
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
REPO="$(cd "$SCRIPT_DIR/../.." && pwd -P)"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$SCRIPT_DIR/../lib.sh"
CATCHALL="${CATCHALL_BIN:-$REPO/build/release/catchall}"
BENCH="${CATCHALL_BENCH_BIN:-$REPO/build/release/catchall-bench}"
KAFKA_DEV="$REPO/scripts/kafka-dev"
KAFKA_PORT="${KAFKA_PORT:-9092}"
BROKERS="127.0.0.1:$KAFKA_PORT"

PARTITIONS=12
RUNS="batch,put,open"
GET_RATES="0"
GET_CONNECTIONS=64
GET_DURATION=10
WORKLOAD=challenge
DOMAINS=""
SEED=""
BATCH_EVENTS=2000000
BATCH_SIZE=1000
BATCH_CONNECTIONS=8
PUT_CONNECTIONS=64
PUT_DURATION=15
PUT_WARMUP=2
RATE=10000
OPEN_CONNECTIONS=256
OPEN_DURATION=30
OPEN_WARMUP=5
FRESHNESS_RATE=20
BENCH_THREADS=1
SETTLE_TIMEOUT=300
READY_TIMEOUT=120
WAIT_LOAD=""
WAIT_MAX=600
KEEP_WORK=0
KEEP_TOPICS=0
OUT=""
CATCHALL_SETS=()
BENCH_ARGS=()

usage() {
  cat <<EOF
Usage: benchmarks/cluster/run.sh [OPTIONS]

Measure catchall's cluster mode (1 ingest, 1 aggregate, 1 query node and a real
Kafka broker, all on this machine) with catchall-bench; results go to
results/cluster/<timestamp>/.

Options:
  --runs LIST            runs to do, comma-separated: batch, put, open, get
                                                                        [$RUNS]
  --partitions P         partitions of the events and status topics     [$PARTITIONS]
  --workload W           catchall-bench --workload (challenge, uniform) [$WORKLOAD]
  --domains N            catchall-bench --domains                       [bench default]
  --seed S               catchall-bench --seed                          [random]
  --batch-events N       batch run: --max-events                        [$BATCH_EVENTS]
  --batch-size N         batch run: events per POST                     [$BATCH_SIZE]
  --batch-connections N  batch run: connections                         [$BATCH_CONNECTIONS]
  --put-connections N    put run: connections                           [$PUT_CONNECTIONS]
  --put-duration S       put run: seconds (warmup $PUT_WARMUP s included)        [$PUT_DURATION]
  --rate N               open run: events per second                    [$RATE]
  --open-connections N   open run: connections                          [$OPEN_CONNECTIONS]
  --open-duration S      open run: seconds (warmup $OPEN_WARMUP s included)      [$OPEN_DURATION]
  --get-rates LIST       get run: lookups/s of each get run, comma-separated;
                         0 = closed loop (max throughput)               [$GET_RATES]
  --get-connections N    get run: connections                           [$GET_CONNECTIONS]
  --get-duration S       get run: seconds (warmup 2 s included)          [$GET_DURATION]
  --freshness-rate N     freshness probes per second; each polls the query node
                         every ms until it sees its event, and those lookups
                         count in the query column's CPU (1: little of it)  [$FRESHNESS_RATE]
  --bench-threads N      catchall-bench --threads                       [$BENCH_THREADS]
  --bench-arg ARG        extra catchall-bench argument (repeatable)
  --catchall-set K=V     extra setting for the three nodes (repeatable), e.g.
                         aggregate.commit_interval_ms=50
  --settle-timeout S     max wait for the cluster to catch up before a run [$SETTLE_TIMEOUT]
  --wait-load L          before each run, wait until the 1-minute load average is
                         below L (at most --wait-max seconds, then run anyway)
  --wait-max S           [$WAIT_MAX]
  --keep-topics          do not delete the topics and the group at the end
  --keep-work            keep the work dir (node data dirs) under /tmp/catchall-cluster
  --out DIR              results dir                   [results/cluster/<timestamp>]
  -h, --help

Environment: KAFKA_PORT (broker port, 9092), CATCHALL_BIN, CATCHALL_BENCH_BIN.
Build first: cmake --build --preset release --target catchall catchall-bench
Exit status: 0 when every run succeeded (and --verify found no mismatch), 1 otherwise.
EOF
}

while (($#)); do
  case "$1" in
    --runs) RUNS="$2"; shift 2 ;;
    --partitions) PARTITIONS="$2"; shift 2 ;;
    --workload) WORKLOAD="$2"; shift 2 ;;
    --domains) DOMAINS="$2"; shift 2 ;;
    --seed) SEED="$2"; shift 2 ;;
    --batch-events) BATCH_EVENTS="$2"; shift 2 ;;
    --batch-size) BATCH_SIZE="$2"; shift 2 ;;
    --batch-connections) BATCH_CONNECTIONS="$2"; shift 2 ;;
    --put-connections) PUT_CONNECTIONS="$2"; shift 2 ;;
    --put-duration) PUT_DURATION="$2"; shift 2 ;;
    --rate) RATE="$2"; shift 2 ;;
    --open-connections) OPEN_CONNECTIONS="$2"; shift 2 ;;
    --open-duration) OPEN_DURATION="$2"; shift 2 ;;
    --freshness-rate) FRESHNESS_RATE="$2"; shift 2 ;;
    --get-rates) GET_RATES="$2"; shift 2 ;;
    --get-connections) GET_CONNECTIONS="$2"; shift 2 ;;
    --get-duration) GET_DURATION="$2"; shift 2 ;;
    --bench-threads) BENCH_THREADS="$2"; shift 2 ;;
    --bench-arg) BENCH_ARGS+=("$2"); shift 2 ;;
    --catchall-set) CATCHALL_SETS+=("$2"); shift 2 ;;
    --settle-timeout) SETTLE_TIMEOUT="$2"; shift 2 ;;
    --wait-load) WAIT_LOAD="$2"; shift 2 ;;
    --wait-max) WAIT_MAX="$2"; shift 2 ;;
    --keep-topics) KEEP_TOPICS=1; shift ;;
    --keep-work) KEEP_WORK=1; shift ;;
    --out) OUT="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
[[ "$RUNS" =~ ^(batch|put|open|get)(,(batch|put|open|get))*$ ]] \
  || die "--runs takes a comma-separated list of batch, put, open, get"
[[ "$GET_RATES" =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--get-rates takes a comma-separated list of lookups/s (0 = closed loop)"
checks=(--partitions "$PARTITIONS" --batch-events "$BATCH_EVENTS" --batch-size "$BATCH_SIZE"
        --batch-connections "$BATCH_CONNECTIONS" --put-connections "$PUT_CONNECTIONS"
        --put-duration "$PUT_DURATION" --rate "$RATE" --open-connections "$OPEN_CONNECTIONS"
        --open-duration "$OPEN_DURATION" --bench-threads "$BENCH_THREADS"
        --settle-timeout "$SETTLE_TIMEOUT" --get-connections "$GET_CONNECTIONS"
        --get-duration "$GET_DURATION")
for ((i = 0; i < ${#checks[@]}; i += 2)); do posint "${checks[i]}" "${checks[i + 1]}"; done
((PUT_DURATION > PUT_WARMUP)) || die "--put-duration must be longer than the warmup ($PUT_WARMUP s)"
((GET_DURATION > 2)) || die "--get-duration must be longer than the warmup (2 s)"
((OPEN_DURATION > OPEN_WARMUP)) || die "--open-duration must be longer than the warmup ($OPEN_WARMUP s)"

# ------------------------------------------------------------------ prerequisites

[[ -x "$CATCHALL" ]] || die "$CATCHALL is missing: cmake --build --preset release --target catchall"
[[ -x "$BENCH" ]] || die "$BENCH is missing: cmake --build --preset release --target catchall-bench"
[[ "$("$BENCH" --help 2>/dev/null)" == *--query-target* ]] \
  || die "$BENCH has no --query-target: rebuild it (cmake --build --preset release --target catchall-bench)"
for tool in curl python3 java; do
  command -v "$tool" >/dev/null || die "'$tool' not found on PATH"
done

TS="$(date -u +%Y%m%dT%H%M%SZ)"
PREFIX="bench-cluster-$(date -u +%Y%m%d%H%M%S)-$$"
OUT="${OUT:-$REPO/results/cluster/$TS}"
WORK_ROOT=/tmp/catchall-cluster
WORK="$WORK_ROOT/$PREFIX"
mkdir -p "$OUT" "$WORK"
OUT="$(cd "$OUT" && pwd -P)"
EVENTS_TOPIC="$PREFIX.events"
STATUS_TOPIC="$PREFIX.status"
DLQ_TOPIC="$PREFIX.dlq"
IDS_TOPIC="$PREFIX.ids"     # the aggregator's event ids (catchall topics create makes it)
GROUP="$PREFIX.group"
TOPIC_FLAGS=(--set "kafka.events_topic=$EVENTS_TOPIC" --set "kafka.status_topic=$STATUS_TOPIC"
             --set "kafka.dead_letter_topic=$DLQ_TOPIC" --set "kafka.ids_topic=$IDS_TOPIC")

# ------------------------------------------------------------------ processes

# PIDS (lib.sh) holds what this script started: the nodes, then the bench of a run.
BROKER_STARTED=0
TOPICS_CREATED=0
# shellcheck disable=SC2317  # used by cleanup (the EXIT trap)
kafka_tool() {  # a Kafka admin tool class with the broker's jars
  java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -cp "$("$KAFKA_DEV" classpath)" "$@"
}

# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local i pid
  # Stop in reverse order of start: the bench, query, aggregate, ingest.
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    pid="${PIDS[$i]}"
    stop_pid "$pid" 30
  done
  for f in "$WORK"/*.log; do
    if [[ -f "$f" ]]; then cp "$f" "$OUT/nodes/" 2>/dev/null || true; fi
  done
  if ((TOPICS_CREATED && KEEP_TOPICS == 0)); then
    say "deleting topics $PREFIX.{events,status,ids,dlq} and group $GROUP"
    local t
    for t in "$EVENTS_TOPIC" "$STATUS_TOPIC" "$IDS_TOPIC" "$DLQ_TOPIC"; do
      "$KAFKA_DEV" topics --delete --topic "$t" >/dev/null 2>&1 || say "could not delete topic $t"
    done
    kafka_tool org.apache.kafka.tools.consumer.group.ConsumerGroupCommand \
      --bootstrap-server "$BROKERS" --delete --group "$GROUP" >/dev/null 2>&1 \
      || say "could not delete consumer group $GROUP (it expires on its own)"
  fi
  if ((BROKER_STARTED)); then
    say "stopping the broker this script started"
    "$KAFKA_DEV" stop >&2 || true
  fi
  ((KEEP_WORK)) || rm -rf "$WORK"
  say "load average at the end: $(cat /proc/loadavg)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$OUT/nodes" "$OUT/metrics"

say "load average at the start: $(cat /proc/loadavg) ($(nproc) cores)"
say "results: $OUT"

# ------------------------------------------------------------------ broker

ensure_broker "$KAFKA_DEV"

# ------------------------------------------------------------------ topics and nodes

SETS=()
for kv in "${CATCHALL_SETS[@]}"; do SETS+=(--set "$kv"); done
say "creating topics $PREFIX.{events,status,ids,dlq} with $PARTITIONS partitions"
TOPICS_CREATED=1
# With the nodes' settings: the ids topic's retention is aggregate.idempotency_window_s.
"$CATCHALL" topics create --brokers "$BROKERS" --partitions "$PARTITIONS" "${TOPIC_FLAGS[@]}" "${SETS[@]}" \
  >"$OUT/nodes/topics-create.log" 2>&1 || { cat "$OUT/nodes/topics-create.log" >&2; die "topics create failed"; }

declare -A URL PID_OF
start_role() {  # start_role ROLE [ARGS...]
  local role="$1"; shift
  local portfile="$WORK/$role.port"
  start_bg "$WORK/$role.log" "$CATCHALL" "$role" --brokers "$BROKERS" --listen 127.0.0.1:0 \
    --port-file "$portfile" "${TOPIC_FLAGS[@]}" --set "kafka.group_id=$GROUP" "${SETS[@]}" "$@"
  PID_OF[$role]=$LAST_PID
  local i
  for ((i = 0; i < 300; i++)); do
    [[ -s "$portfile" ]] && break
    kill -0 "$LAST_PID" 2>/dev/null || { tail -n 30 "$WORK/$role.log" >&2; die "$role exited at start"; }
    sleep 0.1
  done
  [[ -s "$portfile" ]] || die "$role wrote no port file in 30 s"
  URL[$role]="http://127.0.0.1:$(tr -d '[:space:]' <"$portfile")"
  say "$role: PID $LAST_PID on ${URL[$role]}"
}
wait_ready() {  # wait_ready ROLE
  local role="$1" i
  for ((i = 0; i < READY_TIMEOUT * 5; i++)); do
    curl -fsS -o /dev/null --max-time 2 "${URL[$role]}/readyz" 2>/dev/null && return 0
    kill -0 "${PID_OF[$role]}" 2>/dev/null || { tail -n 30 "$WORK/$role.log" >&2; die "$role exited"; }
    sleep 0.2
  done
  curl -sS --max-time 2 "${URL[$role]}/readyz" >&2 || true
  tail -n 30 "$WORK/$role.log" >&2
  die "$role not ready after ${READY_TIMEOUT}s"
}
start_role ingest
start_role aggregate --data-dir "$WORK/aggregate-data" --set "kafka.instance_id=$PREFIX-agg-1"
start_role query --data-dir "$WORK/query-data"
for role in ingest aggregate query; do wait_ready "$role"; done
say "all three nodes ready"

# ------------------------------------------------------------------ runs

# Waits until the cluster has caught up: a batch of fresh probe domains (enough
# to hit every partition) PUT to the ingest node is visible on the query node.
barrier() {
  local name="$1"
  python3 - "${URL[ingest]}" "${URL[query]}" "$SETTLE_TIMEOUT" "$PREFIX-$name" <<'PY' >&2
import json, sys, time, urllib.request
ingest, query, timeout, tag = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
domains = [f"barrier-{i}.{tag}.bench-barrier.com".lower() for i in range(100)]
def post(url, body, ctype):
    req = urllib.request.Request(url, data=body.encode(), method="POST", headers={"Content-Type": ctype})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, r.read()
start = time.time()
while True:
    try:
        status, _ = post(ingest + "/events", "".join(
            json.dumps({"domain": d, "type": "delivered"}) + "\n" for d in domains), "application/x-ndjson")
        if status // 100 == 2:
            break
    except Exception as e:
        pass
    if time.time() - start > timeout:
        print(f"barrier: ingest did not accept the barrier batch in {timeout:.0f}s"); sys.exit(1)
    time.sleep(0.5)
acked = time.time()
while True:
    try:
        _, body = post(query + "/domains/lookup", json.dumps({"domains": domains}), "application/json")
        res = json.loads(body)["results"]
        if all(r.get("delivered", 0) >= 1 for r in res):
            print(f"cluster caught up: barrier visible {time.time() - acked:.2f}s after its ack")
            sys.exit(0)
    except Exception:
        pass
    if time.time() - acked > timeout:
        print(f"barrier: not visible on the query node after {timeout:.0f}s"); sys.exit(1)
    time.sleep(0.2)
PY
}

save_metrics() {  # save_metrics NAME
  local role
  for role in ingest aggregate query; do
    curl -fsS --max-time 5 "${URL[$role]}/metrics" >"$OUT/metrics/$1.$role.txt" 2>/dev/null || true
  done
}

COMMON=(--target "${URL[ingest]}" --query-target "${URL[query]}" --workload "$WORKLOAD"
        --threads "$BENCH_THREADS")
FRESH=(--freshness --freshness-rate "$FRESHNESS_RATE")
[[ -n "$DOMAINS" ]] && COMMON+=(--domains "$DOMAINS")
[[ -n "$SEED" ]] && COMMON+=(--seed "$SEED")
FAILED=0
bench_run() {  # bench_run NAME ARGS...
  local name="$1"; shift
  local dir="$OUT/$name"
  mkdir -p "$dir"
  wait_quiet
  barrier "$name" || { say "$name: the cluster did not catch up; running anyway"; }
  save_metrics "$name.before"
  local cmd=("$BENCH" "${COMMON[@]}" "$@" "${BENCH_ARGS[@]}" --label "cluster $name" --out "$dir")
  printf '%q ' "${cmd[@]}" >"$dir/command.txt"; echo >>"$dir/command.txt"
  local load_before; load_before="$(cat /proc/loadavg)"
  say "$name: $(cat "$dir/command.txt")"
  say "$name: load average before: $load_before"
  # CPU of every process of the pipeline, from the bench's start until the cluster
  # has caught up after it (the run's events counted and visible on the query
  # node), so that the aggregator's and the query node's work for the run's events
  # is included; the bench's own CPU comes from its rusage (children_cpu_ms).
  declare -A t0
  local role
  for role in ingest aggregate query; do t0[$role]="$(cpu_ticks "${PID_OF[$role]}")"; done
  local b0 m0 started
  b0="$(cpu_ticks "$BROKER_PID")"; m0="$(machine_ticks)"; started="$(date +%s.%N)"
  local rc=0 c0
  children_cpu_ms "$WORK/times"; c0=$CHILD_CPU_MS
  "${cmd[@]}" >"$dir/summary.txt" 2>"$dir/progress.log" &
  local bpid=$!
  PIDS+=("$bpid")
  wait "$bpid" || rc=$?
  children_cpu_ms "$WORK/times"
  local bench_ms=$((CHILD_CPU_MS - c0))
  unset 'PIDS[${#PIDS[@]}-1]'
  local ended; ended="$(date +%s.%N)"
  local load_after; load_after="$(cat /proc/loadavg)"
  save_metrics "$name.after"
  local caught_up=true
  barrier "$name.after" || { caught_up=false; say "$name: the cluster did not catch up after the run"; }
  local cpu=() m1 ended_cpu mb0 mt0 mi0 mb1 mt1 mi1
  for role in ingest aggregate query; do
    cpu+=("cpu_s.$role:=$(ticks_to_s "${t0[$role]}" "$(cpu_ticks "${PID_OF[$role]}")")")
  done
  if [[ -n "$BROKER_PID" ]]; then
    cpu+=("cpu_s.broker:=$(ticks_to_s "$b0" "$(cpu_ticks "$BROKER_PID")")")
  fi
  m1="$(machine_ticks)"; ended_cpu="$(date +%s.%N)"
  read -r mb0 mt0 mi0 <<<"$m0"
  read -r mb1 mt1 mi1 <<<"$m1"
  json_write "$dir/run.json" "name=$name" "exit_code:=$rc" "load_before=$load_before" \
    "load_after=$load_after" "wall_s:=$(awk -v a="$started" -v b="$ended" 'BEGIN{printf "%.3f", b-a}')" \
    "${cpu[@]}" "cpu_s.bench:=$((bench_ms / 1000)).$(printf '%03d' $((bench_ms % 1000)))" \
    "cpu_s.machine_busy:=$(ticks_to_s "$mb0" "$mb1")" "cpu_s.irq:=$(ticks_to_s "$mi0" "$mi1")" \
    "cpu_s.machine_capacity:=$(ticks_to_s "$mt0" "$mt1")" \
    "cpu_window_s:=$(awk -v a="$started" -v b="$ended_cpu" 'BEGIN{printf "%.3f", b-a}')" \
    "cpu_window_caught_up:=$caught_up"
  cat "$dir/summary.txt" >&2
  say "$name: exit $rc; load average after: $load_after"
  ((rc == 0)) || FAILED=1
}

IFS=, read -r -a RUN_LIST <<<"$RUNS"
IFS=, read -r -a GET_RATE_LIST <<<"$GET_RATES"
RUN_NAMES=()
for run in "${RUN_LIST[@]}"; do
  case "$run" in
    batch)
      RUN_NAMES+=(batch)
      bench_run batch "${FRESH[@]}" --mode batch --batch-size "$BATCH_SIZE" \
        --connections "$BATCH_CONNECTIONS" --duration 0 --max-events "$BATCH_EVENTS" --verify ;;
    put)
      RUN_NAMES+=(put)
      bench_run put "${FRESH[@]}" --mode put --connections "$PUT_CONNECTIONS" \
        --duration "$PUT_DURATION" --warmup "$PUT_WARMUP" ;;
    open)
      RUN_NAMES+=(open)
      bench_run open "${FRESH[@]}" --mode put --rate "$RATE" --connections "$OPEN_CONNECTIONS" \
        --duration "$OPEN_DURATION" --warmup "$OPEN_WARMUP" ;;
    get)
      # Lookups of workload domains on the query node (--query-target); with the
      # same --seed as the writes they are the domains the writes created.
      for rate in "${GET_RATE_LIST[@]}"; do
        name="get"; ((rate > 0)) && name="get-$rate"
        RUN_NAMES+=("$name")
        rate_args=(); ((rate > 0)) && rate_args=(--rate "$rate")
        bench_run "$name" --mode get "${rate_args[@]}" --connections "$GET_CONNECTIONS" \
          --duration "$GET_DURATION" --warmup 2
      done ;;
  esac
done
barrier final || true
save_metrics final

# ------------------------------------------------------------------ resources

# What each process holds once the runs are done: resident memory now and at
# its peak (VmRSS, VmHWM), the size of its data dir, and what the topics take in
# the broker's log dir.
mem_kb() {  # mem_kb PID FIELD
  awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status" 2>/dev/null || true
}
# Blocks in use, not apparent sizes: Kafka preallocates sparse index files.
dir_bytes() { du -s --block-size=1 "$1" 2>/dev/null | cut -f1; }
res=()
for role in ingest aggregate query; do
  pid="${PID_OF[$role]}"
  res+=("$role.rss_kb:=$(mem_kb "$pid" VmRSS)" "$role.peak_rss_kb:=$(mem_kb "$pid" VmHWM)")
  if [[ "$role" != ingest ]]; then res+=("$role.data_dir_bytes:=$(dir_bytes "$WORK/$role-data")")
  else res+=("$role.data_dir_bytes:=null"); fi
done
broker_dir="${KAFKA_DEV_DIR:-/tmp/catchall-kafka-dev-$KAFKA_PORT}/data"
if [[ -n "$BROKER_PID" ]]; then
  res+=("broker.rss_kb:=$(mem_kb "$BROKER_PID" VmRSS)" "broker.peak_rss_kb:=$(mem_kb "$BROKER_PID" VmHWM)")
fi
for t in events status ids dlq; do
  total=0
  for d in "$broker_dir/$PREFIX.$t"-*; do
    [[ -d "$d" ]] && total=$((total + $(dir_bytes "$d")))
  done
  res+=("broker.topic_${t}_bytes:=$total")
done
json_write "$OUT/resources.json" "${res[@]}" 2>/dev/null || say "could not record resources"

# ------------------------------------------------------------------ report

python3 - "$OUT" "$(IFS=,; echo "${RUN_NAMES[*]}")" "$PARTITIONS" "$PREFIX" <<'PY'
import json, os, re, sys
out, runs, partitions, prefix = sys.argv[1], [r for r in sys.argv[2].split(",") if r], int(sys.argv[3]), sys.argv[4]
rows, cpu_rows, summary = [], [], {"prefix": prefix, "partitions": partitions, "runs": {}}
PIPELINE = ("ingest", "aggregate", "query", "broker")   # the cost of the system; the bench is the client
def cpu_cost(name, run, r):
    """CPU seconds of each process over the run (run.json) and per event acknowledged
    (per lookup answered for get runs)."""
    cpu_s = run.get("cpu_s") or {}
    unit = "lookup" if name.startswith("get") else "event"
    n = g(r, "lookups", "ok", default=0) if unit == "lookup" else g(r, "events", "acked", default=0)
    per = lambda sec: round(sec / n * 1e6, 3) if n and sec is not None else None
    cpu = {p: {"seconds": cpu_s[p], f"us_per_{unit}": per(cpu_s[p])}
           for p in PIPELINE + ("bench",) if cpu_s.get(p) is not None}
    total = sum(cpu_s[p] for p in PIPELINE if cpu_s.get(p) is not None)
    out = {"cpu": cpu, f"cpu_us_per_{unit}_total": per(total), f"cpu_{unit}s": n,
           "cpu_window_s": run.get("cpu_window_s"), "cpu_window_caught_up": run.get("cpu_window_caught_up")}
    window, capacity = run.get("cpu_window_s"), cpu_s.get("machine_capacity")
    if (window and capacity is not None and os.cpu_count()
            and capacity < 0.9 * window * os.cpu_count()):
        # /proc/stat counted less time than the window had on all cores (seen in
        # sandboxed VMs): its busy time cannot be compared with the processes'.
        out["cpu_other_s"] = None
        out["cpu_machine_stat_short"] = True
    elif cpu_s.get("machine_busy") is not None:
        # Every other process on the machine (and interrupts) in the same window.
        out["cpu_other_s"] = round(cpu_s["machine_busy"] - cpu_s.get("irq", 0)
                                   - sum(cpu_s.get(p) or 0 for p in PIPELINE + ("bench",)), 2)
        out["cpu_irq_s"] = cpu_s.get("irq")
    return out, unit, n
def g(d, *path, default=None):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return default
        d = d[p]
    return d
for name in runs:
    path = os.path.join(out, name, "results.json")
    run = {}
    try:
        run = json.load(open(os.path.join(out, name, "run.json")))
    except Exception:
        pass
    if not os.path.exists(path):
        summary["runs"][name] = {"error": "no results.json", **run}
        rows.append((name, "-", "-", "-", "-", "-", "-", "-", "-", f"no results (exit {run.get('exit_code', '?')})"))
        continue
    r = json.load(open(path))
    lat, fr, v = r.get("latency_ms", {}), r.get("freshness_ms", {}), r.get("verify")
    errs = r.get("errors", 0)
    by_status = r.get("errors_by_status", {})
    transport = {k: n for k, n in r.get("transport_errors", {}).items() if n}
    entry = {
        "exit_code": run.get("exit_code"), "events_per_s": r.get("events_per_s"), "lookups_per_s": r.get("lookups_per_s"),
        "requests_per_s": r.get("requests_per_s"),
        "latency_ms": {k: lat.get(k) for k in ("p50", "p95", "p99", "p999", "max")},
        "freshness_ms": {k: fr.get(k) for k in ("p50", "p95", "p99", "max", "count", "timeouts", "failures")},
        "errors": errs, "errors_by_status": by_status, "transport_errors": transport,
        "events": r.get("events"), "schedule": r.get("schedule"),
        "verify": None if v is None else {k: v.get(k) for k in ("ok", "mismatches", "checked_domains",
                                                               "first_pass_mismatches", "settle_s")},
        "load_before": run.get("load_before"), "load_after": run.get("load_after"),
        "cpu_s": run.get("cpu_s"), "seed": g(r, "config", "seed"),
    }
    cost, unit, n = cpu_cost(name, run, r)
    entry.update(cost)
    us = lambda p: (cost["cpu"].get(p) or {}).get(f"us_per_{unit}")
    fu = lambda x: "-" if x is None else f"{x:,.1f}" if x >= 10 else f"{x:.2f}"
    cpu_rows.append((name, f"{n:,} {unit}s", *[fu(us(p)) for p in PIPELINE],
                     fu(cost[f"cpu_us_per_{unit}_total"]), fu(us("bench")),
                     "-" if cost.get("cpu_other_s") is None else f"{cost['cpu_other_s']:.1f}",
                     f"{cost['cpu_window_s'] or 0:.1f}" + ("" if cost.get("cpu_window_caught_up", True) else " (not caught up)")))
    summary["runs"][name] = entry
    note = []
    if errs:
        note.append("errors " + ", ".join([f"{k}x{n}" for k, n in by_status.items()] +
                                           [f"{k}x{n}" for k, n in transport.items()]))
    sched = r.get("schedule") or {}
    if sched.get("open_loop"):
        note.append(f"achieved {sched.get('achieved_rate', 0):,.0f}/s of {sched.get('target_rate', 0):,.0f}/s")
        late = sched.get("late_ops_busy", 0) + sched.get("late_ops_client", 0)
        if late:
            note.append(f"late sends {sched.get('late_ops_busy', 0)} busy + {sched.get('late_ops_client', 0)} "
                        f"client, max lag {sched.get('max_lag_ms', 0):.1f} ms")
        if sched.get("backlog_at_end"):
            note.append(f"never sent {sched['backlog_at_end']}")
    if fr.get("timeouts"):
        note.append(f"{fr['timeouts']} probe timeouts")
    f = lambda x: "-" if x is None else f"{x:.1f}" if x >= 10 else f"{x:.2f}"
    vtxt = "-" if v is None else ("OK" if v.get("ok") else f"FAILED ({v.get('mismatches')} mismatches)")
    # A get run sends lookups, not events: its rate is lookups/s.
    rate = r.get("lookups_per_s") if name.startswith("get") else r.get("events_per_s")
    rows.append((name, f"{rate or 0:,.0f}", f(lat.get("p50")), f(lat.get("p99")),
                 f(fr.get("p50")) if fr.get("count") else "-", f(fr.get("p95")) if fr.get("count") else "-",
                 f(fr.get("p99")) if fr.get("count") else "-", str(fr.get("count", "-")), vtxt,
                 "; ".join(note)))

# What the nodes say about each run: deltas of their /metrics around it.
def parse(path):
    """Metrics by name and labels, summed over aggregation workers (the
    worker label of aggregate.threads is dropped)."""
    m = {}
    try:
        for line in open(path):
            if line.startswith("#") or not line.strip():
                continue
            key, _, val = line.rpartition(" ")
            key = re.sub(r'worker="[0-9]+",?', "", key).replace(",}", "}").replace("{}", "")
            try:
                m[key] = m.get(key, 0) + float(val)
            except ValueError:
                pass
    except OSError:
        pass
    return m
def quantile(before, after, name, q):
    """Upper bound of the bucket holding quantile q of a histogram's delta."""
    pre = name + '_bucket{le="'
    buckets = sorted((float(k[len(pre):-2]), after[k] - before.get(k, 0))
                     for k in after if k.startswith(pre))
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    for le, n in buckets:
        if n >= q * total:
            return le
    return None
diag_lines = []
for name in runs:
    b = {role: parse(os.path.join(out, "metrics", f"{name}.before.{role}.txt")) for role in ("ingest", "aggregate", "query")}
    a = {role: parse(os.path.join(out, "metrics", f"{name}.after.{role}.txt")) for role in ("ingest", "aggregate", "query")}
    if not a["aggregate"] or name.startswith("get"):
        continue
    d = lambda role, key: a[role].get(key, 0) - b[role].get(key, 0)
    commits = d("aggregate", "catchall_aggregate_commits_total")
    diag = {
        "ingest_events_accepted": d("ingest", 'catchall_ingest_events_accepted_total{type="delivered"}')
                                  + d("ingest", 'catchall_ingest_events_accepted_total{type="bounced"}'),
        "ingest_503_log_unavailable": d("ingest", "catchall_ingest_log_unavailable_total"),
        "aggregate_counted": d("aggregate", 'catchall_aggregate_records_total{outcome="counted"}'),
        "aggregate_duplicates": d("aggregate", 'catchall_aggregate_records_total{outcome="duplicate"}'),
        "aggregate_commits": commits,
        "aggregate_commit_failures": d("aggregate", "catchall_aggregate_commit_failures_total"),
        "aggregate_commit_ms_mean": 1000 * d("aggregate", "catchall_aggregate_commit_seconds_sum") / commits if commits else None,
        "aggregate_commit_ms_p99_le": (lambda v: None if v is None else 1000 * v)(quantile(b["aggregate"], a["aggregate"], "catchall_aggregate_commit_seconds", 0.99)),
        "aggregate_records_per_commit": d("aggregate", "catchall_aggregate_commit_records_sum") / commits if commits else None,
        "aggregate_freshness_ms_mean": 1000 * d("aggregate", "catchall_aggregate_freshness_seconds_sum") / commits if commits else None,
        "aggregate_freshness_ms_p50_le": (lambda v: None if v is None else 1000 * v)(quantile(b["aggregate"], a["aggregate"], "catchall_aggregate_freshness_seconds", 0.5)),
        "aggregate_freshness_ms_p99_le": (lambda v: None if v is None else 1000 * v)(quantile(b["aggregate"], a["aggregate"], "catchall_aggregate_freshness_seconds", 0.99)),
        "aggregate_lag_records_after": a["aggregate"].get("catchall_aggregate_lag_records"),
        "query_changelog_records": d("query", "catchall_query_changelog_records_total"),
        # The freshness probe's polls: part of the query column's CPU.
        "query_lookups": sum(a["query"].get(k, 0) - b["query"].get(k, 0) for k in a["query"]
                             if k.startswith("catchall_http_requests_total{") and 'route="/domains"' in k),
        "query_behind_partitions_after": a["query"].get("catchall_query_changelog_behind_partitions"),
        "rss_mb_after": {role: round(a[role].get("catchall_process_resident_memory_bytes", 0) / 2**20, 1) for role in a},
    }
    summary["runs"].setdefault(name, {})["nodes"] = diag
    fmt = lambda v: "-" if v is None else f"{v:,.0f}" if abs(v) >= 100 or v == int(v) else f"{v:.1f}"
    diag_lines.append(
        f"{name:6} ingest accepted {fmt(diag['ingest_events_accepted'])} (503 {fmt(diag['ingest_503_log_unavailable'])}); "
        f"aggregate counted {fmt(diag['aggregate_counted'])} in {fmt(commits)} commits "
        f"(mean {fmt(diag['aggregate_commit_ms_mean'])} ms, p99 <= {fmt(diag['aggregate_commit_ms_p99_le'])} ms, "
        f"{fmt(diag['aggregate_records_per_commit'])} records each; oldest-event age at commit mean "
        f"{fmt(diag['aggregate_freshness_ms_mean'])} ms, p99 <= {fmt(diag['aggregate_freshness_ms_p99_le'])} ms); "
        f"query changelog records {fmt(diag['query_changelog_records'])}, "
        f"lookups answered {fmt(diag['query_lookups'])} (the freshness probe's polls, in the query's CPU)")
res_lines = []
try:
    res = json.load(open(os.path.join(out, "resources.json")))
    summary["resources"] = res
    mb = lambda v: "-" if v is None else f"{v / 2**20:,.0f} MB"
    for role in ("ingest", "aggregate", "query", "broker"):
        r = res.get(role, {})
        kb = lambda k: None if r.get(k) is None else r[k] * 1024
        disk = (f"data dir {mb(r['data_dir_bytes'])}" if r.get("data_dir_bytes") is not None else
                "topics " + ", ".join(f"{t} {mb(r.get('topic_' + t + '_bytes'))}" for t in ("events", "status", "ids", "dlq"))
                if role == "broker" else "no data dir")
        res_lines.append(f"{role:9} RSS {mb(kb('rss_kb'))} (peak {mb(kb('peak_rss_kb'))}); {disk}")
except (OSError, ValueError):
    pass
json.dump(summary, open(os.path.join(out, "summary.json"), "w"), indent=2)
head = ("run", "per s", "lat p50", "lat p99", "fresh p50", "fresh p95", "fresh p99", "probes",
        "verify", "notes")
widths = [max(len(str(x[i])) for x in rows + [head]) for i in range(len(head))]
lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [head] + rows]
text = "\n".join(lines) + "\n(per s: events/s, lookups/s for get runs; latency and freshness in ms)\n"
if cpu_rows:
    chead = ("run", "acked", "ingest", "aggregate", "query", "broker", "total", "bench", "other s", "window s")
    cw = [max(len(str(x[i])) for x in cpu_rows + [chead]) for i in range(len(chead))]
    text += ("CPU per event, in us (CPU s of each process from the bench's start until the cluster caught up,\n"
             "divided by the events acknowledged; per lookup answered for get runs; total = ingest + aggregate\n"
             "+ query + broker; bench = the load generator; other s = CPU s of every other process,\n"
             "- when /proc/stat counted less than the window on every core, as in some VMs):\n")
    text += "".join("  " + "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(row, cw))).rstrip() + "\n"
                    for row in [chead] + cpu_rows)
if diag_lines:
    text += "nodes' /metrics during each run:\n" + "".join("  " + l + "\n" for l in diag_lines)
if res_lines:
    text += "resources after the runs:\n" + "".join("  " + l + "\n" for l in res_lines)
open(os.path.join(out, "summary.txt"), "w").write(text)
print(text, end="")
PY
say "results in $OUT"
exit "$FAILED"
