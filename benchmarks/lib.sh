# shellcheck shell=bash
# benchmarks/lib.sh: the shell helpers of the benchmark scripts (cluster/run.sh,
# drain/run.sh), sourced after `set -euo pipefail`:
#
#   PROG=drain
#   source "$SCRIPT_DIR/../lib.sh"
#
# Globals it reads (the caller sets them; only the functions named use them):
#   PROG                 name in front of every message (say, die)
#   PIDFILE              optional: start_bg appends "PID command line" to this file and
#                        stop_recorded_pids stops what an earlier run left in it
#   WAIT_LOAD, WAIT_MAX  wait_quiet: the load average to wait for ("" = do not wait)
#                        and the most seconds to wait
#   KAFKA_PORT, KAFKA_DEV_DIR  kafka_dev_broker_pid, ensure_broker: as for scripts/kafka-dev
# Globals it sets:
#   PIDS          PIDs started by start_bg, oldest first (the caller's cleanup stops
#                 them with stop_pid)
#   LAST_PID      the PID of the latest start_bg
#   HZ            clock ticks per second (CPU times in /proc are in ticks)
#   CHILD_CPU_MS  children_cpu_ms's result
#   CPU_TICKS     read_cpu_ticks's result
#   BROKER_STARTED, BROKER_PID  ensure_broker's results
#
# Functions (one line each; the details are at each function):
#   say MSG... / die MSG...        timestamped progress on stderr / error and exit 1
#   posint NAME VALUE              die unless VALUE is a positive integer
#   start_bg LOG CMD...            run CMD in the background, output to LOG (LAST_PID, PIDS)
#   stop_pid PID [SECONDS]         SIGTERM, wait, then SIGKILL; reaps it
#   cmdline_of PID                 a process's command line (first 200 characters)
#   stop_recorded_pids             stop the processes an earlier run listed in PIDFILE
#   load1 / wait_quiet             1-minute load average / wait for a quiet machine
#   cpu_ticks PID                  utime+stime of a process, all threads (0 if gone)
#   read_cpu_ticks PID             the same into CPU_TICKS, without a $(...) fork
#   thread_ticks PID               "ticks<TAB>thread name<TAB>thread id" per thread
#   machine_ticks                  "busy total irq" ticks of all CPUs (/proc/stat)
#   ticks_to_s T0 T1               (T1 - T0) ticks as seconds, 2 decimals (0 if T1 < T0)
#   children_cpu_ms FILE           CPU of this shell's reaped children, in ms (CHILD_CPU_MS)
#   kafka_dev_broker_pid           PID of the scripts/kafka-dev broker on KAFKA_PORT
#   ensure_broker KAFKA_DEV        use the running broker, or start one (BROKER_STARTED, BROKER_PID)
#   free_port                      a free TCP port on 127.0.0.1
#   wait_for_line FILE RE SECS PID wait until FILE has a line matching RE
#   json_write FILE KEY=VALUE...   write a JSON object (the one JSON writer of the scripts)
#
# Needs: bash 4.3+, python3 (free_port, json_write), awk, procps (none of it for
# cpu_ticks, which must stay cheap: it forks nothing).

[[ -n "${CATCHALL_BENCH_LIB:-}" ]] && return 0
CATCHALL_BENCH_LIB=1

PIDS=()
LAST_PID=""
CHILD_CPU_MS=0
CPU_TICKS=0
HZ="$(getconf CLK_TCK)"

