#!/bin/bash
#   bench_tools.test.sh: the parts of `make bench` whose figures people
#   quote, checked small. bench/report.py on runs whose ratios are known
#   (a Redis column and its ratio, columns only for the systems measured,
#   the fleet table and its targets); and, where `make bench` has built the
#   drivers and Redis is installed, bench/redis_load.c against a real
#   redis-server from bench/redis_conf.sh (a short run delivers all it
#   sends; the driver refuses a server whose ACLs let a sender write to
#   another recipient's stream or read its own, and one that does not sync
#   every write), and bench/fleet.sh with a few agents on a real bus.
#
#   Env: BULKHEAD_BUILD (where bench/redis_load and bench/fleet are; the
#   checks that need them are skipped, and say so, when they are missing).
#   Loopback only; every command bounded by timeout; servers stopped by
#   PID; the temporary directory removed. Ends with "N passed, N failed".
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BULKHEAD_BUILD:-$ROOT/build/release}
T=60
cd "$ROOT"

. "$ROOT/tests/lib.sh"

test_dir bench
REDIS_PID=""
stop_redis () {
    if [ -n "$REDIS_PID" ]; then
        kill -TERM "$REDIS_PID" 2>/dev/null
        for _ in $(seq 1 100); do
            kill -0 "$REDIS_PID" 2>/dev/null || break
            sleep 0.05
        done
        kill -KILL "$REDIS_PID" 2>/dev/null
        wait "$REDIS_PID" 2>/dev/null
        REDIS_PID=""
    fi
}
trap 'stop_redis; cleanup' EXIT

#   --- report.py ----------------------------------------------------------
#   Two rounds of 256 B x 4 throughput for four systems; bulkhead 100k,
#   baseline 200k, nats 50k and redis 80k msgs/s in round 1, half of each in
#   round 2: every ratio is the same in both rounds.
run_line () {   # system round tput cpu
    printf '{"round":%d,"system":"%s","mode":"tput","size":256,"pairs":4,"rate":0,"count":1,"sent":1,"acked":1,"delivered":1,"errors":0,"seconds":1,"tput":%s,"p50_us":1,"p99_us":1,"p999_us":1,"max_us":1,"samples":1,"server_cpu_s":1,"cpu_s_per_M":%s,"hwm_kb":1024,"rss_kb":[1],"anon_kb":[1]}\n' \
        "$2" "$1" "$3" "$4"
}
{
    for round in 1 2; do
        div=$round
        run_line baseline $round $((200000 / div)) 5
        run_line bulkhead $round $((100000 / div)) 10
        run_line nats $round $((50000 / div)) 20
        run_line redis $round $((80000 / div)) 8
    done
} > "$DIR/runs.jsonl"
timeout $T python3 bench/report.py "$DIR/runs.jsonl" "$DIR/r4" --redis-version "redis-server 7" \
    > "$DIR/r4.out" 2> "$DIR/r4.err"
rc=$?
row=$(grep '^| 256 B | 4 |' "$DIR/r4.out" | head -n 1)
if [ $rc -eq 0 ] && [ "$row" = "| 256 B | 4 | 150k [100k-200k] | 75k [50k-100k] | 38k [25k-50k] | 60k [40k-80k] | **0.50 [0.50-0.50]** | **2.00 [2.00-2.00]** | **1.25 [1.25-1.25]** |" ]; then
    pass "report: a redis column and bulkhead / redis, from the runs of each round"
else
    fail "report: a redis column and bulkhead / redis, from the runs of each round" "exit $rc" \
         "row: $row" "$(cat "$DIR/r4.err")"
fi
if grep -q '^| payload | pairs | baseline | bulkhead | nats | redis | bulkhead / baseline | bulkhead / nats | bulkhead / redis |$' "$DIR/r4.out" \
&& grep -q '^| throughput bulkhead / nats, 256 B, 4 pairs >= 1.5 | 2.00 | met |$' "$DIR/r4.out" \
&& grep -q '^| bus CPU per message <= 1.5x the bare hop.s, worst workload | 2.00x | MISSED |$' "$DIR/r4.out" \
&& grep -q 'Redis is redis-server 7, Redis Streams with `appendonly yes` and `appendfsync always`' "$DIR/r4.out"; then
    pass "report: the header, the targets and what Redis was run with"
else
    fail "report: the header, the targets and what Redis was run with" "$(cat "$DIR/r4.out")"
fi
grep -v '"system":"redis"' "$DIR/runs.jsonl" | grep -v '"system":"nats"' > "$DIR/runs2.jsonl"
timeout $T python3 bench/report.py "$DIR/runs2.jsonl" "$DIR/r2" > "$DIR/r2.out" 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -qF '| 256 B | 4 | 150k [100k-200k] | 75k [50k-100k] | **0.50 [0.50-0.50]** |' "$DIR/r2.out" \
&& ! grep -qi 'redis' "$DIR/r2.out"; then
    pass "report: columns only for the systems a run measured"
else
    fail "report: columns only for the systems a run measured" "exit $rc" "$(cat "$DIR/r2.out")"
