#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bench/wire_layouts.py QUEUE_DIR - where the wire bytes per event go.

Reads the records of a real queue (with lmdb-utils' mdb_dump, in hex, so
no byte is misread) and gzips them in batches of 1000, as tel-sync does,
in several layouts.  Prints one line per layout: name, bytes per event.

  v1            the batch exactly as tel-sync builds it for a collector
                that reads versions 1 and 2 only (head + records)
  v1-no-ids     the same with every event id zeroed: what is left when the
                16 random bytes per event are taken away
  v1-no-ids-x   ... and the execution ids zeroed too
  v3            the column-wise batch of format/SPEC.md 4.1, laid out here
                from the spec alone (all event ids together, times as
                differences, each run's id as a reference to the event
                that started it, names and contexts once each): what
                tel-sync sends to a collector that reads version 3
  v3-no-ids     the same with every event id zeroed

It is analysis for bench/README.md's "wire" rows: the v3 line checks the
measured row from outside tel, the others show where the bytes go.
"""
import subprocess
import sys
import zlib

import msgpack


def records(qdir):
    out = subprocess.run(["mdb_dump", "-s", "events", qdir], check=True,
                         capture_output=True, text=True).stdout.splitlines()
    body = out[out.index("HEADER=END") + 1:]
    vals = []
    for i in range(0, len(body) - 1, 2):
        if body[i] == "DATA=END":
            break
        vals.append(bytes.fromhex(body[i + 1].strip()))
    return vals


def gz(data):
    c = zlib.compressobj(6, zlib.DEFLATED, 31)
    return len(c.compress(data) + c.flush())


def head(n, anon):
    # The v1 batch map with the events array header, as format/batch.c
    # writes it; the ids and times here are stand-ins of the right size.
    h = msgpack.packb({"v": 1, "b": b"\x01" * 16, "s": 1795300000000, "d": 0, "a": anon})
    h = bytes([h[0] + 1]) + h[1:]  # one more key: "e"
    h += msgpack.packb("e")
    if n < 16:
        h += bytes([0x90 + n])
    else:
        h += b"\xdc" + n.to_bytes(2, "big")
    return h


def v1(batch, zero_ids=False, zero_exec=False):
    out = []
    for r in batch:
        m = msgpack.unpackb(r, raw=False)
        if zero_ids or zero_exec:
            if zero_ids:
                m["i"] = b"\0" * 16
            if zero_exec:
                m["x"] = b"\0" * 16
            r = msgpack.packb(m)
        out.append(r)
    anon = msgpack.unpackb(batch[0], raw=False)["a"]
    return gz(head(len(out), anon) + b"".join(out))


def v3(batch, zero_ids=False):
    ms = [msgpack.unpackb(r, raw=False) for r in batch]
    first = {}
    for k, m in enumerate(ms):
        first.setdefault(m["i"], k)
    xs = [first.get(m["x"], m["x"]) for m in ms]
    if zero_ids:
        # The references stay those of the real ids: only the 16 random
        # bytes of each event id are taken away.
        for m in ms:
            m["i"] = b"\0" * 16
    names, ctxs, prev, ts = [], [], 0, []
    for m in ms:
        if m["n"] not in names:
            names.append(m["n"])
        if m["c"] not in ctxs:
            ctxs.append(m["c"])
        ts.append(m["t"] - prev)
        prev = m["t"]
    body = msgpack.packb({"v": 3, "b": b"\x01" * 16, "s": 1795300000000, "d": 0, "a": ms[0]["a"],
                          "i": b"".join(m["i"] for m in ms), "t": ts,
                          "x": xs,
                          "ns": names, "n": [names.index(m["n"]) for m in ms],
                          "cs": ctxs, "c": [ctxs.index(m["c"]) for m in ms],
                          "p": [m["p"] for m in ms]})
    return gz(body)


def main():
    recs = records(sys.argv[1])
    batches = [recs[i:i + 1000] for i in range(0, len(recs), 1000)]
    n = len(recs)
    for name, f in (("v1", v1), ("v1-no-ids", lambda b: v1(b, zero_ids=True)),
                    ("v1-no-ids-x", lambda b: v1(b, zero_ids=True, zero_exec=True)),
                    ("v3", v3), ("v3-no-ids", lambda b: v3(b, zero_ids=True))):
        print(name, "%.1f" % (sum(f(b) for b in batches) / n))


if __name__ == "__main__":
    main()
