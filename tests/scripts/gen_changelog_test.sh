#!/usr/bin/env bash
# benchmarks/query/gen_changelog.py: its domain names are catchall-bench's
# uniform names (the same three literals as
# UniformWorkloadTest.NamesAreTheOnesTheQueryBenchmarkWrites), its preload is
# one changelog record per domain, and the expected counts of its updates are
# those of each sampled domain's last record.
set -euo pipefail
GEN="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)/benchmarks/query/gen_changelog.py"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 - "$GEN" "$work" <<'PY'
import importlib.util, json, subprocess, sys
gen, work = sys.argv[1], sys.argv[2]
spec = importlib.util.spec_from_file_location("gen_changelog", gen)
g = importlib.util.module_from_spec(spec)
spec.loader.exec_module(g)
failures = []
def check(what, got, want):
    if got != want:
        failures.append(f"{what}: got {got!r}, want {want!r}")
check("name 42/0", g.domain_name(42, 0), "d0-372cf1d6.com")
check("name 42/1", g.domain_name(42, 1), "d1-2b8769fb.com")
check("name 1/123", g.domain_name(1, 123), "d123-5401e835.com")

pre = subprocess.run([sys.executable, gen, "preload", "--domains", "50", "--seed", "7"],
                     check=True, capture_output=True, text=True).stdout.splitlines()
check("preload records", len(pre), 50)
keys = [line.split("\t")[0] for line in pre]
check("preload keys", keys, [g.domain_name(7, i) for i in range(50)])
first = json.loads(pre[3].split("\t")[1])
check("preload value", first, {"domain": keys[3], "status": "not catch-all",
                               "delivered": 1 + 3 % 7, "bounced": 1})

subprocess.run([sys.executable, gen, "updates", "--domains", "500", "--seed", "7", "--records", "200",
                "--out", f"{work}/u.tsv", "--expected", f"{work}/e.json", "--sample", "10"], check=True)
lines = open(f"{work}/u.tsv").read().splitlines()
check("update records", len(lines), 200)
last = {}
for line in lines:
    key, value = line.split("\t")
    v = json.loads(value)
    check("update key is the domain", v["domain"], key)
    if key in last and v["delivered"] <= last[key][0]:
        failures.append(f"{key}: a later update is not larger ({v['delivered']} after {last[key][0]})")
    last[key] = [v["delivered"], v["bounced"]]
expected = json.load(open(f"{work}/e.json"))
updated = [d for d in expected if d in last]
untouched = [d for d in expected if d not in last]
check("sampled updated domains", len(updated), 10)
check("sampled untouched domains", len(untouched), 10)
for d in updated:
    check(f"expected {d}", expected[d], last[d])
for d in untouched:
    i = int(d[1:d.index("-")])
    check(f"expected untouched {d}", expected[d], [1 + i % 7, 1])
for f in failures:
    print("FAIL:", f, file=sys.stderr)
sys.exit(1 if failures else 0)
PY
echo "gen_changelog: ok"
