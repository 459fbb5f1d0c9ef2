#!/usr/bin/env bash
#   bench/run.sh: `make bench`. The bus against the bare transport and NATS,
#   side by side in one run, so that every figure is a ratio measured pair by
#   pair on the same (shared, noisy) machine at the same moment.
#
#   Systems, each started fresh for every run and stopped by its PID:
#     baseline  bench/baseline.c: a CURVE ROUTER that forwards by name
#     bulkhead  the real bus: real policy, every stage, synced LMDB log, CURVE
#     nats      nats-server, a user per agent with only its own subjects,
#               JetStream file storage, publish ACKs (bench/nats_load.c)
#     redis     redis-server, Redis Streams: one stream per recipient, a
#               consumer group, XADD / XREADGROUP / XACK, appendonly with
#               appendfsync always (every write fsynced before any reply),
#               an ACL user per agent with only its own streams
#               (bench/redis_load.c, which checks the ACLs before each run)
#
#   Workloads: 256 B and 4 KiB; 1 and 4 sender -> recipient pairs;
#   throughput (closed loop) and latency (open loop at fixed rates). Each
#   workload runs ROUNDS times, the systems interleaved (rotated order
#   each round), so that drift on the machine hits all of them.
#
#   Environment:
#     BUILD=build/release   where the binaries are
#     BENCH_FULL=1          1M messages or 60 s per throughput run, 10 s per
#                           latency run (default: 200k (4 KiB: 100k) or 20 s,
#                           and 3 s; about 11 minutes on 2 cores with the
#                           four systems and the fleet of 2,000)
#     BENCH_ROUNDS=3        rounds per workload (at least 3 for min/max)
#     BENCH_SYSTEMS="baseline bulkhead nats redis"
#     BENCH_QUICK=1         one round, 256 B only (a smoke test, not for quoting)
#     BENCH_COUNT=N         messages per throughput run (4 KiB: half)
#     BENCH_LAT_SECONDS=S   seconds per latency run
#     BENCH_SIZES="256 4096" BENCH_PAIRS="1 4" BENCH_RATES="1000 10000"
#     BENCH_MODES="tput lat"  one workload alone, e.g. BENCH_MODES=lat
#                           BENCH_RATES=1000 BENCH_SIZES=256
#     BENCH_BUS=PATH        another bulkhead binary (this tree's by default),
#                           to set two builds side by side
#     BENCH_FLEET="2000"    the fleet workload's sizes, agents (default 2000;
#                           BENCH_FULL=1: 10000; BENCH_QUICK=1: 500); "none"
#                           skips it
#
#   Fleet workload (bench/fleet.sh, bulkhead only): N idle agents, each its
#   own key, from 4 processes (bench/fleet.c), on one bus: the time until
#   all are welcomed, the bus's CPU while they sit idle (10 s window), and a
#   live pair's p50/p99 (256 B at 100/s) with them connected and, on the same
#   bus before they came, alone. Its keys are kept in $BUILD/fleet-keys.
#
#   Output: a table on stdout, bench/results/bench-STAMP.{jsonl,json,md,png}
#   and bench-STAMP-fleet.jsonl.
#   Loopback only; every loop and wait is bounded; servers are stopped by
#   PID on exit, whatever the exit.
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD=${BUILD:-build/release}
BIN=$BUILD/bench
BUS=${BENCH_BUS:-$BUILD/bulkhead}
FULL=${BENCH_FULL:-0}
ROUNDS=${BENCH_ROUNDS:-3}
SYSTEMS=${BENCH_SYSTEMS:-baseline bulkhead nats redis}
SIZES="256 4096"
PAIRS="1 4"
RATES="1000 10000"
if [ "$FULL" = 1 ]; then
    COUNT=1000000; TPUT_S=60; LAT_S=10
else
    COUNT=200000; TPUT_S=20; LAT_S=3
