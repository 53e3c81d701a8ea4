#!/bin/sh
# bench/wrk.sh - cross-checks anvil-bench's HTTP submit rate with wrk: starts
# anvild (FULL durability, a fresh database, --log-level warn, loopback
# ports) and runs wrk with WRK_CONNS keep-alive connections (default 32,
# the http workload's) on POST /v1/jobs (bench/wrk-submit.lua), no worker
# running: compare with "HTTP: submit rate, no worker". make bench-wrk.
#
#   BIN=bin WRK_THREADS=2 WRK_CONNS=32 WRK_DURATION=10s DURABILITY=full
set -eu
BIN=${BIN:-bin}
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNS=${WRK_CONNS:-32}
WRK_DURATION=${WRK_DURATION:-10s}
DURABILITY=${DURABILITY:-full}
here=$(dirname "$0")

for tool in wrk ss curl; do
    command -v $tool >/dev/null || { echo "bench/wrk.sh: needs $tool" >&2; exit 2; }
done

# A loopback port nothing listens on (another process may still take it
# first; then anvild fails to start and we say so).
free_port() {
    while :; do
        p=$((20000 + $(od -An -N2 -tu2 /dev/urandom) % 40000))
        if [ "$p" != "${1:-}" ] && [ -z "$(ss -ltnH "sport = :$p")" ]; then
            echo "$p"
            return
        fi
    done
}

dir=$(mktemp -d /tmp/anvil-wrk-XXXXXX)
nport=$(free_port)
hport=$(free_port "$nport")
"$BIN/anvild" --listen "tcp://127.0.0.1:$nport" \
    --http "http://127.0.0.1:$hport" --db "$dir/anvil.db" \
    --log-level warn --durability "$DURABILITY" 2>"$dir/anvild.log" &
pid=$!
cleanup() {
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

i=0
until curl -fs "http://127.0.0.1:$hport/healthz" >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -gt 150 ] || ! kill -0 "$pid" 2>/dev/null; then
        echo "bench/wrk.sh: anvild did not start:" >&2
        cat "$dir/anvild.log" >&2
        exit 1
    fi
    sleep 0.1
done

echo "wrk: $WRK_THREADS threads, $WRK_CONNS connections, $WRK_DURATION," \
    "POST /v1/jobs, durability $DURABILITY, load average" \
    "$(cut -d' ' -f1-3 /proc/loadavg)"
wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"$WRK_DURATION" --latency \
    -s "$here/wrk-submit.lua" "http://127.0.0.1:$hport/v1/jobs"
# What anvild counts as queued must match what wrk saw answered.
curl -fs "http://127.0.0.1:$hport/v1/health" | tr ',' '\n' |
    grep -A3 '"type":"bench.wrk"' | tr '\n' ' '
echo
