#!/usr/bin/env bash
#   bench/fleet.sh: one fleet run. A fresh bus; a live pair alone on it
#   (the quiet p99); then N idle agents, each its own key, from PROCS
#   processes (bench/fleet.c connect); the time until all are welcomed; the
#   bus's CPU over a window while they sit idle; the live pair again while
#   they are connected. One JSON line on stdout.
#
#   bench/fleet.sh --agents N [--procs 4] [--pair-seconds 20] [--cpu-seconds 10]
#                  [--ping MS] [--timeout S] [--label TEXT] [-- SERVE-ARGS...]
#
#   --ping MS       the fleet's DEALERs send ZMQ heartbeats every MS (as
#                   bus_client does with 2000); default 0: none
#   SERVE-ARGS      more flags for `bulkhead serve`
#
#   Environment: BUILD (build/release), FLEET_KEYS (where the keys are kept
#   between runs, default $BUILD/fleet-keys), FLEET_WORK (a directory on a
#   real disk for the bus's data; default a fresh one under $BUILD).
#   Loopback only; every wait is bounded; what it starts it stops by PID.
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD=${BUILD:-build/release}
BUS=${FLEET_BUS:-$BUILD/bulkhead}
FLEET=$BUILD/bench/fleet
KEYS=${FLEET_KEYS:-$BUILD/fleet-keys}

AGENTS=""
PROCS=4
PAIR_S=20
CPU_S=10
PING=0
TIMEOUT=180
LABEL=""
while [ $# -gt 0 ]; do
    case $1 in
        --agents) AGENTS=$2; shift 2 ;;
        --procs) PROCS=$2; shift 2 ;;
        --pair-seconds) PAIR_S=$2; shift 2 ;;
        --cpu-seconds) CPU_S=$2; shift 2 ;;
        --ping) PING=$2; shift 2 ;;
        --timeout) TIMEOUT=$2; shift 2 ;;
        --label) LABEL=$2; shift 2 ;;
        --) shift; break ;;
        *) echo "usage: bench/fleet.sh --agents N [--procs P] [--pair-seconds S]" \
                "[--cpu-seconds S] [--ping MS] [--timeout S] [--label TEXT] [-- SERVE-ARGS]" >&2
           exit 2 ;;
    esac
done
[ -n "$AGENTS" ] || { echo "fleet.sh: --agents N" >&2; exit 2; }
for tool in "$BUS" "$FLEET"; do
    [ -x "$tool" ] || { echo "fleet.sh: $tool is missing: run 'make bench'" >&2; exit 1; }
done

#   Each connection is a descriptor in the bus and in its fleet process.
need=$((AGENTS + 256))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need" ]; then
    ulimit -n "$need" 2>/dev/null || {
        echo "fleet.sh: $AGENTS agents need $need open files, the hard limit is $(ulimit -Hn)" >&2
        exit 1; }
fi

mkdir -p "$BUILD"
WORK=${FLEET_WORK:-}
OWN_WORK=0
if [ -z "$WORK" ]; then
    WORK=$(mktemp -d "$BUILD/fleet-work.XXXXXX")
    OWN_WORK=1
fi
BUS_PID=""
FLEET_PIDS=()