fi
if [ "${BENCH_QUICK:-0}" = 1 ]; then
    ROUNDS=1; SIZES=256
fi
COUNT=${BENCH_COUNT:-$COUNT}
SIZES=${BENCH_SIZES:-$SIZES}
PAIRS=${BENCH_PAIRS:-$PAIRS}
RATES=${BENCH_RATES-$RATES}
MODES=${BENCH_MODES:-tput lat}
LAT_S=${BENCH_LAT_SECONDS:-$LAT_S}
if [ "$FULL" = 1 ]; then
    FLEET_SIZES=${BENCH_FLEET:-10000}; FLEET_PAIR_S=20
else
    FLEET_SIZES=${BENCH_FLEET:-2000}; FLEET_PAIR_S=10
fi
[ "${BENCH_QUICK:-0}" != 1 ] || FLEET_SIZES=${BENCH_FLEET:-500}
case " $SYSTEMS " in *" bulkhead "*) ;; *) FLEET_SIZES=none ;; esac
[ "$FLEET_SIZES" != none ] || FLEET_SIZES=""

for tool in "$BUS" "$BIN/baseline" "$BIN/load" "$BIN/nats_load" "$BIN/redis_load" "$BIN/fleet"; do
    [ -x "$tool" ] || { echo "bench: $tool is missing: run 'make bench'" >&2; exit 1; }
done
case " $SYSTEMS " in
    *" nats "*) command -v nats-server >/dev/null \
        || { echo "bench: nats-server is missing: scripts/install-deps bench" >&2; exit 1; } ;;
esac
case " $SYSTEMS " in
    *" redis "*) command -v redis-server >/dev/null \
        || { echo "bench: redis-server is missing: scripts/install-deps bench" >&2; exit 1; } ;;
esac
command -v python3 >/dev/null || { echo "bench: python3 is missing: make deps" >&2; exit 1; }

#   The work directory holds the LMDB log, the JetStream store and Redis's
#   append-only file, so it must
#   be on a real disk: an fsync on tmpfs costs nothing and would flatter the
#   bus. It lives next to the build, and goes away on exit.
mkdir -p "$BUILD" bench/results
WORK=$(mktemp -d "$BUILD/bench-work.XXXXXX")
WORK=$(cd "$WORK" && pwd)
fs=$(stat -f -c %T "$WORK")
if [ "$fs" = tmpfs ] || [ "$fs" = ramfs ]; then
    echo "bench: warning: $WORK is on $fs; fsync is free there and the bus's figures flatter it" >&2
fi
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=bench/results/bench-$STAMP
RAW=$OUT.jsonl
FLEET_RAW=$OUT-fleet.jsonl
: > "$RAW"

SERVER_PID=""
SERVER_EP=""
SERVER_KEY=""

