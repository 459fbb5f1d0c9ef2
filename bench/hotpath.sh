#!/bin/bash
#   hotpath.sh BUS LOAD: instructions the bus executes per message, under
#   callgrind, on a short run: one sender, one recipient, 256-byte payloads,
#   closed loop. Two runs (N1 and N2 messages after load's warm-up) and the
#   difference of their totals over N2 - N1, so start and stop cancel out.
#   Compares two builds of the bus (e.g. before and after a change) when run
#   with each one's `bulkhead` and the same `load`:
#
#       bench/hotpath.sh build/release/bulkhead build/release/bench/load
#
#   MONITOR=on|off adds bench/monitor.sh's monitor section (the detectors
#   with a reply and a heartbeat expectation) switched on or off, so the
#   detectors' cost is counted in instructions, which other work on the
#   machine does not move:
#
#       MONITOR=off bench/hotpath.sh ...; MONITOR=on bench/hotpath.sh ...
#
#   Not part of make bench; valgrind makes each run about a minute.
set -eu
BUS=$1
LOAD=$2
N1=${N1:-1000}
N2=${N2:-3000}
EXTRA=${EXTRA:-}                    #   more serve arguments
MONITOR=${MONITOR:-}
WORK=$(mktemp -d /tmp/bulkhead-hotpath-XXXXXX)
trap '[ -n "${HOTPATH_KEEP:-}" ] || rm -rf "$WORK"' EXIT
mkdir -p "$WORK/keys"
{
    echo "bus"
    echo "    frames = 1000000"
    echo "    bytes = 4294967295"
    echo "    log_budget = 4294967295"
    echo "agents"
    for name in s1 r1; do
        "$BUS" keygen "$name" --dir "$WORK/keys" | grep 'key = ' | sed 's/^ */        /' > "$WORK/$name.line"
        echo "    $name"
        cat "$WORK/$name.line"
        [ "$name" = s1 ] && echo "        rate = 1000000"
    done
    echo "edges"
    echo "    s1"
    echo "        r1 = message"
    if [ -n "$MONITOR" ]; then
        echo "monitor"
        echo "    on = $([ "$MONITOR" = on ] && echo true || echo false)"
        echo "    budget_messages = 4000000000"
        echo "    expect"
        echo "        r1-answers"
        echo "            to = r1"
        echo "            reply_within = 3600"
        echo "        s1-alive"
        echo "            agent = s1"
        echo "            every = 3600"
    fi
} > "$WORK/policy.cfg"
run () {
    local n=$1 dir=$WORK/run-$1
    mkdir -p "$dir"
    # shellcheck disable=SC2086
    valgrind --tool=callgrind --callgrind-out-file="$dir/cg" "$BUS" serve --policy "$WORK/policy.cfg" \
        --data "$dir/data" --endpoint 'tcp://127.0.0.1:*' --ready-fd 3 --quiet $EXTRA \
        3> "$dir/ready" 2> "$dir/stderr" &
    local pid=$!
    for _ in $(seq 1 600); do
        grep -q ready "$dir/ready" 2>/dev/null && break
        sleep 0.1
    done
    local ep
    ep=$(awk '{ print $2 }' "$dir/ready")
    "$LOAD" --system bulkhead --mode tput --size 256 --pairs 1 --count "$n" --seconds 300 \
        --endpoint "$ep" --server-key "$dir/data/bus.pub" --keys "$WORK/keys" > "$dir/load.json"
    kill -TERM "$pid"
    wait "$pid" || true
    grep -o 'summary: [0-9]*' "$dir/cg" | awk '{ print $2 }'
}
a=$(run "$N1")
b=$(run "$N2")
echo "$BUS: $(( (b - a) / (N2 - N1) )) instructions per message ($N1 and $N2 messages: $a and $b)"
