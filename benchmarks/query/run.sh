#!/usr/bin/env bash
# Query benchmark: one cluster query node over a changelog of 10M domains, on a real
# Apache Kafka broker (scripts/kafka-dev), with no ingest node and no aggregator: the
# changelog is written by kcat, so the query node's cost is measured alone.
#
#   benchmarks/query/run.sh [--domains N] [--rate R] [--duration S] [--get-rate G] ...
#
# 1. makes sure a broker runs on 127.0.0.1:$KAFKA_PORT (9092): starts one with
#    scripts/kafka-dev only if none runs, and then stops it at the end;
# 2. creates fresh topics under a unique prefix (`catchall topics create`) and preloads
#    the status topic with one record per domain (gen_changelog.py preload | kcat);
# 3. starts a query node with an empty data dir and times its restore (until /readyz);
# 4. phases, each --duration seconds, the machine's load average let settle before each:
#      get        catchall-bench --mode get --rate G over the same domains, nothing applied
#      apply      updates written at --rate records/s (gen_changelog.py pace | kcat), no lookups
#      apply+get  both at once: the lookup latency while the node applies R records/s
#    for each: the query node's and the broker's CPU seconds (utime+stime, all threads)
#    from the phase's start until the node has applied every record written, in us per
#    changelog record and per lookup; how long the node took to catch up after the
#    writer stopped; catchall-bench's latency percentiles; the lookups that found their
#    domain (catchall_query_answers_total{status="not catch-all"});
# 5. checks the final counts of 2,000 domains (the 1,000 updated last and 1,000 never
#    updated) through POST /domains/lookup: exit 2 on a mismatch;
# 6. writes results/query/<timestamp>/ (summary.json, summary.txt, the node's log and
#    metrics, catchall-bench's results) and prints the summary.
# At the end (also on failure or Ctrl-C) it stops what it started and deletes its topics.
set -euo pipefail
PROG=query
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
REPO="$(cd "$SCRIPT_DIR/../.." && pwd -P)"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$SCRIPT_DIR/../lib.sh"
CATCHALL="${CATCHALL_BIN:-$REPO/build/release/catchall}"
BENCH="${CATCHALL_BENCH_BIN:-$REPO/build/release/catchall-bench}"
KAFKA_DEV="$REPO/scripts/kafka-dev"
KAFKA_PORT="${KAFKA_PORT:-9092}"
BROKERS="127.0.0.1:$KAFKA_PORT"
DOMAINS=10000000
RATE=100000
DURATION=60
GET_RATE=5000
GET_CONNECTIONS=64
PARTITIONS=12
SEED=1
PHASES="get,apply,apply+get"
CATCHUP_TIMEOUT=600
WAIT_LOAD=""
WAIT_MAX=300
OUT=""
CATCHALL_SETS=()

usage() {
  cat <<EOF
Usage: benchmarks/query/run.sh [OPTIONS]

Measure one cluster query node: its restore of a changelog of --domains domains,
its lookups (GET /domains/{d}), its apply rate and cost at --rate changelog
records/s, and its lookup latency while it applies them. The changelog is
written with kcat; no ingest node or aggregator runs. Results go to
results/query/<timestamp>/.

Options:
  --domains N          domains preloaded into the changelog          [$DOMAINS]
  --rate R             changelog records/s written in the apply phases [$RATE]
  --duration S         seconds of each phase                          [$DURATION]
  --get-rate G         lookups/s in the get phases (open loop)        [$GET_RATE]
  --get-connections N  catchall-bench connections                     [$GET_CONNECTIONS]
  --phases LIST        comma-separated: get, apply, apply+get         [$PHASES]
  --partitions P       partitions of the topics                       [$PARTITIONS]
  --seed S             domain names (catchall-bench's uniform workload) and
                       the updates' order                             [$SEED]
  --catchall-set K=V   extra setting for the query node (repeatable)
  --wait-load L        before each phase, wait until the 1-minute load average is
                       below L (at most --wait-max seconds)
  --wait-max S         [$WAIT_MAX]
  --out DIR            results dir                    [results/query/<timestamp>]
  -h, --help

Environment: KAFKA_PORT (broker port, 9092), CATCHALL_BIN, CATCHALL_BENCH_BIN.
Needs kcat, python3, curl and java (the broker). Build first:
cmake --build --preset release --target catchall catchall-bench
Exit status: 0 when every phase ran and the final counts match, 2 on a mismatch,
1 on any other failure.
EOF
}

while (($#)); do
  case "$1" in
    --domains) DOMAINS="$2"; shift 2 ;;
    --rate) RATE="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --get-rate) GET_RATE="$2"; shift 2 ;;
    --get-connections) GET_CONNECTIONS="$2"; shift 2 ;;
    --phases) PHASES="$2"; shift 2 ;;
    --partitions) PARTITIONS="$2"; shift 2 ;;
    --seed) SEED="$2"; shift 2 ;;
    --catchall-set) CATCHALL_SETS+=("$2"); shift 2 ;;
    --wait-load) WAIT_LOAD="$2"; shift 2 ;;
    --wait-max) WAIT_MAX="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
