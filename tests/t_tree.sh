#!/bin/sh
# SPDX-License-Identifier: MIT
# Promises about the source tree itself, so that files added later are
# held to them too: the project speaks of itself in its own words, and
# every source file names its licence.
. "$(dirname "$0")/lib.sh"
cd "$TEL_TOP" || exit 1

# tracked: every file git knows (tracked or new and not ignored), or every
# file under the tree when it is not a git checkout.
if git rev-parse --git-dir >/dev/null 2>&1; then
    tracked() { git ls-files --cached --others --exclude-standard | while read -r f; do [ -f "$f" ] && echo "$f"; done; }
else
    tracked() { find . -type f ! -path './build*' ! -path './.git/*' | sed 's|^\./||'; }
fi

# No document outside the repository is cited: the reasons for tel's
# targets and promises are written here.  (The patterns are spelt so that
# this file does not match itself; fuzz corpora are data.)
cited=$(tracked | grep -v '^tests/fuzz/corpus/' | while read -r f; do
    grep -l -i -E '\bthe[ ]brief\b|BRIEF[.]md' "$f" 2>/dev/null
done)
check_eq "no file cites a brief outside the repository" "$(echo $cited)" ""
# Every source file names its licence in one of its first three lines, so
# that a file copied out of the tree still says under what terms.
# (Fuzz corpora are data, not source.)
unlicensed=$(tracked | grep -v '^tests/fuzz/corpus/' |
    grep -E '(^|/)Makefile$|^debian/rules$|\.(c|h|sh|py|go|rs|js)$' | while read -r f; do
    head -n 3 "$f" | grep -q 'SPDX-License-Identifier: MIT' || echo "$f"
done)
check_eq "every source file carries an SPDX-License-Identifier: MIT line" "$(echo $unlicensed)" ""
t_done
