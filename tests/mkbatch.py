#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""tests/mkbatch.py - writes a gzip'd upload batch, built independently of
libtel with python3-msgpack, from format/record.h's layout.

    mkbatch.py -o FILE [--events N] [--anon UUID|none] [--batch-id UUID]
               [--event-id UUID ...] [--name NAME] [--corrupt KIND]
               [--bomb MIB] [--dropped N] [--age-days D] [--metric-label KIND]
               [--columns]
    mkbatch.py -o FILE --erase UUID|nil

Prints the batch id on the first line of stdout, then one event id per
line, as lowercase UUIDs, so that a test can post the file with the right
Idempotency-Key and look for the events in the collector's output.

--corrupt KIND makes a batch a collector must refuse:
  version      schema version 99
  mixed-anon   the last event carries another anonymous id than the batch
  truncated    the MessagePack is cut in the middle (then gzip'd whole)
  not-msgpack  gzip of bytes that are not a MessagePack map
  gzip         bytes that are not gzip at all
  gzip-cut     a valid gzip stream cut before its end
--columns lays the batch out column by column (version 3, format/SPEC.md
4.1), with these further kinds of --corrupt:
  x-index      an execution id refers to an event past the last
  time-below   a time difference takes an event below 0
  short-column the property column has one map fewer than there are events
  name-index   a name index points past the names
  with-e       the batch carries an "e" array besides its columns
  big-record   an event stands for a record of more than 4096 bytes
--bomb MIB writes a gzip stream of MIB mebibytes of zeros instead of a
batch: tiny on the wire, huge once inflated.
--dropped N sets the batch's dropped count; --age-days D dates the events
D days back; --metric-label KIND makes them "metric" events (see
metric_props).  --erase writes an erasure request (format/SPEC.md
section 13) instead of a batch, nil: one without the id.
"""
import argparse
import gzip
import random
import string
import sys
import time
import uuid
import zlib

import msgpack


def parse_uuid(text):
    return uuid.UUID(text).bytes


def metric_props(kind, index):
    # A "metric" event (format/SPEC.md 3.4) whose labels test the
    # collector's /metrics: "nul" holds a NUL, "long" two random 1000-byte
    # values (a series key just under 2 KiB), "huge" three (over it);
    # anything else is the value of label "lbl".
    p = {"name": "m_test", "value": 1.5}
    rnd = lambda: "".join(random.choice(string.ascii_lowercase) for _ in range(1000))
    if kind == "nul":
        p["label.lbl"] = "a\0b"
    elif kind == "long":
        p["label.l1"], p["label.l2"] = rnd(), rnd()
    elif kind == "huge":
        p["label.l1"], p["label.l2"], p["label.l3"] = rnd(), rnd(), rnd()
    else:
        p["label.lbl"] = kind
    return p


def record(event_id, name, anon, index, age_ms=0, metric=None):
    # Keys and types as in format/record.h; a realistic context.
    return {
        "i": event_id,
        "t": int(time.time() * 1000) - 1000 + index - age_ms,
        "n": "metric" if metric is not None else name,
        "p": metric_props(metric, index) if metric is not None else
             {"index": index, "ok": True, "ratio": 0.5, "cmd": "deploy"},
        "x": uuid.uuid4().bytes,
        "a": anon,
        "c": {
            "app": "mkbatch",
            "av": "1.2.3",
            "lv": "0.1.0",
            "os": "linux",
            "arch": "x86_64",
            "cpu": 4,
            "ci": False,
        },
    }


def columns(batch, corrupt):
    # The column-wise layout of format/SPEC.md 4.1, written from the same
    # events; each run's execution id is a reference to its first event.
    evs = batch.pop("e")
    for k, ev in enumerate(evs):
        if k % 2:
            ev["x"] = evs[k - 1]["i"]
        else:
            ev["x"] = ev["i"]
    names, ctxs = [], []
    for ev in evs:
        if ev["n"] not in names:
            names.append(ev["n"])
        if ev["c"] not in ctxs:
            ctxs.append(ev["c"])
    ids = [ev["i"] for ev in evs]
    batch.update({
        "v": 3,
        "i": b"".join(ids),
        "t": [ev["t"] - (evs[k - 1]["t"] if k else 0) for k, ev in enumerate(evs)],
        "x": [ids.index(ev["x"]) if ev["x"] in ids else ev["x"] for ev in evs],
        "ns": names,
        "n": [names.index(ev["n"]) for ev in evs],
        "cs": ctxs,
        "c": [ctxs.index(ev["c"]) for ev in evs],
        "p": [ev["p"] for ev in evs],
    })
    if corrupt == "x-index":
        batch["x"][-1] = len(evs)
    elif corrupt == "time-below":
        batch["t"][-1] = -batch["t"][0] - 10**9 * len(evs)
    elif corrupt == "short-column":
        batch["p"] = batch["p"][:-1]
    elif corrupt == "name-index":
        batch["n"][-1] = len(names)
    elif corrupt == "with-e":
        batch["e"] = evs
    elif corrupt == "big-record":
        batch["p"][-1] = {"k%d" % i: "v" * 200 for i in range(25)}
    return batch


def bomb(path, mib):
    # Streamed, so that making the bomb costs no more memory than opening it
    # should.
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = bytes(1 << 20)
    with open(path, "wb") as f:
        for _ in range(mib):
            f.write(comp.compress(chunk))
        f.write(comp.flush())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--events", type=int, default=3)
    ap.add_argument("--anon", default=None)
    ap.add_argument("--batch-id", default=None)
    ap.add_argument("--event-id", action="append", default=[])
    ap.add_argument("--name", default="cmd.run")
    ap.add_argument("--corrupt", default=None,
                    choices=["version", "mixed-anon", "truncated", "not-msgpack",
                             "gzip", "gzip-cut", "x-index", "time-below", "short-column",
                             "name-index", "with-e", "big-record"])
    ap.add_argument("--columns", action="store_true")
    ap.add_argument("--bomb", type=int, default=0)
    ap.add_argument("--dropped", type=int, default=0)
    ap.add_argument("--contexts", type=int, default=1,
                    help="events take turns among N contexts: cpus 1..N, the Nth without an app version")
    ap.add_argument("--age-days", type=float, default=0)
    ap.add_argument("--metric-label", default=None)
    ap.add_argument("--erase", default=None,
                    help="write an erasure request for this anonymous id (nil: none)")
    opts = ap.parse_args()

    if opts.erase:
        req = {"v": 1}
        if opts.erase != "nil":
            req["x"] = parse_uuid(opts.erase)
        with open(opts.out, "wb") as f:
            f.write(gzip.compress(msgpack.packb(req, use_bin_type=True)))
        return 0

    batch_id = parse_uuid(opts.batch_id) if opts.batch_id else uuid.uuid4().bytes
    if opts.bomb:
        bomb(opts.out, opts.bomb)
        print(uuid.UUID(bytes=batch_id))
        return 0

    if opts.anon == "none":
        anon = None
    elif opts.anon:
        anon = parse_uuid(opts.anon)
    else:
        anon = uuid.uuid4().bytes

    ids = [parse_uuid(e) for e in opts.event_id]
    while len(ids) < opts.events:
        ids.append(uuid.uuid4().bytes)
    ids = ids[:opts.events]
    age_ms = int(opts.age_days * 86400000)
    events = [record(eid, opts.name, anon, i, age_ms, opts.metric_label) for i, eid in enumerate(ids)]
    if opts.contexts > 1:
        for i, ev in enumerate(events):
            ev["c"]["cpu"] = 1 + i % opts.contexts
            if i % opts.contexts == opts.contexts - 1:
                del ev["c"]["av"]
    if opts.corrupt == "mixed-anon" and events:
        events[-1]["a"] = uuid.uuid4().bytes

    batch = {
        "v": 99 if opts.corrupt == "version" else 1,
        "b": batch_id,
        "s": int(time.time() * 1000),
        "d": opts.dropped,
        "a": anon,
        "e": events,
    }
    if opts.columns:
        batch = columns(batch, opts.corrupt)
    raw = msgpack.packb(batch, use_bin_type=True)
    if opts.corrupt == "truncated":
        raw = raw[: len(raw) // 2]
    elif opts.corrupt == "not-msgpack":
        raw = b"\xc1\xc1 this is not MessagePack \xc1"

    body = gzip.compress(raw)
    if opts.corrupt == "gzip":
        body = b"this is not gzip, only text pretending to be a body\n"
    elif opts.corrupt == "gzip-cut":
        body = body[: len(body) - 12]

    with open(opts.out, "wb") as f:
        f.write(body)
    print(uuid.UUID(bytes=batch_id))
    for eid in ids:
        print(uuid.UUID(bytes=eid))
    return 0


if __name__ == "__main__":
    sys.exit(main())
