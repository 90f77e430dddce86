#!/usr/bin/env bash
# Measures catchall and the nginx-204 baseline with the same client and the
# same flags, one right after the other, and prints the throughput ratio,
# with the CPU each server and the client spent per request.
#
#   benchmarks/compare-nginx.sh [--client bench|wrk|both] [--rounds N]
#                               CATCHALL_URL [catchall-bench flags...]
#
# e.g. benchmarks/compare-nginx.sh http://127.0.0.1:8080 --mode put --duration 10 --warmup 2
#      benchmarks/compare-nginx.sh --client both http://127.0.0.1:8080 --mode put --verify
#      benchmarks/compare-nginx.sh https://127.0.0.1:8443 --insecure --duration 10
# --client bench (the default) drives both servers with catchall-bench and
# the flags given; wrk drives them with wrk instead (WRK_THREADS 1,
# WRK_CONNECTIONS 64, WRK_DURATION 10 s, PUTs over WRK_DOMAINS 5000 domains
# from benchmarks/wrk-put.lua), and checks through the server's metrics that
# catchall accepted every PUT wrk saw answered; both runs each. --rounds
# repeats the pairs, alternating, so that a noisy machine shows as spread.
# With --verify only catchall's counts are checked; nginx-204 gets the same
# requests (an Idempotency-Key per PUT, --idempotency-keys) without the check.
# An https:// URL is compared with nginx-204's HTTPS listener (pass --insecure
# or --ca; both servers get the same flags; wrk is plain HTTP only). The
# catchall server must already be running on this machine (its PID is found
# from its port). nginx-204 is started (and stopped again) if it is not
# running. Results: $OUT/nginx and $OUT/catchall (OUT defaults to
# bench-results/compare). Env: BENCH (the catchall-bench binary; default
# build/release/catchall-bench).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
PROG=compare-nginx
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$here/lib.sh"
BENCH="${BENCH:-$root/build/release/catchall-bench}"
OUT="${OUT:-bench-results/compare}"
NGINX_URL="http://127.0.0.1:${NGINX_204_PORT:-18204}"
WRK_THREADS="${WRK_THREADS:-1}"
WRK_CONNECTIONS="${WRK_CONNECTIONS:-64}"
WRK_DURATION="${WRK_DURATION:-10}"
export WRK_DOMAINS="${WRK_DOMAINS:-5000}"

client=bench
rounds=1
while (($#)); do
  case "$1" in
    --client) client="${2:-}"; shift 2 ;;
    --rounds) posint "$1" "${2:-}"; rounds="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) break ;;
  esac
