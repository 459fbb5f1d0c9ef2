#!/bin/bash
#   ops.test.sh: what an operator runs the bus with, beyond the commands of
#   cli.test.sh: `bulkhead stats` against a log whose numbers are known,
#   `serve` refusing files and directories others may change, and the
#   systemd unit in examples/ (verified when systemd-analyze exists).
#
#   Env: BULKHEAD_BIN (the binary). The bus listens on ipc:// in a fresh
#   temporary directory and says it is ready through a fifo (--ready-fd);
#   every command is bounded by timeout; the bus is always stopped and the
#   directory removed. Ends with "N passed, N failed".
set -u
set -f
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BULKHEAD_BIN:-$ROOT/build/asan/bulkhead}
T=10
unset BULKHEAD_BUS BULKHEAD_BUS_KEY BULKHEAD_KEY
umask 022       #   serve refuses group-writable files: a umask of 002 would make them

. "$ROOT/tests/lib.sh"

test_dir ops

run () {
    timeout $T "$BIN" "$@" >"$DIR/out" 2>"$DIR/err"
    rc=$?
    out=$(cat "$DIR/out")
    err=$(cat "$DIR/err")
}
expect () {
    if [ "$rc" -eq "$2" ] && [[ "$4" == $3 ]]; then
        pass "$1"
    else
        fail "$1" "exit $rc (want $2)" "stdout: $out" "stderr: $err"
    fi
}

for name in sender recipient holder alice; do
    timeout $T "$BIN" keygen "$name" --dir "$DIR" >/dev/null || fail "keygen $name"
done
pub () { sed -n 's/^ *public-key = "\(.*\)"$/\1/p' "$DIR/$1.pub"; }
{
    printf 'bus\n    max_frame = 8192\n'
    printf 'classes\n    finance\n        approvers = alice\n'
    printf 'agents\n'
    for name in sender recipient holder; do
        printf '    %s\n        key = "%s"\n' "$name" "$(pub $name)"
    done
    printf '    alice\n        key = "%s"\n        role = approver\n' "$(pub alice)"
    printf 'edges\n    sender\n        recipient = message\n    holder\n        recipient = finance\n'
} >"$DIR/policy.cfg"
chmod 0644 "$DIR/policy.cfg"
DATA=$DIR/data
EP=ipc://$DIR/bus.sock
CONN=(--bus "$EP" --bus-key "$DATA/bus.pub")
mkfifo "$DIR/ready"

#   serve_start / serve_stop: the bus on $DATA, stopped cleanly (which
#   writes the refusals it still counts).
serve_start () {
    "$BIN" serve --policy "$DIR/policy.cfg" --data "$DATA" --endpoint "$EP" --ready-fd 3 \
        3>"$DIR/ready" 2>>"$DIR/bus.log" &
    BUS_PID=$!
    local ready
    ready=$(timeout $T head -1 "$DIR/ready")
    if [ "$ready" != "ready $EP" ]; then
        fail "serve starts" "got '$ready'" "$(tail -5 "$DIR/bus.log")"
        finish
    fi
}
serve_stop () {
    kill -TERM "$BUS_PID"
    timeout $T tail --pid="$BUS_PID" -f /dev/null
    wait "$BUS_PID"
    BUS_PID=""
}
as () {
    local who=$1 cmd=$2; shift 2
    run "$cmd" "${CONN[@]}" --key "$DIR/$who.key" "$@"
}

#   ---------------------------------------------------------------------
#   stats: a first run with messages and refusals whose numbers are known

serve_start
as sender send --to recipient --intent message --payload "one" --id m1
as sender send --to recipient --intent message --payload-file /dev/null --id m2
head -c 5000 /dev/zero | tr '\0' 'x' >"$DIR/5k"
as sender send --to recipient --intent message --payload-file "$DIR/5k" --id m3
as sender send --to holder --intent message --payload "no edge" --id m4
expect "stats setup: a send along a missing edge is denied" 1 "denied "* "$out"
for i in 1 2 3; do
    as sender send --to recipient --intent message --payload "one" --id m1
