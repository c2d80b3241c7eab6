#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""tests/rawsink.py - a bare loopback listener for the privacy and opt-out
tests.

It listens on several ports at once so that a test can give each of its
cases a port of its own, and it records, per port, every accepted
connection and every byte received, before it even tries to read HTTP.
A connection that sends nothing still counts: "no network" means no
connection at all, not merely no well-formed request.

Each request it can parse is kept whole, the way it arrived, so a test can
search every uploaded byte without trusting any decoder of tel's:

  DIR/req-N.head   the request line and headers, as received
  DIR/req-N.body   the body, as received (gzip)
  DIR/req-N.raw    the body after gunzip (absent when it is not gzip)
  DIR/req-N.port   the port it came in on
  DIR/counts.json  {"<port>": {"conns": C, "bytes": B, "requests": R}}

  rawsink.py --ports N --port-file F --dir DIR [--status CODE --first K]

The answer is 200 with "{}", or CODE for the first K requests.
"""
import argparse
import gzip
import json
import os
import selectors
import socket
import sys
import threading

lock = threading.Lock()
counts = {}
nreq = 0
args = None


def save():
    tmp = os.path.join(args.dir, 'counts.json.tmp')
    with open(tmp, 'w') as f:
        json.dump(counts, f)
    os.replace(tmp, os.path.join(args.dir, 'counts.json'))


def bump(port, key, n=1):
    with lock:
        counts[str(port)][key] += n
        save()


def recv_some(conn, port):
    data = conn.recv(65536)
    if data:
        bump(port, 'bytes', len(data))
    return data


def serve(conn, port):
    global nreq
    buf = b''
    try:
        while True:
            while b'\r\n\r\n' not in buf:
                d = recv_some(conn, port)
                if not d:
                    return
                buf += d
            head, buf = buf.split(b'\r\n\r\n', 1)
            length = 0
            gz = False
            for line in head.split(b'\r\n')[1:]:
                k, _, v = line.partition(b':')
                if k.strip().lower() == b'content-length':
                    length = int(v.strip())
                if k.strip().lower() == b'content-encoding' and v.strip() == b'gzip':
                    gz = True
            while len(buf) < length:
                d = recv_some(conn, port)
                if not d:
                    return
                buf += d
            body, buf = buf[:length], buf[length:]
            with lock:
                nreq += 1
                n = nreq
                counts[str(port)]['requests'] += 1
                save()
            base = os.path.join(args.dir, 'req-%d' % n)
            for ext, data in (('.head', head), ('.body', body), ('.port', str(port).encode())):
                with open(base + ext, 'wb') as f:
                    f.write(data)
            if gz:
                try:
                    with open(base + '.raw', 'wb') as f:
                        f.write(gzip.decompress(body))
                except Exception:  # noqa: BLE001 - a bad body is for the test to see
                    pass
            status = args.status if n <= args.first else 200
            reason = b'OK' if status == 200 else b'Refused'
            conn.sendall(b'HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n'
                         b'Content-Length: 2\r\n\r\n{}' % (status, reason))
    except OSError:
        pass
    finally:
        conn.close()


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument('--ports', type=int, default=1)
    p.add_argument('--port-file', required=True)
    p.add_argument('--dir', required=True)
    p.add_argument('--status', type=int, default=200)
    p.add_argument('--first', type=int, default=0)
    args = p.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    sel = selectors.DefaultSelector()
    ports = []
    for _ in range(args.ports):
        s = socket.socket()
        s.bind(('127.0.0.1', 0))
        s.listen(64)
        port = s.getsockname()[1]
        ports.append(port)
        counts[str(port)] = {'conns': 0, 'bytes': 0, 'requests': 0}
        sel.register(s, selectors.EVENT_READ, port)
    save()
    tmp = args.port_file + '.tmp'
    with open(tmp, 'w') as f:
        f.write(''.join('%d\n' % p for p in ports))
    os.replace(tmp, args.port_file)
    while True:
        for key, _ in sel.select():
            conn, _ = key.fileobj.accept()
            bump(key.data, 'conns')
            threading.Thread(target=serve, args=(conn, key.data), daemon=True).start()


if __name__ == '__main__':
    sys.exit(main())
