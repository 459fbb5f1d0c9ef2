#!/usr/bin/env bash
#   bench/monitor.sh: what the detectors cost. The real bus twice per round,
#   once with the detectors on (the default policy's monitor section, plus
#   the expectations of a real deployment) and once with `monitor on = false`,
#   interleaved and the order rotated each round, same load driver
#   (bench/load.c), same policy otherwise. Prints, per workload, the
#   throughput of each and the ratio on / off, and the bus's own CPU time
#   per message (from /proc, the figure least moved by other work on a
#   shared machine) and its ratio on / off: medians over rounds with
#   [min-max]. The goal is a cost of at most 5% (throughput ratio >= 0.95,
#   CPU ratio <= 1.05).
#
#   Environment:
#     BUILD=build/release   where the binaries are (make bench builds them)
#     MONITOR_ROUNDS=11     rounds per workload (a shared 2-core machine
#                           moves single runs by 10-30%: the median of many
#                           is the figure)
#     MONITOR_COUNT=100000  messages per throughput run (or MONITOR_SECONDS)
#     MONITOR_SECONDS=15
#
#   Loopback only; every wait is bounded; each bus is stopped by its PID.
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD=${BUILD:-build/release}
BUS=$BUILD/bulkhead
LOAD=$BUILD/bench/load
ROUNDS=${MONITOR_ROUNDS:-11}
COUNT=${MONITOR_COUNT:-100000}
SECONDS_MAX=${MONITOR_SECONDS:-15}
for tool in "$BUS" "$LOAD"; do
    [ -x "$tool" ] || { echo "bench/monitor: $tool is missing: make BUILD=$BUILD all $LOAD" >&2
                        exit 1; }
done

mkdir -p "$BUILD"
WORK=$(mktemp -d "$BUILD/bench-monitor.XXXXXX")
WORK=$(cd "$WORK" && pwd)
PID=""
stop () {
    local pid=$PID
    PID=""
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
trap 'stop; [ -n "${MONITOR_KEEP:-}" ] || rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

#   One policy, the monitor section's `on` the only difference. Budgets are
#   lifted as in bench/run.sh: the bench measures the mediator, not a limit.
mkdir -p "$WORK/keys"
policy () {
    echo "bus"
    echo "    frames = 1000000"
    echo "    bytes = 4294967295"
    echo "    log_budget = 4294967295"
    #   A recipient may fall behind a closed-loop sender (the driver waits
    #   for the bus's ACK, not for the delivery): the mailbox cap must not
    #   be what a long run measures either.
    echo "    max_backlog = 1000000"
    echo "agents"
    for name in s1 s2 s3 s4 r1 r2 r3 r4 watch; do
        echo "    $name"
        cat "$WORK/keys/$name.line"
        case $name in
            s*) echo "        rate = 1000000" ;;
            watch) echo "        role = monitor" ;;
        esac
    done
    echo "edges"
    for k in 1 2 3 4; do
        echo "    s$k"
        echo "        r$k = message"
    done
    echo "monitor"
    echo "    on = $1"
    echo "    budget_messages = 4000000000"
    echo "    expect"
    for k in 1 2 3 4; do
        echo "        r$k-answers"
        echo "            to = r$k"
        echo "            reply_within = 3600"
        echo "        s$k-alive"
        echo "            agent = s$k"
        echo "            every = 3600"
    done
}
for name in s1 s2 s3 s4 r1 r2 r3 r4 watch; do
    "$BUS" keygen "$name" --dir "$WORK/keys" | grep 'key = ' | sed 's/^ */        /' \
        > "$WORK/keys/$name.line"
done
policy true > "$WORK/on.cfg"
policy false > "$WORK/off.cfg"
"$BUS" check "$WORK/on.cfg" >/dev/null
"$BUS" check "$WORK/off.cfg" >/dev/null

#   run_one on|off SIZE PAIRS: prints "msgs/s bus-CPU-us-per-message". It runs in a subshell ($(...)):
#   each run gets a fresh directory of its own.
run_one () {
    local which=$1 size=$2 pairs=$3
    local dir
    dir=$(mktemp -d "$WORK/run-$which.XXXXXX")
    "$BUS" serve --policy "$WORK/$which.cfg" --data "$dir/data" --endpoint 'tcp://127.0.0.1:*' \
        --ready-fd 3 --quiet 3> "$dir/ready" 2> "$dir/stderr" &
    PID=$!
    for _ in $(seq 1 200); do
        [ -s "$dir/ready" ] && break
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.05
    done
    local ep
    read -r _ ep < "$dir/ready" || { echo "bench/monitor: bus did not start" >&2; cat "$dir/stderr" >&2
                                    stop; return 1; }
    local line
    line=$(timeout -s KILL $((SECONDS_MAX + 60)) "$LOAD" --system bulkhead --mode tput \
           --size "$size" --pairs "$pairs" --count "$COUNT" --seconds "$SECONDS_MAX" \
           --server-pid "$PID" --endpoint "$ep" --server-key "$dir/data/bus.pub" \
           --keys "$WORK/keys") || true
    stop
    echo "$line" | python3 -c 'import json,sys; r = json.load(sys.stdin)
print("%.0f %.2f" % (r["tput"], r["cpu_s_per_M"]))'
}

echo "bench/monitor: $ROUNDS rounds, $COUNT messages or ${SECONDS_MAX} s per run" >&2
printf '| payload | pairs | on (msgs/s) | off (msgs/s) | on / off | bus CPU on (us/msg) | off | on / off |\n'
printf '|---|---|---|---|---|---|---|---|\n'
for size in 256 4096; do
    for pairs in 1 4; do
        ratios=()
        ons=()
        offs=()
        for round in $(seq 1 "$ROUNDS"); do
            if [ $((round % 2)) = 1 ]; then
                on=$(run_one on "$size" "$pairs"); off=$(run_one off "$size" "$pairs")
            else
                off=$(run_one off "$size" "$pairs"); on=$(run_one on "$size" "$pairs")
            fi
            echo "  round $round ${size} B x$pairs: on $on, off $off (msgs/s, bus CPU us/msg)" >&2
            ons+=("${on// /:}"); offs+=("${off// /:}")
        done
        python3 - "$size" "$pairs" "${ons[*]}" "${offs[*]}" <<'EOF'
import statistics, sys
size, pairs = sys.argv[1], sys.argv[2]
on = [tuple(map(float, x.split(":"))) for x in sys.argv[3].split()]
off = [tuple(map(float, x.split(":"))) for x in sys.argv[4].split()]
t = [a[0] / b[0] for a, b in zip(on, off) if b[0] > 0]
c = [a[1] / b[1] for a, b in zip(on, off) if b[1] > 0]
med = statistics.median
print("| %s B | %s | %.0f | %.0f | %.3f [%.3f-%.3f] | %.1f | %.1f | %.3f [%.3f-%.3f] |" % (
      size, pairs, med(x[0] for x in on), med(x[0] for x in off), med(t), min(t), max(t),
      med(x[1] for x in on), med(x[1] for x in off), med(c), min(c), max(c)))
EOF
    done
done