fi
fleet_line () {   # agents welcome_s idle_pct busy_p99_us
    printf '{"label":"","agents":%d,"procs":4,"ping_ms":0,"welcomed":%d,"refused":0,"missing":0,"welcome_s":%s,"idle_cpu_pct":%s,"cpu_window_s":10.0,"bus_rss_kb":102400,"bus_fds":%d,"bus_fds_after":%d,"quiet_p50_us":500,"quiet_p99_us":900,"busy_p50_us":600,"busy_p99_us":%s,"busy_p999_us":1,"busy_max_us":1,"pair_errors":0,"pair_samples":1000,"connect_bus_cpu_s":1,"connect_machine_cores":1,"idle_machine_cores":0.5,"cpus":2,"serve_args":"","load":"1"}\n' \
        "$1" "$1" "$2" "$3" "$1" "$1" "$4"
}
{ fleet_line 2000 9.5 0.3 1500; fleet_line 10000 41.2 0.4 2500; } > "$DIR/fleet.jsonl"
timeout $T python3 bench/report.py "$DIR/runs.jsonl" "$DIR/rf" --fleet "$DIR/fleet.jsonl" \
    > "$DIR/rf.out" 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -q '^| 10,000 | 10,000 | 41.2 s | 0.4% of a core | 100 MB | 0.50 cores | 0.50 / 0.90 ms | 0.60 / 2.50 ms |$' "$DIR/rf.out" \
&& grep -q '^| bus idle under 5% of a core, 10,000 agents | 0.4% | met |$' "$DIR/rf.out" \
&& grep -q '^| all welcomed within 30 s, 10,000 agents | 41.2 s | MISSED |$' "$DIR/rf.out" \
&& grep -q '^| live pair p99 within 2 ms while connected, 10,000 agents (alone: 0.90 ms) | 2.50 ms | MISSED |$' "$DIR/rf.out"; then
    pass "report: the fleet table, its targets judged on the 10,000-agent run"
else
    fail "report: the fleet table, its targets judged on the 10,000-agent run" "exit $rc" "$(cat "$DIR/rf.out")"
fi

#   --- redis_load against a real redis-server ------------------------------
LOAD=$BUILD_DIR/bench/redis_load
start_redis () {   # config-file-filter: a sed script applied to the bench's config
    local dir=$DIR/redis.$1
    mkdir -p "$dir"
    for _ in 1 2 3 4 5; do
        port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        bench/redis_conf.sh "$dir" "$port" | sed "$2" > "$dir/redis.conf"
        redis-server "$dir/redis.conf" > "$dir/log" 2>&1 &
        REDIS_PID=$!
        for _ in $(seq 1 200); do
            grep -q 'Ready to accept connections' "$dir/log" && return 0
            kill -0 "$REDIS_PID" 2>/dev/null || break
            sleep 0.05
        done
        stop_redis
    done
    return 1
}
load () {
    timeout $T "$LOAD" --system redis --mode lat --size 256 --pairs 2 --rate 400 --seconds 1 \
        --port "$port" --server-pid "$REDIS_PID" > "$DIR/out" 2> "$DIR/err"
    rc=$?
}
if ! command -v redis-server >/dev/null || ! [ -x "$LOAD" ]; then
    echo "skip redis_load checks: needs redis-server and $LOAD (make bench builds it)"
else
    if start_redis good ''; then
        load
        #   400/s for 1 s: the last few may miss the time bound, none may be lost.
        if [ $rc -eq 0 ] && python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert r["system"] == "redis" and r["errors"] == 0, r
