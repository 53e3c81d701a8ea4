#!/bin/sh
# test_man_pages.sh - the man pages lint clean with mandoc, and every flag
# (and anvil verb) that a program's --help prints appears in its page.
. "$(dirname "$0")/lib.sh"

man=$src/build/man
command -v mandoc >/dev/null 2>&1 ||
    die "mandoc is missing (scripts/deps.sh installs it)"

for page in anvild.8 anvil.1 anvil-worker.1 anvil-worker.json.5 libanvil.3; do
    if [ ! -f "$man/$page" ]; then
        fail "$man/$page was not built"
        continue
    fi
    mandoc -T lint -W warning "$man/$page" >"$man/$page.lint" 2>&1 ||
        fail "mandoc -T lint: $(cat "$man/$page.lint")"
    grep -q "@VERSION@" "$man/$page" && fail "$page: @VERSION@ left unfilled"
done

# text PAGE: the page as plain text, with its words and flags as printed.
text() {
    mandoc -T ascii "$man/$1" | sed 's/.\x08//g'
}

# flags_of TEXT: every --flag and -h in a help text, one a line.
flags_of() {
    printf '%s\n' "$1" | grep -o -- '-\{1,2\}[a-z][a-z-]*' |
        grep -v -- '-$' | grep -E -- '^(--|-h$)' | sort -u
}

# covers PAGE PROG HELP: every flag of HELP is in PAGE.
covers() {
    body=$(text "$1")
    for f in $(flags_of "$3"); do
        printf '%s\n' "$body" | grep -q -e "$f\([^a-z-]\|$\)" ||
            fail "$1 does not document $f (printed by $2 --help)"
    done
}

help=$("$bindir/anvild" --help) || fail "anvild --help failed"
covers anvild.8 anvild "$help"
help=$("$bindir/anvil-worker" --help) || fail "anvil-worker --help failed"
covers anvil-worker.1 anvil-worker "$help"

# anvil: the global help, each verb's, each workflow and token subcommand's.
top=$("$bindir/anvil" --help) || fail "anvil --help failed"
covers anvil.1 anvil "$top"
verbs=$(printf '%s\n' "$top" | sed -n '/^Verbs:/,/^$/p' | awk 'NR > 1 && NF {print $1}')
[ -n "$verbs" ] || fail "anvil --help lists no verbs"
body=$(text anvil.1)
for v in $verbs; do
    [ "$v" = help ] && continue
    printf '%s\n' "$body" | grep -q -w -e "$v" || fail "anvil.1 lacks the verb $v"
    h=$("$bindir/anvil" "$v" --help) || fail "anvil $v --help failed"
    covers anvil.1 "anvil $v" "$h"
    subs=$(printf '%s\n' "$h" | sed -n '/^Subcommands:/,/^$/p' | awk 'NR > 1 && NF {print $1}')
    for s in $subs; do
        printf '%s\n' "$body" | grep -q -e "$v $s" ||
            fail "anvil.1 lacks '$v $s'"
        h=$("$bindir/anvil" "$v" "$s" --help) || fail "anvil $v $s --help failed"
        covers anvil.1 "anvil $v $s" "$h"
    done
done

# libanvil(3) names the calls of the README's example.
body=$(text libanvil.3)
for f in anvil_client_open anvil_job_submit anvil_job_wait anvil_job_free \
    anvil_workflow_submit anvil_worker_new anvil_worker_add_handler; do
    printf '%s\n' "$body" | grep -q "$f" || fail "libanvil.3 does not name $f"
done

finish
