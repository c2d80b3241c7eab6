#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/t_demo.sh - `make demo` prints the same every run: the detached
# tel-sync the example starts no longer races the demo's own steps.  Two
# runs are compared with what must differ (times, ids, sizes, the temporary
# directory, the collector's port) masked.
. "$TEL_TOP/tests/lib.sh"
DEMO=${TEL_DEMO:-$TEL_TOP/examples/demo.sh}
# Each run on a collector port of its own: on the default port a tel-sync
# still running from one demo (or from a demo in another checkout) could
# deliver into the next one's collector.
export TEL_DEMO_PORT=0

# Digits go (times, ids, byte counts, milliseconds); words stay, and they
# are what the race changed ("nothing queued", "another tel-sync ...").
mask() {
    sed -e 's/tel-demo\.[A-Za-z0-9]*/tel-demo.X/g' \
        -e '/^== tel-collect listening/d' -e '/^endpoint:/d' \
        -e 's/[0-9a-f]\{8\}-[0-9a-f-]\{27\}/UUID/g' -e 's/[0-9][0-9]*/N/g' "$1"
}
for i in 1 2; do
    if ! sh "$DEMO" "$TEL_BUILD" >"$T_TMP/demo$i.out" 2>&1; then
        fail "the demo runs" "$(tail -3 "$T_TMP/demo$i.out")"
        t_done
    fi
    mask "$T_TMP/demo$i.out" >"$T_TMP/demo$i.masked"
done
if cmp -s "$T_TMP/demo1.masked" "$T_TMP/demo2.masked"; then
    ok "two runs of the demo print the same, times and ids aside"
else
    fail "two runs of the demo print the same, times and ids aside" \
        "$(diff "$T_TMP/demo1.masked" "$T_TMP/demo2.masked" | head -6 | tr '\n' '|')"
fi
case "$(cat "$T_TMP/demo1.out")" in
*"tel-sync: mycli: sent 4 events in 1 batch"*) ok "the demo's tel-sync sends what the detached one left" ;;
*) fail "the demo's tel-sync sends what the detached one left" "$(grep 'tel-sync:' "$T_TMP/demo1.out")" ;;
esac
t_done
