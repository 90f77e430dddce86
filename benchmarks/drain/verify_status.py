#!/usr/bin/env python3
"""Check a status topic's final counters against gen_events.py's expected counts.

Reads `key<TAB>value` lines (kcat -C -f '%k\\t%s\\n' -X isolation.level=read_committed)
from stdin; the last record of a key wins (the topics are compacted changelogs).
Skips catchall's internal `_checkpoint` key. Compares delivered, bounced and status
(DESIGN.md's rules with --threshold) of --sample domains drawn (seeded) from the
expected file (0 = every domain), and counts domains in the topic that were never sent.
Prints one JSON object; exit status 0 when nothing differs, 2 otherwise.
"""
import argparse
import json
import random
import sys


def status(delivered, bounced, threshold):
    if bounced >= 1:
        return "not catch-all"
    if delivered > threshold:
        return "catch-all"
    return "unknown"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--expected", required=True)
    ap.add_argument("--sample", type=int, default=1000, help="domains to check (0 = all)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threshold", type=int, default=1000)
    args = ap.parse_args()

    expected = {}
    with open(args.expected) as f:
        for line in f:
            d, dl, bo = line.rstrip("\n").split("\t")
            expected[d] = (int(dl), int(bo))

    last = {}
    records = 0
    for line in sys.stdin:
        line = line.rstrip("\n")
        if not line:
            continue
        key, _, value = line.partition("\t")
        if key == "_checkpoint" or key.startswith("_"):
            continue
        records += 1
        last[key] = value

    domains = sorted(expected)
    if 0 < args.sample < len(domains):
        domains = random.Random(args.seed).sample(domains, args.sample)

    mismatches = []
    missing = 0
    unparsable = 0
    for d in domains:
        dl, bo = expected[d]
        want = {"delivered": dl, "bounced": bo, "status": status(dl, bo, args.threshold)}
        v = last.get(d)
        if v is None:
            missing += 1
            got = None
        else:
            try:
                o = json.loads(v)
                got = {"delivered": o.get("delivered"), "bounced": o.get("bounced"), "status": o.get("status")}
            except ValueError:
                unparsable += 1
                got = {"raw": v}
        if got != want:
            mismatches.append({"domain": d, "expected": want, "actual": got})

    extra = sum(1 for k in last if k not in expected)
    tot_exp = [sum(c[0] for c in expected.values()), sum(c[1] for c in expected.values())]
    tot_got = [0, 0]
    for v in last.values():
        try:
            o = json.loads(v)
            tot_got[0] += int(o.get("delivered", 0))
            tot_got[1] += int(o.get("bounced", 0))
        except (ValueError, TypeError):
            pass
    result = {
        "ok": not mismatches and extra == 0 and tot_exp == tot_got,
        "checked_domains": len(domains),
        "expected_domains": len(expected),
        "topic_records": records,
        "topic_domains": len(last),
        "mismatches": len(mismatches),
        "missing": missing,
        "unparsable": unparsable,
        "extra_domains": extra,
        "expected_totals": {"delivered": tot_exp[0], "bounced": tot_exp[1]},
        "topic_totals": {"delivered": tot_got[0], "bounced": tot_got[1]},
        "examples": mismatches[:5],
    }
    print(json.dumps(result))
    return 0 if result["ok"] else 2


if __name__ == "__main__":
    sys.exit(main())
