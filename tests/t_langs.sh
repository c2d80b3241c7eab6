#!/bin/sh
# SPDX-License-Identifier: MIT
# The examples of docs/other-languages.md, run as their users would run
# them against an installed tel: Go through cgo, Python through ctypes,
# Node and Rust through `tel emit`.  Each must leave its event, with its
# typed properties, in the queue.  A language whose toolchain is not
# installed here is skipped (scripts/deps.sh langs installs them).
# rustup's rustc finds its toolchains under the real HOME, which lib.sh
# replaces with a private one.
: "${RUSTUP_HOME:=${HOME:-/root}/.rustup}"
export RUSTUP_HOME
. "$(dirname "$0")/lib.sh"
B=$TEL_BUILD
EX="$TEL_TOP/examples"

if [ "${TEL_SANITIZED:-0}" = 1 ]; then
    # A sanitized libtel.so can only be loaded by a program built with the
    # same runtime, which python3 and the Go toolchain are not.
    skip "examples in other languages (run in the plain build: python3 and Go cannot load a sanitized libtel.so)"
    t_done
fi

# Installed under the prefix the build was made for (a different one would
# rebuild the library under the other tests).
dest="$T_TMP/inst"
if ! make -s -C "$TEL_TOP" BUILD="${B#$TEL_TOP/}" install DESTDIR="$dest" >/dev/null 2>&1; then
    fail "make install for the examples" "make install failed"
    t_done
fi
libdir="$dest/usr/local/lib"
export PATH="$dest/usr/local/bin:$PATH"

# queued APP LANG: the example's event, as tel show prints it.
queued() {
    tel show --app "$1" | grep '"name":"example.ran"' | grep -c "\"lang\":\"$2\",\"answer\":42"
}

# Python, through ctypes.
if command -v python3 >/dev/null 2>&1; then
    LD_LIBRARY_PATH="$libdir" python3 "$EX/python/emit.py"
    check_eq "python: emit.py exits 0" $? 0
    check_eq "python: its event is queued with typed properties" "$(queued example-python python)" 1
    # Without libtel the program still runs and exits 0.
    LD_LIBRARY_PATH="$T_TMP/none" python3 "$EX/python/emit.py"
    check_eq "python: without libtel.so the program still exits 0" $? 0
else
    skip "python: no python3 here"
fi

# Go, through cgo and pkg-config.
if command -v go >/dev/null 2>&1; then
    mkdir -p "$T_TMP/go"
    cp "$EX/go/main.go" "$EX/go/go.mod" "$T_TMP/go/"
    if (cd "$T_TMP/go" && PKG_CONFIG_SYSROOT_DIR="$dest" PKG_CONFIG_PATH="$libdir/pkgconfig" \
        GOCACHE="$B/go-cache" GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=1 \
        CGO_LDFLAGS="-Wl,-rpath,$libdir" go build -o example-go . >"$T_TMP/go.log" 2>&1); then
        ok "go: the cgo example builds with pkg-config"
        "$T_TMP/go/example-go"
        check_eq "go: the example exits 0" $? 0
        check_eq "go: its event is queued with typed properties" "$(queued example-go go)" 1
    else
        fail "go: the cgo example builds with pkg-config" "$(tail -n 5 "$T_TMP/go.log")"
    fi
else
    skip "go: no Go toolchain here (golang-go)"
fi

# Node, through tel emit.
if command -v node >/dev/null 2>&1; then
    node "$EX/node/emit.js"
    check_eq "node: emit.js exits 0" $? 0
    check_eq "node: its event is queued with typed properties" "$(queued example-node node)" 1
    PATH="$T_TMP/none" "$(command -v node)" "$EX/node/emit.js"
    check_eq "node: without tel on PATH the program still exits 0" $? 0
else
    skip "node: no Node.js here (nodejs)"
fi

# Rust, through tel emit: Debian's rustc when it is installed.
rustc=/usr/bin/rustc
[ -x "$rustc" ] || rustc=$(command -v rustc 2>/dev/null)
if [ -n "$rustc" ]; then
    if "$rustc" -o "$T_TMP/example-rust" "$EX/rust/emit.rs" >"$T_TMP/rust.log" 2>&1; then
        ok "rust: emit.rs compiles with rustc"
        "$T_TMP/example-rust"
        check_eq "rust: the example exits 0" $? 0
        check_eq "rust: its event is queued with typed properties" "$(queued example-rust rust)" 1
    else
        fail "rust: emit.rs compiles with rustc" "$(tail -n 5 "$T_TMP/rust.log")"
    fi
else
    skip "rust: no rustc here (rustc)"
fi
t_done
