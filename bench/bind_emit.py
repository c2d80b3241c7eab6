# SPDX-License-Identifier: MIT
"""bench/bind_emit.py ROUNDS N - one durable event from Python: through a
tel.Telemetry handle, through tel.emit(), and as `tel emit` run with
subprocess (TEL_BIN).  Prints "python HANDLE_US ONECALL_US SUBPROCESS_US
HANDLE_CPU_US SUBPROCESS_CPU_US", each the median over ROUNDS rounds of the
mean per event of N events; CPU is user + system time of this process and
of the children it waited for."""
import os
import resource
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


def cpu() -> float:
    """Seconds of CPU spent by this process and its waited-for children."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def per_event(fn, count: int, key: str) -> None:
    c0, t0 = cpu(), time.perf_counter()
    for _ in range(count):
        fn()
    res[key].append((time.perf_counter() - t0) / count * 1e6)
    res[key + "_cpu"].append((cpu() - c0) / count * 1e6)


res = {k: [] for k in ("handle", "onecall", "sub", "handle_cpu", "onecall_cpu", "sub_cpu")}
for _ in range(rounds):
    per_event(lambda: h.emit("deploy.finished", props), n, "handle")
    per_event(lambda: tel.emit("bench-py", "deploy.finished", props, strict=True), n, "onecall")
    per_event(lambda: subprocess.run(argv, check=True), max(n // 5, 10), "sub")
h.close()
print("python %.1f %.1f %.1f %.1f %.1f" % tuple(statistics.median(res[k])
                                            for k in ("handle", "onecall", "sub", "handle_cpu", "sub_cpu")))
