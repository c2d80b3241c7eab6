#!/bin/sh
# SPDX-License-Identifier: MIT
# The man pages against the tools as built.  A man page drifts from its
# tool silently, so every option, command and exit code that a tool's
# --help lists is looked for in its page, and every option the page
# documents in OPTIONS must be one --help lists (or, for the few the help
# leaves out, one the tool really accepts).  The pages must also render
# without a single groff warning.  That they install is checked in
# t_build.sh, which already runs `make install`.
#
# The library's pages (section 3): every TEL_API function of tel.h has a
# page, or a .so link to the page of its family, whose NAME lists it and
# whose SYNOPSIS repeats its declaration as tel.h has it.
. "$(dirname "$0")/lib.sh"
B=$TEL_BUILD
MAN="$TEL_TOP/docs/man"
TOOLS="tel tel-sync tel-collect"

# Long options a tool accepts although its --help does not list them, as
# "tool:--option".  Each one is checked to be accepted by the tool, so an
# entry cannot hide an option the page invents.  (tel-sync's help shows
# only -v and -q; libtel itself starts it with --quiet.)
HELP_OMITS="tel-sync:--verbose tel-sync:--quiet"

# section PAGE NAME: the roff lines of one .SH section, heading excluded.
section() {
    awk -v want="$2" '
        /^\.SH / { h = substr($0, 5); gsub(/"/, "", h); on = (h == want); next }
        on { print }' "$1"
}

# tags PAGE NAME: the tag line of every .TP item in one section, with
# roff's \- written as a plain hyphen.
tags() {
    section "$1" "$2" | awk 'tp { print; tp = 0; next } /^\.TP/ { tp = 1 }' | sed 's/\\-/-/g'
}

# The first long option of every option line of a --help text: lines that
# start with blanks, then "-x, " or nothing, then "--name".
help_long_opts() {
    sed -n 's/^ \{1,\}\(-[A-Za-z], \{1,\}\)\{0,1\}\(--[a-z][a-z0-9-]*\).*/\2/p' | sort -u
}

# The exit codes of the "Exit status" part of a --help text, which runs
# to the end of the text.  Both layouts in use are read: one code per line
# ("  2  bad usage") and one sentence ("Exit status: 0 ...; 1 ...; 2 ...").
help_exit_codes() {
    awk '/^Exit status/ { on = 1 } on { print }' | awk '
        /^ +[0-9]+  / { n = $1; print n }
        { all = all " " $0 }
        END {
            while (match(all, /(Exit status:|;) *[0-9]+ /)) {
                s = substr(all, RSTART, RLENGTH); gsub(/[^0-9]/, "", s); print s
                all = substr(all, RSTART + RLENGTH)
            }
        }' | sort -un
}

# missing WANT HAVE: the lines of WANT that are not in HAVE, on one line.
missing() {
    printf '%s\n' "$1" | while read -r w; do
        [ -n "$w" ] || continue
        printf '%s\n' "$2" | grep -qxF -- "$w" || printf '%s ' "$w"
    done
}

# --- rendering ------------------------------------------------------------

if command -v groff >/dev/null 2>&1; then
    render="groff"
elif command -v mandoc >/dev/null 2>&1; then
    render="mandoc"
else
    render=""
fi
for t in $TOOLS; do
    page="$MAN/$t.1"
    if [ ! -f "$page" ]; then
        fail "$t.1 exists" "no $page"
        continue
    fi
    ok "$t.1 exists"
    case "$render" in
    groff) warn=$(groff -man -Tutf8 -ww -z "$page" 2>&1) ;;
    mandoc) warn=$(mandoc -Tlint -W warning "$page" 2>&1) ;;
    esac
    if [ -n "$render" ]; then
        check_eq "$t.1 renders with $render without warnings" "$warn" ""
    else
        skip "$t.1 renders without warnings (neither groff nor mandoc is installed)"
    fi
    if command -v man >/dev/null 2>&1 && [ -n "$render" ]; then
        out=$(MANWIDTH=80 man -l "$page" 2>&1)
        rc=$?
        head=$(echo "$t" | tr a-z A-Z)
        case "$rc:$out" in
        0:*"$head(1)"*NAME*SYNOPSIS*) ok "$t.1 renders with man -l" ;;
        *) fail "$t.1 renders with man -l" "status $rc: $(echo "$out" | head -n 3)" ;;
        esac
    else
        skip "$t.1 renders with man -l (no man, or nothing for it to render with)"
    fi

    # The sections a reader looks for, in the order man-pages(7) gives.
    got=$(sed -n 's/^\.SH "\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$page" | tr '\n' '|')
    want="NAME|SYNOPSIS|DESCRIPTION|"
    [ "$t" = tel ] && want="${want}COMMANDS|"
    want="${want}OPTIONS|ENVIRONMENT|FILES|EXIT STATUS|EXAMPLES|SEE ALSO|"
    check_eq "$t.1 has the usual sections, in order" "$got" "$want"
done

# --- options --------------------------------------------------------------

for t in $TOOLS; do
    page="$MAN/$t.1"
    [ -f "$page" ] || continue
    help=$("$B/bin/$t" --help)
    h_opts=$(printf '%s\n' "$help" | help_long_opts)
    m_opts=$(tags "$page" OPTIONS | grep -o -- '--[a-z][a-z0-9-]*' | sort -u)
    # A parser that finds nothing would make both directions pass.
    [ "$(printf '%s\n' "$h_opts" | grep -c .)" -ge 3 ] &&
        ok "$t --help: options parsed ($(echo $h_opts))" ||
        fail "$t --help: options parsed" "found only '$(echo $h_opts)'"
    gone=$(missing "$h_opts" "$m_opts")
    check_eq "$t.1 documents every long option of --help" "$gone" ""
    extra=$(missing "$m_opts" "$h_opts")
    unknown=""
    for o in $extra; do
        case " $HELP_OMITS " in
        *" $t:$o "*)
            # Accepted means: the option parses, then --help exits 0.
            # getopt_long also takes any unambiguous abbreviation, so the
            # full name must be in the tool's option table too.
            if "$B/bin/$t" "$o" --help >/dev/null 2>&1 &&
                tr -c '[:print:]' '\n' <"$B/bin/$t" | grep -qxF -- "${o#--}"; then
                ok "$t accepts $o, which its --help leaves out"
            else
                unknown="$unknown$o "
            fi ;;
        *) unknown="$unknown$o " ;;
        esac
    done
    check_eq "$t.1 documents no option the tool lacks" "$unknown" ""
