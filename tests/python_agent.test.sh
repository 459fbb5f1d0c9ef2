#!/bin/bash
#   python_agent.test.sh: a Python agent (examples/py_agent.py, pyzmq and
#   protobuf from the .proto files alone) against the real bus, both ways
#   with C agents (`bulkhead send` / `bulkhead recv`).
#
#   Env: BULKHEAD_BIN (the bulkhead binary), BULKHEAD_BUILD (its build dir,
#   where BUILD/py/bulkhead_pb2.py is). The bus listens on ipc:// in a fresh
#   temporary directory and says it is ready through a fifo (--ready-fd), so
#   there are no sleeps; every command is bounded by timeout. The bus is
#   always stopped and the directory removed (trap). Ends "N passed, N failed".
set -u
shopt -s extglob
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BULKHEAD_BIN:-$ROOT/build/asan/bulkhead}
export BULKHEAD_BUILD=${BULKHEAD_BUILD:-$(dirname "$BIN")}
AGENT=$ROOT/examples/py_agent.py
T=10                                        # seconds any one command may take

. "$ROOT/tests/lib.sh"

#   The interpreter that sees Debian's python3-zmq and python3-protobuf: a
#   python3 first on PATH may not (see PITFALLS.md, "This machine").
PY=""
for candidate in /usr/bin/python3 python3; do
    if "$candidate" -c 'import zmq, google.protobuf' 2>/dev/null; then
        PY=$candidate
        break
    fi
done
if [ -z "$PY" ]; then
    fail "python3 with zmq and protobuf" "install python3-zmq python3-protobuf (make deps)"
    finish
fi
if [ ! -f "$BULKHEAD_BUILD/py/bulkhead_pb2.py" ]; then
    fail "generated module" "$BULKHEAD_BUILD/py/bulkhead_pb2.py is missing (make all makes it)"
    finish
fi

test_dir py

#   Keys: four agents in the policy, one stranger that is not.
for name in pyagent crecv csend lonely stranger; do
    if ! timeout $T "$BIN" keygen "$name" --dir "$DIR" >/dev/null; then
        fail "keygen $name"
        finish
    fi
done
pub () { sed -n 's/^ *public-key = "\(.*\)"$/\1/p' "$DIR/$1.pub"; }

cat >"$DIR/policy.cfg" <<EOF
agents
    pyagent
        key = "$(pub pyagent)"
    crecv
        key = "$(pub crecv)"
    csend
        key = "$(pub csend)"
    lonely
        key = "$(pub lonely)"
edges
    pyagent
        crecv = message
    csend
        pyagent = message, query
EOF

DATA=$DIR/data
EP=ipc://$DIR/bus.sock
mkfifo "$DIR/ready"
"$BIN" serve --policy "$DIR/policy.cfg" --data "$DATA" --endpoint "$EP" --ready-fd 3 \
    3>"$DIR/ready" 2>"$DIR/bus.log" &
BUS_PID=$!
ready=$(timeout $T head -1 "$DIR/ready")
if [ "$ready" = "ready $EP" ]; then
    pass "bus starts and says ready"
else
    fail "bus starts and says ready" "got '$ready'" "$(tail -5 "$DIR/bus.log")"
    finish
fi

CONN=(--bus "$EP" --bus-key "$DATA/bus.pub")
py () {     # py AGENT ARGS...: the Python agent with AGENT's key
    local who=$1; shift
    timeout $T "$PY" "$AGENT" "${CONN[@]}" --key "$DIR/$who.key" "$@"
}
c () {      # c COMMAND AGENT ARGS...: bulkhead COMMAND as AGENT
    local cmd=$1 who=$2; shift 2
    timeout $T "$BIN" "$cmd" "${CONN[@]}" --key "$DIR/$who.key" "$@"
}

#   1. Python -> C, recipient offline: queued, then `bulkhead recv` gets it.
out=$(py pyagent send --to crecv --intent message --payload "hello from python" --id py1 2>"$DIR/err")
rc=$?
if [ $rc -eq 0 ] && [[ "$out" == "queued seq="*" code=OK: "* ]]; then
    pass "python send to offline C agent is queued"
else
    fail "python send to offline C agent is queued" "exit $rc: $out" "$(cat "$DIR/err")"
