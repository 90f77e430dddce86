#!/usr/bin/env bash
# Measures catchall and the nginx-204 baseline with the same client and the
# same flags, one right after the other, and prints the throughput ratio.
#
#   benchmarks/compare-nginx.sh CATCHALL_URL [catchall-bench flags...]
#
# e.g. benchmarks/compare-nginx.sh http://127.0.0.1:8080 --mode put --duration 10 --warmup 2
#      benchmarks/compare-nginx.sh https://127.0.0.1:8443 --insecure --duration 10
# An https:// URL is compared with nginx-204's HTTPS listener (pass --insecure
# or --ca; both servers get the same flags). The catchall server must
# already be running. nginx-204 is started (and
# stopped again) if it is not running. Results: $OUT/nginx and $OUT/catchall
# (OUT defaults to bench-results/compare). Env: BENCH (the catchall-bench
# binary; default build/release/catchall-bench).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
BENCH="${BENCH:-$root/build/release/catchall-bench}"
OUT="${OUT:-bench-results/compare}"
NGINX_URL="http://127.0.0.1:${NGINX_204_PORT:-18204}"

if [[ $# -lt 1 ]]; then
  sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
  exit 1
fi
catchall_url="$1"
shift
if [[ "$catchall_url" == https://* ]]; then
  NGINX_URL="https://127.0.0.1:${NGINX_204_TLS_PORT:-18205}"
fi

started_nginx=0
if ! "$here/nginx-204.sh" status >/dev/null 2>&1; then
  "$here/nginx-204.sh" start >/dev/null
  started_nginx=1
fi
cleanup() { if [[ $started_nginx == 1 ]]; then "$here/nginx-204.sh" stop >/dev/null; fi; }
trap cleanup EXIT

echo "== nginx-204 ($NGINX_URL)"
"$BENCH" --target "$NGINX_URL" --quiet --label nginx-204 --out "$OUT/nginx" "$@"
echo "== catchall ($catchall_url)"
"$BENCH" --target "$catchall_url" --quiet --label catchall --out "$OUT/catchall" "$@"

python3 - "$OUT/nginx/results.json" "$OUT/catchall/results.json" <<'PY'
import json, sys
n, c = (json.load(open(p)) for p in sys.argv[1:3])
ratio = c["throughput_per_s"] / n["throughput_per_s"] if n["throughput_per_s"] else float("nan")
print(f"== ratio: catchall {c['throughput_per_s']:,.0f}/s vs nginx-204 {n['throughput_per_s']:,.0f}/s"
      f" = {ratio:.1%}; p99 {c['latency_ms']['p99']} ms vs {n['latency_ms']['p99']} ms")
PY
