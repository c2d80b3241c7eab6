#!/bin/sh
# SPDX-License-Identifier: MIT
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
    int major, minor, patch;
    if (tel_version_numbers(&major, &minor, &patch) != TEL_VERSION_MAJOR * 10000 + TEL_VERSION_MINOR * 100 + TEL_VERSION_PATCH ||
        major != TEL_VERSION_MAJOR || minor != TEL_VERSION_MINOR || patch != TEL_VERSION_PATCH)
        return 3;
    return tel_emit("header-test", "compiled", p, sizeof p / sizeof *p) == TEL_ERR_NOMEM;
}
C
check "tel.h: strict C99, -pedantic -Werror" cc -std=c99 -pedantic -Wall -Wextra -Werror -I"$TEL_TOP/include" -c "$T_TMP/h.c" -o "$T_TMP/h.o"
check "tel.h: C11" cc -std=c11 -pedantic -Wall -Wextra -Werror -I"$TEL_TOP/include" -c "$T_TMP/h.c" -o "$T_TMP/h11.o"
# C++ hosts use the same macros, in an array and inline in TEL_PROPS; the
# count is taken unevaluated, so i++ runs once per property, as in C.
cat >"$T_TMP/h.cc" <<'CC'
#include <tel.h>
int main()
{
    tel_prop p[] = { TEL_INT("n", 1), TEL_STR("s", "x"), TEL_BOOL("b", 1), TEL_FLOAT("f", 0.5), TEL_NIL("z") };
    int i = 7;
    int rc = tel_emit("cxx-test", "array", p, sizeof p / sizeof *p);
    rc |= tel_emit("cxx-test", "inline", TEL_PROPS(TEL_INT("i", i++), TEL_STR("lang", "c++"),
                                                   TEL_BOOL("ok", true), TEL_FLOAT("f", 0.25), TEL_NIL("z")));
    return rc != TEL_OK || i != 8;
}
CC
if command -v g++ >/dev/null 2>&1; then
    for std in c++11 c++17 c++20; do
        check "tel.h: C++ ($std -pedantic -Wall -Wextra -Werror) with the TEL_* macros" \
            g++ -std=$std -pedantic -Wall -Wextra -Werror -I"$TEL_TOP/include" -c "$T_TMP/h.cc" -o "$T_TMP/hcc.o"
    done
    cxxsan=""
    [ "${TEL_SANITIZED:-0}" = 1 ] && cxxsan="-fsanitize=address,undefined"
    if g++ $cxxsan -std=c++17 -I"$TEL_TOP/include" "$T_TMP/h.cc" "$B/libtel.a" -Wl,-Bstatic -llmdb -lmsgpackc \
        -Wl,-Bdynamic -o "$T_TMP/hcc" 2>"$T_TMP/hcc.log"; then
        "$T_TMP/hcc"
        check_eq "a C++ host records its events" $? 0
        check_eq "C++: the array's properties are stored typed" \
            "$(tel show --app cxx-test | grep '"name":"array"' | grep -o '"props":{[^}]*}')" \
            '"props":{"n":1,"s":"x","b":true,"f":0.5,"z":null}'
        check_eq "C++: TEL_PROPS's properties are stored typed" \
            "$(tel show --app cxx-test | grep '"name":"inline"' | grep -o '"props":{[^}]*}')" \
            '"props":{"i":7,"lang":"c++","ok":true,"f":0.25,"z":null}'
    else
        fail "a C++ host links with libtel.a" "$(head -n 5 "$T_TMP/hcc.log")"
    fi
else
    skip "tel.h: C++ (no g++ here: Debian package g++)"
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
# The version script names each export: no wildcard can let a future
# internal or half-made function join the ABI by its name alone.
mapped=$(sed -n 's/^[[:space:]]*\(tel_[a-z_]*\);[[:space:]]*$/\1/p' "$TEL_TOP/libqueue/tel.map" | sort)
check_eq "tel.map lists exactly the TEL_API functions of tel.h" "$mapped" "$declared"
check_eq "tel.map has no wildcard in its global list" \
    "$(sed -n '/global:/,/local:/p' "$TEL_TOP/libqueue/tel.map" | grep -v 'local:' | grep -c '\*')" 0
