# lib.sh - shared by the shell tests in tests/install/ (sourced, not run).
# make test passes ANVIL_SRC_DIR, ANVIL_BIN_DIR, ANVIL_BUILD_DIR,
# ANVIL_FLAVOR and MAKE in the environment.
set -u

src=${ANVIL_SRC_DIR:?run through make test}
bindir=${ANVIL_BIN_DIR:?run through make test}
builddir=${ANVIL_BUILD_DIR:?run through make test}
flavor=${ANVIL_FLAVOR:-debug}
make_cmd=${MAKE:-make}
name=$(basename "$0" .sh)
failures=0

say() { echo "$name: $*"; }
fail() {
    echo "$name: FAIL: $*" >&2
    failures=$((failures + 1))
}
die() {
    echo "$name: FAIL: $*" >&2
    exit 1
}

# stage DIR: make install DESTDIR=DIR of the build under test (nothing to
# compile: make test has built it), PREFIX /usr/local.
stage() {
    (
        unset MAKEFLAGS MFLAGS MAKELEVEL
        cd "$src" &&
            $make_cmd --no-print-directory FLAVOR="$flavor" install \
                DESTDIR="$1" >"$1.log" 2>&1
    ) || {
        cat "$1.log" >&2
        die "make install DESTDIR=$1 failed"
    }
}

# finish: the closing line, and the exit status.
finish() {
    if [ "$failures" -ne 0 ]; then
        echo "$name: $failures check(s) failed"
        exit 1
    fi
    echo "$name: ok"
    exit 0
}
