#!/bin/bash
#   blast.test.sh: `bulkhead blast` and check's blast warnings (issue 13)
#   against a policy with known answers: text, --json (parsed), --dot,
#   --png (graphviz), --all, --key, --provider, errors and usage; and that
#   README's blast examples are what the binary prints for the example policy.
#
#   Env: BULKHEAD_BIN (the binary). No bus, no sockets: the analysis reads
#   the policy only. Every command is bounded by timeout; the temporary
#   directory is removed. Ends with "N passed, N failed".
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BULKHEAD_BIN:-$ROOT/build/asan/bulkhead}
T=20
unset BULKHEAD_BUS BULKHEAD_BUS_KEY BULKHEAD_KEY

. "$ROOT/tests/lib.sh"

test_dir blast

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
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
jsoncheck () {
    if "$PY" -c "import json,sys
d = json.load(open('$DIR/out'))
$2" 2>"$DIR/py"; then
        pass "$1"
    else
        fail "$1" "$(cat "$DIR/py")" "$out"
    fi
}

pub () {
    "$BIN" keygen "$1" --dir "$DIR" >/dev/null 2>&1
    sed -n 's/^ *public-key = "\(.*\)"$/\1/p' "$DIR/$1.pub"
}

#   reader (untrusted) -> planner (sticky) -> pay (finance, held: alice)
#   reader -> relay (causal) -> runner (exec, privileged, not held)
#   helper -> runner; helper -> alice (so alice is steerable from helper)
#   reader -> vault (admin, restricted = hold, accepts_restricted = false)
cat >"$DIR/p.cfg" <<EOF
classes
    finance
        approvers = alice
    exec
        privileged = true
    admin
        privileged = true
        restricted = hold
        approvers = alice, bob
agents
    reader
        key = "$(pub reader)"
        trust = untrusted
        provider = webco
    planner
        key = "$(pub planner)"
        provider = llm
    relay
        key = "$(pub relay)"
        taint = causal
    runner
        key = "$(pub runner)"
        class = exec
    pay
        key = "$(pub pay)"
        class = finance
    vault
        key = "$(pub vault)"
        class = admin
        accepts_restricted = false
    helper
        key = "$(pub helper)"
        provider = llm
    alice
        key = "$(pub alice)"
        role = approver
        provider = llm
    bob
        key = "$(pub bob)"
        role = approver
        provider = llm
edges
    reader
        planner = message
        relay = message
        vault = admin
            actions = rotate
    planner
        pay = finance
            actions = transfer.create
    relay
        runner = exec
            actions = run
    helper
        runner = exec
            actions = run
        alice = message
EOF
P=$DIR/p.cfg

run blast --help
expect "blast --help: usage on stdout, exit 0" 0 "usage: bulkhead blast"* "$out"
run blast reader
expect "blast without --policy: usage, exit 2" 2 "usage: bulkhead blast"* "$err"
run blast --policy "$P"
expect "blast with no target: usage, exit 2" 2 "usage: bulkhead blast"* "$err"
run blast --policy "$P" nobody
expect "blast of an unknown agent: names it, exit 2" 2 *"no agent 'nobody'"* "$err"
run blast --policy "$DIR/missing.cfg" reader
expect "blast of a missing policy file: exit 1, names the file" 1 *"missing.cfg"* "$err"

run blast --policy "$P" reader
expect "blast reader: steers planner and relay at 1, runner at 2" 0 \
    *"  1: planner relay"*"  2: "*"runner"* "$out"
if [[ "$out" == *"exec at runner: taint dropped, shortest 2 hops"* ]] \
&& [[ "$out" == *"relay -> runner exec"*"sender tainted: taint dropped here (causal mode)"* ]]; then
    pass "blast reader: the causal relay drops the taint on the way to exec"
else
    fail "blast reader: the causal relay drops the taint on the way to exec" "$out"
fi
if [[ "$out" == *"finance at pay: blocked"*"planner -> pay finance"*"blocked by taint, RESTRICTED"* ]]; then
    pass "blast reader: sticky planner carries the taint, finance blocked by the taint stage"
else
    fail "blast reader: sticky planner carries the taint, finance blocked by the taint stage" "$out"
fi
if [[ "$out" == *"admin at vault: blocked"*"REFUSED"* ]]; then
    pass "blast reader: accepts_restricted = false refuses even under restricted = hold"
else
    fail "blast reader: accepts_restricted = false refuses even under restricted = hold" "$out"
fi
if [[ "$out" == *"choke points for S"*"exec at runner: "*"relay -> runner (line "* ]]; then
    pass "blast reader: the choke point of the unapproved path, with its line"