# In the static library too, a global name with the public prefix is public
# API: everything internal is tel__.
public_prefix=$(nm --defined-only "$B/libtel.a" 2>/dev/null | awk '$2 ~ /^[A-Z]$/ && $3 ~ /^tel_/ && $3 !~ /^tel__/ { print $3 }' | sort -u)
check_eq "libtel.a's global tel_ names are exactly tel.h's API" "$public_prefix" "$declared"
sync_public=$(nm --defined-only "$B/libtelsync.a" 2>/dev/null | awk '$2 ~ /^[A-Z]$/ && $3 !~ /^tel__/ { print $3 }' | sort -u)
check_eq "libtelsync.a's global names are all internal (tel__)" "$sync_public" ""
[ "$(echo "$declared" | wc -l)" -ge 20 ] && ok "tel.h declares the API (parsed $(echo "$declared" | wc -l) functions)" || fail "tel.h declares the API" "parsed too few"

# Names: the file carries the whole version, the soname only the ABI's.
ver=$(sed -n 's/^#define TEL_VERSION "\(.*\)"/\1/p' "$TEL_TOP/include/tel.h")
soname=$(readelf -d "$B/libtel.so.0.${ver#*.}" 2>/dev/null | sed -n 's/.*SONAME.*\[\(.*\)\].*/\1/p')
check_eq "libtel.so.0.${ver#*.} is built, with the soname libtel.so.0" "$soname" "libtel.so.0"

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
    for f in bin/tel bin/tel-sync bin/tel-collect include/tel.h lib/libtel.a lib/libtel.so lib/libtel.so.0 \
             "lib/libtel.so.0.${ver#*.}" lib/pkgconfig/tel.pc \
             share/man/man1/tel.1 share/man/man1/tel-sync.1 share/man/man1/tel-collect.1 \
             share/man/man3/libtel.3 share/man/man3/tel_emit.3 share/man/man3/tel_close.3 \
             lib/systemd/user/tel-sync.service lib/systemd/user/tel-sync.timer \
             lib/systemd/system/tel-collect.service; do
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
    static=$(PKG_CONFIG_SYSROOT_DIR="$dest" PKG_CONFIG_PATH="$dest/usr/local/lib/pkgconfig" pkg-config --static --libs tel)
    dups=$(printf '%s\n' $static | sort | uniq -d)
    check_eq "pkg-config --static --libs tel names each library once ($static)" "$dups" ""
    case "$static" in *-llmdb*-lmsgpackc*|*-lmsgpackc*-llmdb*) ok "pkg-config --static --libs tel has LMDB and msgpack-c" ;;
    *) fail "pkg-config --static --libs tel has LMDB and msgpack-c" "$static" ;; esac
    check "tel.pc names the MIT licence" grep -q 'MIT' "$dest/usr/local/lib/pkgconfig/tel.pc"

    # Uninstall removes what install wrote and nothing else.
    echo keep >"$dest/usr/local/bin/someone-elses"
    if make -s -C "$TEL_TOP" BUILD="${B#$TEL_TOP/}" $san uninstall PREFIX=/usr/local DESTDIR="$dest" >/dev/null 2>&1; then
        left=$(cd "$dest" && find . -type f -o -type l | sort | tr '\n' ' ')
        check_eq "make uninstall removes every installed file and leaves others" "$left" "./usr/local/bin/someone-elses "
    else
        fail "make uninstall removes every installed file and leaves others" "make uninstall failed"
    fi
else
    fail "make install into DESTDIR" "make install failed"
fi

