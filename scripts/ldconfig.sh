#!/bin/sh
# SPDX-License-Identifier: MIT
# After make install or uninstall: refreshes the dynamic loader's cache
# when the library went into the system itself (no DESTDIR) and its
# directory is one the loader searches; otherwise says how a host finds
# libtel.so at run time.  Never fails the install.
#   scripts/ldconfig.sh DESTDIR LIBDIR [quiet]
set -u
destdir=$1
libdir=$2
quiet=${3:-}
[ -n "$destdir" ] && exit 0
ldconfig=$(command -v ldconfig 2>/dev/null || true)
[ -z "$ldconfig" ] && [ -x /sbin/ldconfig ] && ldconfig=/sbin/ldconfig
# The directories the loader searches, as ldconfig prints them ("dir: ...")
# without rebuilding the cache (-N) or touching links (-X).
# /lib and /usr/lib are searched even when no configuration names them.
# Paths are compared resolved, since /lib is often a link to /usr/lib.
searched=""
[ -n "$ldconfig" ] && searched=$("$ldconfig" -v -N -X 2>/dev/null | sed -n 's/^\([^[:space:]][^:]*\):.*/\1/p')
resolved=$(for d in $searched /lib /usr/lib; do readlink -f "$d" 2>/dev/null || echo "$d"; done)
want=$(readlink -f "$libdir" 2>/dev/null || echo "$libdir")
if [ -n "$ldconfig" ] && printf '%s\n' "$resolved" | grep -qxF -- "$want"; then
    if "$ldconfig" 2>/dev/null; then
        exit 0
    fi
    [ -n "$quiet" ] || echo "tel: run ldconfig as root so that programs find libtel.so.0 in $libdir" >&2
    exit 0
fi
[ -n "$quiet" ] && exit 0
echo "tel: $libdir is not searched by the dynamic loader: build hosts with" >&2
echo "tel:   -Wl,-rpath,$libdir (or set LD_LIBRARY_PATH=$libdir), or link libtel.a" >&2
exit 0