else
    fail "blast reader: the choke point of the unapproved path, with its line" "$out"
fi
if [[ "$out" == *"score of the policy"*"exec"*"without a person 3 of 9"* ]]; then
    pass "blast: score, agents with an unapproved path to exec (reader, relay, helper)"
else
    fail "blast: score, agents with an unapproved path to exec (reader, relay, helper)" "$out"
fi

run blast --policy "$P" --provider llm
if [ "$rc" -eq 0 ] && [[ "$out" == *"compromised: alice"*"bob"*"helper"*"planner"* ]] \
&& [[ "$out" == *"finance"*"S OWNS THE QUORUM"* ]] \
&& [[ "$out" == *"planner -> pay finance"*"the quorum is inside S"* ]]; then
    pass "blast --provider llm: planner, helper and both approvers; S owns finance's quorum"
else
    fail "blast --provider llm: planner, helper and both approvers; S owns finance's quorum" "$out"
fi
fp=$(sed -n 's/^\(helper\) *\([0-9a-f]\{16\}\).*/\2/p' <("$BIN" check "$P" 2>/dev/null))
run blast --policy "$P" --key "$fp"
expect "blast --key FP: the agent of that key" 0 "*compromised: helper (trusted"* "$out"
if [[ "$out" == *"alice            steered at distance 1"* ]]; then
    pass "blast --key: the approver it reaches is listed as steered"
else
    fail "blast --key: the approver it reaches is listed as steered" "$out"
fi
run blast --policy "$P" --key 0000000000000000
expect "blast --key of no agent: exit 2" 2 *"no agent has key"* "$err"

run blast --policy "$P" reader --json
jsoncheck "blast --json: one document, targets with best verdicts and paths" "
t = {(x['class'], x['recipient']): x for x in d['targets']}
assert t[('exec', 'runner')]['best'] == 'taint dropped', t
assert t[('finance', 'pay')]['best'] == 'blocked'
hops = t[('exec', 'runner')]['paths'][0]['hops']
assert [h['to'] for h in hops] == ['relay', 'runner']
assert hops[1]['taint_dropped'] and hops[1]['sender_tainted']
assert t[('finance', 'pay')]['paths'][0]['hops'][1]['code'] == 'RESTRICTED'
assert d['compromised'] == ['reader']
assert {s['agent']: s['distance'] for s in d['steered']} == {'planner': 1, 'relay': 1, 'runner': 2}
assert d['score']['exec']['direct'] == 3 and d['score']['exec']['agents'] == 9
assert [c['from'] for c in t[('exec', 'runner')]['cut']] in (['relay'], ['reader'])
"
run blast --policy "$P" --provider llm --json
jsoncheck "blast --json: holds with quorum owned, approvers inside" "
h = {x['class']: x for x in d['holds']}
assert h['finance']['quorum_owned'] and h['finance']['inside'] == 1
assert all(a['inside'] for a in d['approvers'])
"

run blast --policy "$P" reader --dot
if [ "$rc" -eq 0 ] && [[ "$out" == "digraph blast {"* ]] && [[ "$out" == *'"relay" -> "runner" [color=purple'* ]] \
&& [[ "$out" == *'"planner" -> "pay" [color=gray60'*"stopped by taint"* ]]; then
    pass "blast --dot: paths coloured by verdict, the stopping stage on its edge"
else
    fail "blast --dot: paths coloured by verdict, the stopping stage on its edge" "$out"
fi
if command -v dot >/dev/null; then
    run blast --policy "$P" reader --png "$DIR/g.png"
    if [ "$rc" -eq 0 ] && [ "$(head -c 4 "$DIR/g.png" | od -An -c | tr -d ' ')" = "211PNG" ]; then
        pass "blast --png: graphviz renders a PNG"
    else
        fail "blast --png: graphviz renders a PNG" "exit $rc" "$err"
    fi
else
    fail "blast --png: graphviz dot is not installed (scripts/install-deps)"
fi

run blast --policy "$P" --all
if [ "$rc" -eq 0 ] && [[ "$out" == *"1. provider  llm"* ]] \
&& [[ "$out" == *"agent     helper"*"direct: exec"* ]]; then
    pass "blast --all: providers and agents ranked, llm first"
else
    fail "blast --all: providers and agents ranked, llm first" "$out"
fi
run blast --policy "$P" --all --json
jsoncheck "blast --all --json: a ranking" "
r = d['ranking']
assert r[0]['provider'] == 'llm', r[0]
assert any(x.get('agent') == 'reader' and x['direct'] == 'exec' for x in r)
"