# make installs nothing: with no dpkg-query or apt-get on PATH it still
# builds (it used to run scripts/deps.sh first), and a missing library is
# named with its Debian package.
nodpkg="$T_TMP/nodpkg-bin"
mkdir -p "$nodpkg"
for d in $(echo "$PATH" | tr ':' ' '); do
    for f in "$d"/*; do
        n=${f##*/}
        case "$n" in dpkg*|apt*) continue ;; esac
        [ -x "$f" ] && [ ! -e "$nodpkg/$n" ] && ln -s "$f" "$nodpkg/$n"
    done
done
if PATH="$nodpkg" command -v dpkg-query >/dev/null 2>&1; then
    fail "a PATH without dpkg-query" "still found"
else
    check "make, built and up to date, runs no dpkg-query" env PATH="$nodpkg" make -s -C "$TEL_TOP" BUILD="${B#$TEL_TOP/}" $san all
    if [ "${TEL_SANITIZED:-0}" = 0 ]; then
        check "make builds libtel and tel from scratch with no dpkg-query or apt-get" \
            env PATH="$nodpkg" make -s -j2 -C "$TEL_TOP" BUILD="$T_TMP/fresh" "$T_TMP/fresh/bin/tel" "$T_TMP/fresh/libtel.so.0.${ver#*.}"
    fi
fi
# A compiler that cannot find LMDB: the check names it, the build stops
# before compiling anything.
cat >"$T_TMP/nolmdb-cc" <<'SH'
#!/bin/sh
for a in "$@"; do case "$a" in -llmdb) echo "ld: cannot find -llmdb" >&2; exit 1 ;; esac; done
exec cc "$@"
SH
chmod +x "$T_TMP/nolmdb-cc"
out=$(make -s -C "$TEL_TOP" BUILD="$T_TMP/nolmdb" CC="$T_TMP/nolmdb-cc" all 2>&1)
check_eq "make without LMDB fails, naming it" "$(echo "$out" | grep -c '^tel: missing library lmdb (<lmdb.h>, -llmdb; Debian: liblmdb-dev)$')" 1
check_eq "make without LMDB compiles nothing" "$(find "$T_TMP/nolmdb" -name '*.o' 2>/dev/null | wc -l)" 0

# ldconfig after install: run when the library went into a directory the
# loader searches, a hint otherwise, nothing for a DESTDIR.
fake="$T_TMP/fakeldconfig"
mkdir -p "$fake"
cat >"$fake/ldconfig" <<SH
#!/bin/sh
case "\$*" in *-N*) printf '/searched/lib: (from /etc/ld.so.conf.d/x.conf:1)\n\tlibc.so.6 -> libc.so.6\n' ;; *) echo "ran \$*" >>"$T_TMP/ldconfig.log" ;; esac
SH
chmod +x "$fake/ldconfig"
PATH="$fake:$PATH" sh "$TEL_TOP/scripts/ldconfig.sh" "" /searched/lib >"$T_TMP/ld.out" 2>&1
check_eq "install into a searched libdir runs ldconfig" "$(cat "$T_TMP/ldconfig.log" 2>/dev/null)" "ran "
rm -f "$T_TMP/ldconfig.log"
PATH="$fake:$PATH" sh "$TEL_TOP/scripts/ldconfig.sh" "" /opt/tel/lib >"$T_TMP/ld.out" 2>&1
check_eq "install elsewhere does not run ldconfig" "$(cat "$T_TMP/ldconfig.log" 2>/dev/null)" ""
check "install elsewhere says how to find libtel.so (rpath)" grep -q -- '-Wl,-rpath,/opt/tel/lib' "$T_TMP/ld.out"
PATH="$fake:$PATH" sh "$TEL_TOP/scripts/ldconfig.sh" "$T_TMP/dest" /searched/lib >"$T_TMP/ld.out" 2>&1
check_eq "install into a DESTDIR runs no ldconfig and says nothing" "$(cat "$T_TMP/ldconfig.log" 2>/dev/null)$(cat "$T_TMP/ld.out")" ""

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
