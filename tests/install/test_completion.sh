#!/bin/bash
# test_completion.sh - the bash completion offers anvil's verbs, a verb's
# flags, job and workflow states after --state, workflow definition files
# after `workflow submit`, and the flags of anvild and anvil-worker.
. "$(dirname "$0")/lib.sh"

# shellcheck source=../../dist/bash-completion/anvil
. "$src/dist/bash-completion/anvil" || die "the completion does not load"

# complete FUNC WORD...: COMPREPLY for the command line WORD... with the
# cursor on the last word, sorted, one line.
complete_line() {
    local fn=$1
    shift
    COMP_WORDS=("$@")
    COMP_CWORD=$(($# - 1))
    COMPREPLY=()
    "$fn"
    printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ' | sed 's/ $//'
}

# expect WANT FUNC WORD...: the completions are exactly WANT.
expect() {
    local want=$1 got
    shift
    got=$(complete_line "$@")
    [ "$got" = "$want" ] || fail "'${*:2}': got '$got', want '$want'"
}

# has WANT FUNC WORD...: WANT is among the completions.
has() {
    local want=$1 got
    shift
    got=" $(complete_line "$@") "
    [[ $got == *" $want "* ]] || fail "'${*:2}': '$want' not offered in '$got'"
}

expect "schedule status submit" _anvil anvil s
expect "wait workers workflow" _anvil anvil w
has "--json" _anvil anvil --
expect "submit" _anvil anvil --server tcp://h:1 sub
has "--wait-timeout-ms" _anvil anvil submit echo --w
has "--server" _anvil anvil submit echo --s
expect "QUEUED" _anvil anvil list --state Q
expect "CANCELED" _anvil anvil list --state CA
expect "CANCELED" _anvil anvil workflow list --state CA
expect "FAILED" _anvil anvil workflow list --state F
expect "PENDING" _anvil anvil list --state P
expect "" _anvil anvil workflow list --state P
expect "cancel" _anvil anvil workflow ca
expect "create" _anvil anvil token cr
expect "pause" _anvil anvil schedule p
has "--catch-up" _anvil anvil schedule create n --c
expect "worker" _anvil anvil token create --role wo
has "--timeout-ms" _anvil anvil wait j1 --t

# Workflow definitions: *.json files and directories, nothing else.
dir=$(mktemp -d /tmp/anvil-comp-XXXXXX) || exit 1
trap 'rm -rf "$dir"' EXIT
mkdir "$dir/defs"
: >"$dir/chain.json"
: >"$dir/notes.txt"
cd "$dir" || exit 1
expect "chain.json defs" _anvil anvil workflow submit ""
expect "chain.json" _anvil anvil --server ipc:///x workflow submit c
expect "notes.txt" _anvil anvil --tls-ca n
expect "chain.json defs" _anvil_worker anvil-worker --config ""

has "--durability" _anvild anvild --d
expect "full normal" _anvild anvild --durability ""
has "--tls-client-ca" _anvild anvild --tls
expect "--http --http-idle-timeout --http-read-timeout" _anvild anvild --ht
has "--public-metrics" _anvild anvild --p
has "--no-metrics" _anvild anvild --n
expect "http:// https://" _anvild anvild --http ""
expect "https://" _anvild anvild --http https
expect "" _anvild anvild --http-read-timeout ""
has "--prefetch" _anvil_worker anvil-worker --p
expect "json text" _anvil_worker anvil-worker --log-format ""

complete -p anvil anvild anvil-worker >/dev/null ||
    fail "the completions are not registered"

finish