done
expect "stats setup: a resent id is refused as DUPLICATE" 0 *"code=DUPLICATE"* "$out"
head -c 20000 /dev/zero | tr '\0' 'y' >"$DIR/20k"
as sender send --to recipient --intent message --payload-file "$DIR/20k" --id m5
expect "stats setup: a frame over max_frame is refused (TOOBIG)" 1 *"TOOBIG"* "$out$err"
as recipient recv --count 3 --wait 3000
expect "stats setup: the recipient reads and acknowledges the three" 0 *"id=m1"*"id=m2"*"id=m3"* "$out"
serve_stop

serve_start
as holder send --to recipient --intent finance --action transfer.create --payload "10 EUR" --id h1
expect "stats setup: a finance message is held" 0 "held "* "$out"
serve_stop

run stats --data "$DATA" --json
cp "$DIR/out" "$DIR/stats.json"
stats_rc=$rc
run log --data "$DATA" --json
cp "$DIR/out" "$DIR/log.json"
#   The numbers each sender must have: what the runs above did.
check=$(/usr/bin/python3 - "$stats_rc" "$DIR/stats.json" "$DIR/log.json" <<'EOF' 2>&1
import json, sys
stats = [json.loads(l) for l in open(sys.argv[2])]
log = [json.loads(l) for l in open(sys.argv[3])]
problems = []
if sys.argv[1] != "0":
    problems.append("stats exit %s" % sys.argv[1])
by = {row["agent"]: row for row in stats}
want = {
    "sender":    dict(sent=4, delivered=0, queued=3, held=0, denied=1, refusals=4),
    "holder":    dict(sent=1, delivered=0, queued=0, held=1, denied=0, refusals=0),
    "recipient": dict(sent=0, delivered=0, queued=0, held=0, denied=0, refusals=0),
}
for agent, fields in want.items():
    row = by.get(agent)
    if not row:
        problems.append("no row for %s" % agent)
        continue
    for key, value in fields.items():
        if row[key] != value:
            problems.append("%s %s = %s, want %s" % (agent, key, row[key], value))
# records and bytes: each record's stored size, by its sender, from log --json
for agent, row in by.items():
    mine = [r for r in log if r.get("sender") == agent]
    if row["records"] != len(mine) or row["bytes"] != sum(r["record_bytes"] for r in mine):
        problems.append("%s: records %s bytes %s, the log says %s and %s" % (agent,
            row["records"], row["bytes"], len(mine), sum(r["record_bytes"] for r in mine)))
if sum(r["records"] for r in stats) != len(log):
    problems.append("rows cover %s records of %s" % (sum(r["records"] for r in stats), len(log)))
if [r["bytes"] for r in stats] != sorted((r["bytes"] for r in stats), reverse=True):
    problems.append("not sorted by bytes")
# the 5000-byte payload is stored; the refused 20000-byte frame is not
m3 = [r["record_bytes"] for r in log if r.get("message_id") == "m3"]
if len(m3) != 1 or not 5000 < m3[0] < 6000:
    problems.append("m3's record: %s bytes, want one of 5000..6000" % m3)
big = [r for r in log if r["record_bytes"] > 6000]
if big:
    problems.append("a record over 6000 bytes: %s" % big[0])
print("; ".join(problems) or "ok")
EOF
)
if [ "$check" = ok ]; then
    pass "stats --json: per sender, sent/queued/held/denied/refusals as done, records and bytes as logged"
else
    fail "stats --json: per sender, sent/queued/held/denied/refusals as done, records and bytes as logged" \
        "$check" "$(cat "$DIR/stats.json")"
fi

run stats --data "$DATA"
first=$(echo "$out" | sed -n 3p)
if [ "$rc" -eq 0 ] && [[ "$out" == "$DATA: since the start: "*" records (seq 1.."*"from 4 senders"* ]] \
&& [[ "$(echo "$out" | sed -n 2p)" == "agent "*"records"*"bytes"*"share"*"refusals" ]] \
&& [[ "$first" == "sender "* ]] && [[ "$out" == *$'\n'"(bus) "* ]]; then
    pass "stats: a header, a row per sender, the largest first, the bus's own as (bus)"
