#!/bin/sh
# SPDX-License-Identifier: MIT
# Debian packages from the tree.  A copy of it (so no build droppings land
# in the sources) goes through `dpkg-buildpackage -us -uc -b`; the four
# packages are checked for what each holds and declares, unpacked into a
# scratch root with dpkg -x, and a host is built against that root's
# header and library and run.
. "$(dirname "$0")/lib.sh"

if [ "${TEL_SANITIZED:-0}" = 1 ]; then
    skip "Debian packages (built once, in the plain run: a package build uses Debian's flags, not the sanitizers')"
    t_done
fi
for t in dpkg-buildpackage dpkg-deb dh dh_installsystemduser; do
    if ! command -v "$t" >/dev/null 2>&1; then
        skip "Debian packages (no $t here; scripts/deps.sh test installs debhelper)"
        t_done
    fi
done

ver=$(sed -n 's/^#define TEL_VERSION "\(.*\)"/\1/p' "$TEL_TOP/include/tel.h")
ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
src="$T_TMP/src/tel-$ver"
mkdir -p "$src"
tar -C "$TEL_TOP" --exclude=./.git --exclude='./build*' --exclude=./debian/tmp \
    --exclude='./debian/.debhelper' -cf - . | tar -C "$src" -xf -
if ! (cd "$src" && DEB_BUILD_OPTIONS="parallel=2 nocheck" dpkg-buildpackage -us -uc -b >"$T_TMP/build.log" 2>&1); then
    fail "dpkg-buildpackage -us -uc -b builds the packages" "$(grep -v '^ ' "$T_TMP/build.log" | tail -n 15)"
    t_done
fi
ok "dpkg-buildpackage -us -uc -b builds the packages"

deb() { ls "$T_TMP/src/$1_${ver}_"*.deb 2>/dev/null | head -n 1; }
for p in libtel0 libtel-dev tel tel-collect; do
    [ -n "$(deb $p)" ] && ok "package $p is built" || fail "package $p is built" "no $p_*.deb"
done
warn=$(grep -E 'dpkg-gensymbols: warning|dpkg-shlibdeps: warning' "$T_TMP/build.log")
check_eq "the symbols file matches the library (no dpkg-gensymbols warning)" "$warn" ""

# holds PKG PATH...: each path is in the package's file list.
holds() {
    p=$1; shift
    list=$(dpkg-deb -c "$(deb "$p")" | awk '{ print $6 }' | sed 's|^\./|/|')
    for f in "$@"; do
        printf '%s\n' "$list" | grep -qxF "$f" && ok "$p holds $f" || fail "$p holds $f" "not in the package"
    done
}
holds libtel0 "/usr/lib/$ma/libtel.so.$ver" "/usr/lib/$ma/libtel.so.0"
holds libtel-dev /usr/include/tel.h "/usr/lib/$ma/libtel.so" "/usr/lib/$ma/libtel.a" \
    "/usr/lib/$ma/pkgconfig/tel.pc" /usr/share/man/man3/tel_emit.3.gz /usr/share/man/man3/tel_open.3.gz
holds tel /usr/bin/tel /usr/bin/tel-sync /usr/share/man/man1/tel.1.gz /usr/share/man/man1/tel-sync.1.gz \
    /usr/lib/systemd/user/tel-sync.service /usr/lib/systemd/user/tel-sync.timer
holds tel-collect /usr/bin/tel-collect /usr/share/man/man1/tel-collect.1.gz \
    /usr/lib/systemd/system/tel-collect.service

# Policy: the runtime package holds no development file and is named after
# the soname; the -dev package pins it; the symbols file ships.
dev_in_lib=$(dpkg-deb -c "$(deb libtel0)" | awk '{ print $6 }' | grep -E '\.h$|\.a$|libtel\.so$|\.pc$' || true)
check_eq "libtel0 holds no development file" "$dev_in_lib" ""
check_eq "libtel0 is Multi-Arch: same" "$(dpkg-deb -f "$(deb libtel0)" Multi-Arch)" "same"
case "$(dpkg-deb -f "$(deb libtel-dev)" Depends)" in
*"libtel0 (= $ver)"*) ok "libtel-dev depends on libtel0 of the same version" ;;
*) fail "libtel-dev depends on libtel0 of the same version" "$(dpkg-deb -f "$(deb libtel-dev)" Depends)" ;;
esac
mkdir -p "$T_TMP/ctl"
dpkg-deb -e "$(deb libtel0)" "$T_TMP/ctl"
check "libtel0 ships a symbols file for libtel.so.0" grep -q '^libtel.so.0 libtel0' "$T_TMP/ctl/symbols"

# Unpacked into a scratch root: the paths inside the files are the
# installed ones, and a host builds and runs against the root.
root="$T_TMP/root"
for p in libtel0 libtel-dev tel tel-collect; do dpkg -x "$(deb $p)" "$root"; done
check_eq "tel.pc points at the multiarch directory" \
    "$(PKG_CONFIG_PATH="$root/usr/lib/$ma/pkgconfig" pkg-config --variable=libdir tel)" "/usr/lib/$ma"
check "the user unit starts /usr/bin/tel-sync" grep -qx 'ExecStart=/usr/bin/tel-sync --all --max-time 30' \
    "$root/usr/lib/systemd/user/tel-sync.service"
check "libtel starts /usr/bin/tel-sync" grep -q /usr/bin/tel-sync "$root/usr/lib/$ma/libtel.so.$ver"
cat >"$T_TMP/h.c" <<'C'
#include <tel.h>
int main(void)
{
    return tel_emit("deb-test", "packaged", TEL_PROPS(TEL_STR("from", "libtel0"))) != TEL_OK;
}
C
flags=$(PKG_CONFIG_SYSROOT_DIR="$root" PKG_CONFIG_PATH="$root/usr/lib/$ma/pkgconfig" pkg-config --cflags --libs tel)
if cc -std=c99 -Wall -Wextra -Werror "$T_TMP/h.c" $flags -Wl,-rpath,"$root/usr/lib/$ma" -o "$T_TMP/host" 2>"$T_TMP/cc.log"; then
    ok "a host builds against the packaged header and library"
    "$T_TMP/host"
    check_eq "the host records its event through the packaged libtel.so.0" $? 0
    case "$(ldd "$T_TMP/host")" in *"$root/usr/lib/$ma/libtel.so.0"*) ok "the host loads the packaged libtel.so.0" ;;
    *) fail "the host loads the packaged libtel.so.0" "$(ldd "$T_TMP/host")" ;; esac
    check_eq "the packaged tel shows the event" \
        "$("$root/usr/bin/tel" show --app deb-test | grep -c '"name":"packaged"')" 1
else
    fail "a host builds against the packaged header and library" "$(head -n 5 "$T_TMP/cc.log")"
fi
t_done
