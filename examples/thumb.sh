#!/bin/sh
# thumb.sh - an anvil job handler written as a script (see docs/workers.md).
# The payload arrives on stdin, the result goes to stdout; exit 0 succeeds,
# exit 75 asks for a retry, anything else fails the job with stderr's tail.
set -eu
input=$(cat)
if [ -z "$input" ]; then
    echo "thumb: empty payload" >&2
    exit 1
fi
echo "thumbnail of $input at quality ${THUMB_QUALITY:-50} (job $ANVIL_JOB_ID, attempt $ANVIL_ATTEMPT)"
