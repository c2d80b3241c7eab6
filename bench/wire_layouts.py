#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bench/wire_layouts.py QUEUE_DIR - where the wire bytes per event go.

Reads the records of a real queue (with lmdb-utils' mdb_dump, in hex, so
no byte is misread) and gzips them in batches of 1000, as tel-sync does,
in several layouts.  Prints one line per layout: name, bytes per event.

  v1            the batch exactly as tel-sync builds it (head + records)
  v1-no-ids     the same with every event id zeroed: what is left when the
                16 random bytes per event are taken away
  v1-no-ids-x   ... and the execution ids zeroed too
  columns       the same events stored column by column: all event ids
                together, times as deltas, each run's id as a reference to
                the event that started it, each distinct context once

It is analysis for bench/README.md's "Known limits", not a format tel
speaks: the columns layout shows what a future batch version could save.
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


def columns(batch):
    ms = [msgpack.unpackb(r, raw=False) for r in batch]
    index = {m["i"]: k for k, m in enumerate(ms)}
    ctxs, ctx_of, prev = [], {}, ms[0]["t"]
    ts, names, props, execs, cidx = [], [], [], [], []
    for m in ms:
        key = msgpack.packb(m["c"])
        if key not in ctx_of:
            ctx_of[key] = len(ctxs)
            ctxs.append(m["c"])
        cidx.append(ctx_of[key])
        ts.append(m["t"] - prev)
        prev = m["t"]
        names.append(m["n"])
        props.append(m["p"])
        x = index.get(m["x"])
        execs.append(x if x is not None else m["x"])
    body = msgpack.packb({"v": 2, "b": b"\x01" * 16, "s": 1795300000000, "d": 0,
                          "a": ms[0]["a"], "c": ctxs, "t0": ms[0]["t"],
                          "i": b"".join(m["i"] for m in ms), "t": ts, "n": names,
                          "p": props, "x": execs, "ci": cidx})
    return gz(body)


def main():
    recs = records(sys.argv[1])
    batches = [recs[i:i + 1000] for i in range(0, len(recs), 1000)]
    n = len(recs)
    for name, f in (("v1", v1), ("v1-no-ids", lambda b: v1(b, zero_ids=True)),
                    ("v1-no-ids-x", lambda b: v1(b, zero_ids=True, zero_exec=True)),
                    ("columns", columns)):
        print(name, "%.1f" % (sum(f(b) for b in batches) / n))


if __name__ == "__main__":
    main()
