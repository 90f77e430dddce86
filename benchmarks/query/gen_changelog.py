#!/usr/bin/env python3
"""Changelog records for the query benchmark (benchmarks/query/run.sh).

Writes `key<TAB>value` lines for `kcat -P -K '\\t' -X partitioner=murmur2_random`:
key = a domain of catchall-bench's uniform workload (the same names for the same
--seed, so `catchall-bench --mode get --workload uniform` looks up domains that
exist), value = a domain record of the changelog as an aggregator writes it,
{"domain":...,"status":...,"delivered":N,"bounced":M} (docs/architecture.md).

  preload  one record per domain 0..N-1: delivered = 1 + i % 7, bounced = 1 (every
           domain is "not catch-all", so the query node's
           catchall_query_answers_total{status="not catch-all"} counts the lookups
           that found their domain)
  updates  --records R records to a file, each for a domain chosen uniformly at random
           (Python's RNG seeded with --seed); update j of domain i carries delivered =
           1 + i % 7 + j + 1, so the last record of a domain is its largest.
           --expected FILE gets the final counts of up to --sample of the domains
           updated last and as many domains never updated, as JSON
           {"domain": [delivered, bounced], ...} for the final check.
  pace     copies stdin to stdout at --rate lines/s, in 100 slices a second; prints
           the achieved rate to stderr at the end.
"""
import argparse
import json
import random
import sys
import time

M64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
STREAM_SALT = 0x632BE59BD9B4E019


def mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def domain_name(seed, i):
    """catchall-bench's UniformWorkload::AppendDomainName (benchmarks/bench/workload.cc):
    d<i>-<top 32 bits of Mix64(StreamSeed(seed, i)), 8 hex digits>.com."""
    stream_seed = mix64((seed * GOLDEN + mix64((i + STREAM_SALT) & M64)) & M64)
    return "d%d-%08x.com" % (i, mix64(stream_seed) >> 32)


def record(name, delivered, bounced):
    status = "not catch-all" if bounced else ("catch-all" if delivered > 1000 else "unknown")
    return '%s\t{"domain":"%s","status":"%s","delivered":%d,"bounced":%d}\n' % (
        name, name, status, delivered, bounced)


def preload(args):
    out = sys.stdout
    chunk = []
    for i in range(args.domains):
        chunk.append(record(domain_name(args.seed, i), 1 + i % 7, 1))
        if len(chunk) == 10000:
            out.write("".join(chunk))
            chunk.clear()
    out.write("".join(chunk))


def updates(args):
    rng = random.Random(args.seed)
    last = {}
    with open(args.out, "w") as out:
        chunk = []
        for j in range(args.records):
            i = rng.randrange(args.domains)
            delivered = 1 + i % 7 + j + 1
            last[i] = delivered
            chunk.append(record(domain_name(args.seed, i), delivered, 1))
            if len(chunk) == 10000:
                out.write("".join(chunk))
                chunk.clear()
        out.write("".join(chunk))
    expected = {}
    for i in list(last)[-args.sample:]:
        expected[domain_name(args.seed, i)] = [last[i], 1]
    untouched = 0
    i = 0
    while untouched < args.sample and i < args.domains:
        if i not in last:
            expected[domain_name(args.seed, i)] = [1 + i % 7, 1]
            untouched += 1
        i += 1
    with open(args.expected, "w") as f:
        json.dump(expected, f)


def pace(args):
    slice_lines = max(1, round(args.rate / 100))
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    start = time.monotonic()
    sent = 0
    while True:
        lines = [line for line in (inp.readline() for _ in range(slice_lines)) if line]
        if not lines:
            break
        out.write(b"".join(lines))
        out.flush()
        sent += len(lines)
        # Sleep until slice `sent / slice_lines` is due: the schedule, not the
        # time each write took, sets the rate.
        due = start + sent / args.rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    elapsed = time.monotonic() - start
    print("paced %d lines in %.1f s: %.0f lines/s" % (sent, elapsed, sent / max(elapsed, 1e-9)),
          file=sys.stderr)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("preload")
    a.add_argument("--domains", type=int, required=True)
    a.add_argument("--seed", type=int, required=True)
    a = sub.add_parser("updates")
    a.add_argument("--domains", type=int, required=True)
    a.add_argument("--seed", type=int, required=True)
    a.add_argument("--records", type=int, required=True)
    a.add_argument("--out", required=True)
    a.add_argument("--expected", required=True)
    a.add_argument("--sample", type=int, default=1000)
    a = sub.add_parser("pace")
    a.add_argument("--rate", type=float, required=True)
    args = p.parse_args()
    try:
        {"preload": preload, "updates": updates, "pace": pace}[args.cmd](args)
    except BrokenPipeError:
        sys.exit(1)


if __name__ == "__main__":
    main()
