#!/bin/sh
# SPDX-License-Identifier: MIT
# The systemd units make install writes: tel-sync's user service and
# timer, tel-collect's system service.  They are written for a scratch
# prefix holding the built tools (`make install-units`, the part of
# install that writes them, so the library is not rebuilt for that
# prefix), checked by systemd-analyze verify, and read for what verify
# does not look at: a calendar timer for Persistent=, no
# network-online.target in the user manager, the token as a credential.
. "$(dirname "$0")/lib.sh"
B=$TEL_BUILD

prefix="$T_TMP/prefix"
mkdir -p "$prefix/bin"
cp "$B/bin/tel-sync" "$B/bin/tel-collect" "$prefix/bin/"
if ! make -s -C "$TEL_TOP" install-units PREFIX="$prefix" >"$T_TMP/install.log" 2>&1; then
    fail "make install-units into a prefix" "$(tail -n 5 "$T_TMP/install.log")"
    t_done
fi
user="$prefix/lib/systemd/user"
system="$prefix/lib/systemd/system"
for f in "$user/tel-sync.service" "$user/tel-sync.timer" "$system/tel-collect.service"; do
    [ -f "$f" ] && ok "installed ${f#$prefix/}" || fail "installed ${f#$prefix/}" "missing"
done
check "the user service starts the installed tel-sync" \
    grep -qx "ExecStart=$prefix/bin/tel-sync --all --max-time 30" "$user/tel-sync.service"
check "tel-collect's unit starts the installed tel-collect" grep -q "^ExecStart=$prefix/bin/tel-collect " "$system/tel-collect.service"
check_eq "no @placeholder@ is left in the units" "$(cat "$user"/* "$system"/* | grep -c '@[A-Z]*@')" 0

# What verify does not check.
check "the timer is a calendar timer (Persistent= needs OnCalendar=)" grep -q '^OnCalendar=' "$user/tel-sync.timer"
check "the timer catches up missed runs (Persistent=true)" grep -qx 'Persistent=true' "$user/tel-sync.timer"
check "the timer spreads its runs (RandomizedDelaySec=)" grep -q '^RandomizedDelaySec=' "$user/tel-sync.timer"
check_eq "the user units depend on no network-online.target (the user manager has none)" \
    "$(cat "$user/tel-sync.service" "$user/tel-sync.timer" | grep -v '^#' | grep -c 'network-online')" 0
for f in "$user/tel-sync.service" "$user/tel-sync.timer" "$system/tel-collect.service"; do
    page=$(sed -n 's/^Documentation=man:\([a-z-]*\)(\([1-8]\))$/\2\/\1/p' "$f")
    [ -n "$page" ] && [ -f "$TEL_TOP/docs/man/${page#*/}.${page%%/*}" ] &&
        ok "$(basename "$f") documents itself with an installed man page ($page)" ||
        fail "$(basename "$f") documents itself with an installed man page" "'$page'"
done
check "tel-collect's unit has an [Install] section" grep -qx 'WantedBy=multi-user.target' "$system/tel-collect.service"
check "tel-collect's unit runs as a dynamic user" grep -qx 'DynamicUser=yes' "$system/tel-collect.service"
check "tel-collect's unit loads the token as a credential" grep -qx 'LoadCredential=token:/etc/tel-collect/token' "$system/tel-collect.service"
check "tel-collect reads the token from the credentials directory" \
    grep -q -- '--token-file ${CREDENTIALS_DIRECTORY}/token' "$system/tel-collect.service"
check "tel-collect's unit keeps its data in a private state directory" \
    grep -qx 'StateDirectory=tel-collect' "$system/tel-collect.service"

# systemd-analyze verify: the syntax, every key known, the executables there.
if ! command -v systemd-analyze >/dev/null 2>&1; then
    skip "systemd-analyze verify (no systemd-analyze here: Debian package systemd)"
    t_done
fi
# verify on a unit known to be broken must complain, or it proves nothing here.
printf '[Service]\nExecStart=%s/none\nNoSuchKey=1\n' "$T_TMP" >"$T_TMP/broken.service"
if ! out=$(systemd-analyze verify --man=no "$T_TMP/broken.service" 2>&1) && [ -n "$out" ]; then
    out=$(systemd-analyze verify --man=no "$system/tel-collect.service" 2>&1)
    check_eq "systemd-analyze verify: tel-collect.service" "$?:$out" "0:"
    mkdir -p "$T_TMP/runtime"
    chmod 0700 "$T_TMP/runtime"
    out=$(XDG_RUNTIME_DIR="$T_TMP/runtime" systemd-analyze --user verify --man=no \
        "$user/tel-sync.service" "$user/tel-sync.timer" 2>&1)
    check_eq "systemd-analyze --user verify: tel-sync.service and tel-sync.timer" "$?:$out" "0:"
else
    skip "systemd-analyze verify (it does not run in this sandbox: $(echo "$out" | head -n 1))"
fi
t_done
