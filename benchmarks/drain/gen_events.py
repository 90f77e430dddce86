#!/usr/bin/env python3
"""Generate catchall.events records for the drain benchmark (benchmarks/drain/run.sh).

Writes one record per line to stdout as `key<TAB>value`, ready for
`kcat -P -K '\\t' -X partitioner=murmur2_random`: key = the normalized (lower-cased)
domain, value = a batch item `{"domain":"<key>","type":"delivered"|"bounced"}`
(with `--ids`, also `"id"`). Exactly --events records are written.

Workloads (`--workload`), both seeded (`--seed`):

challenge (default): the distribution of benchmarks/README.md (the same rules as
  catchall-bench's `ChallengeWorkload`, with Python's seeded RNG instead of SplitMix64,
  so the names differ from catchall-bench's): domain i is 14 random letters (A-Z, a-z)
  plus one of .net/.com/.org/.io/.gov; it gets max = uniform 0..2499 events, emitted as
  one burst, with 20 bursts interleaved (each event comes from a burst chosen uniformly
  among the active ones). With b = floor(0.35 * max), event j (0-based) is a bounce when
  b != 0 and j % b == 0, except that domains with i % 25 == 0 never bounce. The last
  bursts are cut short. Ids: "<domain index>-<j>".

uniform: every event picks domain i uniformly from --domains N (10,000,000), named
  `d<i>-<8 hex digits of a seeded hash of i>.com` (uniform_name; the shape of
  catchall-bench's uniform names, not the same names), and is a bounce with probability
  --bounce-probability (0.002). Ids: "e<event number>".

--duplicates P (with --ids): each record is, with probability P, a copy of one of the
last 1000 events (same key, value and id) instead of a new event: a retry that both
consumers must count once. The expected counts are those of the distinct events.

--expected FILE gets the expected counts:
  challenge: a text file, `domain<TAB>delivered<TAB>bounced` per domain (index
    collisions of lower-cased names are merged);
  uniform: one JSON header line ({"workload": "uniform", "seed": S, "domain_space": N})
    followed by two arrays of N native uint32: delivered, then bounced, of domain i.
    verify_status.py reads both forms; at 10M domains this is 80 MB instead of a
    dictionary of millions of names.
--stats FILE gets a JSON summary (records, events, duplicates, domains, bounces, ...).
"""
import argparse
import json
import random
import sys
from array import array

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
TLDS = (".net", ".com", ".org", ".io", ".gov")
MAX_EVENTS_EXCLUSIVE = 2500
INTERLEAVE = 20
DUPLICATE_WINDOW = 1000
M64 = (1 << 64) - 1


def uniform_name(seed, i):
    """Name of domain i of the uniform workload: d<i>-<8 hex digits>.com, the hex digits
    the top 32 bits of SplitMix64's finalizer over (seed * golden ratio + i)."""
    x = (seed * 0x9E3779B97F4A7C15 + i) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    x ^= x >> 31
    return "d%d-%08x.com" % (i, x >> 32)


def uniform_index(seed, key, n):
    """The index i < n whose uniform_name is key, or None."""
    if not key.startswith("d"):
        return None
    dash = key.find("-")
    try:
        i = int(key[1:dash])
    except ValueError:
        return None
    if not 0 <= i < n or uniform_name(seed, i) != key:
        return None
    return i


class Challenge:
    """The challenge workload; expected counts in a dict by domain."""

    def __init__(self, seed):
        self.seed = seed
        self.expected = {}  # domain -> [delivered, bounced]

    def events(self, ids):
        """Yields (line, bounce): line = key<TAB>value<NEWLINE>."""
        name_rng = random.Random(self.seed)              # names and event counts, in domain order
        pick = random.Random(self.seed ^ 0x5DEECE66D).random  # interleaving
        expected = self.expected
        next_index = 0
        active = []  # [index, events, next_j, b, never_bounce, delivered_line, bounced_line, key]

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

        while True:
            while len(active) < INTERLEAVE:
                active.append(new_burst())
            s = int(pick() * len(active))
            burst = active[s]
            j = burst[2]
            b = burst[3]
            bounce = b != 0 and not burst[4] and j % b == 0
            line = burst[6] if bounce else burst[5]
            if ids:
                line = line[:-2] + ',"id":"' + str(burst[0]) + "-" + str(j) + '"}\n'
            c = expected.get(burst[7])
            if c is None:
                c = expected[burst[7]] = [0, 0]
            c[1 if bounce else 0] += 1
            burst[2] = j + 1
            if burst[2] == burst[1]:
                active[s] = active[-1]
                active.pop()
            yield line, bounce

    def domains(self):
        return len(self.expected)

    def write_expected(self, path):
        with open(path, "w") as f:
            for d, (dl, bo) in self.expected.items():
                f.write(f"{d}\t{dl}\t{bo}\n")


