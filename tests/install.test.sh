#!/bin/bash
#   install.test.sh: `make install` as a packager and a user use it. Installs
#   with DESTDIR and PREFIX=/usr (a package's staging root), checks the files
#   and bulkhead.pc, builds examples/agent.c against that copy with nothing
#   but `pkg-config --cflags --libs bulkhead`, and runs it against the
#   installed bus; then installs with PREFIX alone and builds again.
#
#   The make it runs is the one a person types (outer pass included), on the
#   release build; the environment of the `make check` that runs this test
#   (MAKEFLAGS, BUILD, ...) is not passed on. Ends with "N passed, N failed".
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
T=10                                        # seconds any one command may take

. "$ROOT/tests/lib.sh"

test_dir install

#   mk ARGS...: make in the tree as a person would run it; output in $DIR/make.log.
mk () {
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u BUILD -u SAN -u BULKHEAD_INNER \
        timeout 150 make -C "$ROOT" --no-print-directory "$@" >"$DIR/make.log" 2>&1
}

#   build NAME: compiles a copy of examples/agent.c (away from the tree, so
#   only the installed headers are found) with the pkg-config flags; true on success.
build () {
    local flags
    flags=$(pkg-config --cflags --libs bulkhead 2>"$DIR/pkg.err") || return 1
    cp "$ROOT/examples/agent.c" "$DIR/agent.c"
    timeout 60 cc -std=c11 -Wall -Wextra -Werror -o "$DIR/$1" "$DIR/agent.c" $flags \
        >"$DIR/cc.log" 2>&1
}

#   ---------------------------------------------------------------------
#   DESTDIR + PREFIX=/usr

STAGE=$DIR/root
if mk install DESTDIR="$STAGE" PREFIX=/usr; then
    pass "make install DESTDIR=... PREFIX=/usr"
else
    fail "make install DESTDIR=... PREFIX=/usr" "$(tail -20 "$DIR/make.log")"
    finish
fi
missing=""
for f in bin/bulkhead lib/libbulkhead.a lib/pkgconfig/bulkhead.pc include/bulkhead/bus_client.h \
         include/bulkhead/bus_error.h include/bulkhead/bulkhead.pb-c.h; do
    [ -f "$STAGE/usr/$f" ] || missing="$missing $f"
done
if [ -z "$missing" ] && [ -x "$STAGE/usr/bin/bulkhead" ]; then
    pass "installs the binary, the library, the headers and bulkhead.pc"
else
    fail "installs the binary, the library, the headers and bulkhead.pc" "missing:$missing"
fi

PC=$STAGE/usr/lib/pkgconfig/bulkhead.pc
if grep -qx 'prefix=/usr' "$PC" && ! grep -qF "$STAGE" "$PC" && ! grep -q '@' "$PC"; then
    pass "bulkhead.pc: prefix=/usr, no DESTDIR in it, no @placeholder@ left"
else
    fail "bulkhead.pc: prefix=/usr, no DESTDIR in it, no @placeholder@ left" "$(cat "$PC")"
fi

#   Every header an installed header includes by quoted name is installed too.
unresolved=""
for h in "$STAGE"/usr/include/bulkhead/*.h; do
    for inc in $(sed -n 's/^#include "\(.*\)"/\1/p' "$h"); do
        [ -f "$STAGE/usr/include/bulkhead/$inc" ] || unresolved="$unresolved $(basename "$h"):$inc"
    done
done
if [ -z "$unresolved" ]; then
    pass "the installed headers include only installed headers"
else
    fail "the installed headers include only installed headers" "$unresolved"
fi

#   The staging root stands for /: pkg-config puts it before every path.
export PKG_CONFIG_PATH=$STAGE/usr/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$STAGE
flags=$(pkg-config --cflags --libs bulkhead 2>&1)
if [[ " $flags " == *" -I$STAGE/usr/include/bulkhead "* ]] && [[ " $flags " == *" -L$STAGE/usr/lib "* ]] \
&& [[ " $flags " == *" -lbulkhead "* ]] && [[ " $flags " == *" -lzmq "* ]] && [[ " $flags " == *" -lprotobuf-c "* ]]; then
    pass "pkg-config --cflags --libs bulkhead: its headers, its library and the libraries it needs"
else
    fail "pkg-config --cflags --libs bulkhead: its headers, its library and the libraries it needs" "$flags"
fi
if build agent; then
    pass "examples/agent.c builds against the staged copy with pkg-config flags only"
else
    fail "examples/agent.c builds against the staged copy with pkg-config flags only" \
        "$(cat "$DIR/pkg.err" "$DIR/cc.log" 2>/dev/null | head -20)"
fi
unset PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR

timeout $T "$DIR/agent" --help >"$DIR/out" 2>&1
if [ $? -eq 0 ] && grep -q '^usage: agent ' "$DIR/out"; then
    pass "the agent built from the installed copy runs"
else
    fail "the agent built from the installed copy runs" "$(cat "$DIR/out")"
fi

#   One round trip: the installed bus, the agent built against it.
BIN=$STAGE/usr/bin/bulkhead
for name in a b; do
    timeout $T "$BIN" keygen "$name" --dir "$DIR" >/dev/null || fail "keygen $name"
done
pub () { sed -n 's/^ *public-key = "\(.*\)"$/\1/p' "$DIR/$1.pub"; }
printf 'agents\n    a\n        key = "%s"\n    b\n        key = "%s"\nedges\n    a\n        b = message\n' \
    "$(pub a)" "$(pub b)" >"$DIR/policy.cfg"
EP=ipc://$DIR/bus.sock
mkfifo "$DIR/ready"
"$BIN" serve --policy "$DIR/policy.cfg" --data "$DIR/data" --endpoint "$EP" --ready-fd 3 \
    3>"$DIR/ready" 2>"$DIR/bus.log" &
BUS_PID=$!
ready=$(timeout $T head -1 "$DIR/ready")
CONN=(--bus "$EP" --bus-key "$DIR/data/bus.pub")
sent=$(timeout $T "$DIR/agent" "${CONN[@]}" --key "$DIR/a.key" send --to b --intent message \
    --payload installed 2>&1)
got=$(timeout $T "$DIR/agent" "${CONN[@]}" --key "$DIR/b.key" work --count 1 2>&1)
if [ "$ready" = "ready $EP" ] && [[ "$sent" == *"queued seq="* ]] \
&& [[ "$got" == *"from=a intent=message"*"payload=installed"* ]]; then
    pass "the installed bus and the agent built against it: send, receive"
else
    fail "the installed bus and the agent built against it: send, receive" \
        "ready: $ready" "send: $sent" "work: $got" "$(tail -5 "$DIR/bus.log")"
fi

#   ---------------------------------------------------------------------
#   PREFIX alone

OPT=$DIR/opt
if mk install PREFIX="$OPT"; then
    pass "make install PREFIX=DIR"
else
    fail "make install PREFIX=DIR" "$(tail -20 "$DIR/make.log")"
fi
export PKG_CONFIG_PATH=$OPT/lib/pkgconfig
if grep -qx "prefix=$OPT" "$OPT/lib/pkgconfig/bulkhead.pc" && build agent-opt \
&& timeout $T "$DIR/agent-opt" --help >/dev/null; then
    pass "bulkhead.pc names that PREFIX; the agent builds with it and runs"
else
    fail "bulkhead.pc names that PREFIX; the agent builds with it and runs" \
        "$(cat "$OPT/lib/pkgconfig/bulkhead.pc" "$DIR/pkg.err" "$DIR/cc.log" 2>/dev/null | head -30)"
fi
finish
