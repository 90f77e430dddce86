#!/usr/bin/env python3
"""GET /healthz latency on one connection while POSTERS others POST batches
of ITEMS events (uniform over 10M domains) to the same server, for SECONDS.
A 503 (backpressure: the aggregation is behind) is waited out and counted.
Prints the batches posted and the health check's p50 / p99 / max.

usage: healthz_during_batches.py PORT [SECONDS=10] [ITEMS=100000] [POSTERS=2]
(run.sh starts the servers; see benchmarks/README.md)"""
import http.client, json, sys, threading, time, random
port = int(sys.argv[1]); secs = float(sys.argv[2]) if len(sys.argv) > 2 else 10
items = int(sys.argv[3]) if len(sys.argv) > 3 else 100000
posters = int(sys.argv[4]) if len(sys.argv) > 4 else 2
body = json.dumps([{"domain": f"d{random.randrange(10**7)}.example", "type": "delivered"} for _ in range(items)]).encode()
stop = time.time() + secs
posted = [0]; refused = [0]
def poster():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    while time.time() < stop:
        c.request("POST", "/events", body, {"Content-Type": "application/json"})
        r = c.getresponse(); r.read()
        if r.status == 503:
            refused[0] += 1; time.sleep(0.2); continue
        assert r.status == 200, r.status
        posted[0] += 1
ts = [threading.Thread(target=poster) for _ in range(posters)]
for t in ts: t.start()
lat = []
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
time.sleep(0.5)
while time.time() < stop:
    t0 = time.perf_counter(); c.request("GET", "/healthz"); r = c.getresponse(); r.read()
    lat.append((time.perf_counter() - t0) * 1000); time.sleep(0.01)
for t in ts: t.join()
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
print(f"body {len(body)/1e6:.1f} MB x{posted[0]} posted ({refused[0]} 503s); healthz n={len(lat)} p50 {q(0.5):.2f} ms p99 {q(0.99):.1f} ms max {lat[-1]:.1f} ms")
