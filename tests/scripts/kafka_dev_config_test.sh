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
# Sized as for a 16-core, 16 GB machine, so that production's sizing differs
# from dev's whatever machine runs the test.
unset KAFKA_PROFILE KAFKA_HEAP_OPTS KAFKA_JVM_OPTS KAFKA_EXTRA_PROPERTIES KAFKA_DEV_NODE_COUNT
export KAFKA_DEV_CORES=16 KAFKA_DEV_MEM_MB=16384

dev="$("$KAFKA_DEV" config)"
has dev "$dev" '# -Xms256m'
has dev "$dev" '# -Xmx1g'
has dev "$dev" 'num.network.threads=2'
has dev "$dev" 'num.io.threads=4'
hasnt dev "$dev" 'G1HeapRegionSize'
hasnt dev "$dev" 'socket.send.buffer.bytes'

prod="$(KAFKA_PROFILE=production "$KAFKA_DEV" config)"
has production "$prod" '# -Xms4096m'   # a quarter of 16 GB, fixed
has production "$prod" '# -Xmx4096m'
has production "$prod" '# -XX:G1HeapRegionSize=16M'
has production "$prod" '# -XX:MetaspaceSize=96m'
has production "$prod" '# -XX:+UseG1GC'
has production "$prod" 'num.network.threads=8'   # cores / 2
has production "$prod" 'num.io.threads=16'       # cores
has production "$prod" 'socket.send.buffer.bytes=1048576'
has production "$prod" 'num.replica.fetchers=2'

# Bounds: at most 6 GB on a big machine, at least 1 GB on a small one, and
# three nodes on one machine share its quarter.
has big "$(KAFKA_PROFILE=production KAFKA_DEV_MEM_MB=65536 "$KAFKA_DEV" config)" '# -Xmx6144m'
has small "$(KAFKA_PROFILE=production KAFKA_DEV_MEM_MB=2048 "$KAFKA_DEV" config)" '# -Xmx1024m'
has three-nodes "$(KAFKA_PROFILE=production KAFKA_DEV_NODE_COUNT=3 "$KAFKA_DEV" config)" '# -Xmx1365m'
has small-machine "$(KAFKA_PROFILE=production KAFKA_DEV_CORES=2 "$KAFKA_DEV" config)" 'num.io.threads=4'

# The operator's settings win: heap, JVM flags (after the profile's, as the
# JVM takes the last), broker properties (after the profile's).
over="$(KAFKA_PROFILE=production KAFKA_HEAP_OPTS='-Xms2g -Xmx2g' \
  KAFKA_JVM_OPTS='-XX:MaxGCPauseMillis=50' KAFKA_EXTRA_PROPERTIES='num.io.threads=6' \
  "$KAFKA_DEV" config)"
has overrides "$over" '# -Xmx2g'
hasnt overrides "$over" '-Xmx4096m'
[[ "$(grep '^# -XX:MaxGCPauseMillis=' <<<"$over" | tail -n 1)" == '# -XX:MaxGCPauseMillis=50' ]] \
  || fail "overrides: KAFKA_JVM_OPTS is not the last MaxGCPauseMillis"
[[ "$(grep '^num.io.threads=' <<<"$over" | tail -n 1)" == num.io.threads=6 ]] \
  || fail "overrides: KAFKA_EXTRA_PROPERTIES is not the last num.io.threads"

# --sasl adds the secured listeners to what start would write.
sasl="$("$KAFKA_DEV" config --sasl)"
grep -q '^listeners=.*SASL_SSL://.*SSL://' <<<"$sasl" || fail "config --sasl: no SASL_SSL and SSL listeners"
has sasl "$sasl" 'listener.name.ssl.ssl.client.auth=required'
hasnt plain "$dev" 'listener.name.ssl.ssl.client.auth'

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
