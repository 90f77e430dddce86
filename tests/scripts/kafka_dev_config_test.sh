#!/usr/bin/env bash
# scripts/kafka-dev's profiles, read through `kafka-dev config` (what `start`
# would run), so that no broker is started: the production profile gets a
# fixed heap, the documented G1 flags and threads sized from the cores; the
# dev profile stays small; an unknown profile is refused; the operator's
# KAFKA_HEAP_OPTS and KAFKA_EXTRA_PROPERTIES still win.
set -euo pipefail
KAFKA_DEV="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)/scripts/kafka-dev"
failures=0
fail() { printf 'FAIL: %s\n' "$*" >&2; failures=$((failures + 1)); }
has() {  # has NAME OUTPUT LINE: OUTPUT has LINE as a whole line
  grep -qxF -- "$3" <<<"$2" || fail "$1: no line '$3' in:"$'\n'"$2"
}
hasnt() {
  if grep -qF -- "$3" <<<"$2"; then fail "$1: unexpected '$3'"; fi
}
export KAFKA_DEV_DIR="${TMPDIR:-/tmp}/kafka-dev-config-test-$$"
cores="$(nproc)"

dev="$(env -u KAFKA_PROFILE -u KAFKA_HEAP_OPTS -u KAFKA_EXTRA_PROPERTIES "$KAFKA_DEV" config)"
has dev "$dev" '# -Xms256m'
has dev "$dev" '# -Xmx1g'
has dev "$dev" 'num.network.threads=2'
has dev "$dev" 'num.io.threads=4'
hasnt dev "$dev" 'G1HeapRegionSize'
hasnt dev "$dev" 'socket.send.buffer.bytes'

prod="$(env -u KAFKA_HEAP_OPTS -u KAFKA_EXTRA_PROPERTIES KAFKA_PROFILE=production "$KAFKA_DEV" config)"
xms="$(sed -n 's/^# -Xms//p' <<<"$prod")"
xmx="$(sed -n 's/^# -Xmx//p' <<<"$prod")"
[[ -n "$xms" && "$xms" == "$xmx" ]] || fail "production: heap not fixed (-Xms '$xms', -Xmx '$xmx')"
mem_mb="$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)"
want=$(( mem_mb / 4 )); (( want > 6144 )) && want=6144; (( want < 1024 )) && want=1024
[[ "$xmx" == "${want}m" ]] || fail "production: heap ${xmx}, want ${want}m (a quarter of ${mem_mb} MB, 1g-6g)"
has production "$prod" '# -XX:G1HeapRegionSize=16M'
has production "$prod" '# -XX:MetaspaceSize=96m'
has production "$prod" '# -XX:+UseG1GC'
has production "$prod" "num.network.threads=$(( cores / 2 > 2 ? cores / 2 : 2 ))"
has production "$prod" "num.io.threads=$(( cores > 4 ? cores : 4 ))"
has production "$prod" 'socket.send.buffer.bytes=1048576'
has production "$prod" 'num.replica.fetchers=2'

# Three nodes on one machine share its RAM: each gets a third of the heap.
three="$(env -u KAFKA_HEAP_OPTS KAFKA_PROFILE=production KAFKA_DEV_NODE_COUNT=3 "$KAFKA_DEV" config)"
want3=$(( mem_mb / 4 / 3 )); (( want3 > 6144 )) && want3=6144; (( want3 < 1024 )) && want3=1024
has three-nodes "$three" "# -Xmx${want3}m"

over="$(KAFKA_PROFILE=production KAFKA_HEAP_OPTS='-Xms2g -Xmx2g' \
  KAFKA_EXTRA_PROPERTIES='num.io.threads=6' "$KAFKA_DEV" config)"
has overrides "$over" '# -Xmx2g'
hasnt overrides "$over" "-Xmx${want}m"
[[ "$(grep '^num.io.threads=' <<<"$over" | tail -n 1)" == num.io.threads=6 ]] \
  || fail "overrides: KAFKA_EXTRA_PROPERTIES is not the last num.io.threads"

if err="$(KAFKA_PROFILE=fast "$KAFKA_DEV" config 2>&1)"; then
  fail "an unknown profile was accepted"
else
  grep -qF "KAFKA_PROFILE must be dev or production, got 'fast'" <<<"$err" \
    || fail "unknown profile: unclear error '$err'"
fi
[[ ! -e "$KAFKA_DEV_DIR" ]] || fail "config created $KAFKA_DEV_DIR"
rm -rf "$KAFKA_DEV_DIR"

if (( failures )); then echo "$failures failure(s)"; exit 1; fi
echo "kafka-dev config: dev and production profiles as documented"