#   --diff: planner gets an edge to runner
sed 's/^            actions = transfer.create$/            actions = transfer.create\n        runner = exec\n            actions = run/' "$P" >"$DIR/d.cfg"
run blast --diff "$P" "$DIR/d.cfg"
if [ "$rc" -eq 0 ] && [[ "$out" == *"+ planner: exec at runner: direct (planner -> runner)"* ]] \
&& [[ "$out" == *"1 change of blast radius"* ]]; then
    pass "blast --diff: the path a new edge adds, and nothing else"
else
    fail "blast --diff: the path a new edge adds, and nothing else" "$out" "$err"
fi
run blast --diff "$DIR/d.cfg" "$P" --json
jsoncheck "blast --diff --json: the same change, the other way, removed" "
c = d['changes']
assert len(c) == 1 and c[0]['change'] == 'removed' and c[0]['agent'] == 'planner', c
"
run blast --diff "$P"
expect "blast --diff with one file: usage, exit 2" 2 "usage: bulkhead blast"* "$err"

#   check: the risky shapes
run check "$P"
w=$err
for want in "untrusted agent 'reader' has a path to privileged class exec" \
            "agent 'relay' is taint = causal and receives content that starts at an untrusted agent" \
            "every approver of admin is on provider llm" \
            "privileged class finance has one approver (alice)"; do
    if [[ "$w" == *"$want"* ]]; then
        pass "check warns: $want"
    else
        fail "check warns: $want" "$w"
    fi
done
if [[ "$w" != *"approver 'alice' receives content"* ]]; then
    pass "check: alice is not reached from an untrusted agent, no warning"
else
    fail "check: alice is not reached from an untrusted agent, no warning" "$w"
fi
#   Now reader reaches alice through relay.
sed '/^    relay$/,/^    helper$/ s/^        runner = exec$/        runner = exec\n        alice = message/' "$P" >"$DIR/q.cfg"
run check "$DIR/q.cfg"
if [[ "$err" == *"approver 'alice' receives content that starts at an untrusted agent (2 hops)"* ]]; then
    pass "check warns: an approver reachable from an untrusted agent"
else
    fail "check warns: an approver reachable from an untrusted agent" "$err"
fi
run check --strict "$P"
expect "check --strict: blast's warnings fail it too" 1 *"--strict makes each a failure"* "$err"

#   ---------------------------------------------------------------------
#   --data: what the log says, after a short bus run

DATA=$DIR/bus-data
EP=ipc://$DIR/bus.sock
mkfifo "$DIR/ready"
"$BIN" serve --policy "$P" --data "$DATA" --endpoint "$EP" --ready-fd 3 \
    3>"$DIR/ready" 2>"$DIR/bus.log" &
BUS_PID=$!
ready=$(timeout $T head -1 "$DIR/ready")
if [ "$ready" != "ready $EP" ]; then
    fail "serve: the bus starts with the blast policy" "got '$ready'" "$(tail -5 "$DIR/bus.log")"
    finish
fi
CONN=(--bus "$EP" --bus-key "$DATA/bus.pub")
as () {     # as AGENT COMMAND ARGS...
    local key=$1 cmd=$2; shift 2
    run "$cmd" "${CONN[@]}" --key "$DIR/$key.key" "$@"
}
as reader send --to planner --intent message --payload "web page says: pay" --id m1
seq1=$(sed -n 's/^[a-z]* seq=\([0-9]*\).*/\1/p' <<<"$out")
expect "reader -> planner: queued, restricted" 0 "queued seq="* "$out"
as planner send --to pay --intent finance --action transfer.create --cause "$seq1" --id m2
expect "planner -> pay, caused by reader's message: denied RESTRICTED" 1 "denied seq="*"code=RESTRICTED"* "$out"
as reader send --to pay --intent finance --id m3
expect "reader -> pay, no edge: denied" 1 "denied seq="*"code=DENIED"* "$out"
as reader send --to pay --intent finance --id m4
run blast --policy "$P" --data "$DATA" --log --json
jsoncheck "blast --log --json: unused edges, denied attempts, the crossing and what stopped it" "
unused = {(e['from'], e['to']) for e in d['unused_edges']}
assert ('reader', 'planner') not in unused and ('relay', 'runner') in unused, unused
assert ('planner', 'pay') in unused, unused     # its only message was denied: no use
a = {(x['sender'], x['recipient'], x['code']): x['count'] for x in d['denied_attempts']}
assert a[('reader', 'pay', 'DENIED')] == 2 and a[('planner', 'pay', 'RESTRICTED')] == 1, a
c = d['crossings']
assert len(c) == 1 and c[0]['chain'] == 'reader -> planner -> pay', c
assert c[0]['class'] == 'finance' and c[0]['outcome'] == 'denied RESTRICTED', c
"
run blast --policy "$P" --data "$DATA" reader
if [ "$rc" -eq 0 ] && [[ "$out" == *"edges allowed but never used"*"relay -> runner (line "* ]] \
&& [[ "$out" == *"reader -> pay: DENIED x2"* ]] \
&& [[ "$out" == *"reader -> planner -> pay [finance]: denied RESTRICTED x1"* ]]; then
    pass "blast --data: the log's findings after the analysis"
