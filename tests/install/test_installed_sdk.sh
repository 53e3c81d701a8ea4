#!/bin/sh
# test_installed_sdk.sh - make install DESTDIR=<tmp> stages the tree the
# docs promise; examples/chain.c builds out of tree with nothing but
# `pkg-config --cflags --libs anvil` and runs against the staged anvild
# and anvil-worker; the shared library exports only anvil_ symbols; one
# version string everywhere; make uninstall removes it all.
. "$(dirname "$0")/lib.sh"

tmp=$(mktemp -d /tmp/anvil-install-XXXXXX) || exit 1
root=$tmp/stage
server_pid=
worker_pid=
cleanup() {
    for p in $worker_pid $server_pid; do
        kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

version=$(cat "$src/VERSION")
major=${version%%.*}
minor=${version#*.}
minor=${minor%%.*}
p=$root/usr/local

stage "$root"
say "staged into $root"

# The layout.
for f in sbin/anvild bin/anvil bin/anvil-worker \
    "lib/libanvil.so.$major.$minor" lib/libanvil.a \
    include/anvil/anvil.h include/anvil/health.h include/anvil/worker.h \
    include/anvil/workflow.h \
    lib/pkgconfig/anvil.pc share/anvil/anvil/v1/anvil.proto \
    share/man/man8/anvild.8 share/man/man1/anvil.1 \
    share/man/man1/anvil-worker.1 share/man/man5/anvil-worker.json.5 \
    share/man/man3/libanvil.3 share/bash-completion/completions/anvil \
    share/doc/anvil/examples/worker-config.json \
    share/doc/anvil/examples/chain.json share/doc/anvil/CHANGELOG.md \
    lib/systemd/system/anvild.service \
    lib/systemd/system/anvil-worker@.service; do
    [ -f "$p/$f" ] || fail "missing $f"
done
for x in sbin/anvild bin/anvil bin/anvil-worker; do
    [ -x "$p/$x" ] || fail "$x is not executable"
done
[ "$(readlink "$p/lib/libanvil.so.$major")" = "libanvil.so.$major.$minor" ] ||
    fail "libanvil.so.$major does not point at libanvil.so.$major.$minor"
[ "$(readlink "$p/lib/libanvil.so")" = "libanvil.so.$major" ] ||
    fail "libanvil.so does not point at libanvil.so.$major"
soname=$(readelf -d "$p/lib/libanvil.so.$major.$minor" |
    sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libanvil.so.$major" ] || fail "soname is '$soname'"
grep -q "@[A-Z]*@" "$p/lib/systemd/system/anvild.service" &&
    fail "anvild.service has an unfilled @placeholder@"
grep -q "^ExecStart=/usr/local/sbin/anvild " \
    "$p/lib/systemd/system/anvild.service" ||
    fail "anvild.service does not run /usr/local/sbin/anvild"

# Only the public API is exported.
exported=$(nm -D --defined-only "$p/lib/libanvil.so.$major.$minor" |
    awk '{print $3}')
[ -n "$exported" ] || fail "libanvil.so exports nothing"
stray=$(printf '%s\n' "$exported" | grep -v '^anvil_' | tr '\n' ' ')
[ -z "$stray" ] || fail "libanvil.so exports non-API symbols: $stray"
for s in anvil_client_open anvil_job_submit anvil_workflow_submit \
    anvil_worker_new; do
    printf '%s\n' "$exported" | grep -qx "$s" || fail "$s is not exported"
done

# One version: VERSION, pkg-config, the installed header, --version.
export PKG_CONFIG_PATH="$p/lib/pkgconfig"
export PKG_CONFIG_SYSROOT_DIR="$root"
[ "$(pkg-config --modversion anvil)" = "$version" ] ||
    fail "pkg-config --modversion anvil is not $version"
grep -q "define ANVIL_VERSION \"$version\"" "$p/include/anvil/anvil.h" ||
    fail "the installed anvil.h does not say ANVIL_VERSION \"$version\""
# Every program whose --help offers --version prints "NAME VERSION".
for prog in sbin/anvild bin/anvil bin/anvil-worker; do
    n=${prog#*/}
    "$p/$prog" --help 2>&1 | grep -q -- "--version" || {
        say "$n --help offers no --version (not checked)"
        continue
    }
    out=$("$p/$prog" --version) || fail "$n --version failed"
    [ "$out" = "$n $version" ] || fail "$n --version printed '$out'"
done

# Build examples/chain.c with pkg-config alone, away from the source tree.
cp "$src/examples/chain.c" "$tmp/chain.c"
cflags=$(pkg-config --cflags anvil) && libs=$(pkg-config --libs anvil) ||
    die "pkg-config anvil failed"
# shellcheck disable=SC2086
(cd "$tmp" && cc -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror \
    $cflags -o chain chain.c $libs) || die "chain.c did not build"
# The static archive links with what anvil.pc's private fields name.
static_libs=$(pkg-config --static --libs anvil | sed 's/-lanvil\b//') ||
    die "pkg-config --static anvil failed"
# shellcheck disable=SC2086
(cd "$tmp" && cc -std=c11 -D_POSIX_C_SOURCE=200809L $cflags -o chain-static \
    chain.c "$p/lib/libanvil.a" $static_libs) ||
    fail "chain.c did not link against libanvil.a with pkg-config --static"
export LD_LIBRARY_PATH="$p/lib"
ldd "$tmp/chain" | grep -q "libanvil.so.$major => $p/lib/" ||
    fail "chain does not load the staged libanvil.so.$major"

# Run it against the staged anvild and anvil-worker.
url="ipc://$tmp/anvil.sock"
"$p/sbin/anvild" --listen "$url" --db "$tmp/anvil.db" 2>"$tmp/anvild.log" &
server_pid=$!
deadline=$(($(date +%s) + 20))
until "$p/bin/anvil" --server "$url" health >/dev/null 2>&1; do
    kill -0 "$server_pid" 2>/dev/null || die "anvild exited: $(cat "$tmp/anvild.log")"
    [ "$(date +%s)" -lt "$deadline" ] || die "anvild did not answer in 20 s"
    sleep 0.1
done
"$p/bin/anvil-worker" --server "$url" --slots 2 >/dev/null \
    2>"$tmp/worker.log" &
worker_pid=$!
if timeout 60 "$tmp/chain" "$url" >"$tmp/chain.out" 2>&1; then
    grep -q "SUCCEEDED" "$tmp/chain.out" || fail "chain printed no SUCCEEDED"
    say "chain ran: $(tail -n 1 "$tmp/chain.out")"
else
    cat "$tmp/chain.out" "$tmp/anvild.log" >&2
    fail "the out-of-tree chain failed"
fi
out=$("$p/bin/anvil" --server "$url" workflow submit \
    "$p/share/doc/anvil/examples/chain.json" --wait --timeout-ms 60000) ||
    fail "the installed chain.json did not succeed: $out"

# make uninstall leaves nothing of ours behind.
(
    unset MAKEFLAGS MFLAGS MAKELEVEL
    cd "$src" && $make_cmd --no-print-directory FLAVOR="$flavor" uninstall \
        DESTDIR="$root" >"$tmp/uninstall.log" 2>&1
) || fail "make uninstall failed"
left=$(find "$root" -type f -o -type l)
[ -z "$left" ] || fail "make uninstall left: $left"

finish