for opt in domains:"$DOMAINS" rate:"$RATE" duration:"$DURATION" get-rate:"$GET_RATE" \
           get-connections:"$GET_CONNECTIONS" partitions:"$PARTITIONS" seed:"$SEED"; do
  posint "--${opt%%:*}" "${opt#*:}"
done
[[ "$PHASES" =~ ^(get|apply|apply\+get)(,(get|apply|apply\+get))*$ ]] \
  || die "--phases takes a comma-separated list of get, apply, apply+get"
[[ -x "$CATCHALL" ]] || die "$CATCHALL is missing: cmake --build --preset release --target catchall"
[[ -x "$BENCH" ]] || die "$BENCH is missing: cmake --build --preset release --target catchall-bench"
for tool in kcat curl python3 java; do
  command -v "$tool" >/dev/null || die "'$tool' not found on PATH (scripts/install-deps installs it)"
done
HZ="$(getconf CLK_TCK)"

TS="$(date -u +%Y%m%dT%H%M%SZ)"
PREFIX="bench-query-$(date -u +%Y%m%d%H%M%S)-$$"
OUT="${OUT:-$REPO/results/query/$TS}"
WORK="/tmp/catchall-query/$PREFIX"
mkdir -p "$OUT" "$WORK"
OUT="$(cd "$OUT" && pwd -P)"
STATUS_TOPIC="$PREFIX.status"
TOPIC_FLAGS=(--set "kafka.events_topic=$PREFIX.events" --set "kafka.status_topic=$STATUS_TOPIC"
             --set "kafka.dead_letter_topic=$PREFIX.dlq" --set "kafka.ids_topic=$PREFIX.ids")
SETS=()
for kv in "${CATCHALL_SETS[@]}"; do SETS+=(--set "$kv"); done

BROKER_STARTED=0
TOPICS_CREATED=0
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  local rc=$? i
  trap - EXIT INT TERM
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[$i]}" 30; done
  [[ -f "$WORK/query.log" ]] && cp "$WORK/query.log" "$OUT/" 2>/dev/null
  if ((TOPICS_CREATED)); then
    say "deleting topics $PREFIX.{events,status,ids,dlq}"
    for t in events status ids dlq; do
      "$KAFKA_DEV" topics --delete --topic "$PREFIX.$t" >/dev/null 2>&1 || say "could not delete $PREFIX.$t"
    done
  fi
  if ((BROKER_STARTED)); then "$KAFKA_DEV" stop >&2 || true; fi
  rm -rf "$WORK"
  say "load average at the end: $(cat /proc/loadavg)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
say "load average at the start: $(cat /proc/loadavg) ($(nproc) cores); results: $OUT"

ensure_broker "$KAFKA_DEV"

TOPICS_CREATED=1
"$CATCHALL" topics create --brokers "$BROKERS" --partitions "$PARTITIONS" "${TOPIC_FLAGS[@]}" \
  >"$WORK/topics.log" 2>&1 || { cat "$WORK/topics.log" >&2; die "topics create failed"; }

