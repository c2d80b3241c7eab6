#!/bin/sh
# The build's promises: the public header stands alone in strict C99 and
# in C++, the shared library exports only the public API, and nothing a
# host links (libtel, tel) pulls in libcurl or zlib.
. "$(dirname "$0")/lib.sh"
B=$TEL_BUILD

cat >"$T_TMP/h.c" <<'C'
#include <tel.h>
int main(void)
{
    tel_prop p[] = { TEL_INT("n", 1), TEL_STR("s", "x"), TEL_BOOL("b", 1), TEL_FLOAT("f", 0.5), TEL_NIL("z") };
    return tel_emit("header-test", "compiled", p, sizeof p / sizeof *p) == TEL_ERR_NOMEM;
}
C
check "tel.h: strict C99, -pedantic -Werror" cc -std=c99 -pedantic -Wall -Wextra -Werror -I"$TEL_TOP/include" -c "$T_TMP/h.c" -o "$T_TMP/h.o"
check "tel.h: C11" cc -std=c11 -pedantic -Wall -Wextra -Werror -I"$TEL_TOP/include" -c "$T_TMP/h.c" -o "$T_TMP/h11.o"
printf '#include <tel.h>\nint main() { return tel_strerror(TEL_OK) == 0; }\n' >"$T_TMP/h.cc"
if command -v c++ >/dev/null 2>&1; then
    check "tel.h: C++ (extern \"C\")" c++ -Wall -Wextra -Werror -I"$TEL_TOP/include" -c "$T_TMP/h.cc" -o "$T_TMP/hcc.o"
else
    skip "tel.h: C++ (no C++ compiler here)"
fi

# The floors run one way: util/ at the bottom, then format/, libqueue/,
# sync/.  Every quoted include of a folder must name a header of its own
# floor or one below (include/ holds the public tel.h; tel_config.h is
# generated for libqueue/), never one of a floor above or a path around.
floors="util format libqueue sync"
below="include"
for f in $floors; do
    below="$below $f"
    bad=""
    for src in "$TEL_TOP/$f"/*.[ch]; do
        for inc in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$src"); do
            case "$f:$inc" in libqueue:tel_config.h|sync:tel_config.h) continue ;; esac
            found=""
            case "$inc" in */*) ;; *) for d in $below; do [ -f "$TEL_TOP/$d/$inc" ] && found=1; done ;; esac
            [ -n "$found" ] || bad="$bad ${src#$TEL_TOP/}:$inc"
        done
    done
    check_eq "$f/ includes only headers of its own floor or below ($below)" "$bad" ""
done

# Exports: every dynamic symbol of libtel.so is a public tel_ name, and
# every public function of tel.h is exported.
exported=$(nm -D --defined-only "$B/libtel.so.0" | awk '$2 == "T" { sub(/@.*/, "", $3); print $3 }' | sort)
bad=$(echo "$exported" | grep -v '^tel_[a-z]' || true)
check_eq "libtel.so exports only tel_ names" "$bad" ""
internal=$(echo "$exported" | grep '^tel__' || true)
check_eq "libtel.so exports no internal tel__ names" "$internal" ""
declared=$(sed -n 's/^TEL_API [^(]*[ *]\(tel_[a-z_]*\)(.*/\1/p' "$TEL_TOP/include/tel.h" | sort)
missing=$(for f in $declared; do echo "$exported" | grep -qx "$f" || echo "$f"; done)
check_eq "every TEL_API function is exported" "$missing" ""
[ "$(echo "$declared" | wc -l)" -ge 20 ] && ok "tel.h declares the API (parsed $(echo "$declared" | wc -l) functions)" || fail "tel.h declares the API" "parsed too few"

# Light in the host.
for f in "$B/libtel.so.0" "$B/bin/tel"; do
    deps=$(ldd "$f" 2>/dev/null)
    case "$deps" in *libcurl*|*libz.so*|*libssl*) fail "$(basename "$f") links no libcurl, zlib or OpenSSL" "$deps" ;;
    *) ok "$(basename "$f") links no libcurl, zlib or OpenSSL" ;; esac
done
deps=$(ldd "$B/bin/tel-sync")
case "$deps" in *libcurl*) ok "tel-sync is where libcurl lives" ;; *) fail "tel-sync is where libcurl lives" "$deps" ;; esac

# A host built from the installed files with pkg-config, as a CLI author would.
# Installed under the prefix the build was made for: a different PREFIX at
# install time would rewrite build/gen/tel_config.h and rebuild the library
# under the other tests' feet.
dest="$T_TMP/inst"
san=""
[ "${TEL_SANITIZED:-0}" = 1 ] && san="SANITIZE=address,undefined"
if make -s -C "$TEL_TOP" BUILD="${B#$TEL_TOP/}" $san install PREFIX=/usr/local DESTDIR="$dest" >/dev/null 2>&1; then
    ok "make install into DESTDIR"
    for f in bin/tel bin/tel-sync bin/tel-collect include/tel.h lib/libtel.a lib/libtel.so lib/libtel.so.0 lib/pkgconfig/tel.pc \
             share/man/man1/tel.1 share/man/man1/tel-sync.1 share/man/man1/tel-collect.1; do
        [ -e "$dest/usr/local/$f" ] && ok "installed $f" || fail "installed $f" "missing"
    done
    flags=$(PKG_CONFIG_SYSROOT_DIR="$dest" PKG_CONFIG_PATH="$dest/usr/local/lib/pkgconfig" pkg-config --cflags --libs tel)
    # A sanitized libtel.so needs its host built with the same runtime.
    hostsan=""
    [ -n "$san" ] && hostsan="-fsanitize=address,undefined"
    check "a host links with pkg-config --libs tel" cc $hostsan "$T_TMP/h.c" $flags -Wl,-rpath,"$dest/usr/local/lib" -o "$T_TMP/host"
    "$T_TMP/host"; check_eq "the host emits in one call" $? 0
    check_eq "the event is queued" "$(tel show --app header-test | grep -c '"name":"compiled"')" 1
    deps=$(ldd "$T_TMP/host")
    case "$deps" in *libcurl*|*libz.so*) fail "the host links no libcurl or zlib" "$deps" ;; *) ok "the host links no libcurl or zlib" ;; esac
else
    fail "make install into DESTDIR" "make install failed"
fi

# The README's integration example is real code: it compiles as shown,
# strictly, and records its event.
awk '/^```c$/ { on = 1; next } /^```$/ { if (on) exit } on' "$TEL_TOP/README.md" >"$T_TMP/readme.c"
check "README example: found" test -s "$T_TMP/readme.c"
hostsan2=""
[ "${TEL_SANITIZED:-0}" = 1 ] && hostsan2="-fsanitize=address,undefined"
check "README example: compiles with -std=c99 -Wall -Wextra -Werror" \
    cc $hostsan2 -std=c99 -Wall -Wextra -Werror -I"$TEL_TOP/include" "$T_TMP/readme.c" "$B/libtel.a" \
    -Wl,-Bstatic -llmdb -lmsgpackc -Wl,-Bdynamic -o "$T_TMP/readme"
"$T_TMP/readme"; check_eq "README example: runs" $? 0
check_eq "README example: its event is queued" "$(tel show --app mycli | grep -c '"name":"deploy.finished"')" 1
t_done
