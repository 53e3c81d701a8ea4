#!/bin/sh
# Runs test binaries, each under a time limit, and prints one closing line
# "tests: N passed, N failed". A cmocka binary counts its tests; any other
# binary (the crash test) counts as one test, passed if it exits 0, and
# skipped if it exits 77 (the browser test without a browser: it says
# why). Exits non-zero if any test failed or any binary crashed or timed
# out; the last lines of each such binary's output are printed again at
# the end, where a log cut to its tail still shows them.
set -u
passed=0
failed=0
skipped=0
broken=""
tails=$(mktemp)
limit=${ANVIL_TEST_TIMEOUT:-300}
for t in "$@"; do
    echo "== $t"
    out=$(mktemp)
    CMOCKA_TEST_ABORT=1 timeout "$limit" "$t" >"$out" 2>&1
    rc=$?
    cat "$out"
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$out" | tail -n 1)
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$out" | tail -n 1)
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0}))
    if [ "$rc" -eq 77 ] && [ -z "$p" ] && [ -z "$f" ]; then
        skipped=$((skipped + 1))
    elif [ "$rc" -ne 0 ] && [ -z "$f" ]; then
        broken="$broken $t(exit $rc)"
        failed=$((failed + 1))
    elif [ "$rc" -eq 0 ] && [ -z "$p" ] && [ -z "$f" ]; then
        passed=$((passed + 1))
    fi
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
        { echo "== $t (exit $rc), its last lines:"; tail -n 25 "$out"; } >>"$tails"
    fi
    rm -f "$out"
done
cat "$tails"
rm -f "$tails"
[ -n "$broken" ] && echo "crashed or timed out:$broken"
if [ "$skipped" -gt 0 ]; then
    echo "tests: $passed passed, $failed failed, $skipped skipped"
else
    echo "tests: $passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
