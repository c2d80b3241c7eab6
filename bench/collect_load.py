#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bench/collect_load.py - the load of the collector benchmark.

    collect_load.py make DIR BATCHES       write DIR/b<N>.gz (gzip'd batches of
                                           1000 events, as tel-sync sends them)
                                           and DIR/rows.tsv, the same events as
                                           COPY text rows of the events table
    collect_load.py post DIR CONNS URL...  post every batch, CONNS keep-alive
                                           connections spread over the URLs;
                                           prints "events seconds"; exits 1 if
                                           any answer is not 200

The events look like a CLI's: a command name, a few typed properties, the
full context; one anonymous id per batch, as one client's queue would.
"""
import gzip
import http.client
import json
import os
import random
import sys
import threading
import time
import urllib.parse
import uuid

import msgpack

EVENTS = 1000
COMMANDS = ["deploy", "build", "test", "lint", "fmt", "init", "status", "logs"]


def event(rng, anon, now):
    cmd = rng.choice(COMMANDS)
    return {
        "i": uuid.UUID(int=rng.getrandbits(128), version=4).bytes,
        "t": now - rng.randrange(3600000),
        "n": "command.exited",
        "p": {"cmd": cmd, "exit_code": rng.choice([0, 0, 0, 1]),
              "duration_ms": rng.randrange(5000), "flags": rng.randrange(6)},
        "x": uuid.UUID(int=rng.getrandbits(128), version=4).bytes,
        "a": anon,
        "c": {"app": "benchcli", "av": "2.%d.0" % rng.randrange(10), "lv": "0.1.0",
              "os": rng.choice(["linux", "darwin"]), "arch": "x86_64",
              "cpu": rng.choice([2, 4, 8, 16]), "ci": rng.random() < 0.2},
    }


def uid(b):
    return str(uuid.UUID(bytes=b)) if b else "\\N"


def copy_text(s):
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def row(e, batch_id, received):
    # The collector's JSON view of props and context (format/json.c).
    c = e["c"]
    ctx = {"app": c["app"], "app_version": c["av"], "lib_version": c["lv"], "os": c["os"],
           "arch": c["arch"], "cpus": c["cpu"], "ci": c["ci"]}
    props = json.dumps(e["p"], separators=(",", ":"))
    return "\t".join([uid(e["i"]), str(e["t"]), str(received), e["n"], c["app"], c["av"],
                      uid(e["a"]), uid(e["x"]), copy_text(props),
                      copy_text(json.dumps(ctx, separators=(",", ":"))), batch_id])


def make(out, nbatches):
    rng = random.Random(1)
    now = int(time.time() * 1000)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "rows.tsv"), "w") as rows:
        for n in range(nbatches):
            anon = uuid.UUID(int=rng.getrandbits(128), version=4).bytes
            bid = uuid.UUID(int=rng.getrandbits(128), version=4)
            evs = [event(rng, anon, now) for _ in range(EVENTS)]
            batch = {"v": 1, "b": bid.bytes, "s": now, "d": 0, "a": anon, "e": evs}
            with open(os.path.join(out, "b%04d.gz" % n), "wb") as f:
                f.write(str(bid).encode() + b"\n")
                f.write(gzip.compress(msgpack.packb(batch, use_bin_type=True), 6))
            for e in evs:
                rows.write(row(e, str(bid), now) + "\n")


def post(src, conns, urls):
    files = sorted(f for f in os.listdir(src) if f.endswith(".gz"))
    bodies = []
    for f in files:
        with open(os.path.join(src, f), "rb") as fh:
            key = fh.readline().strip().decode()
            bodies.append((key, fh.read()))
    todo = list(range(len(bodies)))
    lock = threading.Lock()
    bad = []

    def worker(url):
        u = urllib.parse.urlsplit(url)
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        while True:
            with lock:
                if not todo:
                    return
                i = todo.pop()
            key, body = bodies[i]
            c.request("POST", u.path, body, {"Content-Type": "application/vnd.msgpack",
                                             "Content-Encoding": "gzip", "Idempotency-Key": key})
            r = c.getresponse()
            r.read()
            if r.status != 200:
                bad.append(r.status)

    threads = [threading.Thread(target=worker, args=(urls[i % len(urls)],)) for i in range(conns)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dt = time.monotonic() - t0
    print("%d %.4f" % (len(bodies) * EVENTS, dt))
    return 1 if bad else 0


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2], int(sys.argv[3]))
        sys.exit(0)
    sys.exit(post(sys.argv[2], int(sys.argv[3]), sys.argv[4:]))