say() { printf '%s: [%s] %s\n' "${PROG:-bench}" "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '%s: error: %s\n' "${PROG:-bench}" "$*" >&2; exit 1; }

# posint NAME VALUE: dies with "NAME must be a positive integer" unless VALUE is one.
posint() { [[ "$2" =~ ^[0-9]+$ && "$2" -gt 0 ]] || die "$1 must be a positive integer (got '$2')"; }

# ------------------------------------------------------------------ processes

# cmdline_of PID: the command line (arguments joined by spaces, first 200 characters);
# empty if the process is gone.
cmdline_of() { tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" | cut -c1-200 | sed 's/ *$//'; }

# start_bg LOG CMD...: runs CMD in the background with stdout and stderr to LOG; its
# PID goes to LAST_PID and PIDS. With PIDFILE set, it waits (at most 1 s) for the exec
# and appends "PID command line" to PIDFILE, so that stop_recorded_pids of a later run
# can stop it if this run is killed before its cleanup.
start_bg() {
  local log="$1"; shift
  "$@" >"$log" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
  if [[ -n "${PIDFILE:-}" ]]; then
    local self i
    self="$(cmdline_of $$)"
    for ((i = 0; i < 20; i++)); do [[ "$(cmdline_of "$LAST_PID")" != "$self" ]] && break; sleep 0.05; done
    echo "$LAST_PID $(cmdline_of "$LAST_PID")" >>"$PIDFILE"
  fi
}

# stop_pid PID [SECONDS]: SIGTERM, up to SECONDS (30) for it to exit, then SIGKILL;
# reaps it if it is a child of this shell. Returns 0 also if it was already gone.
stop_pid() {
  local pid="$1" wait_s="${2:-30}" i
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < wait_s * 10; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      say "PID $pid did not stop in ${wait_s}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || true
}

# stop_recorded_pids: stops (TERM, 2 s, KILL) the processes listed in PIDFILE by an
# earlier run of the same script that did not get to its cleanup, then deletes PIDFILE.
# A PID is touched only if its command line is still the recorded one, so a recycled
# PID is never killed.
stop_recorded_pids() {
  [[ -n "${PIDFILE:-}" && -f "$PIDFILE" ]] || return 0
  local pid cmd now
  while read -r pid cmd; do
    [[ -n "$pid" ]] || continue
    now="$(cmdline_of "$pid" || true)"
    if [[ -n "$now" && "$now" == "$cmd" ]]; then
      say "stopping PID $pid left by an earlier run"
      kill -TERM "$pid" 2>/dev/null || true
      sleep 2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done <"$PIDFILE"
  rm -f "$PIDFILE"
}

# ------------------------------------------------------------------ load and CPU

load1() { cut -d' ' -f1 /proc/loadavg; }

# wait_quiet: with WAIT_LOAD set, waits until the 1-minute load average is below it,
# checking every 10 s, for at most WAIT_MAX seconds (then it says so and returns).
wait_quiet() {
  [[ -n "${WAIT_LOAD:-}" ]] || return 0
  local waited=0
  while awk -v l="$(load1)" -v max="$WAIT_LOAD" 'BEGIN{exit !(l >= max)}'; do
    if ((waited >= WAIT_MAX)); then
      say "load $(load1) still >= $WAIT_LOAD after ${WAIT_MAX}s: running anyway"
      return 0
    fi
    ((waited % 60 == 0)) && say "waiting for the load average ($(load1)) to fall below $WAIT_LOAD..."
    sleep 10
    waited=$((waited + 10))
  done
}

# read_cpu_ticks PID: sets CPU_TICKS to utime+stime of the process, all its threads
# (/proc/PID/stat fields 14 and 15), in clock ticks (HZ per second); 0 if PID is empty
# or the process is gone. Forks nothing, so a polling loop may call it often.
# cpu_ticks PID: the same, printed (for $(...)).
read_cpu_ticks() {
  local pid="${1:-}" stat fields
  CPU_TICKS=0
  if [[ -z "$pid" ]] || ! read -r stat 2>/dev/null <"/proc/$pid/stat"; then
    return 0
  fi
  # Fields after the ")" that ends the command name: state is [0], utime [11], stime [12].
  read -r -a fields <<<"${stat##*) }"
  CPU_TICKS=$((fields[11] + fields[12]))
}
cpu_ticks() {
  read_cpu_ticks "${1:-}"
  echo "$CPU_TICKS"
}

# thread_ticks PID: one line per thread of the process, "ticks<TAB>thread name<TAB>thread
# id" (the id tells apart threads with no name of their own).
thread_ticks() {
  local task tstat tf
  for task in /proc/"$1"/task/*; do
    read -r tstat 2>/dev/null <"$task/stat" || continue
    read -r -a tf <<<"${tstat##*) }"
    printf '%s\t%s\t%s\n' "$((tf[11] + tf[12]))" "$(cat "$task/comm" 2>/dev/null)" "${task##*/}"
  done
}

# machine_ticks: "busy total irq" over all CPUs since boot, in ticks (/proc/stat):
# busy = user+nice+system+irq+softirq+steal, total = busy+idle+iowait,
# irq = irq+softirq (interrupts and softirqs, e.g. loopback networking, charged to no
# process).
machine_ticks() {
  awk '/^cpu /{busy=$2+$3+$4+$7+$8+$9; total=busy+$5+$6; print busy, total, $7+$8}' /proc/stat
}

# ticks_to_s T0 T1: (T1 - T0) ticks in seconds with 2 decimals; 0.00 if T1 < T0 (the
# process was gone at the second reading).
ticks_to_s() {
  local d=$(($2 - $1))
  ((d > 0)) || d=0
  local cs=$((d * 100 / HZ))
  printf '%d.%02d' $((cs / 100)) $((cs % 100))
}

# children_cpu_ms FILE: sets CHILD_CPU_MS to the user+system CPU time, in ms, of every
# child of this shell that has exited and been reaped so far (and of their reaped
# descendants): the second line of the `times` builtin, i.e. getrusage(RUSAGE_CHILDREN).
# FILE is scratch space: `times` must run in this shell, not in a $(...) subshell,
# whose children are not ours. The difference of two calls around `CMD & wait` is
# CMD's exact CPU time, provided no other child of the shell exits in between (a
# command substitution between the two calls counts too).
children_cpu_ms() {
  times >"$1"
  local _self user sys
  { read -r _self; read -r user sys; } <"$1"
  _times_ms "$user"
  CHILD_CPU_MS=$_TIMES_MS
  _times_ms "$sys"
  CHILD_CPU_MS=$((CHILD_CPU_MS + _TIMES_MS))
}
_times_ms() {  # "1m2.345s" (or "1m2,345s") -> _TIMES_MS=62345; no fork (see above)
  local t="${1%s}" min sec frac
  min="${t%%m*}"
  sec="${t#*m}"
  sec="${sec//,/.}"
  frac="${sec#*.}"
  [[ "$frac" == "$sec" ]] && frac=0
  frac="${frac}000"
  _TIMES_MS=$((10#$min * 60000 + 10#${sec%%.*} * 1000 + 10#${frac:0:3}))
}

# kafka_dev_broker_pid: the PID of the broker's JVM that scripts/kafka-dev runs on
# KAFKA_PORT (9092): its state dir (KAFKA_DEV_DIR, default
# /tmp/catchall-kafka-dev-$KAFKA_PORT) has kafka.pid, written by the wrapper that then
# execs java. Empty if there is none or it is not a running java.
kafka_dev_broker_pid() {
  local dir="${KAFKA_DEV_DIR:-/tmp/catchall-kafka-dev-${KAFKA_PORT:-9092}}" pid
  pid="$(tr -dc '0-9' 2>/dev/null <"$dir/kafka.pid" || true)"
  [[ -n "$pid" && "$(cmdline_of "$pid")" == *java* ]] && echo "$pid"
  return 0
}

# ensure_broker KAFKA_DEV: uses the broker scripts/kafka-dev runs on KAFKA_PORT
# (left running), or starts one, only on the default port 9092, and sets
# BROKER_STARTED=1 first, so that the caller's cleanup stops it even if the
# start fails half-way. Sets BROKER_PID (empty if it cannot be found: the
# broker's CPU is then not measured).
ensure_broker() {
  local kafka_dev="$1"
  BROKER_STARTED=0
  if "$kafka_dev" status >/dev/null 2>&1; then
    say "broker: $("$kafka_dev" status) (already running; left running)"
  else
    [[ "${KAFKA_PORT:-9092}" == 9092 ]] \
      || die "no broker on port $KAFKA_PORT, and this script starts one only on the default port 9092"
    say "no broker on port ${KAFKA_PORT:-9092}: starting one (scripts/kafka-dev start)"
    BROKER_STARTED=1
    "$kafka_dev" start >&2 || die "scripts/kafka-dev start failed"
  fi
  BROKER_PID="$(kafka_dev_broker_pid)"
  [[ -n "$BROKER_PID" ]] \
    || say "no broker PID in ${KAFKA_DEV_DIR:-/tmp/catchall-kafka-dev-${KAFKA_PORT:-9092}}: the broker's CPU is not measured"
}

# ------------------------------------------------------------------ ports, logs

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_for_line FILE PATTERN SECONDS PID: waits until FILE has a line matching the grep
# pattern; returns 1 if PID exits first or SECONDS pass.
wait_for_line() {
  local f="$1" pat="$2" secs="$3" pid="$4" i
  for ((i = 0; i < secs * 10; i++)); do
    grep -q "$pat" "$f" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# ------------------------------------------------------------------ JSON

# json_write FILE ARG...: writes one JSON object (one line) to FILE. Each ARG is
#   KEY=TEXT    a string
#   KEY:=JSON   any JSON value: a number, true, null, an object...; empty means null
# and KEY may be a dotted path (cpu_s.broker:=1.5 makes {"cpu_s": {"broker": 1.5}}).
# This is the only way the scripts write JSON by themselves; their reports are Python.
json_write() {
  python3 - "$@" <<'PY'
import json, sys
out, doc = sys.argv[1], {}
for arg in sys.argv[2:]:
    eq = arg.find("=")
    if eq <= 0:
        sys.exit(f"json_write: '{arg}' is not KEY=TEXT or KEY:=JSON")
    key, raw = arg[:eq], arg[eq + 1:]
    if key.endswith(":"):
        key = key[:-1]
        try:
            value = json.loads(raw) if raw.strip() else None
        except ValueError:
            sys.exit(f"json_write: the value of '{key}' is not JSON: {raw!r}")
    else:
        value = raw
    *parents, leaf = key.split(".")
    node = doc
    for p in parents:
        node = node.setdefault(p, {})
    node[leaf] = value
with open(out, "w") as f:
    json.dump(doc, f)
    f.write("\n")
PY
}
