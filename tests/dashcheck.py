#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""tests/dashcheck.py - checks `tel-collect report --json` against the rows
tools/telgen generated, aggregated here independently of the collector's
SQL and rollups.

    dashcheck.py --tsv DIR --report FILE --from YYYY-MM-DD --to YYYY-MM-DD
                 [--k K] [--label TEXT]

DIR holds telgen's events.tsv, batches.tsv and erasures.tsv (PostgreSQL
COPY text).  Prints one "ok ..." or "FAIL ...: why" line per table, in
the style of tests/lib.sh, and exits 1 when one failed.
"""
import argparse
import collections
import datetime
import json
import math
import os
import sys

DAY = 86400000


def unescape(v):
    if v == "\\N":
        return None
    return v.replace("\\t", "\t").replace("\\n", "\n").replace("\\\\", "\\")


def rows(path):
    with open(path) as f:
        for line in f:
            yield [unescape(v) for v in line.rstrip("\n").split("\t")]


def day_text(d):
    return (datetime.date(1970, 1, 1) + datetime.timedelta(days=d)).isoformat()


def week_text(w):
    return day_text(w * 7 - 3)


class Check:
    def __init__(self, label):
        self.label, self.failed = label, 0

    def table(self, report, tid):
        for t in report["tables"]:
            if t["id"] == tid:
                return t
        return None

    def compare(self, name, report, tid, expect, keys=1, names=True):
        """expect: {key tuple: [values or None for hidden]} against the
        table's rows (first `keys` columns are the key).  When the keys
        are names (anything an install may send, not days), a row whose
        every value is hidden must not be there at all: one "other" row
        with every value hidden stands for all of them."""
        t = self.table(report, tid)
        why = []
        if t is None:
            why.append("no table " + tid)
        else:
            got = {tuple(r[:keys]): r[keys:] for r in t["rows"]}
            if names:
                other = ("other (fewer than %d installs each)" % K,) + ("",) * (keys - 1)
                gone = [k for k, w in expect.items() if w and all(v is None for v in w)]
                for key in gone:
                    del expect[key]
                    if key in got:
                        why.append("%s named, backed by fewer than %d installs" % (key, K))
                have = got.pop(other, None)
                if gone and (have is None or any(v != "< %d" % K for v in have)):
                    why.append("no 'other' row with every value hidden: %r" % (have,))
                if have is not None and not gone:
                    why.append("an 'other' row stands for nothing")
            for key, want in expect.items():
                have = got.get(key)
                if have is None:
                    why.append("%s missing" % (key,))
                    continue
                for i, w in enumerate(want):
                    h = have[i]
                    if w is None:
                        if h != "< %d" % K:
                            why.append("%s col %d: %r shown, want hidden" % (key, i, h))
                    elif isinstance(w, float):
                        if not isinstance(h, (int, float)) or abs(h - w) > 0.0005 + 1e-6 * abs(w):
                            why.append("%s col %d: %r, want %r" % (key, i, h, w))
                    elif h != w:
                        why.append("%s col %d: %r, want %r" % (key, i, h, w))
            extra = set(got) - set(expect)
            if extra:
                why.append("unexpected rows %s" % sorted(extra)[:3])
        if why:
            self.failed += 1
            print("FAIL %s%s: %s" % (name, self.label, "; ".join(why[:4])))
        else:
            print("ok %s%s" % (name, self.label))


def main():
    global K
    ap = argparse.ArgumentParser()
    ap.add_argument("--tsv", required=True)
    ap.add_argument("--report", required=True)
    ap.add_argument("--from", dest="frm", required=True)
    ap.add_argument("--to", required=True)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--label", default="")
    a = ap.parse_args()
    K = a.k
    d0 = (datetime.date.fromisoformat(a.frm) - datetime.date(1970, 1, 1)).days
    d1 = (datetime.date.fromisoformat(a.to) - datetime.date(1970, 1, 1)).days
    report = json.load(open(a.report))
    c = Check(a.label)

    ev_day = collections.Counter()
    inst_day = collections.defaultdict(set)
    noid_day = collections.defaultdict(set)
    inst_week = collections.defaultdict(set)
    inst_month = collections.defaultdict(set)
    ver_week = collections.defaultdict(set)
    ver_inst = collections.defaultdict(set)
    attr = {k: collections.defaultdict(set) for k in ("os", "arch", "cpus", "ci", "ci-vendors")}
    everyone = set()
    cmd_uses, cmd_fails, cmd_inst = collections.Counter(), collections.Counter(), collections.defaultdict(set)
    opt_uses, opt_inst = collections.Counter(), collections.defaultdict(set)
    err_n, err_inst = collections.Counter(), collections.defaultdict(set)
    span_n, span_inst = collections.Counter(), collections.defaultdict(set)
    latest = {}
    for r in rows(os.path.join(a.tsv, "events.tsv")):
        eid, ts, recv, name, app, ver, anon, exe, props, ctx, bid = r
        d = int(ts) // DAY
        if not d0 <= d <= d1:
            continue
        p, cx = json.loads(props), json.loads(ctx)
        ev_day[d] += 1
        if anon is None:
            noid_day[d].add(exe)
        else:
            everyone.add(anon)
            inst_day[d].add(anon)
            inst_week[(d + 3) // 7].add(anon)
            inst_month[day_text(d)[:7]].add(anon)
            ver_week[((d + 3) // 7, ver or "")].add(anon)
            ver_inst[ver or ""].add(anon)
            attr["os"][cx.get("os", "")].add(anon)
            attr["arch"][cx.get("arch", "")].add(anon)
            attr["cpus"][str(cx.get("cpus", ""))].add(anon)
            attr["ci"]["in CI" if cx.get("ci") else "not in CI"].add(anon)
            if cx.get("ci"):
                attr["ci-vendors"][cx.get("ci_vendor", "")].add(anon)
        who = {anon} if anon else set()
        if name == "command.exited" and "command" in p:
            cmd_uses[p["command"]] += 1
            cmd_fails[p["command"]] += p.get("exit_code", 0) != 0
            cmd_inst[p["command"]] |= who
        if name == "command.started" and "command" in p:
            for o in (p.get("options", "") + "," + p.get("env_options", "")).split(","):
                if o:
                    opt_uses[(p["command"], o)] += 1
                    opt_inst[(p["command"], o)] |= who
        if p.get("error_class"):
            err_n[p["error_class"]] += 1
            err_inst[p["error_class"]] |= who
        if name == "span" and "name" in p:
            key = (p.get("command", ""), p["name"], p.get("parent", ""))
            span_n[key] += 1
            span_inst[key] |= who
        if name == "metric" and anon and isinstance(p.get("value"), float):
            labels = ",".join("%s=%s" % (k[6:], v) for k, v in sorted(p.items()) if k.startswith("label."))
            key = (p["name"], labels or "-", anon)
            if key not in latest or latest[key][0] <= int(ts):
                latest[key] = (int(ts), p["value"])

    def shown(n, v):
        return v if n >= K or (n == 0 and not v) else None

    exp = {}
    for d in range(d0, d1 + 1):
        n = len(inst_day[d])
        vis = n >= K or (n == 0 and ev_day[d] == 0 and not noid_day[d])
        exp[(day_text(d),)] = [ev_day[d] if vis else None]
    c.compare("events per day match the store", report, "events-per-day", exp, names=False)
    exp = {}
    for d in range(d0, d1 + 1):
        n = len(inst_day[d])
        vis = n >= K or (n == 0 and ev_day[d] == 0 and not noid_day[d])
        exp[(day_text(d),)] = [n if vis else None, len(noid_day[d]) if vis else None]
    c.compare("active installs per day, and runs without a lasting id, match the store",
              report, "installs-per-day", exp, names=False)
    exp = {(week_text(w),): [shown(len(inst_week[w]), len(inst_week[w]))]
           for w in range((d0 + 3) // 7, (d1 + 3) // 7 + 1)}
    c.compare("active installs per week match the store", report, "installs-per-week", exp, names=False)
    months = sorted({day_text(d)[:7] for d in range(d0, d1 + 1)})
    exp = {(m,): [shown(len(inst_month[m]), len(inst_month[m]))] for m in months}
    c.compare("active installs per month match the store", report, "installs-per-month", exp, names=False)
    for tid, col in attr.items():
        total = len(everyone)
        exp = {(v or "(unknown)",): [shown(len(s), len(s)), shown(len(s), round(len(s) / total, 6))]
               for v, s in col.items()}
        c.compare("installs by %s match the store" % tid, report, tid, exp)
    # versions: the table has a column per version
    t = c.table(report, "versions-per-week")
    why = []
    for row in (t or {"rows": []})["rows"]:
        for j, v in enumerate(t["columns"][1:]):
            w = (d0 if False else None)
            wk = [x for x in range((d0 + 3) // 7, (d1 + 3) // 7 + 1) if week_text(x) == row[0]][0]
            n = len(ver_week[(wk, v)])
            want = shown(n, n)
            if (want is None and row[j + 1] != "< %d" % K) or (want is not None and row[j + 1] != want):
                why.append("%s %s: %r, want %r" % (row[0], v, row[j + 1], want))
    # a column per version K installs ran, and only those (its name shows)
    many = {v for v, s in ver_inst.items() if len(s) >= K}
    cols = set((t or {"columns": [""]})["columns"][1:])
    if cols - many or (len(many) < 12 and cols != many):
        why.append("version columns %s, want %s" % (sorted(cols), sorted(many)))
    if t is None or why:
        c.failed += 1
        print("FAIL installs per version and week match the store%s: %s" % (c.label, why[:3] or "no table"))
    else:
        print("ok installs per version and week match the store%s" % c.label)
    exp = {(k,): [shown(len(cmd_inst[k]), cmd_uses[k]),
                  shown(len(cmd_inst[k]), round(cmd_fails[k] / cmd_uses[k], 6))] for k in cmd_uses}
    t = c.table(report, "commands")
    if t:  # only uses and failure rate are recomputed here
        t = dict(t, rows=[r[:3] for r in t["rows"]])
        report = dict(report, tables=[t if x["id"] == "commands" else x for x in report["tables"]])
    c.compare("command uses and failure rates match the store", report, "commands", exp)
    exp = {k: [shown(len(opt_inst[k]), v)] for k, v in opt_uses.items()}
    c.compare("option uses match the store", report, "options", exp, keys=2)
    exp = {(k,): [shown(len(err_inst[k]), v)] for k, v in err_n.items()}
    c.compare("error classes match the store", report, "errors", exp)
    t = c.table(report, "spans")
    if t:
        t = dict(t, rows=[r[:4] for r in t["rows"]])
        report = dict(report, tables=[t if x["id"] == "spans" else x for x in report["tables"]])
    exp = {k: [shown(len(span_inst[k]), v)] for k, v in span_n.items()}
    c.compare("span counts match the store", report, "spans", exp, keys=3)
    series = collections.defaultdict(list)
    for (name, labels, anon), (ts, v) in latest.items():
        series[(name, labels)].append(v)
    exp = {k: [shown(len(v), len(v)), shown(len(v), float(sum(v)))] for k, v in series.items()}
    t = c.table(report, "metrics")
    if t:
        t = dict(t, rows=[r[:4] for r in t["rows"]])
        report = dict(report, tables=[t if x["id"] == "metrics" else x for x in report["tables"]])
    c.compare("the latest metric values, summed over installs, match the store", report, "metrics",
              exp, keys=2)
    dropped = sum(int(r[4]) for r in rows(os.path.join(a.tsv, "batches.tsv"))
                  if d0 * DAY <= int(r[1]) < (d1 + 1) * DAY)
    erased = sum(1 for r in rows(os.path.join(a.tsv, "erasures.tsv"))
                 if d0 * DAY <= int(r[1]) < (d1 + 1) * DAY)
    t = c.table(report, "missing")
    got = [r[1] for r in t["rows"]] if t else []
    if len(got) == 3 and got[0] == dropped and got[2] == erased:
        print("ok events dropped on clients and erasures match the store%s" % c.label)
    else:
        c.failed += 1
        print("FAIL events dropped on clients and erasures match the store%s: got %s, want %s and %s"
              % (c.label, got, dropped, erased))
    sys.exit(1 if c.failed else 0)


K = 5
if __name__ == "__main__":
    main()