fi
out=$(c recv crecv --count 1 --wait 5000 2>&1)
if [[ "$out" == *"from=pyagent intent=message"*"id=py1 payload=hello from python"* ]]; then
    pass "C recv gets the Python agent's message, sender authenticated"
else
    fail "C recv gets the Python agent's message, sender authenticated" "$out"
fi

#   2. Python -> C with the C agent listening (delivered or queued, depending
#   on who is first; either way it arrives once).
#   (bash closes a coprocess's fds when it ends: keep our own copies)
coproc CRECV { c recv crecv --count 1 --wait 8000 2>&1; }
AGENT_PID=$CRECV_PID
exec {from_agent}<&"${CRECV[0]}"
out=$(py pyagent send --to crecv --intent message --payload "second" --id py2 2>"$DIR/err")
rc=$?
line=""
read -r -t $T line <&"$from_agent"
exec {from_agent}<&-
wait "$AGENT_PID"
AGENT_PID=""
if [ $rc -eq 0 ] && [[ "$out" == @(delivered|queued)" seq="* ]] \
&& [[ "$line" == *"from=pyagent"*"id=py2 payload=second" ]]; then
    pass "python send to a listening C agent arrives"
else
    fail "python send to a listening C agent arrives" "send exit $rc: $out" "recv: $line"
fi

#   3. C -> Python, Python listening: delivered, and the Python agent prints it.
coproc PYRECV { py pyagent recv --count 1 --wait 8000 2>&1; }
AGENT_PID=$PYRECV_PID
exec {from_agent}<&"${PYRECV[0]}"
line=""
read -r -t $T line <&"$from_agent"
if [[ "$line" == "py_agent: connected as 'pyagent'"* ]]; then
    pass "python agent says HELLO and reads WELCOME"
else
    fail "python agent says HELLO and reads WELCOME" "$line"
fi
out=$(c send csend --to pyagent --intent query --payload "question from C" --id c1 2>&1)
rc=$?
line=""
read -r -t $T line <&"$from_agent"
exec {from_agent}<&-
wait "$AGENT_PID"
prc=$?
AGENT_PID=""
if [ $rc -eq 0 ] && [[ "$out" == "delivered seq="* ]] \
&& [[ "$line" == "seq="*" from=csend intent=query class=query id=c1 payload=question from C" ]] \
&& [ $prc -eq 0 ]; then
    pass "C send to a listening Python agent is delivered"
else
    fail "C send to a listening Python agent is delivered" "send exit $rc: $out" \
         "python exit $prc: $line"
fi

#   4. C -> Python, Python gone: the Python agent gets it on its next HELLO,
#   and what it acknowledged is not delivered again. The verdict may be
#   "delivered": the bus learns that a peer left only when a push to it
#   fails (EHOSTUNREACH), after this ACK; the message stays in the mailbox.
out=$(c send csend --to pyagent --intent message --payload "while you were out" --id c2 2>&1)
rc=$?
got=$(py pyagent recv --count 1 --wait 5000 2>/dev/null)
prc=$?
if [ $rc -eq 0 ] && [[ "$out" == @(queued|delivered)" seq="* ]] && [ $prc -eq 0 ] \
&& [[ "$got" == *"from=csend intent=message"*"id=c2 payload=while you were out" ]]; then
    pass "C send to a departed Python agent is replayed on its HELLO"
else
    fail "C send to a departed Python agent is replayed on its HELLO" "send exit $rc: $out" \
         "python exit $prc: $got"
fi
again=$(py pyagent recv --wait 1000 2>/dev/null)
if [ -z "$again" ]; then
    pass "python DeliveryAck: nothing is delivered twice"
else
    fail "python DeliveryAck: nothing is delivered twice" "$again"
fi

#   5. Denied: no edge pyagent -> lonely; the edge pyagent -> crecv does not
#   allow query. Both ACKed as denied with their code word, exit 1.
out=$(py pyagent send --to lonely --intent message --payload x --id d1 2>"$DIR/err")
rc=$?
if [ $rc -eq 1 ] && [[ "$out" == "denied seq="*" code=DENIED: no edge pyagent -> lonely"* ]]; then
    pass "python send along a missing edge is denied"
else
    fail "python send along a missing edge is denied" "exit $rc: $out" "$(cat "$DIR/err")"
