#   lib.sh: what the *.test.sh scripts share. Source it after setting ROOT.
#
#   pass NAME / fail NAME [DETAIL...] count checks; finish prints the one
#   closing line "N passed, N failed" and exits non-zero if any failed.
#   test_dir PREFIX makes $DIR and a trap that stops $BUS_PID and
#   $AGENT_PID (when set) and removes $DIR however the script ends.

passed=0
failed=0
pass () { passed=$((passed + 1)); echo "ok   $1"; }
fail () { failed=$((failed + 1)); echo "FAIL $1"; shift; for line in "$@"; do echo "     $line"; done; }
finish () {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}

BUS_PID=""
AGENT_PID=""
cleanup () {
    if [ -n "$BUS_PID" ]; then
        kill -KILL "$BUS_PID" 2>/dev/null
        wait "$BUS_PID" 2>/dev/null
    fi
    if [ -n "$AGENT_PID" ]; then
        kill "$AGENT_PID" 2>/dev/null
    fi
    rm -rf "$DIR"
}
test_dir () {
    DIR=$(mktemp -d "/tmp/bulkhead-$1-XXXXXX")
    trap cleanup EXIT
}
