# SPDX-License-Identifier: MIT
"""bench/bind_emit.py ROUNDS N - one durable event from Python: through a
tel.Telemetry handle, through tel.emit(), and as `tel emit` run with
subprocess (TEL_BIN).  Prints "python HANDLE_US ONECALL_US SUBPROCESS_US",
each the median over ROUNDS rounds of the mean per event of N events."""
import os
import statistics
import subprocess
import sys
import time

import tel

rounds, n = int(sys.argv[1]), int(sys.argv[2])
props = {"command": "deploy", "services": 3, "ratio": 0.5, "dry_run": False}
argv = [os.environ.get("TEL_BIN", "tel"), "emit", "--app", "bench-py", "deploy.finished",
        "command=deploy", "services=3", "ratio=0.5", "dry_run=false"]
h = tel.Telemetry("bench-py", strict=True)


def per_event(fn, count: int) -> float:
    t0 = time.perf_counter()
    for _ in range(count):
        fn()
    return (time.perf_counter() - t0) / count * 1e6


res = {"handle": [], "onecall": [], "sub": []}
for _ in range(rounds):
    res["handle"].append(per_event(lambda: h.emit("deploy.finished", props), n))
    res["onecall"].append(per_event(lambda: tel.emit("bench-py", "deploy.finished", props, strict=True), n))
    res["sub"].append(per_event(lambda: subprocess.run(argv, check=True), max(n // 5, 10)))
h.close()
print("python %.1f %.1f %.1f" % tuple(statistics.median(res[k]) for k in ("handle", "onecall", "sub")))