else
    fail "stats: a header, a row per sender, the largest first, the bus's own as (bus)" "$out" "$err"
fi
sender_row=$(echo "$out" | grep '^sender ')
read -r _ _ _ _ sent delivered queued held denied refusals <<<"$sender_row"
if [ "$sent $delivered $queued $held $denied $refusals" = "4 0 3 0 1 4" ]; then
    pass "stats: the text row says the same as --json"
else
    fail "stats: the text row says the same as --json" "$sender_row"
fi
run stats --data "$DATA" --since 1h
expect "stats --since 1h: the whole of this log" 0 "$DATA: since "*"from 4 senders"* "$out"
run stats --data "$DATA" --since 3600 --json
if [ "$rc" -eq 0 ] && [ "$out" = "$(cat "$DIR/stats.json")" ]; then
    pass "stats --since 3600 (seconds): the same as the whole log"
else
    fail "stats --since 3600 (seconds): the same as the whole log" "$out"
fi
run stats --data "$DATA" --since 999999999w --json
expect "stats --since 999999999w: from the epoch, no overflow" 0 "$(cat "$DIR/stats.json")" "$out"

#   The second run alone: since its first record, to the microsecond.
start_us=$(/usr/bin/python3 -c '
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
starts = [r["time_us"] for r in recs if r.get("kind") == "bus" and "started" in r.get("event", "")]
print(starts[-1])' "$DIR/log.json")
since=$(date -u -d "@$((start_us / 1000000))" +%Y-%m-%dT%H:%M:%S).$(printf '%06d' $((start_us % 1000000)))Z
run stats --data "$DATA" --since "$since" --json
if [ "$rc" -eq 0 ] && [[ "$out" == *'"agent":"holder","records":'*',"sent":1,"delivered":0,"queued":0,"held":1,'* ]] \
&& [[ "$out" != *'"agent":"sender"'* ]] && [[ "$out" != *'"agent":"recipient"'* ]]; then
    pass "stats --since TIME: only what came after (the second run: holder's held message)"
else
    fail "stats --since TIME: only what came after (the second run: holder's held message)" "$since" "$out" "$err"
fi
for bad in 1y 0 -5m "" "2026-13-01T00:00:00Z" "yesterday"; do
    run stats --data "$DATA" --since "$bad"
    expect "stats --since '$bad': exit 2, says what it takes" 2 *"--since takes"* "$err"
done
run stats --data "$DIR/nowhere"
expect "stats on a directory with no log: exit 1, names it" 1 *"nowhere"* "$err"
run stats
expect "stats without --data: exit 2, usage" 2 "usage: bulkhead stats"* "$err"
run stats --help
expect "stats --help: says what each column counts" 0 "usage: bulkhead stats"*"refusals"*"--since"* "$out"

#   ---------------------------------------------------------------------
#   serve refuses what others may change (or read, for the bus key)

#   refused NAME PATTERN ARGS...: serve ARGS exits 1 with PATTERN on stderr,
#   no CZMQ or libzmq assertion, and never opens or makes a log.
refused () {
    local name=$1 pattern=$2; shift 2
    run serve --policy "$DIR/policy.cfg" --endpoint "ipc://$DIR/refused.sock" "$@"
    if [ "$rc" -eq 1 ] && [[ "$err" == $pattern ]] && [[ "$err" != *[Aa]ssert* ]] \
    && [ ! -e "$DIR/fresh/data.mdb" ]; then
        pass "$name"
    else
        fail "$name" "exit $rc (want 1)" "stderr: $err" "$(ls -l "$DIR/fresh" 2>&1)"
    fi
}
mkdir -m 0700 "$DIR/fresh"
cp "$DATA/bus.key" "$DATA/bus.pub" "$DIR/fresh/"

chmod 0777 "$DIR/fresh"
refused "serve: a data dir writable by all (0777): exit 1, names it and the chmod" \
    "bulkhead serve: PERM: $DIR/fresh is writable by group or others (mode 0777); chmod 0700 $DIR/fresh" \
    --data "$DIR/fresh"
chmod 0770 "$DIR/fresh"
refused "serve: a data dir writable by its group (0770): exit 1" \
    *"PERM: $DIR/fresh is writable by group or others (mode 0770); chmod 0700 $DIR/fresh" \
    --data "$DIR/fresh"
chmod 1777 "$DIR/fresh"
refused "serve: a sticky data dir writable by all (1777): exit 1" \
    *"PERM: $DIR/fresh is writable by group or others (mode 01777)"* --data "$DIR/fresh"
chmod 0700 "$DIR/fresh"

chmod 0666 "$DIR/policy.cfg"
refused "serve: a policy writable by all (0666): exit 1, names it and the chmod" \
    *"PERM: $DIR/policy.cfg is writable by group or others (mode 0666); chmod 0644 $DIR/policy.cfg" \
    --data "$DIR/fresh"
chmod 0620 "$DIR/policy.cfg"
refused "serve: a policy writable by its group (0620): exit 1, chmod 0600" \
    *"PERM: $DIR/policy.cfg is writable by group or others (mode 0620); chmod 0600 $DIR/policy.cfg" \
    --data "$DIR/fresh"
chmod 0644 "$DIR/policy.cfg"

for mode in 0644 0640 0604; do
    chmod "$mode" "$DIR/fresh/bus.key"
    refused "serve: DATA/bus.key mode $mode: exit 1, KEY, names the chmod, no assertion" \
        "bulkhead serve: KEY: $DIR/fresh/bus.key: secret key file is readable by others (mode $mode;"*"chmod 600 $DIR/fresh/bus.key" \
        --data "$DIR/fresh"
done
cp "$DIR/fresh/bus.key" "$DIR/elsewhere.key"
chmod 0644 "$DIR/elsewhere.key"
chmod 0600 "$DIR/fresh/bus.key"
refused "serve --key FILE mode 0644: exit 1, the same message" \
    *"KEY: $DIR/elsewhere.key: secret key file is readable by others (mode 0644;"*"chmod 600 $DIR/elsewhere.key" \
    --data "$DIR/fresh" --key "$DIR/elsewhere.key"
if [ "$(id -u)" = 0 ]; then
    chown nobody "$DIR/policy.cfg"
    refused "serve: a policy owned by another user: exit 1, names the owner and chown" \
        *"PERM: $DIR/policy.cfg is owned by uid $(id -u nobody), "*"chown 0 $DIR/policy.cfg" \
        --data "$DIR/fresh"
    chown 0 "$DIR/policy.cfg"
else
    echo "skip serve: a policy owned by another user (needs root to chown; not counted)"
fi

#   The command each message names is the fix: with it, serve starts.
chmod 0777 "$DIR/fresh"
chmod 0666 "$DIR/policy.cfg"
chmod 0644 "$DIR/fresh/bus.key"
fixed=0
for attempt in data policy key; do
    run serve --policy "$DIR/policy.cfg" --data "$DIR/fresh" --endpoint "ipc://$DIR/fixed.sock"
    fix=$(sed -n 's/.*; \(chmod [0-7]* [^ ]*\)$/\1/p' "$DIR/err")
    if [ "$rc" -ne 1 ] || [ -z "$fix" ]; then
        break
    fi
    fixed=$((fixed + 1))
    $fix
done
DATA=$DIR/fresh
EP=ipc://$DIR/fixed.sock
serve_start
if [ "$fixed" -eq 3 ] && [ -e "$DIR/fresh/data.mdb" ]; then
    pass "serve: each refusal's chmod is the fix (three of them), then it starts"
else
    fail "serve: each refusal's chmod is the fix (three of them), then it starts" "fixes run: $fixed" "$err"
fi
serve_stop

#   ---------------------------------------------------------------------
#   examples/bulkhead.service

UNIT=$ROOT/examples/bulkhead.service
#   unit_value KEY: every value the unit gives KEY, one a line.
unit_value () { sed -n "s/^$1=//p" "$UNIT"; }
missing=""
for want in "User=bulkhead" "NoNewPrivileges=yes" "ProtectSystem=strict" "ProtectHome=yes" \
            "PrivateTmp=yes" "Restart=always" 'ExecReload=/bin/kill -HUP $MAINPID'; do
    grep -qxF "$want" "$UNIT" || missing="$missing [$want]"
done
for key in MemoryMax RestartSec LimitNOFILE ReadWritePaths ExecStart; do
    [ -n "$(unit_value $key)" ] || missing="$missing [$key=]"
done
exec_start=$(unit_value ExecStart)
unit_data=$(sed -n 's/.* --data \([^ ]*\).*/\1/p' <<<"$exec_start")
unit_policy=$(sed -n 's/.* --policy \([^ ]*\).*/\1/p' <<<"$exec_start")
if [ -z "$missing" ] && [ -n "$unit_data" ] && [ -n "$unit_policy" ] \
&& unit_value ReadWritePaths | grep -qxF "$unit_data" \
&& [ "$(unit_value LimitNOFILE)" -ge 10240 ] 2>/dev/null; then
    pass "bulkhead.service: its own user, the hardening, MemoryMax, Restart, NOFILE, the data dir writable"
else
    fail "bulkhead.service: its own user, the hardening, MemoryMax, Restart, NOFILE, the data dir writable" \
        "missing:$missing" "data '$unit_data' policy '$unit_policy' ReadWritePaths '$(unit_value ReadWritePaths)'"
fi
#   Its command line is one serve accepts: run it on paths of our own.
read -r -a argv <<<"$exec_start"
argv=("${argv[@]/#$unit_data/$DIR/unit-data}")
argv=("${argv[@]/#$unit_policy/$DIR/policy.cfg}")
argv=("${argv[@]/#tcp:\/\/*/ipc://$DIR/unit.sock}")
"$BIN" "${argv[@]:1}" --ready-fd 3 3>"$DIR/ready" 2>>"$DIR/bus.log" &
BUS_PID=$!
ready=$(timeout $T head -1 "$DIR/ready")
serve_stop
if [ "${argv[1]}" = serve ] && [ "$ready" = "ready ipc://$DIR/unit.sock" ] && [ -e "$DIR/unit-data/data.mdb" ]; then
    pass "bulkhead.service: its ExecStart runs the bus (on paths of the test's own)"
else
    fail "bulkhead.service: its ExecStart runs the bus (on paths of the test's own)" "${argv[*]}" "ready '$ready'"
fi
if command -v systemd-analyze >/dev/null; then
    #   verify wants the binary of ExecStart to exist, and only warns (exit 0)
    #   about an unknown key or a bad value: any output is a failure.
    sed "s|^ExecStart=[^ ]*|ExecStart=$BIN|" "$UNIT" >"$DIR/bulkhead.service"
    verify=$(cd "$DIR" && timeout 60 systemd-analyze verify "$DIR/bulkhead.service" 2>&1)
    verify_rc=$?
    if [ "$verify_rc" -eq 0 ] && [ -z "$verify" ]; then
        pass "bulkhead.service: systemd-analyze verify finds nothing"
    else
        fail "bulkhead.service: systemd-analyze verify finds nothing" "exit $verify_rc" "$verify"
    fi
    printf '[Service]\nExecStart=%s\nMemoryMax=lots\n' "$BIN" >"$DIR/broken.service"
    verify=$(cd "$DIR" && timeout 60 systemd-analyze verify "$DIR/broken.service" 2>&1)
    if [[ "$verify" == *"broken.service:3:"* ]]; then
        pass "systemd-analyze verify: a bad value is reported (so its silence above means something)"
    else
        fail "systemd-analyze verify: a bad value is reported (so its silence above means something)" "$verify"
    fi
else
    echo "skip bulkhead.service: systemd-analyze is not installed, the unit is not verified (not counted)"
fi

finish