stop_server () {
    local pid=$SERVER_PID
    SERVER_PID=""
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "bench: server $pid did not stop in 5 s; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

cleanup () {
    stop_server
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

#   Waits (at most 10 s) for a file to hold a line, as long as $SERVER_PID lives.
wait_line () {
    for _ in $(seq 1 200); do
        if [ -s "$1" ] && grep -q . "$1"; then
            return 0
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

#   --- keys and policy for the bus, made once --------------------------
setup_bus () {
    mkdir -p "$WORK/keys"
    {
        echo "#   bench policy: every agent, class and stage a real deployment has."
        echo "bus"
        echo "    max_frame = 65536"
        echo "    max_backlog = 10000"
        #   One sender per recipient: its share of the mailbox is all of it,
        #   as before the shares (issue 11). A closed loop bounds what is not
        #   acknowledged, not what is not yet delivered, so a bus that stores
        #   faster than its recipients read fills a mailbox, and a round that
        #   met BACKLOG is not counted.
        echo "    backlog_share = 100"
        #   The bench measures the mediator at full speed: no budget of a
        #   key (2000 frames/s by default) or share of the log may be what
        #   it measures.
        echo "    frames = 1000000"
        echo "    bytes = 4294967295"
        echo "    log_budget = 4294967295"
        echo "classes"
        echo "    finance"
        echo "        privileged = true"
        echo "        hold = true"
        echo "        actions = transfer.*, payment.*"
        echo "        approvers = approver"
        echo "        quorum = 1"
        echo "        ttl = 3600"
        echo "agents"
        for name in s1 s2 s3 s4 r1 r2 r3 r4 approver ingest payments; do
            "$BUS" keygen "$name" --dir "$WORK/keys" | grep 'key = ' | sed 's/^ */        /' \
                > "$WORK/keys/$name.line"
            echo "    $name"
            cat "$WORK/keys/$name.line"
            case $name in
                s*) echo "        provider = bench"
                    echo "        rate = 1000000" ;;
                r*) echo "        class = message" ;;
                approver) echo "        role = approver" ;;
                ingest) echo "        trust = untrusted" ;;
                payments) echo "        class = finance"
                          echo "        accepts_restricted = no" ;;
            esac
        done
        echo "edges"
        for k in 1 2 3 4; do
            echo "    s$k"
            echo "        r$k = message"
        done
        echo "    ingest"
        echo "        r1 = message"
    } > "$WORK/policy.cfg"
    "$BUS" check "$WORK/policy.cfg" >/dev/null
}

#   --- servers -----------------------------------------------------------
RUN_ID=0

start_server () {
    local system=$1
    RUN_ID=$((RUN_ID + 1))
    local dir=$WORK/run-$RUN_ID
    mkdir -p "$dir"
    case $system in
        baseline)
            "$BIN/baseline" --endpoint 'tcp://127.0.0.1:*' --ready-fd 3 \
                3> "$dir/ready" 2> "$dir/stderr" &
            SERVER_PID=$!
            wait_line "$dir/ready" || return 1
            read -r _ SERVER_EP SERVER_KEY < "$dir/ready"
            ;;
        bulkhead)
            "$BUS" serve --policy "$WORK/policy.cfg" --data "$dir/data" \
                --endpoint 'tcp://127.0.0.1:*' --ready-fd 3 --quiet \
                3> "$dir/ready" 2> "$dir/stderr" &
            SERVER_PID=$!
            wait_line "$dir/ready" || return 1
            read -r _ SERVER_EP < "$dir/ready"
            SERVER_KEY=$dir/data/bus.pub
            ;;
        redis)
            #   No way to have Redis pick its own port and say which: take
            #   one the kernel calls free, and try another if it was taken
            #   meanwhile (Redis then exits at once).
            local try
            for try in 1 2 3 4 5; do
                SERVER_EP=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
                bench/redis_conf.sh "$dir" "$SERVER_EP" > "$dir/redis.conf"
                redis-server "$dir/redis.conf" > "$dir/stderr" 2>&1 &
                SERVER_PID=$!
                wait_ready "$dir/stderr" 'Ready to accept connections' && return 0
                stop_server
            done
            return 1
            ;;
        nats)
            mkdir -p "$dir/ports"
            nats_config "$dir" > "$dir/nats.conf"
            nats-server -c "$dir/nats.conf" > "$dir/stderr" 2>&1 &
            SERVER_PID=$!
            local ports=$dir/ports/nats-server_$SERVER_PID.ports
            wait_line "$ports" || return 1
            SERVER_EP=$(grep -o 'nats://127.0.0.1:[0-9]*' "$ports" | head -n 1)
            [ -n "$SERVER_EP" ] || return 1
            ;;
    esac
}