# produce: stdin's key<TAB>value lines to the status topic, keyed the way aggregators
# key them (murmur2), batched like catchall's producers.
produce() {
  kcat -P -b "$BROKERS" -t "$STATUS_TOPIC" -K $'\t' -X partitioner=murmur2_random \
    -X compression.codec=snappy -X linger.ms=5 -X batch.num.messages=10000 \
    -X queue.buffering.max.messages=1000000 2>>"$WORK/kcat.log"
}
now_ms() { date +%s%3N; }
seconds_since() { awk -v a="$1" -v b="$(now_ms)" 'BEGIN{printf "%.1f", (b-a)/1000}'; }

say "preloading $STATUS_TOPIC with $DOMAINS domains (seed $SEED, $PARTITIONS partitions)..."
t0="$(now_ms)"
python3 "$SCRIPT_DIR/gen_changelog.py" preload --domains "$DOMAINS" --seed "$SEED" | produce \
  || { cat "$WORK/kcat.log" >&2; die "preload failed"; }
say "preloaded in $(seconds_since "$t0") s"
UPDATES=$((RATE * DURATION))
say "generating $UPDATES updates..."
python3 "$SCRIPT_DIR/gen_changelog.py" updates --domains "$DOMAINS" --seed "$SEED" \
  --records "$UPDATES" --out "$WORK/updates.tsv" --expected "$WORK/expected.json"

# ------------------------------------------------------------------ the query node

METRICS_URL=""
metric() {  # metric NAME [LABELS]: a sample's value from the node's /metrics (0 if absent)
  curl -fsS --max-time 5 "$METRICS_URL" | awk -v name="$1" -v labels="${2:-}" '
    /^#/ { next }
    { key = substr($0, 1, length($0) - length($NF) - 1); n = key; l = ""
      if (i = index(key, "{")) { n = substr(key, 1, i - 1); l = substr(key, i) } }
    n == name && (labels == "" || l == labels) { v = $NF } END { printf "%.0f\n", v + 0 }'
}
QUERY_PORT="$(free_port)"
t0="$(now_ms)"
start_bg "$WORK/query.log" "$CATCHALL" query --brokers "$BROKERS" --listen "127.0.0.1:$QUERY_PORT" \
  --data-dir "$WORK/query-data" "${TOPIC_FLAGS[@]}" --set "kafka.group_id=$PREFIX.group" "${SETS[@]}"
QUERY_PID=$LAST_PID
URL="http://127.0.0.1:$QUERY_PORT"
METRICS_URL="$URL/metrics"
until curl -fsS -o /dev/null --max-time 2 "$URL/readyz" 2>/dev/null; do
  kill -0 "$QUERY_PID" 2>/dev/null || { tail -n 30 "$WORK/query.log" >&2; die "the query node exited"; }
  (($(now_ms) - t0 < CATCHUP_TIMEOUT * 1000)) || die "the query node was not ready in ${CATCHUP_TIMEOUT}s"
  sleep 0.2
done
RESTORE_S="$(seconds_since "$t0")"
RESTORE_CPU="$(ticks_to_s 0 "$(cpu_ticks "$QUERY_PID")")"
RESTORED="$(metric catchall_query_changelog_records_total)"
say "query node PID $QUERY_PID ready after ${RESTORE_S}s: $RESTORED records, ${RESTORE_CPU}s of CPU"
printf '{"seconds": %s, "records": %s, "cpu_s": %s}\n' "$RESTORE_S" "$RESTORED" "$RESTORE_CPU" \
  >"$WORK/restore.json"

# ------------------------------------------------------------------ phases

