#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""tests/collector.py - an independent collector for tel-sync's tests.

It shares no code with tel: it decodes what arrives with Python's gzip and
msgpack modules, checks it against format/SPEC.md (wire versions 1 to 3), and
records every request it saw - duplicates included - in a JSON file, so a
test can ask what reached the wire and how often.  It can also misbehave
on purpose, the ways a real collector or the network between does.

  collector.py --port-file F --out F [--mode MODE] [options]

Modes:
  normal          answer 200 (or 413 when a batch has more than --max-events)
  status          answer --status CODE (with --retry-after V when given) to
                  the first --first N requests (default: all), then normal
  silent          accept the connection, never read nor answer
  slow            read the request, then answer one byte per second
  reset           read half the body, then reset the connection
  redirect        answer 302 pointing at itself
  huge            answer 200 with a body of --huge-bytes (default 64 MiB)
  refuse-after    answer the first --first N requests normally, then stop
                  listening: later connections are refused

--versions LIST makes every answer say "Tel-Versions: LIST"; a batch of
version 3 (the column-wise layout) is a fault unless LIST holds 3.

Every request is recorded as an object of the "requests" list:
  {"n": 1, "status": 200, "key": "<Idempotency-Key>", "batch": "<uuid>",
   "dropped": 0, "anon": "<uuid>"|null, "sent": ms, "gzip_bytes": N,
   "raw_bytes": N, "events": [{"id": "<uuid>", "name": "...", "props": {...},
   "anon": ...}], "errors": ["what broke the spec", ...]}
