#!/bin/bash
#   example_agent.test.sh: examples/agent.c, the C agent a user would write,
#   against the real bus: usage and exit codes, send (queued, denied, held
#   then approved, held then denied, held past --wait-held), work (receive,
#   reply with a cause, acknowledge), and escaped output.
#
#   Env: BULKHEAD_BIN (the bus), BULKHEAD_BUILD (where examples/agent is).
#   The bus says it is ready through a fifo; a sender waiting on a hold is
#   known to be connected because it printed the held verdict (no sleeps).
#   Every command is bounded by timeout. Ends with "N passed, N failed".
set -u
set -f          #   expect's patterns are arguments: no pathname expansion
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BULKHEAD_BIN:-$ROOT/build/asan/bulkhead}
AGENT=${BULKHEAD_BUILD:-$ROOT/build/asan}/examples/agent
T=10                                        # seconds any one command may take
unset BULKHEAD_BUS BULKHEAD_BUS_KEY BULKHEAD_KEY

. "$ROOT/tests/lib.sh"

test_dir agent

#   agent ARGS...: the example agent with stdout in $out, stderr in $err, exit in $rc.
agent () {
    timeout $T "$AGENT" "$@" >"$DIR/out" 2>"$DIR/err"
    rc=$?
    out=$(cat "$DIR/out")
    err=$(cat "$DIR/err")
}
#   expect NAME RC PATTERN TEXT: the last run exited RC and TEXT matches PATTERN.
expect () {
    if [ "$rc" -eq "$2" ] && [[ "$4" == $3 ]]; then
        pass "$1"
    else
        fail "$1" "exit $rc (want $2)" "stdout: $out" "stderr: $err"
    fi
}

if [ ! -x "$AGENT" ]; then
    fail "examples/agent is built" "no $AGENT"
    finish
fi

#   ---------------------------------------------------------------------
#   usage

agent --help
expect "--help: exit 0, usage on stdout" 0 "usage: agent "*"send --to AGENT"*"work "* "$out"
agent
expect "no command: exit 2, says what to give" 2 *"no command: give send or work"* "$err"
agent frobnicate --key k --bus-key b
expect "unknown command: exit 2, names it" 2 *"unknown command 'frobnicate'"* "$err"
agent send --intent message --key k --bus-key b
expect "send without --to: exit 2" 2 *"send needs --to AGENT and --intent CLASS"* "$err"
agent send --to x --intent message --wait-held soon --key k --bus-key b
expect "send --wait-held with no number: exit 2, quotes it" 2 *"--wait-held takes milliseconds, not 'soon'"* "$err"
agent work --reply message --to x --key k --bus-key b
expect "work with a send option: exit 2" 2 *"options of send, not work"* "$err"
agent send --to x --intent message --count 3 --key k --bus-key b
expect "send with a work option: exit 2" 2 *"options of work, not send"* "$err"
agent send --to x --intent message --bus-key b
expect "no key: exit 2, names --key and BULKHEAD_KEY" 2 *"--key FILE"*"BULKHEAD_KEY"* "$err"
agent work --bogus
expect "an unknown option: exit 2" 2 *"unknown option"* "$err"

#   ---------------------------------------------------------------------
#   the bus

for name in sender worker approver; do
    timeout $T "$BIN" keygen "$name" --dir "$DIR" >/dev/null || fail "keygen $name"
done
pub () { sed -n 's/^ *public-key = "\(.*\)"$/\1/p' "$DIR/$1.pub"; }
cat >"$DIR/policy.cfg" <<EOF
classes
    finance
        approvers = approver
        quorum = 1
agents
    sender
        key = "$(pub sender)"
    worker
        key = "$(pub worker)"
    approver
        key = "$(pub approver)"
        role = approver
edges
    sender
        worker = message, finance
    worker
        sender = message
EOF
DATA=$DIR/data
EP=ipc://$DIR/bus.sock
mkfifo "$DIR/ready"
"$BIN" serve --policy "$DIR/policy.cfg" --data "$DATA" --endpoint "$EP" --ready-fd 3 \
    3>"$DIR/ready" 2>"$DIR/bus.log" &
BUS_PID=$!
ready=$(timeout $T head -1 "$DIR/ready")
if [ "$ready" != "ready $EP" ]; then
    fail "the bus starts" "got '$ready'" "$(tail -5 "$DIR/bus.log")"
    finish
fi
CONN=(--bus "$EP" --bus-key "$DATA/bus.pub")
as () {     # as AGENT COMMAND ARGS...: the example agent as AGENT
    local who=$1 cmd=$2; shift 2
    agent "${CONN[@]}" --key "$DIR/$who.key" "$cmd" "$@"
}

as sender send --to worker --intent message --payload "summarise report 7" --id a1
expect "send to an offline agent: connected, queued, exit 0" 0 \
    "connected as sender"*"queued seq="*" class=message code=OK reason="* "$out"
first_seq=$(sed -n 's/^queued seq=\([0-9]*\) .*/\1/p' <<<"$out")

as worker work --count 1 --reply message
expect "work: receives the queued message from its authenticated sender" 0 \
    "connected as worker"*"seq=$first_seq from=sender intent=message class=message id=a1 payload=summarise report 7"* "$out"
#   delivered or queued: the bus may not yet have seen the sender leave.
if [[ "$out" =~ "replied "(delivered|queued)" seq="[0-9]+" class=message code=OK" ]]; then
    pass "work --reply: answers the sender"
else
    fail "work --reply: answers the sender" "$out"
fi
as worker work --wait 500
expect "work: an acknowledged message does not come again" 0 "connected as worker" "$out"
as worker work --count 1 --wait 300
expect "work --count 1 with nothing to receive: exit 1, says so" 1 *"0 of 1 messages"* "$err"

