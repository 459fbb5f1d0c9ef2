#!/bin/bash
#   query.test.sh: `bulkhead log` filters and --thread against a running bus,
#   --ocsf lines, --follow streaming what commits, and `bulkhead purge`
#   (operators only, logged, never what is still queued).
#
#   Env: BULKHEAD_BIN (the binary). The bus listens on ipc:// in a fresh
#   temporary directory and says it is ready through a fifo (--ready-fd);
#   every command is bounded by timeout; the bus is always stopped and the
#   directory removed. Ends with "N passed, N failed".
set -u
set -f
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BULKHEAD_BIN:-$ROOT/build/asan/bulkhead}
PY=/usr/bin/python3
T=10
unset BULKHEAD_BUS BULKHEAD_BUS_KEY BULKHEAD_KEY
umask 022

. "$ROOT/tests/lib.sh"

test_dir query

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
#   check NAME PYTHON-CODE: runs the code with `lines` = the JSON lines of
#   $DIR/out (strict UTF-8); the code fails with a message if something is
#   wrong.
check () {
    local name=$1 result
    printf 'import json, sys\nlines = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8", errors="strict")]\n%s\n' \
        "$2" >"$DIR/check.py"
    result=$($PY "$DIR/check.py" "$DIR/out" 2>&1)
    if [ $? -eq 0 ] && [ "$rc" -eq 0 ]; then
        pass "$name"
    else
        fail "$name" "exit $rc" "$result" "stderr: $err"
    fi
}

for name in sender recipient third ops; do
    timeout $T "$BIN" keygen "$name" --dir "$DIR" >/dev/null || fail "keygen $name"
done
pub () { sed -n 's/^ *public-key = "\(.*\)"$/\1/p' "$DIR/$1.pub"; }
{
    printf 'agents\n'
    for name in sender recipient third; do
        printf '    %s\n        key = "%s"\n' "$name" "$(pub $name)"
    done
    printf '    ops\n        key = "%s"\n        role = operator\n' "$(pub ops)"
    printf 'edges\n    sender\n        recipient = message\n    recipient\n        third = message\n'
} >"$DIR/policy.cfg"
DATA=$DIR/data
EP=ipc://$DIR/bus.sock
CONN=(--bus "$EP" --bus-key "$DATA/bus.pub")
mkfifo "$DIR/ready"
"$BIN" serve --policy "$DIR/policy.cfg" --data "$DATA" --endpoint "$EP" --ready-fd 3 \
    3>"$DIR/ready" 2>>"$DIR/bus.log" &
BUS_PID=$!
ready=$(timeout $T head -1 "$DIR/ready")
if [ "$ready" != "ready $EP" ]; then
    fail "serve starts" "got '$ready'" "$(tail -5 "$DIR/bus.log")"
    finish
fi
as () {
    local who=$1 cmd=$2; shift 2
    run "$cmd" "${CONN[@]}" --key "$DIR/$who.key" "$@"
}
seq_of () { sed -n 's/^[a-z]* seq=\([0-9]*\) .*/\1/p' "$DIR/out"; }

as sender send --to recipient --intent message --payload "alpha-secret" --id m1
s1=$(seq_of)
as recipient send --to third --intent message --payload "beta-secret" --id m2 --cause "$s1"
s2=$(seq_of)
as sender send --to third --intent message --payload "gamma-secret" --id m3
expect "setup: a message on no edge is denied" 1 "denied "* "$out"
s3=$(seq_of)
as recipient send --to third --intent message --payload "delta-secret" --id m4 --cause "$s2"
s4=$(seq_of)
as sender send --to recipient --intent message --payload "epsilon-secret" --id m5
s5=$(seq_of)
if [ -n "$s1" ] && [ -n "$s2" ] && [ -n "$s3" ] && [ -n "$s4" ] && [ -n "$s5" ]; then
    pass "setup: five messages, a chain of causes m1 -> m2 -> m4"
else
    fail "setup: five messages" "$s1 $s2 $s3 $s4 $s5" "$out" "$err"
fi