done
[[ "$client" =~ ^(bench|wrk|both)$ ]] || die "--client must be bench, wrk or both (got '$client')"
if [[ $# -lt 1 ]]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
  exit 1
fi
catchall_url="$1"
shift
if [[ "$catchall_url" == https://* ]]; then
  NGINX_URL="https://127.0.0.1:${NGINX_204_TLS_PORT:-18205}"
  [[ "$client" == bench ]] || die "wrk is run over plain HTTP only: use --client bench for https"
fi
if [[ "$client" != bench ]] && ! command -v wrk >/dev/null; then
  die "wrk is not installed (apt-get install wrk; scripts/install-deps installs it)"
fi

started_nginx=0
if ! "$here/nginx-204.sh" status >/dev/null 2>&1; then
  "$here/nginx-204.sh" start >/dev/null
  started_nginx=1
fi
cleanup() { if [[ $started_nginx == 1 ]]; then "$here/nginx-204.sh" stop >/dev/null; fi; }
trap cleanup EXIT

# server_pids URL: the PIDs listening on the URL's port (nginx: master and
# workers; the master spends nothing per request).
server_pids() {
  local port="${1##*:}"
  port="${port%%/*}"
  ss -Hltnp "sport = :$port" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u
}
# nginx's workers are children of the listening master.
nginx_pids() {
  local p
  for p in $(server_pids "$NGINX_URL"); do echo "$p"; pgrep -P "$p" || true; done | sort -u
}
ticks_of() {
  local sum=0 p
  for p in "$@"; do read_cpu_ticks "$p"; sum=$((sum + CPU_TICKS)); done
  echo "$sum"
}
# metric URL NAME: the sum of a metric's samples on catchall's /metrics.
metric() {
  curl -fsS "$1/metrics" 2>/dev/null \
    | awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $NF } END { printf "%.0f\n", s }'
}

catchall_pids="$(server_pids "$catchall_url")"
[[ -n "$catchall_pids" ]] || die "nothing listens on $catchall_url on this machine"
# shellcheck disable=SC2086  # word splitting of the PID lists is intended
declare -A pids=([nginx]="$(nginx_pids)" [catchall]="$catchall_pids")
declare -A urls=([nginx]="$NGINX_URL" [catchall]="$catchall_url")
scratch="$(mktemp)"
trap 'cleanup; rm -f "$scratch"' EXIT

# run_bench NAME: one catchall-bench run; sets RATE, P99, SERVER_US, CLIENT_US.
run_bench() {
  local name="$1" s0 s1
  # shellcheck disable=SC2086
  s0="$(ticks_of ${pids[$name]})"
  children_cpu_ms "$scratch"
  local c0=$CHILD_CPU_MS
  local args=("${BENCH_ARGS[@]}")
  if [[ "$name" == nginx ]]; then
    # nginx-204 counts nothing: verifying it would only fail. It still gets
    # the same requests: --verify sends an Idempotency-Key with every PUT
    # (and an id with every batch item), so nginx's run sends them too
    # (--idempotency-keys); otherwise the client would do less work, and
    # leave more of the shared cores to the server, against nginx only.
    local a verify=0 keys=0
    args=()
    for a in "${BENCH_ARGS[@]}"; do
      [[ "$a" == --idempotency-keys ]] && keys=1
      if [[ "$a" == --verify || "$a" == --verify-all ]]; then verify=1; else args+=("$a"); fi
    done
    if ((verify && !keys)); then args+=(--idempotency-keys); fi
  fi
  "$BENCH" --target "${urls[$name]}" --quiet --label "$name" --out "$OUT/$name" "${args[@]}" &
  wait $! || die "catchall-bench against $name failed"
  children_cpu_ms "$scratch"
  local c1=$CHILD_CPU_MS
  # shellcheck disable=SC2086
  s1="$(ticks_of ${pids[$name]})"
  # CPU is measured over the whole run (warmup and any --verify lookups
  # included), so it is divided by every request sent, not by the rate.
  local sent
  read -r RATE P99 sent < <(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print(r["throughput_per_s"], r["latency_ms"]["p99"], r["requests"]["sent"])
' "$OUT/$name/results.json")
  per_request_us "$s0" "$s1" "$c0" "$c1" "$RATE" "$sent"
}

# run_wrk NAME: one wrk run; sets RATE, P99, SERVER_US, CLIENT_US and, for
# catchall, checks the accepted events against the PUTs answered.
run_wrk() {
  local name="$1"
  local s0 s1 accepted0=0 accepted1 log="$OUT/$name/wrk.txt"
  mkdir -p "$OUT/$name"
  if [[ "$name" == catchall ]]; then
    accepted0="$(metric "$catchall_url" catchall_ingest_events_accepted_total)"
  fi
  # shellcheck disable=SC2086
  s0="$(ticks_of ${pids[$name]})"
  children_cpu_ms "$scratch"
  local c0=$CHILD_CPU_MS
  wrk -t "$WRK_THREADS" -c "$WRK_CONNECTIONS" -d "${WRK_DURATION}s" --latency \
    -s "$here/wrk-put.lua" "${urls[$name]}" >"$log" 2>&1 &
  wait $! || die "wrk against $name failed: $(tail -n 3 "$log")"
  children_cpu_ms "$scratch"
  local c1=$CHILD_CPU_MS
  # shellcheck disable=SC2086
  s1="$(ticks_of ${pids[$name]})"
  RATE="$(awk '/^Requests\/sec:/ { print $2 }' "$log")"
  P99="$(awk '$1 == "99%" { v = $2; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 }
          else if (v ~ /ms$/) { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 }
          print v }' "$log")"
  local total non2xx
  total="$(awk '/requests in/ { print $1 }' "$log")"
  non2xx="$(awk '/Non-2xx/ { print $NF }' "$log")"
  non2xx="${non2xx:-0}"
  if [[ "$name" == catchall ]]; then
    # Answered PUTs must all be accepted; the server may have accepted up to
    # one more per connection (answered after wrk stopped reading).
    sleep 0.5
    accepted1="$(metric "$catchall_url" catchall_ingest_events_accepted_total)"
    local got=$((accepted1 - accepted0)) answered=$((total - non2xx))
    if ((non2xx > 0 || got < answered || got > answered + WRK_CONNECTIONS)); then
      die "catchall answered $answered PUTs with 2xx and $non2xx otherwise, but accepted $got"
    fi
    say "wrk: catchall answered $answered PUTs 204, accepted $got (in flight at the end: $((got - answered)))"
  fi
  per_request_us "$s0" "$s1" "$c0" "$c1" "$RATE" "$total"
}

# per_request_us S0 S1 C0 C1 RATE REQUESTS: server CPU (ticks) and client
# CPU (ms) per request, in µs, into SERVER_US and CLIENT_US.
per_request_us() {
  local requests="$6"
  read -r SERVER_US CLIENT_US < <(awk -v s="$(($2 - $1))" -v c="$(($4 - $3))" -v n="$requests" \
    -v hz="$HZ" 'BEGIN { if (n < 1) n = 1; printf "%.1f %.1f\n", s / hz * 1e6 / n, c * 1000 / n }')
}

BENCH_ARGS=("$@")
clients=()
[[ "$client" == bench || "$client" == both ]] && clients+=(bench)
[[ "$client" == wrk || "$client" == both ]] && clients+=(wrk)
for ((round = 1; round <= rounds; round++)); do
  for c in "${clients[@]}"; do
    declare -A rate=() p99=() server=() client_us=()
    for name in nginx catchall; do
      echo "== round $round, $c: $name (${urls[$name]})"
      "run_$c" "$name"
      rate[$name]="$RATE"
      p99[$name]="$P99"
      server[$name]="$SERVER_US"
      client_us[$name]="$CLIENT_US"
    done
    awk -v c="$c" -v r="$round" -v cr="${rate[catchall]}" -v nr="${rate[nginx]}" \
      -v cp="${p99[catchall]}" -v np="${p99[nginx]}" -v cs="${server[catchall]}" \
      -v ns="${server[nginx]}" -v cc="${client_us[catchall]}" -v nc="${client_us[nginx]}" \
      'BEGIN { printf "== ratio (round %d, %s): catchall %.0f/s vs nginx-204 %.0f/s = %.1f%%; p99 %s ms vs %s ms; server CPU %s vs %s us/request; client CPU %s vs %s us/request\n", r, c, cr, nr, (nr > 0 ? 100 * cr / nr : 0), cp, np, cs, ns, cc, nc }'
  done
done