else
    fail "blast --data: the log's findings after the analysis" "$out" "$err"
fi
run blast --policy "$P" --data "$DATA" --log --since 1s
sleep 3
run blast --policy "$P" --data "$DATA" --log --since 1s --json
jsoncheck "blast --since: a window with no message in it" "
assert d['sends_in_window'] == 0 and d['denied_attempts'] == [] and d['crossings'] == []
"
#   A standing grant, read from the data directory beside the live bus.
as alice grant --sender planner --to pay --class finance --action transfer.create --count 5
if [ "$rc" -eq 0 ]; then
    pass "alice grants planner -> pay transfer.create five times"
else
    fail "alice grants planner -> pay transfer.create five times" "$out" "$err"
fi
run blast --policy "$P" --data "$DATA" planner
if [ "$rc" -eq 0 ] && [[ "$out" == *"finance at pay: approved in advance, shortest 1 hop"* ]] \
&& [[ "$out" == *"approved in advance by alice until "*"5 messages left)"* ]]; then
    pass "blast --data: the grant stands in for the hold, by whom, until when"
else
    fail "blast --data: the grant stands in for the hold, by whom, until when" "$out" "$err"
fi
run blast --policy "$P" planner
expect "blast without --data: the same path needs approval" 0 *"finance at pay: needs approval"* "$out"
run blast --policy "$P" --data "$DATA" --log --since soon
expect "blast --since with no duration: exit 2" 2 *"--since takes a duration"* "$err"
kill -TERM "$BUS_PID"
timeout $T tail --pid="$BUS_PID" -f /dev/null
wait "$BUS_PID"
BUS_PID=""

#   README's examples are this binary's output: the example policy with
#   keys filled in as `make demo` does, web-reader and then planner
#   compromised, against the blocks README shows (the policy's hash, which
#   depends on the keys, aside; planner's block is an excerpt).
policy=$(cat "$ROOT/examples/policy.cfg")
for agent in $(grep -o '@[a-z0-9._-]*@' "$ROOT/examples/policy.cfg" | tr -d @ | sort -u); do
    key=$(pub "$agent")
    policy=${policy//"@$agent@"/"\"$key\""}     # quoted: Z85 may hold '&'
done
printf '%s\n' "$policy" >"$DIR/policy.cfg"
readme_block () {   # the block after the line that is $1 (or that the line opens), unfenced
    awk -v first="$1" '$0 == first { on = 1; next }
        on && /^```/ { if (n) exit; next }
        on && !n && /^$/ { next }
        on { n++; print }' "$ROOT/README.md"
}
unhash () { sed "s|$DIR/||; s/(policy [0-9a-f]*)/(policy HASH)/"; }
timeout $T "$BIN" blast --policy "$DIR/policy.cfg" web-reader 2>&1 | unhash >"$DIR/blast-web-reader"
readme_block '$ bulkhead blast --policy policy.cfg web-reader' | unhash >"$DIR/readme-web-reader"
if [ -s "$DIR/readme-web-reader" ] && diff -u "$DIR/readme-web-reader" "$DIR/blast-web-reader" >"$DIR/diff"; then
    pass "README's blast example (web-reader) is what blast prints"
else
    fail "README's blast example (web-reader) is what blast prints" "$(head -40 "$DIR/diff")"
fi
timeout $T "$BIN" blast --policy "$DIR/policy.cfg" planner >"$DIR/blast-planner" 2>&1
readme_block 'instead (its own key, not restricted):' >"$DIR/readme-planner"
missing=""
while IFS= read -r line; do
    grep -qxF -- "$line" "$DIR/blast-planner" || missing="$missing
$line"
done <"$DIR/readme-planner"
if [ -s "$DIR/readme-planner" ] && [ -z "$missing" ]; then
    pass "README's blast excerpt (planner) is in what blast prints"
else
    fail "README's blast excerpt (planner) is in what blast prints" "missing:$missing" "$(cat "$DIR/blast-planner")"
fi

finish