done

# tel's commands: every one --help lists has its item under COMMANDS, and
# the page has no item for a command tel does not know.
if [ -f "$MAN/tel.1" ]; then
    h_cmds=$("$B/bin/tel" --help | awk '/^Commands:/ { on = 1; next } on && /^$/ { exit }
        on && /^  [a-z]/ { print $1 }' | sort -u)
    m_cmds=$(tags "$MAN/tel.1" COMMANDS | sed -n 's/^\.B[IR]\{0,1\} \([a-z-]*\).*/\1/p' | sort -u)
    [ "$(printf '%s\n' "$h_cmds" | grep -c .)" -ge 5 ] &&
        ok "tel --help: commands parsed ($(echo $h_cmds))" ||
        fail "tel --help: commands parsed" "found only '$(echo $h_cmds)'"
    check_eq "tel.1 documents every command of --help" "$(missing "$h_cmds" "$m_cmds")" ""
    check_eq "tel.1 documents no command tel lacks" "$(missing "$m_cmds" "$h_cmds")" ""
fi

# --- exit status ----------------------------------------------------------

for t in $TOOLS; do
    page="$MAN/$t.1"
    [ -f "$page" ] || continue
    h_codes=$("$B/bin/$t" --help | help_exit_codes)
    m_codes=$(tags "$page" "EXIT STATUS" | sed -n 's/^\.B \([0-9]\{1,\}\)$/\1/p' | sort -un)
    # Every tool has at least 0, 1 and 2.
    [ "$(printf '%s\n' "$h_codes" | grep -c .)" -ge 3 ] &&
        ok "$t --help: exit codes parsed ($(echo $h_codes))" ||
        fail "$t --help: exit codes parsed" "found only '$(echo $h_codes)'"
    check_eq "$t.1 EXIT STATUS lists every code of --help" "$(missing "$h_codes" "$m_codes")" ""
    check_eq "$t.1 EXIT STATUS lists no code --help lacks" "$(missing "$m_codes" "$h_codes")" ""
done

# --- section 3: the library -------------------------------------------------

# Every TEL_API function of tel.h, as its declaration on one line with the
# TEL_API marker dropped and blanks normalised.
norm() { tr '\n' ' ' | sed -e 's/[[:space:]]\{1,\}/ /g' -e 's/( /(/g' -e 's/ )/)/g' -e 's/^ //' -e 's/ $//'; }
decls=$(awk '/^TEL_API / { on = 1; d = "" } on { d = d " " $0 } on && /;/ { print d; on = 0 }' "$TEL_TOP/include/tel.h" |
    while IFS= read -r d; do echo "$(printf '%s\n' "$d" | norm | sed 's/^TEL_API //')"; done)
nfun=$(printf '%s\n' "$decls" | grep -c .)
[ "$nfun" -ge 20 ] && ok "tel.h: TEL_API declarations parsed ($nfun)" || fail "tel.h: TEL_API declarations parsed" "only $nfun"

# page FILE: the page a .3 file stands for (itself, or what its .so names).
page_of() {
    so=$(sed -n 's/^\.so man3\/\(.*\)$/\1/p' "$1")
    if [ -n "$so" ]; then echo "$MAN/$so"; else echo "$1"; fi
}
undocumented=""
unlisted=""
nosynopsis=""
while IFS= read -r d; do
    [ -n "$d" ] || continue
    f=$(printf '%s\n' "$d" | sed 's/^[^(]*[ *]\(tel_[a-z_]*\)(.*/\1/')
    p=$(page_of "$MAN/$f.3" 2>/dev/null)
    if [ ! -f "$MAN/$f.3" ] || [ ! -f "$p" ]; then undocumented="$undocumented$f "; continue; fi
    section "$p" NAME | sed 's/\\-.*//' | tr ',' '\n' | tr -d ' ' | grep -qxF "$f" || unlisted="$unlisted$f "
    syn=$(groff -man -Tascii -P-cbou "$p" 2>/dev/null | awk '/^SYNOPSIS/ { on = 1; next } /^[A-Z]/ { on = 0 } on' | norm)
    case "$syn" in *"$d"*) ;; *) nosynopsis="$nosynopsis$f " ;; esac