FOUND_LABEL='{status="not catch-all"}'
run_phase() {  # run_phase NAME: writes $WORK/phase-NAME.json
  local name="$1" apply=0 get=0 writer="" bench="" t0 tq0 tb0 r0 f0 u0 expected behind wrote_s
  [[ "$name" == *apply* ]] && apply=1
  [[ "$name" == *get* ]] && get=1
  wait_quiet
  say "phase $name: load average $(load1)"
  curl -fsS "$METRICS_URL" >"$OUT/metrics.before.$name.txt"
  local load_before; load_before="$(load1)"
  r0="$(metric catchall_query_changelog_records_total)"
  f0="$(metric catchall_query_answers_total "$FOUND_LABEL")"
  u0="$(metric catchall_query_answers_total '{status="unknown"}')"
  t0="$(now_ms)"; tq0="$(cpu_ticks "$QUERY_PID")"; tb0="$(cpu_ticks "$BROKER_PID")"
  if ((apply)); then
    python3 "$SCRIPT_DIR/gen_changelog.py" pace --rate "$RATE" <"$WORK/updates.tsv" 2>"$WORK/pace.$name.log" \
      | produce &
    writer=$!
  fi
  if ((get)); then
    "$BENCH" --target "$URL" --mode get --workload uniform --domains "$DOMAINS" --seed "$SEED" \
      --rate "$GET_RATE" --duration "$DURATION" --warmup 2 --connections "$GET_CONNECTIONS" \
      --label "query $name" --out "$OUT/bench-$name" >"$WORK/bench.$name.log" 2>&1 &
    bench=$!
  fi
  [[ -z "$bench" ]] || wait "$bench" || { cat "$WORK/bench.$name.log" >&2; die "catchall-bench failed"; }
  [[ -z "$writer" ]] || wait "$writer" || { cat "$WORK/kcat.log" >&2; die "the writer failed"; }
  wrote_s="$(seconds_since "$t0")"
  local t_wrote; t_wrote="$(now_ms)"
  expected=$((r0 + apply * UPDATES))
  while :; do
    behind="$(metric catchall_query_changelog_behind_partitions)"
    (($(metric catchall_query_changelog_records_total) >= expected && behind == 0)) && break
    (($(now_ms) - t_wrote < CATCHUP_TIMEOUT * 1000)) || die "phase $name: not caught up in ${CATCHUP_TIMEOUT}s"
    sleep 0.1
  done
  local catchup_s; catchup_s="$(seconds_since "$t_wrote")"
  local q_s b_s; q_s="$(ticks_to_s "$tq0" "$(cpu_ticks "$QUERY_PID")")"; b_s="$(ticks_to_s "$tb0" "$(cpu_ticks "$BROKER_PID")")"
  curl -fsS "$METRICS_URL" >"$OUT/metrics.after.$name.txt"
  local records found unknown
  records=$(($(metric catchall_query_changelog_records_total) - r0))
  found=$(($(metric catchall_query_answers_total "$FOUND_LABEL") - f0))
  unknown=$(($(metric catchall_query_answers_total '{status="unknown"}') - u0))
  python3 - "$name" "$OUT/bench-$name/results.json" "$records" "$found" "$unknown" "$q_s" "$b_s" \
    "$wrote_s" "$catchup_s" "$load_before" "$WORK/pace.$name.log" \
    "$OUT/metrics.before.$name.txt" "$OUT/metrics.after.$name.txt" >"$WORK/phase-$name.json" <<'PY'
import json, os, re, sys
name, results, records, found, unknown, q_s, b_s, wrote_s, catchup_s, load, pace, m0, m1 = sys.argv[1:]

def lookup_buckets(path):
    """The node's own latency histogram of GET /domains: {upper bound in s: count}."""
    out = {}
    for line in open(path):
        m = re.match(r'catchall_http_request_seconds_bucket\{route="/domains",le="([^"]+)"\} (\S+)', line)
        if m:
            out[float(m.group(1))] = float(m.group(2))
    return out
records, found, unknown = int(records), int(found), int(unknown)
q_s, b_s = float(q_s), float(b_s)
out = {"phase": name, "records_applied": records, "lookups_found": found,
       "lookups_unknown": unknown, "query_cpu_s": q_s, "broker_cpu_s": b_s,
       "writer_s": float(wrote_s), "catchup_after_writer_s": float(catchup_s),
       "load_before": float(load)}
if os.path.exists(pace):
    out["writer"] = open(pace).read().strip()
if os.path.exists(results):
    r = json.load(open(results))
    out["lookups_per_s"] = r["lookups_per_s"]
    out["get_latency_ms"] = {k: r["latency_ms"][k] for k in ("p50", "p95", "p99", "p999", "max")}
    out["get_errors"] = r["errors"]
    # Inside the server (request read to answer written): what the client's
    # latency adds on top is queueing, the network stack and the scheduler.
    before, after = lookup_buckets(m0), lookup_buckets(m1)
    total = after.get(float("inf"), 0) - before.get(float("inf"), 0)
    if total > 0:
        for q, key in ((0.99, "server_p99_at_most_ms"), (0.999, "server_p999_at_most_ms")):
            bound = next((le for le in sorted(after)
                          if after[le] - before.get(le, 0) >= q * total), None)
            out[key] = None if bound in (None, float("inf")) else bound * 1000
if records and found + unknown == 0:
    out["query_us_per_record"] = round(q_s * 1e6 / records, 2)
if records:
    out["broker_us_per_record"] = round(b_s * 1e6 / records, 2)
if found + unknown and not records:
    out["query_us_per_lookup"] = round(q_s * 1e6 / (found + unknown), 2)
print(json.dumps(out))
PY
  say "phase $name: $(cat "$WORK/phase-$name.json")"
}
IFS=, read -r -a PHASE_LIST <<<"$PHASES"
for phase in "${PHASE_LIST[@]}"; do run_phase "$phase"; done