run log --data "$DATA" --json --agent third --kind send --explain
check "log --agent --kind: the messages to and from third, from the index" "
ids = [l['message_id'] for l in lines]
assert ids == ['m2', 'm3', 'm4'], ids
"
expect "log --explain: says the answer came from the index" 0 *"indexed, 2 index lists"*"3 matched"* "$err"
run log --data "$DATA" --json --verdict denied --kind send
check "log --verdict denied: only the denied message" "
assert [l['message_id'] for l in lines] == ['m3'], lines
"
run log --data "$DATA" --json --code DENIED --agent sender
check "log --code --agent: combined" "
assert [l['message_id'] for l in lines] == ['m3'], lines
"
run log --data "$DATA" --json --id m4
check "log --id: the record of that message id" "
assert [l['seq'] for l in lines] == [$s4], lines
"
run log --data "$DATA" --json --thread "$s4"
check "log --thread: the causes of a message, back to the first" "
assert [l['seq'] for l in lines] == [$s1, $s2, $s4], [l['seq'] for l in lines]
"
run log --data "$DATA" --json --thread "$s1"
check "log --thread: and its effects, all the way down" "
assert [l['seq'] for l in lines] == [$s1, $s2, $s4], [l['seq'] for l in lines]
"
run log --data "$DATA" --thread "$s1"
expect "log --thread as text: the causes on the line" 0 *"id=m4 causes=$s2"* "$out"
run log --data "$DATA" --json --kind send --since 1h --until "$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)"
check "log --since/--until: a window around now holds every message" "
assert len(lines) == 5, len(lines)
"
run log --data "$DATA" --json --until 2001-01-01
check "log --until a date before the log: nothing" "
assert lines == [], lines
"
run log --data "$DATA" --since yesterday-ish
expect "log --since with a bad time: exit 2, says what it takes" 2 *"ISO 8601"* "$err"

run log --data "$DATA" --ocsf
check "log --ocsf: messages are API Activity, sessions Authentication, all with the base fields" "
classes = {}
for l in lines:
    for f in ('activity_id', 'category_uid', 'class_uid', 'type_uid', 'severity_id', 'time', 'metadata'):
        assert f in l, (f, l)
    assert l['type_uid'] == l['class_uid'] * 100 + l['activity_id'], l
    assert l['metadata']['version'] == '1.3.0' and l['metadata']['product']['name'] == 'bulkhead'
    classes.setdefault(l['class_uid'], []).append(l)
sends = [l for l in classes[6003] if l['unmapped']['kind'] == 'send']
assert len(sends) == 5, len(sends)
for l in sends:
    assert l['actor']['user']['name'] and l['api']['operation'] == 'message' and l['src_endpoint']['name'], l
m3 = [l for l in sends if l['api'].get('request', {}).get('uid') == 'm3'][0]
assert m3['status_id'] == 2 and m3['status_code'] == 'DENIED', m3
hellos = [l for l in classes[3002] if l['activity_id'] == 1]
assert hellos and all(l['user']['name'] and l['user']['credential_uid'] for l in hellos), classes[3002]
assert [l['metadata']['sequence'] for l in lines] == sorted(l['metadata']['sequence'] for l in lines)
"

#   --follow: what commits after it started comes out, one line each.
timeout 30 "$BIN" log --data "$DATA" --follow --ocsf --agent third --kind send --interval 50 \
    >"$DIR/follow" 2>"$DIR/follow.err" &
FOLLOW=$!
for i in $(seq 1 50); do
    [ "$(grep -c . "$DIR/follow")" -ge 3 ] && break
    sleep 0.1
done
as recipient send --to third --intent message --payload "zeta" --id m6
for i in $(seq 1 50); do
    grep -q '"uid":"m6"' "$DIR/follow" && break
    sleep 0.1
done
kill -TERM "$FOLLOW"
wait "$FOLLOW"
follow_rc=$?
if [ "$follow_rc" -eq 0 ] && [ "$(grep -c '"class_uid":6003' "$DIR/follow")" -eq 4 ] \
&& [ "$(grep -c '"uid":"m6"' "$DIR/follow")" -eq 1 ]; then
    pass "log --follow: the log so far, then each new record once; SIGTERM ends it cleanly"
