#!/usr/bin/env bash
# test-c.sh — libprepage as a C user sees it, against the real prepaged.
#
#   1. make lib + example (mk/lib.mk); a staged install (DESTDIR, LIBDIR) and an
#      install into a temporary PREFIX with its own LIBDIR; the example built
#      again from the installed prepage.pc alone (no libcurl.pc, no jansson.pc),
#      shared (its rpath finds the library) and static;
#   2. start prepaged on a free loopback port and run the example agents, then
#      once more with nothing listening (every fault a fallback);
#   3. build Tests/CClientTests/test_client.c with the library sources under
#      AddressSanitizer + LeakSanitizer and run it (it starts its own servers).
#
# PP_VALGRIND=1 runs the C tests once more under valgrind.
# PREPAGED names the server binary (default .build/debug/prepaged, built with
# `swift build --product prepaged` when missing). Exits non-zero on any
# failure; the last line is "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   $*"; }
bad() { failed=$((failed + 1)); echo "FAIL $*"; }
step() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }

work=$(mktemp -d)
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; fi
    rm -rf "$work"
}
trap cleanup EXIT

PREPAGED=${PREPAGED:-.build/debug/prepaged}
if [ ! -x "$PREPAGED" ]; then
    swift build --product prepaged >"$work/swift-build.log" 2>&1 || { cat "$work/swift-build.log"; }
fi
if [ ! -x "$PREPAGED" ]; then
    bad "prepaged binary at $PREPAGED"
    echo "$passed passed, $failed failed"
    exit 1
fi
export PREPAGED=$(realpath "$PREPAGED")

# 1. The library, as `make lib` / `make install` / pkg-config users get it.
major=$(sed -n 's/^#define PP_VERSION_MAJOR  *\([0-9]*\)/\1/p' Sources/CPrepageClient/include/prepage.h)
step "make lib example" make -s -f mk/lib.mk lib example
step "soname libprepage.so.$major" sh -c "readelf -d build/lib/libprepage.so.$major | grep -q 'SONAME.*libprepage.so.$major'"
step "exports only pp_ symbols" sh -c \
    '! nm -D --defined-only build/lib/libprepage.so.* | awk "{print \$3}" | grep -v "^pp_" | grep -q .'
# A packager's staged install: DESTDIR holds the tree, LIBDIR places the libraries,
# and neither the stage nor an rpath (a directory the loader searches) reaches prepage.pc.
stage="$work/stage"
multiarch=$(cc -print-multiarch 2>/dev/null)
syslib=/usr/lib${multiarch:+/$multiarch}
step "make install DESTDIR LIBDIR (staged)" make -s -f mk/lib.mk install DESTDIR="$stage" PREFIX=/usr \
    LIBDIR="$syslib"
step "staged: files under DESTDIR\$LIBDIR" test -f "$stage$syslib/libprepage.so.$major" \
    -a -f "$stage/usr/include/prepage.h" -a -f "$stage$syslib/pkgconfig/prepage.pc"
step "staged: prepage.pc names the final paths, no stage, no rpath" sh -c \
    "grep -qx 'libdir=$syslib' '$stage$syslib/pkgconfig/prepage.pc' &&
     ! grep -q '$stage' '$stage$syslib/pkgconfig/prepage.pc' &&
     ! grep -q rpath '$stage$syslib/pkgconfig/prepage.pc'"
# A user's install under a prefix of their own, libraries in a LIBDIR of its own.
prefix="$work/prefix"
libdir="$prefix/lib64"
step "make install PREFIX LIBDIR" make -s -f mk/lib.mk install PREFIX="$prefix" LIBDIR="$libdir"
# Only prepage.pc is visible to pkg-config, as on a machine without libcurl's and jansson's -dev packages.
export PKG_CONFIG_LIBDIR="$libdir/pkgconfig"
step "pkg-config without libcurl.pc and jansson.pc" sh -c \
    'pkg-config --cflags --libs prepage >/dev/null && ! pkg-config --exists libcurl && ! pkg-config --exists jansson'
step "pkg-config: Libs.private, no Requires.private" sh -c \
    '[ -z "$(pkg-config --print-requires-private prepage)" ] && pkg-config --static --libs prepage | grep -q -- "-lcurl -ljansson"'
step "prepage.h needs neither libcurl's nor jansson's headers" sh -c \
    "! cc -M \$(pkg-config --cflags prepage) Examples/agent.c | grep -Eq 'curl/|jansson'"