#   One user per agent, each allowed only its own subjects: a sender may
#   publish to its recipient's subject and read its own publish ACKs; a
#   recipient may read its own delivery subject and ack its own consumer.
nats_config () {
    local dir=$1
    cat <<EOF
host: 127.0.0.1
port: -1
ports_file_dir: "$dir/ports"
max_payload: 65536
jetstream {
    store_dir: "$dir/js"
    max_memory_store: 64MB
    max_file_store: 8GB
}
authorization {
    users = [
        { user: admin, password: pw-admin }
EOF
    for k in 1 2 3 4; do
        cat <<EOF
        { user: s$k, password: pw-s$k, permissions: {
            publish: { allow: ["bench.r$k"] }, subscribe: { allow: ["_INBOX.s$k.>"] } } }
        { user: r$k, password: pw-r$k, permissions: {
            publish: { allow: ["\$JS.ACK.BENCH.c$k.>"] }, subscribe: { allow: ["dlv.r$k"] } } }
EOF
    done
    echo "    ]"
    echo "}"
}

#   Waits (at most 10 s) for a line matching $2 in file $1, as long as
#   $SERVER_PID lives.
wait_ready () {
    for _ in $(seq 1 200); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

#   --- one run -------------------------------------------------------------
#   run_one SYSTEM ROUND MODE SIZE PAIRS RATE: one JSON line into $RAW.
run_one () {
    local system=$1 round=$2 mode=$3 size=$4 pairs=$5 rate=$6
    local args=(--system "$system" --mode "$mode" --size "$size" --pairs "$pairs")
    if [ "$mode" = tput ]; then
        #   4 KiB moves 16 times the bytes: half the messages keep the
        #   default run short (BENCH_FULL keeps the full count).
        local count=$COUNT
        [ "$size" -gt 1024 ] && [ "$FULL" != 1 ] && count=$((COUNT / 2))
        args+=(--count "$count" --seconds "$TPUT_S")
    else
        args+=(--rate "$rate" --seconds "$LAT_S")
    fi
    if ! start_server "$system"; then
        echo "bench: $system did not start:" >&2
        cat "$WORK/run-$RUN_ID/stderr" >&2 || true
        stop_server
        return 1
    fi
    args+=(--server-pid "$SERVER_PID")
    local limit=$((LAT_S + 60))
    [ "$mode" = tput ] && limit=$((TPUT_S + 60))
    local line rc=0
    case $system in
        baseline) line=$(timeout -s KILL "$limit" "$BIN/load" "${args[@]}" \
                         --endpoint "$SERVER_EP" --server-key "$SERVER_KEY") || rc=$? ;;
        bulkhead) line=$(timeout -s KILL "$limit" "$BIN/load" "${args[@]}" \
                         --endpoint "$SERVER_EP" --server-key "$SERVER_KEY" \
                         --keys "$WORK/keys") || rc=$? ;;
        nats)     line=$(timeout -s KILL "$limit" "$BIN/nats_load" "${args[@]}" \
                         --url "$SERVER_EP") || rc=$? ;;
        redis)    line=$(timeout -s KILL "$limit" "$BIN/redis_load" "${args[@]}" \
                         --port "$SERVER_EP") || rc=$? ;;
    esac
    stop_server
    if [ -z "$line" ]; then
        echo "bench: $system $mode ${size}B x$pairs failed (exit $rc)" >&2
        return 1
    fi
    [ "$rc" = 0 ] || echo "bench: $system $mode ${size}B x$pairs: errors reported (exit $rc)" >&2
    echo "{\"round\":$round,${line#\{}" >> "$RAW"
    printf '  %-8s round %d  %-4s %5s B x%s %6s  %s\n' "$system" "$round" "$mode" "$size" "$pairs" \
        "${rate:-}" "$(echo "$line" | python3 -c 'import json,sys; r=json.load(sys.stdin);
print("%.0f msgs/s" % r["tput"] if r["mode"]=="tput" else "p50 %.0f us  p99 %.0f us" % (r["p50_us"], r["p99_us"]))')" >&2
}