as sender work --count 1
expect "the reply arrives, naming the message it answers" 0 \
    *"from=worker intent=message"*"payload=done: message $first_seq"* "$out"
timeout $T "$BIN" log --data "$DATA" --json --kind send --agent worker >"$DIR/log.json"
if grep -q "\"sender\":\"worker\".*\"causes\":\[$first_seq\]" "$DIR/log.json" \
|| grep -q "\"causes\":\[$first_seq\].*\"sender\":\"worker\"" "$DIR/log.json"; then
    pass "the log records the reply's cause"
else
    fail "the log records the reply's cause" "$(cat "$DIR/log.json")"
fi

as sender send --to approver --intent message --payload "hi"
expect "send along a missing edge: denied, exit 1" 1 *"denied seq="*" code=DENIED reason="* "$out"

printf -v nasty 'look \033]0;owned\007 here'
as sender send --to worker --intent message --payload "$nasty" --id a2
as worker work --count 1
if [ $rc -eq 0 ] && grep -qF 'payload=look \x1b]0;owned\x07 here' "$DIR/out" \
&& ! grep -q "$(printf '\033')" "$DIR/out"; then
    pass "work: control bytes from another agent are printed escaped"
else
    fail "work: control bytes from another agent are printed escaped" "exit $rc" "$(cat -v "$DIR/out")"
fi

#   Held, then approved: the sender stays connected and hears the release.
coproc HELD { timeout $T "$AGENT" "${CONN[@]}" --key "$DIR/sender.key" send --to worker \
    --intent finance --action transfer.create --payload "amount=120" \
    --justification "invoice 42" --wait-held 8000 2>&1; }
AGENT_PID=$HELD_PID
exec {from_held}<&"${HELD[0]}"
line=""
read -r -t $T line <&"$from_held"
read -r -t $T line <&"$from_held"
id=$(sed -n 's/.* approval=\(h-[0-9a-f]*\).*/\1/p' <<<"$line")
if [[ "$line" == "held seq="*" class=finance code=OK"* ]] && [ -n "$id" ]; then
    pass "send: a held verdict names its approval id"
else
    fail "send: a held verdict names its approval id" "$line"
fi
timeout $T "$BIN" approve "$id" "${CONN[@]}" --key "$DIR/approver.key" >"$DIR/approve.out" 2>&1 \
    || fail "bulkhead approve $id" "$(cat "$DIR/approve.out")"
line=""
read -r -t $T line <&"$from_held"
exec {from_held}<&-
wait "$AGENT_PID"
held_rc=$?
AGENT_PID=""
if [ $held_rc -eq 0 ] && [[ "$line" =~ ^"then "(delivered|queued)" seq="[0-9]+" class=finance code=OK reason=released" ]]; then
    pass "send --wait-held: prints the release, exit 0"
else
    fail "send --wait-held: prints the release, exit 0" "exit $held_rc: $line"
fi
as worker work --count 1
expect "work: the approved message, with its approver" 0 \
    *"from=sender intent=finance class=finance"*"approved-by=approver payload=amount=120"* "$out"

#   Held, then denied: exit 1 with the approver's reason.
coproc HELD { timeout $T "$AGENT" "${CONN[@]}" --key "$DIR/sender.key" send --to worker \
    --intent finance --action transfer.create --payload "amount=9999" --wait-held 8000 2>&1; }
AGENT_PID=$HELD_PID
exec {from_held}<&"${HELD[0]}"
line=""
read -r -t $T line <&"$from_held"
read -r -t $T line <&"$from_held"
id=$(sed -n 's/.* approval=\(h-[0-9a-f]*\).*/\1/p' <<<"$line")
timeout $T "$BIN" deny "$id" --reason "not ours" "${CONN[@]}" --key "$DIR/approver.key" \
    >"$DIR/deny.out" 2>&1 || fail "bulkhead deny $id" "$(cat "$DIR/deny.out")"
line=""
read -r -t $T line <&"$from_held"
exec {from_held}<&-
wait "$AGENT_PID"
held_rc=$?
AGENT_PID=""
if [ $held_rc -eq 1 ] && [[ "$line" == "then denied "*"not ours"* ]]; then
    pass "send --wait-held: prints the denial with its reason, exit 1"
else
    fail "send --wait-held: prints the denial with its reason, exit 1" "exit $held_rc: $line"
fi

as sender send --to worker --intent finance --action transfer.create --wait-held 300
expect "send --wait-held: still held when it runs out: exit 3, says so" 3 *"still held after 300 ms"* "$err"
as sender send --to worker --intent finance --action transfer.create
expect "send without --wait-held: held is a verdict, exit 0" 0 *"held seq="*" approval=h-"* "$out"

agent --bus "$EP" --bus-key "$DIR/worker.pub" --key "$DIR/sender.key" --timeout 1500 \
    send --to worker --intent message
expect "the wrong bus key: exit 1 with a reason, not a hang" 1 "agent send: "?* "$err"
BULKHEAD_BUS=$EP BULKHEAD_BUS_KEY=$DATA/bus.pub BULKHEAD_KEY=$DIR/sender.key \
    agent send --to worker --intent message
expect "connection from BULKHEAD_BUS, _BUS_KEY, _KEY" 0 "connected as sender"*" seq="*" code=OK"* "$out"

kill -TERM "$BUS_PID"
timeout $T tail --pid="$BUS_PID" -f /dev/null
wait "$BUS_PID"
bus_rc=$?
BUS_PID=""
if [ $bus_rc -eq 0 ] && ! grep -q 'Sanitizer' "$DIR/bus.log"; then
    pass "the bus stops cleanly"
else
    fail "the bus stops cleanly" "exit $bus_rc" "$(tail -20 "$DIR/bus.log")"
fi
finish
