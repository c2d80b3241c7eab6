#!/bin/sh
# SPDX-License-Identifier: MIT
# Makes sure the Debian packages tel needs are present.
#   scripts/deps.sh build|test|stress|bench|fuzz|langs ...
# As root, installs what is missing with apt-get; otherwise prints the
# exact install line and exits 1.
set -u
pkgs=""
for set in "$@"; do
    case "$set" in
    build) pkgs="$pkgs gcc make pkg-config liblmdb-dev libmsgpack-dev libcurl4-openssl-dev zlib1g-dev libmicrohttpd-dev libsqlite3-dev libpq-dev" ;;
    test)  pkgs="$pkgs python3 python3-msgpack lmdb-utils procps curl git openssl groff-base man-db golang-go nodejs postgresql sqlite3 g++ dpkg-dev debhelper systemd chromium" ;;
    stress) pkgs="$pkgs valgrind" ;;
    bench) pkgs="$pkgs libsqlite3-dev valgrind hyperfine time bc" ;;
    fuzz)  pkgs="$pkgs clang libclang-rt-14-dev" ;;
    # Rust for docs/other-languages.md's example: large, so not part of the
    # test set (Go and Node.js are); tests/t_langs.sh skips it without rustc.
    langs) pkgs="$pkgs rustc" ;;
    *) echo "deps.sh: unknown package set '$set'" >&2; exit 2 ;;
    esac
done
missing=""
for p in $pkgs; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "deps: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q $missing >/dev/null 2>&1; then
        apt-get update -q >/dev/null 2>&1
        apt-get install -y -q $missing >/dev/null || { echo "deps: apt-get install$missing failed" >&2; exit 1; }
    fi
    exit 0
fi
echo "tel needs these Debian packages; install them with:" >&2
echo "  sudo apt-get install -y$missing" >&2
exit 1