step "cc agent.c \$(pkg-config --cflags --libs prepage)" sh -c \
    "cc Examples/agent.c \$(pkg-config --cflags --libs prepage) -o '$work/agent-installed'"
step "the agent's run path is LIBDIR" sh -c "readelf -d '$work/agent-installed' | grep -E 'R(UN)?PATH' | grep -q '$libdir'"
step "static link of libprepage.a (Libs.private)" sh -c \
    "cc Examples/agent.c \$(pkg-config --cflags prepage) '$libdir/libprepage.a' \
        \$(pkg-config --static --libs-only-l prepage | sed 's/-lprepage//') -o '$work/agent-static'"
unset PKG_CONFIG_LIBDIR

# 2. The example agents against a real server.
# Port 0, read back from the server's "listening address=127.0.0.1:PORT" line.
"$PREPAGED" --host 127.0.0.1 --port 0 --shutdown-delay 0 --log-format text >"$work/prepaged.log" 2>&1 &
server_pid=$!
port=
for _ in $(seq 1 500); do
    port=$(sed -n 's/.*listening.*127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/prepaged.log" | tail -n 1)
    [ -n "$port" ] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.02
done
url="http://127.0.0.1:$port"
quiet() { "$@" >"$work/agent.out" 2>&1 || { cat "$work/agent.out"; return 1; }; }
step "agent (built tree) against prepaged" quiet build/examples/agent "$url"
# No LD_LIBRARY_PATH, no ldconfig: the rpath from prepage.pc finds the library. A 1 s fault
# deadline: on a loaded machine a first fault (a new connection, a debug server) past the
# default 5 ms would be a fallback and open the breaker for the agent's whole short run;
# this check is that the oracle decides and nothing fails.
step "agent (installed, shared) against prepaged" quiet env PREPAGE_FAULT_DEADLINE_MS=1000 \
    "$work/agent-installed" "$url"
step "agent: the oracle decides, no errors" grep -Eq "; [1-9][0-9]* decided by the oracle, 0 fallbacks, 0 errors" "$work/agent.out"
step "agent (static)" quiet "$work/agent-static" "$url"
kill "$server_pid"; wait "$server_pid" 2>/dev/null; server_pid=
# The oracle away: the agent migrates on demand paging, fault after fault, and exits 0.
step "agent with nothing listening: demand paging" quiet "$work/agent-installed" "$url"
step "agent: every fault a fallback" grep -Eq "; 0 decided by the oracle, [1-9][0-9]* fallbacks, 0 errors" "$work/agent.out"

# 3. Every call and every error under AddressSanitizer + LeakSanitizer.
if cc -std=c11 -g -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -Wall -Wextra \
    -ISources/CPrepageClient/include -ISources/CPrepageClient Sources/CPrepageClient/*.c \
    Tests/CClientTests/test_client.c $(pkg-config --cflags --libs libcurl jansson) -lpthread \
    -o "$work/test_client"; then
    ok "build test_client with -fsanitize=address,undefined"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        "$work/test_client" >"$work/test.out" 2>"$work/test.err"
    rc=$?
    # The program's own tally is folded into this script's closing line (shown as "c: …").
    cat "$work/test.err"
    sed -E 's/^([0-9]+ passed, [0-9]+ failed)$/c: \1/' "$work/test.out"
    line=$(tail -n 1 "$work/test.out")
    if [[ $line =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
        passed=$((passed + BASH_REMATCH[1]))
        failed=$((failed + BASH_REMATCH[2]))
        ok "test_client reported its tally"
    else
        # A run that printed no tally did not run its checks, whatever its exit status.
        bad "test_client printed no \"N passed, N failed\" line (last line: '$line')"
    fi
    if grep -q "Sanitizer" "$work/test.err"; then bad "sanitizers: errors or leaks reported"; else ok "sanitizers: no errors, no leaks"; fi
    [ "$rc" -eq 0 ] && ok "test_client exit 0" || bad "test_client exit $rc"
else
    bad "build test_client"
fi

# Optionally the same tests once more under valgrind (PP_VALGRIND=1; slower).
if [ "${PP_VALGRIND:-0}" = 1 ] && command -v valgrind >/dev/null; then
    cc -std=c11 -g -O1 -ISources/CPrepageClient/include -ISources/CPrepageClient Sources/CPrepageClient/*.c \
        Tests/CClientTests/test_client.c $(pkg-config --cflags --libs libcurl jansson) -lpthread \
        -o "$work/test_client_vg"
    step "valgrind: no errors, no leaks" valgrind -q --leak-check=full \
        --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=9 "$work/test_client_vg"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