stop_pid () {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 200); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup () {
    for pid in "${FLEET_PIDS[@]}"; do
        stop_pid "$pid"
    done
    FLEET_PIDS=()
    [ -z "$BUS_PID" ] || stop_pid "$BUS_PID"
    BUS_PID=""
    [ "$OWN_WORK" = 0 ] || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

#   Keys are kept between runs: one directory serves every N up to the
#   largest made so far.
policy=$("$FLEET" keys --dir "$KEYS" --agents "$AGENTS" \
         | python3 -c 'import json,sys; print(json.load(sys.stdin)["policy"])')
"$BUS" check "$policy" >/dev/null

run=$WORK/run.$$
mkdir -p "$run"
"$BUS" serve --policy "$policy" --data "$run/data" --endpoint 'tcp://127.0.0.1:*' \
    --ready-fd 3 --quiet "$@" 3> "$run/ready" 2> "$run/bus.stderr" &
BUS_PID=$!
for _ in $(seq 1 200); do
    [ -s "$run/ready" ] && break
    kill -0 "$BUS_PID" 2>/dev/null || break
    sleep 0.05
done
if ! [ -s "$run/ready" ]; then
    echo "fleet.sh: the bus did not start:" >&2
    cat "$run/bus.stderr" >&2
    exit 1
fi
read -r _ EP < "$run/ready"
BUS_KEY=$run/data/bus.pub
common=(--endpoint "$EP" --bus-key "$BUS_KEY" --dir "$KEYS")

#   The pair alone first: the quiet figure on the same bus.
quiet=$(timeout -s KILL $((PAIR_S + 120)) "$FLEET" pair "${common[@]}" --seconds "$PAIR_S") \
    || { echo "fleet.sh: quiet pair failed" >&2; exit 1; }

#   "busy total bus" ticks: the machine's (every CPU) and the bus's own.
snap () {
    local busy total
    read -r busy total < <(awk '/^cpu /{t=0; for (i=2;i<=9;i++) t+=$i; print t-$5-$6, t}' /proc/stat)
    echo "$busy $total $(awk '{print $14+$15}' "/proc/$BUS_PID/stat")"
}

#   The fleet: PROCS processes, contiguous ranges of agents.
snap_start=$(snap)
per=$(( (AGENTS + PROCS - 1) / PROCS ))
stay=$((TIMEOUT + CPU_S + PAIR_S + 180))
from=0
for p in $(seq 1 "$PROCS"); do
    count=$per
    [ $((from + count)) -le "$AGENTS" ] || count=$((AGENTS - from))
    [ "$count" -gt 0 ] || break
    "$FLEET" connect "${common[@]}" --from "$from" --count "$count" --ping "$PING" ${FLEET_CONNECT_ARGS:-} \
        --seconds "$stay" --timeout "$TIMEOUT" > "$run/fleet.$p" 2> "$run/fleet.$p.err" &
    FLEET_PIDS+=($!)
    from=$((from + count))
done
deadline=$(( $(date +%s) + TIMEOUT + 30 ))
for p in $(seq 1 ${#FLEET_PIDS[@]}); do
    while ! [ -s "$run/fleet.$p" ]; do
        if [ "$(date +%s)" -gt "$deadline" ] || ! kill -0 "${FLEET_PIDS[$((p - 1))]}" 2>/dev/null; then
            echo "fleet.sh: fleet process $p gave no figure:" >&2
            cat "$run/fleet.$p.err" >&2 || true
            break
        fi
        sleep 0.1
    done
done
snap_welcomed=$(snap)
sleep 2
cpu=$("$FLEET" cpu --pid "$BUS_PID" --seconds "$CPU_S")
busy=$(timeout -s KILL $((PAIR_S + 120)) "$FLEET" pair "${common[@]}" --seconds "$PAIR_S") \
    || busy='{"mode":"pair","errors":-1}'
cpu_after=$("$FLEET" cpu --pid "$BUS_PID" --seconds 1)

python3 - "$AGENTS" "$PROCS" "$PING" "$LABEL" "$quiet" "$busy" "$cpu" "$cpu_after" \
    "$snap_start" "$snap_welcomed" "$(getconf CLK_TCK)" "$(nproc)" "$*" "$(uptime)" \
    "$run"/fleet.[0-9]* <<'EOF'
import json, sys
agents, procs, ping, label, quiet, busy, cpu, cpu_after = sys.argv[1:9]
s0, s1 = ([int(x) for x in s.split()] for s in sys.argv[9:11])
hz, ncpu, serve_args, uptime = int(sys.argv[11]), int(sys.argv[12]), sys.argv[13], sys.argv[14]
fleets = []
for path in sys.argv[15:]:
    if path.endswith(".err"):
        continue
    try:
        fleets.append(json.loads(open(path).read().splitlines()[0]))
    except (IndexError, ValueError):
        fleets.append(None)
ok = [f for f in fleets if f]
quiet, busy, cpu, cpu_after = (json.loads(x) for x in (quiet, busy, cpu, cpu_after))
welcomed = sum(f["welcomed"] for f in ok)
start = min(f["start_ns"] for f in ok) if ok else 0
last = max(f["last_ns"] for f in ok) if ok else 0
out = {
    "label": label, "agents": int(agents), "procs": int(procs), "ping_ms": int(ping),
    "welcomed": welcomed, "refused": sum(f["refused"] for f in ok),
    "missing": int(agents) - welcomed,
    "welcome_s": round((last - start) / 1e9, 3),
    "idle_cpu_pct": cpu["pct"], "cpu_window_s": cpu["seconds"],
    "bus_rss_kb": cpu["rss_kb"], "bus_fds": cpu["fds"], "bus_fds_after": cpu_after["fds"],
    "quiet_p50_us": quiet.get("p50_us"), "quiet_p99_us": quiet.get("p99_us"),
    "busy_p50_us": busy.get("p50_us"), "busy_p99_us": busy.get("p99_us"),
    "busy_p999_us": busy.get("p999_us"), "busy_max_us": busy.get("max_us"),
    "pair_errors": (quiet.get("errors") or 0) + (busy.get("errors") or 0),
    "pair_samples": busy.get("delivered"),
    #   While connecting: the bus's CPU per agent welcomed, and how busy
    #   the whole machine was (in cores, out of ncpu; the bus included).
    "connect_bus_cpu_s": round((s1[2] - s0[2]) / hz, 2),
    "connect_machine_cores": round((s1[0] - s0[0]) / max(1, s1[1] - s0[1]) * ncpu, 2),
    "idle_machine_cores": cpu.get("machine_busy_cores"), "cpus": ncpu,
    "serve_args": serve_args, "load": uptime.split("load average:")[-1].strip(),
}
print(json.dumps(out))
EOF