done <<EOF_DECLS
$decls
EOF_DECLS
check_eq "every TEL_API function has a section 3 page" "$undocumented" ""
check_eq "every TEL_API function is named in its page's NAME" "$unlisted" ""
check_eq "every page's SYNOPSIS repeats tel.h's declaration" "$nosynopsis" ""

# Pages and links: every .so link names a real page; every real page
# renders without warnings and has the sections a reader looks for.
for p in "$MAN"/*.3; do
    n=$(basename "$p")
    so=$(sed -n 's/^\.so man3\/\(.*\)$/\1/p' "$p")
    if [ -n "$so" ]; then
        [ -f "$MAN/$so" ] && ! grep -q '^\.so' "$MAN/$so" && ok "$n links to the page $so" ||
            fail "$n links to a page" "no page $so"
        continue
    fi
    case "$render" in
    groff) check_eq "$n renders with groff without warnings" "$(groff -man -Tutf8 -ww -z "$p" 2>&1)" "" ;;
    mandoc) check_eq "$n renders with mandoc without warnings" "$(mandoc -Tlint -W warning "$p" 2>&1)" "" ;;
    *) skip "$n renders without warnings (neither groff nor mandoc is installed)" ;;
    esac
    got=$(sed -n 's/^\.SH "\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$p" | tr '\n' '|')
    # man-pages(7)'s order; EXAMPLES and NOTES where a page has them.
    case "$n:$got" in
    libtel.3:"NAME|SYNOPSIS|DESCRIPTION|FILES|NOTES|SEE ALSO|") ok "$n has the usual sections, in order" ;;
    libtel.3:*) fail "$n has the usual sections, in order" "got '$got'" ;;
    *:"NAME|SYNOPSIS|DESCRIPTION|RETURN VALUE|"*"SEE ALSO|") ok "$n has the usual sections, in order" ;;
    *) fail "$n has the usual sections, in order" "got '$got'" ;;
    esac
done
t_done
