#!/usr/bin/env python3
"""Generate catchall.events records for the drain benchmark (benchmarks/drain/run.sh).

Writes one record per line to stdout as `key<TAB>value`, ready for
`kcat -P -K '\\t' -X partitioner=murmur2_random`: key = the normalized (lower-cased)
domain, value = a batch item `{"domain":"<key>","type":"delivered"|"bounced"}`
(with `--ids`, also `"id"`).

The workload is the "challenge" distribution of benchmarks/README.md (the same rules
as catchall-bench's `ChallengeWorkload`, with Python's seeded RNG instead of
SplitMix64, so the names differ from catchall-bench's): domain i is 14 random letters
(A-Z, a-z) plus one of .net/.com/.org/.io/.gov; it gets max = uniform 0..2499 events,
emitted as one burst, with 20 bursts interleaved (each event comes from a burst chosen
uniformly among the active ones). With b = floor(0.35 * max), event j (0-based) is a
bounce when b != 0 and j % b == 0, except that domains with i % 25 == 0 never bounce.
Generation stops after --events records (the last bursts are cut short; the expected
counts are those of the records actually written).

--expected FILE gets `domain<TAB>delivered<TAB>bounced` per domain (index collisions of
lower-cased names are merged).
"""
import argparse
import random
import sys

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
TLDS = (".net", ".com", ".org", ".io", ".gov")
MAX_EVENTS_EXCLUSIVE = 2500
INTERLEAVE = 20


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--expected", help="write expected counts (domain, delivered, bounced) here")
    ap.add_argument("--ids", action="store_true", help="give every event an \"id\" (<domain index>-<j>)")
    args = ap.parse_args()

    name_rng = random.Random(args.seed)            # names and event counts, in domain order
    pick_rng = random.Random(args.seed ^ 0x5DEECE66D)  # interleaving
    pick = pick_rng.random
    out = sys.stdout
    buf = []
    expected = {}  # domain -> [delivered, bounced]

    next_index = 0
    active = []  # [index, events, next_j, b, never_bounce, delivered_line, bounced_line, key]
    remaining = args.events
    written = 0
    bounces = 0

    def new_burst():
        nonlocal next_index
        while True:
            i = next_index
            next_index += 1
            name = "".join(name_rng.choice(LETTERS) for _ in range(14)) + name_rng.choice(TLDS)
            events = name_rng.randrange(MAX_EVENTS_EXCLUSIVE)
            if events == 0:
                continue
            key = name.lower()
            b = int(0.35 * events)
            prefix = key + '\t{"domain":"' + key + '","type":"'
            return [i, events, 0, b, i % 25 == 0, prefix + 'delivered"}\n', prefix + 'bounced"}\n', key]

    while remaining > 0:
        while len(active) < INTERLEAVE:
            active.append(new_burst())
        s = int(pick() * len(active))
        burst = active[s]
        j = burst[2]
        b = burst[3]
        bounce = b != 0 and not burst[4] and j % b == 0
        if args.ids:
            line = burst[6] if bounce else burst[5]
            line = line[:-2] + ',"id":"' + str(burst[0]) + "-" + str(j) + '"}\n'
        else:
            line = burst[6] if bounce else burst[5]
        buf.append(line)
        c = expected.get(burst[7])
        if c is None:
            c = expected[burst[7]] = [0, 0]
        if bounce:
            c[1] += 1
            bounces += 1
        else:
            c[0] += 1
        burst[2] = j + 1
        if burst[2] == burst[1]:
            active[s] = active[-1]
            active.pop()
        remaining -= 1
        written += 1
        if len(buf) >= 65536:
            out.write("".join(buf))
            buf.clear()
    out.write("".join(buf))
    out.flush()

    if args.expected:
        with open(args.expected, "w") as f:
            for d, (dl, bo) in expected.items():
                f.write(f"{d}\t{dl}\t{bo}\n")
    print(f"gen_events: {written} events, {len(expected)} domains, {bounces} bounces, seed {args.seed}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