fi
out=$(py pyagent send --to crecv --intent query --payload x --id d2 2>"$DIR/err")
rc=$?
if [ $rc -eq 1 ] && [[ "$out" == "denied seq="*"code=INTENT:"*"allowed: message"* ]]; then
    pass "python send with an intent the edge does not allow is denied"
else
    fail "python send with an intent the edge does not allow is denied" "exit $rc: $out" \
         "$(cat "$DIR/err")"
fi
out=$(c recv lonely --wait 500 2>&1)
if [ -z "$out" ]; then
    pass "denied messages are never delivered"
else
    fail "denied messages are never delivered" "$out"
fi

#   6. A key the policy does not name is refused at the handshake, quickly
#   and by name (not a timeout).
start=$SECONDS
out=$(py stranger send --to crecv --intent message --payload x 2>&1)
rc=$?
if [ $rc -eq 1 ] && [[ "$out" == *"UNKNOWN: the bus refused this key"* ]] && [ $((SECONDS - start)) -lt 5 ]; then
    pass "python agent with an unknown key is refused"
else
    fail "python agent with an unknown key is refused" "exit $rc after $((SECONDS - start))s: $out"
fi

#   7. Bad credentials are caught before any connection.
cp "$DIR/pyagent.key" "$DIR/open.key"
chmod 0644 "$DIR/open.key"
out=$(timeout $T "$PY" "$AGENT" "${CONN[@]}" --key "$DIR/open.key" send --to crecv --intent message 2>&1)
rc=$?
if [ $rc -eq 1 ] && [[ "$out" == *"KEY:"*"readable by others"*"chmod 600"* ]]; then
    pass "python agent refuses a secret key file others can read"
else
    fail "python agent refuses a secret key file others can read" "exit $rc: $out"
fi
out=$(timeout $T "$PY" "$AGENT" "${CONN[@]}" --key "$DIR/pyagent.pub" send --to crecv --intent message 2>&1)
rc=$?
if [ $rc -eq 1 ] && [[ "$out" == *"has no secret-key"* ]]; then
    pass "python agent refuses a public key file as its key"
else
    fail "python agent refuses a public key file as its key" "exit $rc: $out"
fi
out=$(timeout $T "$PY" "$AGENT" "${CONN[@]}" send --to crecv 2>&1)
rc=$?
if [ $rc -eq 2 ] && [[ "$out" == *"usage:"* ]]; then
    pass "python agent: bad usage exits 2 with usage"
else
    fail "python agent: bad usage exits 2 with usage" "exit $rc: $out"
fi

#   8. The log attributes the Python agent's messages to its key.
out=$(timeout $T "$BIN" log --data "$DATA" --kind send --agent pyagent --json 2>&1)
rc=$?
fp=$(printf '%s\n' "$out" | grep '"message_id":"py1"' | grep -o '"key_fp":"[0-9a-f]*"')
if [ $rc -eq 0 ] && [ ${#fp} -eq 27 ] \
&& [ "$(printf '%s\n' "$out" | grep -c '"sender":"pyagent"')" -eq 4 ]; then
    pass "the log names the Python agent and its key for each message"
else
    fail "the log names the Python agent and its key for each message" "exit $rc" "$out"
fi

#   9. The bus stops cleanly (and, under sanitizers, without a report).
kill -TERM "$BUS_PID"
timeout $T tail --pid="$BUS_PID" -f /dev/null
wait "$BUS_PID"
rc=$?
BUS_PID=""
if [ $rc -eq 0 ] && ! grep -q 'Sanitizer' "$DIR/bus.log"; then
    pass "bus stops cleanly on SIGTERM"
else
    fail "bus stops cleanly on SIGTERM" "exit $rc" "$(tail -20 "$DIR/bus.log")"
fi

#   10. No bus: a clear TIMEOUT within --timeout, not a hang.
start=$SECONDS
out=$(py pyagent --timeout 1000 send --to crecv --intent message 2>&1)
rc=$?
if [ $rc -eq 1 ] && [[ "$out" == *"TIMEOUT: no WELCOME"* ]] && [ $((SECONDS - start)) -lt 4 ]; then
    pass "python agent with no bus running: TIMEOUT, promptly"
else
    fail "python agent with no bus running: TIMEOUT, promptly" "exit $rc after $((SECONDS - start))s: $out"
fi
finish
