#!/bin/sh
# SPDX-License-Identifier: MIT
# Checks that the compiler finds every library the build links, and names
# the ones it does not: a missing library is a line saying which, not a
# screen of compiler errors.  Installs nothing (that is `make deps`).
#   CC=cc scripts/checklibs.sh name:header:-lflag:debian-package ...
# pkg-config supplies the flags when it knows the library; otherwise the
# compiler's default paths and the plain -l flag are tried.
set -u
cc=${CC:-cc}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tel-libcheck.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
missing=0
for spec in "$@"; do
    IFS=: read -r name header flag pkg <<EOF_SPEC
$spec
EOF_SPEC
    cflags=$(pkg-config --cflags "$name" 2>/dev/null) || cflags=""
    libs=$(pkg-config --libs "$name" 2>/dev/null) || libs=$flag
    printf '#include <%s>\nint main(void) { return 0; }\n' "$header" >"$tmp/c.c"
    # shellcheck disable=SC2086 # flags are word lists
    if ! $cc $cflags "$tmp/c.c" -o "$tmp/c" $libs >/dev/null 2>&1; then
        echo "tel: missing library $name (<$header>, $flag; Debian: $pkg)" >&2
        missing=$((missing + 1))
    fi
done
if [ "$missing" -gt 0 ]; then
    echo "tel: install the missing libraries (on Debian: make deps) and run make again" >&2
    exit 1
fi
exit 0