# ------------------------------------------------------------------ final check

say "checking the final counts of $(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$WORK/expected.json") domains"
CHECK_RC=0
python3 - "$URL" "$WORK/expected.json" >"$WORK/check.json" <<'PY' || CHECK_RC=$?
import json, sys, urllib.request
url, expected = sys.argv[1], json.load(open(sys.argv[2]))
names, bad = list(expected), []
for i in range(0, len(names), 1000):
    body = json.dumps({"domains": names[i:i + 1000]}).encode()
    req = urllib.request.Request(url + "/domains/lookup", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        for item in json.load(r)["results"]:
            want = expected[item["domain"]]
            got = [item.get("delivered"), item.get("bounced")]
            if got != want:
                bad.append({"domain": item["domain"], "expected": want, "got": got})
print(json.dumps({"checked": len(names), "mismatches": len(bad), "examples": bad[:5]}))
sys.exit(2 if bad else 0)
PY
say "final check: $(cat "$WORK/check.json")"

python3 - "$WORK" "$OUT" "$DOMAINS" "$RATE" "$DURATION" "$GET_RATE" "$PARTITIONS" "$SEED" \
  "$PHASES" "$(load1)" <<'PY'
import json, os, sys
work, out, domains, rate, duration, get_rate, partitions, seed, phases, load = sys.argv[1:]
summary = {"domains": int(domains), "rate": int(rate), "duration_s": int(duration),
           "get_rate": int(get_rate), "partitions": int(partitions), "seed": int(seed),
           "restore": json.load(open(os.path.join(work, "restore.json"))),
           "phases": [json.load(open(os.path.join(work, f"phase-{p}.json"))) for p in phases.split(",")],
           "final_check": json.load(open(os.path.join(work, "check.json"))),
           "load_at_end": float(load)}
r = summary["restore"]
lines = [f"query benchmark: {domains} domains, {rate} records/s, {get_rate} lookups/s, {duration} s per phase",
         f"restore: {r['records']} records in {r['seconds']} s ({r['records'] / max(r['seconds'], 1e-9):,.0f}/s), "
         f"{r['cpu_s'] * 1e6 / max(r['records'], 1):.2f} us of CPU per record"]
for p in summary["phases"]:
    s = f"{p['phase']:>9}: applied {p['records_applied']:,}, query CPU {p['query_cpu_s']} s"
    if "query_us_per_record" in p: s += f", query {p['query_us_per_record']} us/record"
    if "query_us_per_lookup" in p: s += f", query {p['query_us_per_lookup']} us/lookup"
    if p["records_applied"]: s += f", caught up {p['catchup_after_writer_s']} s after the writer"
    if "get_latency_ms" in p:
        l = p["get_latency_ms"]
        s += (f"; {p['lookups_per_s']:,.0f} lookups/s, p50 {l['p50']:.2f} p99 {l['p99']:.2f} "
              f"max {l['max']:.1f} ms, found {p['lookups_found']:,} unknown {p['lookups_unknown']:,}")
        if p.get("server_p99_at_most_ms") is not None:
            s += f"; in the server p99 <= {p['server_p99_at_most_ms']:g} ms"
    s += f" (load {p['load_before']})"
    lines.append(s)
c = summary["final_check"]
lines.append(f"final check: {c['checked']} domains, {c['mismatches']} mismatches")
json.dump(summary, open(os.path.join(out, "summary.json"), "w"), indent=2)
open(os.path.join(out, "summary.txt"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
exit "$CHECK_RC"