#   Every workload, ROUNDS times, the systems interleaved and rotated.
run_workload () {
    local mode=$1 size=$2 pairs=$3 rate=${4:-0}
    local -a order=($SYSTEMS)
    local n=${#order[@]}
    for round in $(seq 1 "$ROUNDS"); do
        for i in $(seq 0 $((n - 1))); do
            local system=${order[$(( (i + round - 1) % n ))]}
            run_one "$system" "$round" "$mode" "$size" "$pairs" "$rate" || true
        done
    done
}

echo "bench: $ROUNDS rounds, systems: $SYSTEMS" >&2
if [ "$FULL" = 1 ]; then
    echo "bench: BENCH_FULL=1: throughput runs of $COUNT messages or ${TPUT_S} s, latency runs of ${LAT_S} s" >&2
else
    echo "bench: short runs ($COUNT messages or ${TPUT_S} s, latency ${LAT_S} s); BENCH_FULL=1 for 1M / 60 s" >&2
fi
case " $SYSTEMS " in *" bulkhead "*) setup_bus ;; esac

started=$(date +%s)
case " $MODES " in *" tput "*) ;; *) SIZES_TPUT="" ;; esac
for size in ${SIZES_TPUT-$SIZES}; do
    for pairs in $PAIRS; do
        run_workload tput "$size" "$pairs"
    done
done
case " $MODES " in *" lat "*) ;; *) RATES="" ;; esac
for rate in $RATES; do
    for size in $SIZES; do
        for pairs in $PAIRS; do
            run_workload lat "$size" "$pairs" "$rate"
        done
    done
done
#   The fleet: its own bus per size (bench/fleet.sh starts and stops it).
for agents in $FLEET_SIZES; do
    line=""
    rc=0
    line=$(BUILD=$BUILD FLEET_WORK=$WORK timeout -s KILL 900 bench/fleet.sh --agents "$agents" \
           --pair-seconds "$FLEET_PAIR_S" --timeout 300) || rc=$?
    if [ -z "$line" ]; then
        echo "bench: fleet of $agents agents failed (exit $rc)" >&2
        continue
    fi
    echo "$line" >> "$FLEET_RAW"
    echo "$line" | python3 -c 'import json,sys; r=json.load(sys.stdin)
print("  fleet    %6d agents  welcomed %d in %.1f s  bus idle %.1f%% of a core  "
      "pair p99 %.2f ms (alone %.2f ms)" % (r["agents"], r["welcomed"], r["welcome_s"],
      r["idle_cpu_pct"], (r["busy_p99_us"] or 0) / 1000, (r["quiet_p99_us"] or 0) / 1000))' >&2
done
echo "bench: runs took $(( $(date +%s) - started )) s" >&2

[ -s "$FLEET_RAW" ] || FLEET_RAW=""
python3 bench/report.py "$RAW" "$OUT" ${FLEET_RAW:+--fleet "$FLEET_RAW"} \
    --nats-version "$(nats-server --version 2>/dev/null || echo nats-server)" \
    --redis-version "$(redis-server --version 2>/dev/null | sed -n 's/^Redis server v=\([^ ]*\).*/redis-server \1/p' || echo redis-server)" \
    --command "make bench${BENCH_FULL:+ BENCH_FULL=$BENCH_FULL}" \
    --note "$( [ "$FULL" = 1 ] && echo "full: $COUNT msgs or ${TPUT_S} s per throughput run, ${LAT_S} s per latency run" \
               || echo "short: $COUNT msgs or ${TPUT_S} s per throughput run, ${LAT_S} s per latency run (BENCH_FULL=1: 1M / 60 s)")"
if command -v gnuplot >/dev/null; then
    gnuplot -e "prefix='$OUT'" bench/plot.gp 2> "$WORK/gnuplot.err" \
        && echo "bench: plot: $OUT.png" >&2 \
        || { echo "bench: gnuplot failed:" >&2; cat "$WORK/gnuplot.err" >&2; }
fi
