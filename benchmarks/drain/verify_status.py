#!/usr/bin/env python3
"""Check a status topic's final counters against gen_events.py's expected counts.

Reads `key<TAB>value` lines (kcat -C -f '%k\\t%s\\n' -X isolation.level=read_committed)
from stdin; the last record of a key wins (the topics are compacted changelogs).
Skips catchall's internal `_checkpoint` key. Compares delivered, bounced and status
(DESIGN.md's rules with --threshold) of --sample domains drawn (seeded) from the
expected domains (0 = every domain), compares the totals over all domains, and counts
domains in the topic that were never sent.

The expected file is either form gen_events.py writes: the challenge's text file
(domain, delivered, bounced per line), or the uniform workload's JSON header line and
two uint32 arrays indexed by domain. For the latter the topic's counters are kept in
arrays as well (a domain's name gives its index), so 10M domains fit in ~100 MB.
Prints one JSON object; exit status 0 when nothing differs, 2 otherwise.
"""
import argparse
import io
import json
import os
import random
import sys
from array import array

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from gen_events import uniform_index, uniform_name  # noqa: E402

STATUS_NAMES = ("unknown", "catch-all", "not catch-all")


def status(delivered, bounced, threshold):
    if bounced >= 1:
        return "not catch-all"
    if delivered > threshold:
        return "catch-all"
    return "unknown"


def records(stream):
    """(key, value) of the topic's records, internal keys skipped."""
    for line in stream:
        line = line.rstrip("\n")
        if not line:
            continue
        key, _, value = line.partition("\t")
        if key.startswith("_"):
            continue
        yield key, value


def parse_counts(value):
    """(delivered, bounced, status) of a status record, or None if unparsable."""
    try:
        o = json.loads(value)
        return int(o.get("delivered", 0)), int(o.get("bounced", 0)), o.get("status")
    except (ValueError, TypeError, AttributeError):
        return None


def check_text(args, expected_file):
    """The challenge's expected file: a dict of every domain."""
    expected = {}
    for line in expected_file:
        d, dl, bo = line.rstrip("\n").split("\t")
        expected[d] = (int(dl), int(bo))

    last = {}
    n_records = 0
    for key, value in records(sys.stdin):
        n_records += 1
        last[key] = value

    domains = sorted(expected)
    if 0 < args.sample < len(domains):
        domains = random.Random(args.seed).sample(domains, args.sample)

    mismatches, missing, unparsable = [], 0, 0
    for d in domains:
        dl, bo = expected[d]
        want = {"delivered": dl, "bounced": bo, "status": status(dl, bo, args.threshold)}
        v = last.get(d)
        if v is None:
            missing += 1
            got = None
        else:
            c = parse_counts(v)
            if c is None:
                unparsable += 1
                got = {"raw": v}
            else:
                got = {"delivered": c[0], "bounced": c[1], "status": c[2]}
        if got != want:
            mismatches.append({"domain": d, "expected": want, "actual": got})

    tot_got = [0, 0]
    for v in last.values():
        c = parse_counts(v)
        if c is not None:
            tot_got[0] += c[0]
            tot_got[1] += c[1]
    return {
        "checked_domains": len(domains), "expected_domains": len(expected),
        "topic_records": n_records, "topic_domains": len(last),
        "mismatches": mismatches, "missing": missing, "unparsable": unparsable,
        "extra_domains": sum(1 for k in last if k not in expected),
        "expected_totals": [sum(c[0] for c in expected.values()), sum(c[1] for c in expected.values())],
        "topic_totals": tot_got,
    }


def check_uniform(args, header, expected_file):
    """The uniform workload's expected arrays; the topic's last counters by index."""
    n, seed = header["domain_space"], header["seed"]
    exp_d, exp_b = array("I"), array("I")
    exp_d.fromfile(expected_file, n)
    exp_b.fromfile(expected_file, n)

    got_d, got_b = array("Q", bytes(8 * n)), array("Q", bytes(8 * n))
    got_status = bytearray(n)  # 0 = not in the topic, 1 + index in STATUS_NAMES, 255 = other
    n_records = unparsable = 0
    extra = {}  # name -> (delivered, bounced) of keys that are not domains of the workload
    status_code = {s: k + 1 for k, s in enumerate(STATUS_NAMES)}
    for key, value in records(sys.stdin):
        n_records += 1
        c = parse_counts(value)
        i = uniform_index(seed, key, n)
        if i is None or (exp_d[i] == 0 and exp_b[i] == 0):
            extra[key] = c or (0, 0, None)
            continue
        if c is None:
            unparsable += 1
            got_status[i] = 255
            continue
        got_d[i], got_b[i] = c[0], c[1]
        got_status[i] = status_code.get(c[2], 255)

    sent = [i for i in range(n) if exp_d[i] or exp_b[i]]
    domains = sent
    if 0 < args.sample < len(sent):
        domains = random.Random(args.seed).sample(sent, args.sample)
    mismatches, missing = [], 0
    for i in domains:
        dl, bo = exp_d[i], exp_b[i]
        want = {"delivered": dl, "bounced": bo, "status": status(dl, bo, args.threshold)}
        code = got_status[i]
        if code == 0:
            missing += 1
            got = None
        else:
            got = {"delivered": got_d[i], "bounced": got_b[i],
                   "status": STATUS_NAMES[code - 1] if code <= len(STATUS_NAMES) else "?"}
        if got != want:
            mismatches.append({"domain": uniform_name(seed, i), "expected": want, "actual": got})

    return {
        "checked_domains": len(domains), "expected_domains": len(sent),
        "topic_records": n_records, "topic_domains": sum(1 for s in got_status if s) + len(extra),
        "mismatches": mismatches, "missing": missing, "unparsable": unparsable,
        "extra_domains": len(extra),
        "expected_totals": [sum(exp_d), sum(exp_b)],
        "topic_totals": [sum(got_d) + sum(c[0] for c in extra.values()),
                         sum(got_b) + sum(c[1] for c in extra.values())],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--expected", required=True)
    ap.add_argument("--sample", type=int, default=1000, help="domains to check (0 = all)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the sample")
    ap.add_argument("--threshold", type=int, default=1000)
    args = ap.parse_args()

    with open(args.expected, "rb") as f:
        first = f.readline()
        if first.startswith(b"{"):
            r = check_uniform(args, json.loads(first), f)
        else:
            f.seek(0)
            r = check_text(args, io.TextIOWrapper(f, encoding="utf-8"))

    mismatches = r.pop("mismatches")
    tot_exp, tot_got = r.pop("expected_totals"), r.pop("topic_totals")
    result = {
        "ok": not mismatches and r["extra_domains"] == 0 and tot_exp == tot_got,
        **r,
        "mismatches": len(mismatches),
        "expected_totals": {"delivered": tot_exp[0], "bounced": tot_exp[1]},
        "topic_totals": {"delivered": tot_got[0], "bounced": tot_got[1]},
        "examples": mismatches[:5],
    }
    print(json.dumps(result))
    return 0 if result["ok"] else 2


if __name__ == "__main__":
    sys.exit(main())
