#!/bin/sh
# demo.sh - the seed's job, end to end: start anvild on a private ipc://
# socket and an HTTP listener on a free port, with a fresh database, start
# an anvil-worker, submit the Sleep job with the anvil command and wait for
# it, print its status; send the seed's own request (POST /job) with curl
# and wait for that job with GET /v1/jobs/{id}?wait=30s; then run the
# workflow examples/chain.json (with anvil-worker's echo type) and show it,
# and run bin/examples/fanout (a C program with its own worker) against the
# same server; stop both processes with SIGTERM and clean up. Exits 0 only
# if both jobs and both workflows SUCCEEDED.
#
# Usage: sh scripts/demo.sh BINDIR     (make demo passes bin/)
set -u

bindir=${1:-}
if [ -z "$bindir" ]; then
    echo "usage: sh scripts/demo.sh BINDIR" >&2
    exit 2
fi
case $bindir in
/*) ;;
*) bindir=$(pwd)/$bindir ;;
esac
for prog in anvild anvil-worker anvil examples/fanout; do
    if [ ! -x "$bindir/$prog" ]; then
        echo "demo: $bindir/$prog is missing; run make first" >&2
        exit 1
    fi
done

command -v curl >/dev/null 2>&1 || {
    echo "demo: curl is missing (scripts/deps.sh installs it)" >&2
    exit 1
}

examples=$(cd "$(dirname "$0")/../examples" && pwd) || exit 1
[ -f "$examples/chain.json" ] || {
    echo "demo: $examples/chain.json is missing" >&2
    exit 1
}

tmp=$(mktemp -d /tmp/anvil-demo-XXXXXX) || exit 1
url="ipc://$tmp/anvil.sock"
server_pid=
worker_pid=
status=1

# stop PID NAME: SIGTERM, then wait for it; SIGKILL if it is still there
# after 15 s (a watchdog, so the wait itself needs no polling).
stop() {
    [ -n "$1" ] || return 0
    kill -TERM "$1" 2>/dev/null
    (
        trap 'kill "$nap" 2>/dev/null; exit 0' TERM
        sleep 15 &
        nap=$!
        wait "$nap" && kill -KILL "$1"
    ) >/dev/null 2>&1 &
    dog=$!
    wait "$1"
    rc=$?
    kill "$dog" 2>/dev/null
    wait "$dog" 2>/dev/null
    echo "demo: $2 stopped (exit status $rc)"
}

cleanup() {
    stop "$worker_pid" anvil-worker
    worker_pid=
    stop "$server_pid" anvild
    server_pid=
    if [ "$status" -ne 0 ]; then
        for log in "$tmp/anvild.log" "$tmp/worker.log"; do
            [ -s "$log" ] || continue
            echo "demo: --- $log ---" >&2
            cat "$log" >&2
        done
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

fail() {
    echo "demo: $*" >&2
    exit 1
}

anvil() {
    "$bindir/anvil" --server "$url" "$@"
}

echo "demo: starting anvild on $url and http://127.0.0.1 (a free port;" \
    "database $tmp/anvil.db)"
"$bindir/anvild" --listen "$url" --http http://127.0.0.1:0 \
    --db "$tmp/anvil.db" 2>"$tmp/anvild.log" &
server_pid=$!

# Wait for Health to answer: poll against a 20 s deadline.
deadline=$(($(date +%s) + 20))
until anvil health >"$tmp/health.out" 2>&1; do
    kill -0 "$server_pid" 2>/dev/null || fail "anvild exited before answering"
    [ "$(date +%s)" -lt "$deadline" ] || fail "anvild did not answer in 20 s"
    sleep 0.1
done
cat "$tmp/health.out"
# The HTTP port anvild picked, from its log line
# "server.listening url=http://127.0.0.1:0 port=N".
port=$(sed -n 's/.*server\.listening url=http:[^ ]* port=\([0-9]*\).*/\1/p' \
    "$tmp/anvild.log" | head -n 1)
[ -n "$port" ] || fail "anvild logged no HTTP port"
http=http://127.0.0.1:$port

echo "demo: starting anvil-worker (its stdout follows)"
"$bindir/anvil-worker" --server "$url" --slots 2 2>"$tmp/worker.log" &
worker_pid=$!

payload='{"SleepTimeInSeconds": 1, "Message": "Hello World"}'
echo "demo: \$ anvil submit Sleep --data '$payload' --wait --wait-timeout-ms 60000"
out=$(anvil submit Sleep --data "$payload" --wait --wait-timeout-ms 60000)
rc=$?
printf '%s\n' "$out"
id=$(printf '%s\n' "$out" | sed -n 's/^ID:[[:space:]]*//p' | head -n 1)
[ -n "$id" ] || fail "submit printed no job id (exit status $rc)"

echo "demo: \$ anvil status $id"
out=$(anvil status "$id") || fail "anvil status $id failed"
printf '%s\n' "$out"
state=$(printf '%s\n' "$out" | sed -n 's/^State:[[:space:]]*//p' | head -n 1)

echo "demo: job $id is $state"
job_ok=false
if [ "$state" = SUCCEEDED ] && [ "$rc" -eq 0 ]; then
    job_ok=true
fi

# The seed's request, as the earlier service took it, over HTTP.
seed='{"Type":"Sleep", "Data":"{\"SleepTimeInSeconds\": 10, \"Message\": \"Hello World\"}"}'
echo "demo: \$ curl -sS -X POST $http/job -H 'Content-Type: application/json' -d '$seed'"
out=$(curl -sS -X POST "$http/job" -H 'Content-Type: application/json' \
    -d "$seed") || fail "POST /job failed"
printf '%s\n' "$out"
hid=$(printf '%s\n' "$out" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
[ -n "$hid" ] || fail "POST /job answered no job id"

echo "demo: \$ curl -sS '$http/v1/jobs/$hid?wait=30s'"
out=$(curl -sS --max-time 40 "$http/v1/jobs/$hid?wait=30s") ||
    fail "GET /v1/jobs/$hid failed"
printf '%s\n' "$out"
hstate=$(printf '%s\n' "$out" | sed -n 's/.*"state":"JOB_STATE_\([A-Z]*\)".*/\1/p')
echo "demo: job $hid is $hstate"

echo "demo: \$ anvil workflow submit examples/chain.json --wait --timeout-ms 60000"
out=$(anvil workflow submit "$examples/chain.json" --wait --timeout-ms 60000)
wrc=$?
printf '%s\n' "$out"
wid=$(printf '%s\n' "$out" | sed -n 's/^ID:[[:space:]]*//p' | head -n 1)
[ -n "$wid" ] || fail "workflow submit printed no workflow id (exit status $wrc)"

echo "demo: \$ anvil workflow status $wid"
out=$(anvil workflow status "$wid") || fail "anvil workflow status $wid failed"
printf '%s\n' "$out"
wstate=$(printf '%s\n' "$out" | sed -n 's/^State:[[:space:]]*//p' | head -n 1)
echo "demo: workflow $wid is $wstate"

echo "demo: \$ examples/fanout $url"
"$bindir/examples/fanout" "$url"
frc=$?
echo "demo: examples/fanout exited with status $frc"

if $job_ok && [ "$hstate" = SUCCEEDED ] && [ "$wstate" = SUCCEEDED ] && [ "$wrc" -eq 0 ] &&
    [ "$frc" -eq 0 ]; then
    status=0
fi
cleanup
trap - EXIT
exit "$status"