else
    fail "log --follow" "exit $follow_rc" "$(cat "$DIR/follow")" "$(cat "$DIR/follow.err")"
fi

#   third reads what waits for it (and so acknowledges m2, m4, m6);
#   recipient does not: m1 and m5 stay queued.
as third recv --wait 500
expect "setup: third receives and acknowledges its messages" 0 *"id=m6"* "$out"

as recipient purge --before 0s
expect "purge by an agent that is not an operator: refused" 1 *"PERM"*"not an operator"* "$err"
as ops purge --before 2001-01-01T00:00:00Z
expect "purge before the log began: nothing purged" 0 "purged 0 payloads"* "$out"
as ops purge --before 0s
expect "purge: the acknowledged go, the queued stay" 0 \
    "purged 3 payloads of messages before "*"; 2 kept (still queued or held); 1 slice" "$out"
run log --data "$DATA" --json --payload --kind send
check "after purge: digests and sizes stay; payloads only where still queued (a denied message kept none)" "
by = {l['message_id']: l for l in lines}
assert 'payload_base64' not in by['m3'] and 'payload_purged_us' not in by['m3'], by['m3']
for mid in ('m2', 'm4', 'm6'):
    l = by[mid]
    assert 'payload_base64' not in l and l['payload_purged_us'] > 0, l
    assert len(l['payload_digest']) == 64 and l['payload_len'] > 0, l
for mid in ('m1', 'm5'):
    l = by[mid]
    assert 'payload_base64' in l and 'payload_purged_us' not in l, l
"
run log --data "$DATA" --json --kind control --agent ops
check "purge: each call is a CONTROL record, naming the operator, the time and the count" "
purges = [l for l in lines if 'purge_before_us' in l]
assert len(purges) == 2, lines
assert purges[-1]['count'] == 3 and purges[-1]['code'] == 'OK' and purges[-1]['actor'] == 'ops', purges[-1]
assert purges[0]['count'] == 0
"
run log --data "$DATA" --id m2
expect "log text: a purged record says so" 0 *"id=m2 causes=$s1 payload-purged"* "$out"
as recipient recv --wait 500
expect "after purge: the queued messages are still delivered, payload and all" 0 \
    *"id=m1"*"payload=alpha-secret"*"id=m5"*"payload=epsilon-secret"* "$out"
as ops purge --before 0s
expect "purge again: what was acknowledged since goes too" 0 "purged 2 payloads"*"0 kept"* "$out"
#   The record commits to its payload's digest, and its leaf hash leaves
#   the payload out: the log still verifies after a purge, the purged
#   payloads counted as not checkable.
run verify --data "$DATA"
expect "verify after purge: the log is intact, purged payloads counted" 0 *"5 purged"* "$out"

run log --data "$DATA" --agent nobody --explain
expect "log for an agent with no records: nothing" 0 "" "$out"
#   Up to a second after the last commit, the records it wrote may still
#   be past the index (in the trail): decoded, and counted apart.
if [[ "$err" =~ "0 matched, "([0-9]+)" reads ("([0-9]+)" of them records past" ]] \
   && (( BASH_REMATCH[1] - BASH_REMATCH[2] == 1 )); then
    pass "log: an empty index list costs one read"
else
    fail "log: an empty index list costs one read" "$err"
fi
#   A bus gone quiet puts its trail in the index within about a second
#   (BUS_STORE_TRAIL_US, then its next timer): then the index alone answers.
for _ in $(seq 30); do
    run log --data "$DATA" --agent nobody --explain
    [[ "$err" == *"0 matched, 1 reads (0 of them"* ]] && break
    sleep 0.1
done
expect "log beside an idle bus: the trail went into the index, one read" 0 "" "$out"
if [[ "$err" == *"0 matched, 1 reads (0 of them"* ]]; then
    pass "log beside an idle bus: the index alone answers"
else
    fail "log beside an idle bus: the index alone answers" "$err"
fi
run log --help
expect "log --help: exit 0, names the new filters" 0 *"--thread SEQ"*"--ocsf"*"--follow"* "$out"
run purge --help
expect "purge --help: exit 0" 0 "usage: bulkhead purge"* "$out"

finish