class Uniform:
    """The uniform workload; expected counts in two arrays indexed by domain."""

    def __init__(self, seed, n, bounce_probability):
        self.seed, self.n, self.p = seed, n, bounce_probability
        self.delivered = array("I", bytes(4 * n))
        self.bounced = array("I", bytes(4 * n))
        self.touched = 0

    def events(self, ids):
        rng = random.Random(self.seed)
        r = rng.random
        n, p, seed = self.n, self.p, self.seed
        delivered, bounced = self.delivered, self.bounced
        last = n - 1
        k = 0
        while True:
            i = min(int(r() * n), last)
            bounce = r() < p
            if delivered[i] == 0 and bounced[i] == 0:
                self.touched += 1
            if bounce:
                bounced[i] += 1
            else:
                delivered[i] += 1
            name = uniform_name(seed, i)
            if ids:
                line = '%s\t{"domain":"%s","type":"%s","id":"e%d"}\n' % (
                    name, name, "bounced" if bounce else "delivered", k)
            else:
                line = '%s\t{"domain":"%s","type":"%s"}\n' % (name, name, "bounced" if bounce else "delivered")
            k += 1
            yield line, bounce

    def domains(self):
        return self.touched

    def write_expected(self, path):
        with open(path, "wb") as f:
            header = {"workload": "uniform", "seed": self.seed, "domain_space": self.n}
            f.write((json.dumps(header) + "\n").encode())
            self.delivered.tofile(f)
            self.bounced.tofile(f)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000_000, help="records to write")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--workload", choices=("challenge", "uniform"), default="challenge")
    ap.add_argument("--domains", type=int, default=10_000_000, help="uniform: domains to pick from")
    ap.add_argument("--bounce-probability", type=float, default=0.002, help="uniform: P(bounce)")
    ap.add_argument("--ids", action="store_true", help='give every event an "id"')
    ap.add_argument("--duplicates", type=float, default=0.0,
                    help="with --ids: probability that a record repeats a recent event")
    ap.add_argument("--expected", help="write the expected counts here")
    ap.add_argument("--stats", help="write a JSON summary here")
    args = ap.parse_args()
    if args.duplicates and not args.ids:
        ap.error("--duplicates needs --ids (a repeated event without an id is a new event)")
    if not 0 <= args.duplicates < 1:
        ap.error("--duplicates must be in [0, 1)")
    if args.workload == "uniform" and args.domains <= 0:
        ap.error("--domains must be positive")

    if args.workload == "challenge":
        workload = Challenge(args.seed)
    else:
        workload = Uniform(args.seed, args.domains, args.bounce_probability)
    events = workload.events(args.ids)

    dup_rng = random.Random(args.seed ^ 0xD0B1E)
    dup = dup_rng.random
    dup_p = args.duplicates
    recent = []  # the last DUPLICATE_WINDOW lines, a ring
    out = sys.stdout
    buf = []
    written = duplicates = bounces = 0
    for _ in range(args.events):
        if dup_p and recent and dup() < dup_p:
            line = recent[int(dup() * len(recent))]
            duplicates += 1
        else:
            line, bounce = next(events)
            bounces += bounce
            if dup_p:
                if len(recent) < DUPLICATE_WINDOW:
                    recent.append(line)
                else:
                    recent[written % DUPLICATE_WINDOW] = line
        buf.append(line)
        written += 1
        if len(buf) >= 65536:
            out.write("".join(buf))
            buf.clear()
    out.write("".join(buf))
    out.flush()

    if args.expected:
        workload.write_expected(args.expected)
    stats = {"workload": args.workload, "seed": args.seed, "records": written,
             "events": written - duplicates, "duplicates": duplicates, "domains": workload.domains(),
             "bounces": bounces, "ids": args.ids}
    if args.workload == "uniform":
        stats["domain_space"] = args.domains
        stats["bounce_probability"] = args.bounce_probability
    if args.stats:
        with open(args.stats, "w") as f:
            json.dump(stats, f)
            f.write("\n")
    print(f"gen_events: {written} records ({duplicates} duplicates), {stats['domains']} domains, "
          f"{bounces} bounces, {args.workload} workload, seed {args.seed}", file=sys.stderr)


if __name__ == "__main__":
    main()