A request whose body breaks the spec is also answered 400.
"""
import argparse
import gzip
import http.server
import json
import os
import re
import socket
import struct
import sys
import threading
import time
import uuid

import msgpack

MAX_EVENTS = 1000
MAX_BYTES = 512 * 1024
MAX_PROPS = 32
MAX_KEY = 64
MAX_STRING = 1024
NAME_RE = re.compile(r'^[A-Za-z0-9_.:-]{1,64}$')
UUID_RE = re.compile(r'^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$')
# What tel-sync may send; anything else could identify the machine.
ALLOWED_HEADERS = {'host', 'user-agent', 'content-type', 'content-encoding',
                   'content-length', 'idempotency-key', 'authorization'}

args = None
lock = threading.Lock()
requests = []


def save():
    tmp = args.out + '.tmp'
    with open(tmp, 'w') as f:
        json.dump({'requests': requests}, f)
    os.replace(tmp, args.out)


def as_uuid(b):
    return str(uuid.UUID(bytes=b))


def is_id(v):
    return isinstance(v, bytes) and len(v) == 16


def scalar_ok(v):
    return (v is None or isinstance(v, (bool, int, float))
            or (isinstance(v, str) and len(v.encode()) <= MAX_STRING))


def nested_ok(v, depth):
    """A structured value of version 2: arrays of at most 256, maps of at
    most 64 string keys, 4 levels deep at most."""
    if depth > 4:
        return False
    if isinstance(v, list):
        return len(v) <= 256 and all(nested_ok(x, depth + 1) if isinstance(x, (list, dict))
                                     else scalar_ok(x) for x in v)
    return len(v) <= 64 and all(isinstance(k, str) and 1 <= len(k.encode()) <= MAX_KEY and
                                (nested_ok(x, depth + 1) if isinstance(x, (list, dict)) else scalar_ok(x))
                                for k, x in v.items())


def check_event(ev, batch_anon, errs, where, version=1):
    if not isinstance(ev, dict):
        errs.append(where + ': not a map')
        return None
    for k in ev:
        if not isinstance(k, str):
            errs.append(where + ': non-string key')
    if not is_id(ev.get('i')):
        errs.append(where + ': "i" is not bin 16')
    if not isinstance(ev.get('t'), int) or isinstance(ev.get('t'), bool) or ev.get('t', -1) < 0:
        errs.append(where + ': "t" is not a uint')
    name = ev.get('n')
    if not isinstance(name, str) or not NAME_RE.match(name):
        errs.append(where + ': bad name %r' % (name,))
    props = ev.get('p', {})
    if not isinstance(props, dict) or len(props) > MAX_PROPS:
        errs.append(where + ': "p" is not a map of at most 32')
        props = {}
    for k, v in props.items():
        if not isinstance(k, str) or not 1 <= len(k.encode()) <= MAX_KEY:
            errs.append(where + ': bad property key %r' % (k,))
        if isinstance(v, (list, dict)):
            if version < 2 or not nested_ok(v, 1):
                errs.append(where + ': bad structured value for %r in version %r' % (k, version))
        elif not scalar_ok(v):
            errs.append(where + ': bad property value for %r' % (k,))
    if not is_id(ev.get('x')):
        errs.append(where + ': "x" is not bin 16')
    a = ev.get('a')
    if not (a is None or is_id(a)):
        errs.append(where + ': "a" is not bin 16 or nil')
    if a != batch_anon:
        errs.append(where + ': anonymous id differs from the batch\'s')
    ctx = ev.get('c')
    if not isinstance(ctx, dict) or not isinstance(ctx.get('app'), str):
        errs.append(where + ': "c" lacks the app')
    return {
        'id': as_uuid(ev['i']) if is_id(ev.get('i')) else None,
        'name': name if isinstance(name, str) else None,
        'ts': ev.get('t'),
        'props': {str(k): v for k, v in props.items()} if isinstance(props, dict) else {},
        'anon': as_uuid(a) if is_id(a) else None,
        'app': ctx.get('app') if isinstance(ctx, dict) else None,
    }


def announced():
    return {int(v) for v in args.versions.split(',')} if args.versions else set()


def columns(b, errs):
    """The events of a version 3 batch (format/SPEC.md 4.1), rebuilt as
    the records they stand for; None when the columns are malformed."""
    ids = b.get('i')
    if 'e' in b or not isinstance(ids, bytes) or len(ids) % 16:
        errs.append('version 3: "e" present or "i" not 16 bytes per event')
        return None
    n = len(ids) // 16
    cols = {k: b.get(k) for k in ('t', 'x', 'n', 'c', 'p')}
    ns, cs = b.get('ns'), b.get('cs')
    if (any(not isinstance(v, list) or len(v) != n for v in cols.values())
            or not isinstance(ns, list) or not isinstance(cs, list) or len(ns) > n or len(cs) > n):
        errs.append('version 3: a column is not one element per event')
        return None
    evs, t, total = [], 0, 0
    for k in range(n):
        d, x, ni, ci = cols['t'][k], cols['x'][k], cols['n'][k], cols['c'][k]
        if not isinstance(d, int) or isinstance(d, bool) or (k == 0 and d < 0):
            errs.append('version 3: time %d is not an integer' % k)
            return None
        t = d if k == 0 else t + d
        if isinstance(x, int) and not isinstance(x, bool) and 0 <= x < n:
            x = ids[16 * x:16 * x + 16]
        if not is_id(x):
            errs.append('version 3: "x" of event %d is neither an index nor an id' % k)
            return None
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (ni, ci)) or \
                not 0 <= ni < len(ns) or not 0 <= ci < len(cs):
            errs.append('version 3: "n" or "c" of event %d is not an index' % k)
            return None
        ev = {'i': ids[16 * k:16 * k + 16], 't': t, 'n': ns[ni], 'p': cols['p'][k], 'x': x,
              'a': b.get('a'), 'c': cs[ci]}
        size = len(msgpack.packb(ev, use_bin_type=True))
        nested = isinstance(ev['p'], dict) and any(isinstance(v, (list, dict)) for v in ev['p'].values())
        if size > (16384 if nested else 4096):
            errs.append('version 3: event %d stands for a record of %d bytes' % (k, size))
        total += size
        evs.append(ev)
    if total > MAX_BYTES:
        errs.append('version 3: %d bytes of records' % total)
    return evs


def check_request(headers, body, rec):
    errs = rec['errors']
    names = {k.lower() for k in headers.keys()}
    extra = names - ALLOWED_HEADERS
    if extra:
        errs.append('unexpected headers: %s' % ', '.join(sorted(extra)))
    if headers.get('Content-Type') != 'application/vnd.msgpack':
        errs.append('Content-Type is %r' % headers.get('Content-Type'))
    if headers.get('Content-Encoding') != 'gzip':
        errs.append('Content-Encoding is %r' % headers.get('Content-Encoding'))
    ua = headers.get('User-Agent', '')
    if not re.match(r'^tel-sync/[0-9][0-9A-Za-z.+-]*$', ua):
        errs.append('User-Agent is %r' % ua)
    key = headers.get('Idempotency-Key', '')
    rec['key'] = key
    if not UUID_RE.match(key):
        errs.append('Idempotency-Key is not a lowercase UUIDv4: %r' % key)
    auth = headers.get('Authorization')
    if args.token is None:
        if auth is not None:
            errs.append('Authorization sent without a token')
    elif auth != 'Bearer ' + args.token:
        errs.append('Authorization is wrong or missing')
    rec['gzip_bytes'] = len(body)
    try:
        raw = gzip.decompress(body)
    except Exception as e:  # noqa: BLE001 - any failure is the finding
        errs.append('body is not gzip: %s' % e)
        return
    rec['raw_bytes'] = len(raw)
    if len(raw) > MAX_BYTES + 4096:
        errs.append('batch of %d bytes is over the limit' % len(raw))
    try:
        b = msgpack.unpackb(raw, raw=False, strict_map_key=False)
    except Exception as e:  # noqa: BLE001
        errs.append('body is not one MessagePack value: %s' % e)
        return
    if not isinstance(b, dict):
        errs.append('batch is not a map')
        return
    if b.get('v') not in (1, 2, 3) or (b.get('v') == 3 and 3 not in announced()):
        errs.append('schema version is %r' % b.get('v'))
    rec['version'] = b.get('v')
    if not is_id(b.get('b')):
        errs.append('"b" is not bin 16')
    else:
        rec['batch'] = as_uuid(b['b'])
        if rec['batch'] != key:
            errs.append('batch id %s differs from Idempotency-Key %s' % (rec['batch'], key))
    if not isinstance(b.get('s'), int) or abs(b.get('s', 0) - time.time() * 1000) > 86400e3:
        errs.append('"s" is not a plausible send time')
    rec['sent'] = b.get('s')
    if not isinstance(b.get('d'), int) or b.get('d', -1) < 0:
        errs.append('"d" is not a uint')
    rec['dropped'] = b.get('d')
    a = b.get('a')
    if not (a is None or is_id(a)):
        errs.append('"a" is not bin 16 or nil')
    rec['anon'] = as_uuid(a) if is_id(a) else None
    evs = columns(b, errs) if b.get('v') == 3 else b.get('e')
    if not isinstance(evs, list) or not 1 <= len(evs) <= MAX_EVENTS:
        errs.append('"e" is not an array of 1..1000 events')
        return
    seen = set()
    for i, ev in enumerate(evs):
        e = check_event(ev, a, errs, 'event %d' % i, b.get('v'))
        if e is None:
            continue
        if e['id'] in seen:
            errs.append('event id %s twice in one batch' % e['id'])
        seen.add(e['id'])
        rec['events'].append(e)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *a):
        pass

    def answer(self, status, body=b'{}', extra=()):
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        if args.versions:
            self.send_header('Tel-Versions', args.versions)
        self.send_header('Content-Length', str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        mode = args.mode
        if mode == 'silent':
            time.sleep(3600)
            return
        length = int(self.headers.get('Content-Length', '0'))
        if mode == 'reset':
            self.rfile.read(max(1, length // 2))
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack('ii', 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        body = self.rfile.read(length)
        with lock:
            n = len(requests) + 1
            rec = {'n': n, 'status': None, 'key': None, 'batch': None, 'dropped': None,
                   'anon': None, 'sent': None, 'gzip_bytes': 0, 'raw_bytes': 0,
                   'events': [], 'errors': []}
            check_request(self.headers, body, rec)
            status = 200
            extra = []
            if rec['errors']:
                status = 400
            elif mode == 'status' and (args.first is None or n <= args.first):
                status = args.status
                if args.retry_after is not None:
                    extra.append(('Retry-After', args.retry_after))
            elif mode == 'redirect':
                status = 302
                extra.append(('Location', self.path))
            elif mode == 'slow':
                status = 200
            elif args.max_events and len(rec['events']) > args.max_events:
                status = 413
            rec['status'] = status
            requests.append(rec)
            save()
        if mode == 'slow':
            self.close_connection = True
            msg = b'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}'
            for i in range(len(msg)):
                try:
                    self.wfile.write(msg[i:i + 1])
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(1)
            return
        if mode == 'huge':
            self.send_response(200)
            self.send_header('Content-Length', str(args.huge_bytes))
            self.end_headers()
            chunk = b'x' * 65536
            left = args.huge_bytes
            try:
                while left > 0:
                    self.wfile.write(chunk[:min(left, len(chunk))])
                    left -= len(chunk)
            except OSError:
                pass
            self.close_connection = True
            return
        self.answer(status, extra=extra)
        if mode == 'refuse-after' and args.first is not None and n >= args.first:
            # Stop listening for good; this answer has already been written.
            self.wfile.flush()
            os._exit(0)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    global args
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--port-file', required=True)
    p.add_argument('--out', required=True)
    p.add_argument('--mode', default='normal',
                   choices=['normal', 'status', 'silent', 'slow', 'reset', 'redirect',
                            'huge', 'refuse-after'])
    p.add_argument('--status', type=int, default=503)
    p.add_argument('--retry-after')
    p.add_argument('--first', type=int)
    p.add_argument('--max-events', type=int, default=0)
    p.add_argument('--huge-bytes', type=int, default=64 << 20)
    p.add_argument('--token')
    p.add_argument('--versions')
    args = p.parse_args()
    srv = Server(('127.0.0.1', 0), Handler)
    save()
    tmp = args.port_file + '.tmp'
    with open(tmp, 'w') as f:
        f.write('%d\n' % srv.server_address[1])
    os.replace(tmp, args.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == '__main__':
    sys.exit(main())