assert 380 <= r["sent"] == r["acked"] == r["delivered"] == r["samples"], r
assert 0 < r["p50_us"] <= r["p99_us"] and r["server_cpu_s"] > 0, r
' "$DIR/out" && grep -q 'ACLs hold (6 forbidden commands refused with NOPERM)' "$DIR/err"; then
            pass "redis_load: the ACLs hold, and a short run delivers all it sent"
        else
            fail "redis_load: the ACLs hold, and a short run delivers all it sent" "exit $rc" \
                 "$(cat "$DIR/out")" "$(cat "$DIR/err")"
        fi
        #   What redis-server wrote to its append-only file: every entry.
        if [ "$(grep -c '^XADD' "$DIR/redis.good/appendonlydir/"*.incr.aof)" -ge 800 ] 2>/dev/null; then
            pass "redis_load: every XADD (warm-up and run) is in the append-only file"
        else
            fail "redis_load: every XADD (warm-up and run) is in the append-only file" \
                 "$(ls -la "$DIR/redis.good/appendonlydir/" 2>&1)"
        fi
        stop_redis
    else
        fail "redis-server starts from bench/redis_conf.sh" "$(cat "$DIR/redis.good/log")"
    fi
    #   s1 may write to every stream: the driver must refuse to measure.
    if start_redis loose 's/^user s1 on >pw-s1 resetkeys %W~bench:r1 /user s1 on >pw-s1 resetkeys ~* /'; then
        load
        if [ $rc -ne 0 ] && grep -q 'ACL check failed: s1 XADD to another recipient.s stream was not refused' "$DIR/err" \
        && ! grep -q '"mode":"lat"' "$DIR/out"; then
            pass "redis_load: refuses a server that lets a sender write to another's stream"
        else
            fail "redis_load: refuses a server that lets a sender write to another's stream" "exit $rc" \
                 "$(cat "$DIR/out")" "$(cat "$DIR/err")"
        fi
        stop_redis
    else
        fail "redis-server starts with a loose ACL" "$(cat "$DIR/redis.loose/log")"
    fi
    #   s1 may read what it writes (~ instead of %W): refused too.
    if start_redis read 's/^\(user s1 on >pw-s1 resetkeys \)%W~bench:r1 resetchannels -@all +xadd$/\1~bench:r1 resetchannels -@all +xadd +xrange/'; then
        load
        if [ $rc -ne 0 ] && grep -q 'ACL check failed: s1 XRANGE of the stream it writes to was not refused' "$DIR/err"; then
            pass "redis_load: refuses a server that lets a sender read its recipient's stream"
        else
            fail "redis_load: refuses a server that lets a sender read its recipient's stream" "exit $rc" \
                 "$(cat "$DIR/out")" "$(cat "$DIR/err")"
        fi
        stop_redis
    else
        fail "redis-server starts with a readable stream" "$(cat "$DIR/redis.read/log")"
    fi
    if start_redis lazy 's/^appendfsync always$/appendfsync everysec/'; then
        load
        if [ $rc -ne 0 ] && grep -q 'appendonly=yes appendfsync=everysec' "$DIR/err"; then
            pass "redis_load: refuses a server that does not fsync every write"
        else
            fail "redis_load: refuses a server that does not fsync every write" "exit $rc" \
                 "$(cat "$DIR/out")" "$(cat "$DIR/err")"
        fi
        stop_redis
    else
        fail "redis-server starts with appendfsync everysec" "$(cat "$DIR/redis.lazy/log")"
    fi
fi

#   --- fleet.sh: a few agents on a real bus --------------------------------
if ! [ -x "$BUILD_DIR/bench/fleet" ] || ! [ -x "$BUILD_DIR/bulkhead" ]; then
    echo "skip fleet checks: needs $BUILD_DIR/bench/fleet (make bench builds it)"
else
    line=$(BUILD=$BUILD_DIR FLEET_KEYS=$DIR/fleet-keys FLEET_WORK=$DIR timeout 120 \
           bench/fleet.sh --agents 24 --procs 3 --pair-seconds 1 --cpu-seconds 1 --timeout 30 \
           2> "$DIR/fleet.err")
    rc=$?
    if [ $rc -eq 0 ] && echo "$line" | python3 -c '
import json, sys
r = json.load(sys.stdin)
assert r["agents"] == 24 and r["welcomed"] == 24 and r["missing"] == 0 and r["refused"] == 0, r
assert r["pair_errors"] == 0 and r["pair_samples"] == 100, r
assert 0 < r["welcome_s"] < 30 and r["quiet_p99_us"] > 0 and r["busy_p99_us"] > 0, r
assert r["bus_fds"] >= 24, r       # one descriptor a connection at least
' 2>> "$DIR/fleet.err"; then
        pass "fleet: 24 agents in 3 processes welcomed, the pair delivered all 100 beside them"
    else
        fail "fleet: 24 agents in 3 processes welcomed, the pair delivered all 100 beside them" \
             "exit $rc" "$line" "$(cat "$DIR/fleet.err")"
    fi
    #   Keys not in the bus's policy: not welcomed, and not counted as if.
    BUILD=$BUILD_DIR timeout 30 "$BUILD_DIR/bench/fleet" keys --dir "$DIR/fleet-keys" --agents 30 \
        > /dev/null
    mkdir -p "$DIR/bus"
    "$BUILD_DIR/bulkhead" serve --policy "$DIR/fleet-keys/policy-24.cfg" --data "$DIR/bus" \
        --endpoint 'tcp://127.0.0.1:*' --ready-fd 3 --quiet 3> "$DIR/bus.ready" 2> "$DIR/bus.err" &
    BUS_PID=$!
    for _ in $(seq 1 200); do
        [ -s "$DIR/bus.ready" ] && break
        sleep 0.05
    done
    read -r _ ep < "$DIR/bus.ready"
    out=$(timeout 30 "$BUILD_DIR/bench/fleet" connect --endpoint "$ep" --bus-key "$DIR/bus/bus.pub" \
          --dir "$DIR/fleet-keys" --from 22 --count 6 --seconds 0 --timeout 3 2> "$DIR/connect.err")
    rc=$?
    if [ $rc -ne 0 ] && echo "$out" | grep -q '"count":6,"welcomed":2,.*"missing":4'; then
        pass "fleet: agents the policy does not name are not counted as welcomed"
    else
        fail "fleet: agents the policy does not name are not counted as welcomed" "exit $rc" "$out" \
             "$(cat "$DIR/connect.err")"
    fi
fi

finish
