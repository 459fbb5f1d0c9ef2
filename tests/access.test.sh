#!/bin/bash
#   access.test.sh: least privilege as the operator reads it (issue 12):
#   keygen's created line and --rotate, check's warnings and --strict and
#   its keys by age, and access against a policy with known answers, then
#   against the log of a short bus run for the last-used column.
#
#   Env: BULKHEAD_BIN (the binary). Dates are relative to today (UTC), so
#   the answers are known whatever day it runs. The bus listens on ipc://
#   in a fresh temporary directory and says it is ready through a fifo;
#   every command is bounded by timeout; the bus is always stopped and the
#   directory removed. Ends with "N passed, N failed".
set -u
set -f          #   expect's patterns are arguments: no pathname expansion
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BULKHEAD_BIN:-$ROOT/build/asan/bulkhead}
T=10
unset BULKHEAD_BUS BULKHEAD_BUS_KEY BULKHEAD_KEY
umask 022

. "$ROOT/tests/lib.sh"

test_dir access

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
#   jsoncheck NAME PYTHON: runs PYTHON with the lines of the last stdout
#   parsed as `agents` (name -> object); it exits non-zero to fail.
jsoncheck () {
    local result
    result=$(/usr/bin/python3 -c "
import json, sys
agents = {}
for line in open(sys.argv[1]):
    a = json.loads(line)
    agents[a['agent']] = a
edges = {(n, e['to']): e for n, a in agents.items() for e in a['edges']}
$2
" "$DIR/out" 2>&1)
    if [ $? -eq 0 ] && [ "$rc" -eq 0 ]; then
        pass "$1"
    else
        fail "$1" "exit $rc" "$result" "stdout: $out"
    fi
}
day () { date -u -d "$1" +%F; }
TODAY=$(day today)

#   ---------------------------------------------------------------------
#   keygen

run keygen fresh --dir "$DIR"
expect "keygen: prints created = today (UTC) under the key line" 0 \
    *"    fresh"$'\n'"        key = \""*\"$'\n'"        created = $TODAY"* "$out"
for name in old soon rot nodate boss alice bob; do
    timeout $T "$BIN" keygen "$name" --dir "$DIR" >/dev/null || fail "keygen $name"
done
pub () { sed -n 's/^ *public-key = "\(.*\)"$/\1/p' "$DIR/$1.pub"; }

before=$(sha256sum "$DIR/rot.key" "$DIR/rot.pub")
run keygen rot --rotate --dir "$DIR"
mode=$(stat -c %a "$DIR/rot.next.key" 2>/dev/null)
next=$(pub rot.next)
if [ "$rc" -eq 0 ] && [ "$mode" = 600 ] && [ ${#next} -eq 40 ] && [ "$next" != "$(pub rot)" ] \
&& grep -q "^ *secret-key = " "$DIR/rot.next.key" && ! grep -q secret "$DIR/rot.next.pub"; then
    pass "keygen --rotate: a new pair as NAME.next.key (0600) and NAME.next.pub"
else
    fail "keygen --rotate: a new pair as NAME.next.key (0600) and NAME.next.pub" \
        "exit $rc, mode '$mode'" "$out" "$err"
fi
if [[ "$out" == *"next_key = \"$next\""* ]] && [[ "$out" == *"key = \"$next\""*"created = $TODAY"* ]] \
&& [[ "$out" == *"every process of rot uses the new key"*"remove next_key"*"reload"* ]]; then
    pass "keygen --rotate: prints the next_key line, then the key and created lines that end it"
else
    fail "keygen --rotate: prints the next_key line, then the key and created lines that end it" "$out"
fi
if [ "$before" = "$(sha256sum "$DIR/rot.key" "$DIR/rot.pub")" ]; then
    pass "keygen --rotate: the current key files are untouched"
else
    fail "keygen --rotate: the current key files are untouched"
fi
before=$(sha256sum "$DIR/rot.next.key" "$DIR/rot.next.pub")
run keygen rot --rotate --dir "$DIR"
expect "keygen --rotate twice: exit 1, names the file and the rotation under way" 1 \
    *"rot.next.key: already exists"*"rotation of 'rot' is under way"* "$err"
if [ "$before" = "$(sha256sum "$DIR/rot.next.key" "$DIR/rot.next.pub")" ] && [ -z "$out" ]; then
    pass "keygen --rotate twice: the next pair is unchanged, nothing printed"
else
    fail "keygen --rotate twice: the next pair is unchanged, nothing printed" "$out"
fi
rm "$DIR/rot.next.key"
cp "$DIR/rot.pub" "$DIR/half.next.pub"
run keygen half --rotate --dir "$DIR"
expect "keygen --rotate: a lone NAME.next.pub is refused too" 1 *"half.next.pub: already exists"* "$err"
if [ ! -e "$DIR/half.next.key" ]; then
    pass "keygen --rotate: ... and no secret is written beside it"
else
    fail "keygen --rotate: ... and no secret is written beside it"
fi
mv "$DIR/rot.next.pub" "$DIR/gone.pub"
run keygen rot --rotate --dir "$DIR"
next=$(pub rot.next)
#   Not through expect: a Z85 key may hold [ ] * ?, which a pattern reads
#   as a glob; quoted inside [[ ]] it is matched byte for byte.
if [ "$rc" -eq 0 ] && [[ "$out" == *"next_key = \"$next\""* ]]; then
    pass "keygen --rotate again once the next pair is gone"
else
    fail "keygen --rotate again once the next pair is gone" "exit $rc" "$out" "$err"
fi
run keygen "../evil" --rotate --dir "$DIR"
if [ "$rc" -ne 0 ] && [[ "$err" == *"not a valid agent name"* ]] && [ ! -e "$DIR/../evil.next.key" ]; then
    pass "keygen --rotate: an invalid name is refused before it becomes a path"
else
    fail "keygen --rotate: an invalid name is refused before it becomes a path" "$err"
fi

#   ---------------------------------------------------------------------
#   scopes per class: check warns for the privileged class no scope limits,
#   access shows each class's resolved scope

#   Two approvers, so that finance's holds can be released and no one key
#   approves them all (check warns of both otherwise).
approvers="    alice
        key = \"$(pub alice)\"
        role = approver
    bob
        key = \"$(pub bob)\"
        role = approver"
cat >"$DIR/c.cfg" <<EOF
agents
    old
        key = "$(pub old)"
    fresh
        key = "$(pub fresh)"
$approvers
edges
    old
        fresh = finance, deploy, message
            finance
                actions = transfer.create
                outside = hold
EOF
run check "$DIR/c.cfg"
if [ "$rc" -eq 0 ] && [[ "$err" == "$DIR/c.cfg:14: warning: edge old -> fresh carries privileged class deploy and has no scope"* ]] \
&& [[ "$err" != *finance* ]]; then
    pass "check: per class, warns for the privileged class its block does not scope"
else
    fail "check: per class, warns for the privileged class its block does not scope" "$err"
fi
printf '            deploy\n                resources = prod:*\n' >>"$DIR/c.cfg"
run check --strict "$DIR/c.cfg"
expect "check --strict: every privileged class scoped by its block: no warning" 0 *ok* "$out"
run access --policy "$DIR/c.cfg"
if [ "$rc" -eq 0 ] && [[ "$out" == *"    -> fresh  message, finance, deploy"$'\n'*"              finance; actions transfer.create; outside hold"$'\n'*"              deploy; resources prod:*; outside deny"* ]]; then
    pass "access: one line per class block, its scope resolved"
else
    fail "access: one line per class block, its scope resolved" "$out"
fi
run access --policy "$DIR/c.cfg" --json
jsoncheck "access --json: class_scopes, each resolved, with its line" "
e = edges[('old', 'fresh')]
assert e['scoped'] and e['actions'] is None, e
b = {x['class']: x for x in e['class_scopes']}
assert b['finance'] == {'class': 'finance', 'line': 15, 'actions': ['transfer.create'], 'tools': None, 'resources': None, 'outside': 'hold'}, b
assert b['deploy']['resources'] == ['prod:*'] and b['deploy']['outside'] == 'deny', b
"

#   check: a held class whose quorum no set of its approvers can meet.
#   deploy: a quorum of 2 and one agent with the role (the loader already
#   refuses a quorum over the approvers a class names); then, alice gone,
#   finance with no approver at all, and message, held only by a scope's
#   outside = hold.
cat >"$DIR/nq.cfg" <<EOF
classes
    deploy
        quorum = 2
agents
    old
        key = "$(pub old)"
    fresh
        key = "$(pub fresh)"
    alice
        key = "$(pub alice)"
        role = approver
edges
    old
        fresh = finance, deploy
            actions = transfer.create, release.*
    fresh
        old = message
            actions = note.*
            outside = hold
EOF
run check "$DIR/nq.cfg"
if [ "$rc" -eq 0 ] \
&& [[ "$err" == *"nq.cfg:2: warning: what class deploy holds can never be released: 2 approvals are needed and 1 agent may approve it (role = approver)"* ]] \
&& [[ "$err" != *"class finance holds can never"* ]] \
&& [[ "$err" != *"class message holds"* ]]; then
    pass "check: a quorum more than the agents that may approve: what it holds can only expire"
else
    fail "check: a quorum more than the agents that may approve: what it holds can only expire" "$err"
fi
sed -i '/^    alice$/,/^        role = approver$/d' "$DIR/nq.cfg"
run check "$DIR/nq.cfg"
if [ "$rc" -eq 0 ] \
&& [[ "$err" == *"nq.cfg:11: warning: what class finance holds can never be released: 1 approval is needed and 0 agents may approve it (role = approver); each held message waits its ttl (3600 s) and expires"* ]] \
&& [[ "$err" == *"nq.cfg:14: warning: what class message holds (a scope's outside = hold) can never be released"* ]]; then
    pass "check: no approver at all, for a class that holds and for a scope's outside = hold"
else
    fail "check: no approver at all, for a class that holds and for a scope's outside = hold" "$err"
fi

#   restricted = hold holds only a privileged class's restricted messages
#   (med_taint): a class that is not privileged passes them, marked, and
#   holds nothing, so no approver is missing. notes (not privileged) says
#   restricted = hold with no approver in the policy: no warning of a hold
#   that can never be released; comms (privileged, built in) does.
cat >"$DIR/rh.cfg" <<EOF
classes
    notes
        restricted = hold
    comms
        restricted = hold
agents
    old
        key = "$(pub old)"
    fresh
        key = "$(pub fresh)"
        trust = untrusted
edges
    fresh
        old = notes, comms
            actions = note.*, email.*
EOF
run check "$DIR/rh.cfg"
if [ "$rc" -eq 0 ] \
&& [[ "$err" != *"class notes holds can never"* ]] \
&& [[ "$err" == *"rh.cfg:4: warning: what class comms holds can never be released"* ]]; then
    pass "check: restricted = hold of a class that is not privileged holds nothing: no warning"
else
    fail "check: restricted = hold of a class that is not privileged holds nothing: no warning" "$err"
fi

#   The hold stage never counts a sender's own vote: deploy (quorum 2,
#   alice and bob may approve) sent by alice has one approver left, so what
#   it holds from alice can only expire; finance (quorum 1) from alice has
#   bob, and is fine.
cat >"$DIR/own.cfg" <<EOF
classes
    deploy
        quorum = 2
agents
    fresh
        key = "$(pub fresh)"
$approvers
edges
    alice
        fresh = deploy, finance
            actions = release.*, transfer.create
EOF
run check "$DIR/own.cfg"
if [ "$rc" -eq 0 ] \
&& [[ "$err" == *"own.cfg:15: warning: what class deploy holds from alice can never be released: 2 approvals are needed, alice may not approve its own messages and 1 other agent may approve it"* ]] \
&& [[ "$err" != *"class finance holds"* ]]; then
    pass "check: an approver that sends a held class has one approver fewer for its own"
else
    fail "check: an approver that sends a held class has one approver fewer for its own" "$err"
fi

#   ---------------------------------------------------------------------
#   check: warnings, --strict, keys by age

#   Line numbers matter: old is line 4, soon line 7, the edge old -> fresh
#   line 32.
cat >"$DIR/p.cfg" <<EOF
bus
    key_max_age = 365
agents
    old
        key = "$(pub old)"
        created = $(day '-400 days')
    soon
        key = "$(pub soon)"
        created = $(day '-100 days')
        expires = $(day '+5 days')
    rot
        key = "$(pub rot)"
        next_key = "$(pub rot.next)"
        created = $(day '-30 days')
        provider = anthropic
    fresh
        key = "$(pub fresh)"
        created = $TODAY
    nodate
        key = "$(pub nodate)"
        trust = untrusted
    boss
        key = "$(pub boss)"
        role = approver, agent
edges
    rot
        fresh = message
            actions = note.*
    fresh
        rot = message, query
    old
        fresh = finance
    soon
        fresh = finance, message
            actions = transfer.create, none
            resources = invoice:*
            outside = hold
    nodate
        fresh = message
EOF
P=$DIR/p.cfg

run check "$P"
expect "check: a valid policy with warnings still exits 0 and says ok" 0 \
    "$P: ok: 6 agents, 5 edges"*$'\n'"stages: "* "$out"
#   The fourth is blast's (issue 13): boss is finance's only approver.
if [ "$(grep -c ': warning: ' "$DIR/err")" -eq 4 ] && [ "$(grep -c . "$DIR/err")" -eq 4 ]; then
    pass "check: four warnings, one line each, on stderr"
else
    fail "check: four warnings, one line each, on stderr" "$err"
fi
w=$(grep "^$P:4: warning: " "$DIR/err")
if [[ "$w" == *"agent 'old' expired on $(day '-35 days')"*"key_max_age 365 days"*"35 days ago"* ]]; then
    pass "check: a key older than key_max_age: expired, names the agent, the date and why"
else
    fail "check: a key older than key_max_age: expired, names the agent, the date and why" "$err"
fi
w=$(grep "^$P:7: warning: " "$DIR/err")
if [[ "$w" == *"agent 'soon' expires on $(day '+5 days'), in 5 days"*"keygen soon --rotate"* ]]; then
    pass "check: a key expiring within 14 days: names the agent, the date, what to do"
else
    fail "check: a key expiring within 14 days: names the agent, the date, what to do" "$err"
fi
w=$(grep "^$P:32: warning: " "$DIR/err")
if [[ "$w" == *"edge old -> fresh carries privileged class finance and has no scope"* ]]; then
    pass "check: a privileged edge with no scope, at its line"
else
    fail "check: a privileged edge with no scope, at its line" "$err"
fi
if ! grep -qE "'(rot|nodate|fresh|boss)'|edge (rot|soon|fresh|nodate) " "$DIR/err"; then
    pass "check: no warning for a scoped privileged edge, an ordinary edge or a fresh key"
else
    fail "check: no warning for a scoped privileged edge, an ordinary edge or a fresh key" "$err"
fi
order=$(sed -n '/^keys, oldest first/,$p' "$DIR/out" | awk 'NR > 2 { print $1 }' | tr '\n' ' ')
if [ "$order" = "boss nodate old soon rot fresh " ]; then
    pass "check: keys by age, oldest first, those with no created date before them"
else
    fail "check: keys by age, oldest first, those with no created date before them" "'$order'" "$out"
fi
row () { grep "^$1 " "$DIR/out"; }
if [[ "$(row old)" == *" $(day '-400 days')   "*" 400  $(day '-35 days') (expired)" ]] \
&& [[ "$(row soon)" == *" 100  $(day '+5 days') (in 5 days)" ]] \
&& [[ "$(row fresh)" == *" $TODAY "*" 0  $(day '+365 days')" ]] \
&& [[ "$(row nodate)" == *" -  "*" -  never" ]] \
&& [[ "$(row rot)" == *" 30  $(day '+335 days')  next_key "????????????????* ]]; then
    pass "check: each key's created, age in days, expiry, and next_key during a rotation"
else
    fail "check: each key's created, age in days, expiry, and next_key during a rotation" "$out"
fi

run check "$P" --strict
if [ "$rc" -eq 1 ] && [ "$(grep -c ': warning: ' "$DIR/err")" -eq 4 ] \
&& [[ "$err" == *"$P: failed: 4 warnings"*"--strict"* ]] && [[ "$out" != *": ok: "* ]]; then
    pass "check --strict: every warning is a failure, exit 1, no ok line"
else
    fail "check --strict: every warning is a failure, exit 1, no ok line" "exit $rc" "$out" "$err"
fi
cat >"$DIR/clean.cfg" <<EOF
agents
    rot
        key = "$(pub rot)"
        created = $TODAY
    fresh
        key = "$(pub fresh)"
$approvers
edges
    rot
        fresh = finance
            actions = transfer.create
EOF
run check --strict "$DIR/clean.cfg"
expect "check --strict: a policy with no warning passes" 0 "$DIR/clean.cfg: ok: 4 agents, 1 edges"* "$out"
if [ -z "$err" ]; then
    pass "check --strict: ... and says nothing on stderr"
else
    fail "check --strict: ... and says nothing on stderr" "$err"
fi
run check "$P" "$P"
expect "check with two files: exit 2, usage" 2 "usage: bulkhead check"* "$err"

#   ---------------------------------------------------------------------
#   access, from the policy alone

run access
expect "access without --policy: exit 2, usage" 2 "usage: bulkhead access"* "$err"
run access --policy "$DIR/missing.cfg"
expect "access with a missing policy: exit 1, names it" 1 *"missing.cfg"* "$err"
run access --policy "$P" --json
jsoncheck "access --json: one object per agent, every agent" "
assert sorted(agents) == ['boss', 'fresh', 'nodate', 'old', 'rot', 'soon'], sorted(agents)
assert all('last_used' not in e for e in edges.values()), 'last_used without --data'
"
jsoncheck "access --json: keys, ages, expiry, the rotation" "
old, rot, nodate, soon = agents['old'], agents['rot'], agents['nodate'], agents['soon']
assert (old['age_days'], old['expired'], old['expires']) == (400, True, '$(day '-35 days')'), old
assert (soon['age_days'], soon['expired'], soon['expires']) == (100, False, '$(day '+5 days')'), soon
assert rot['age_days'] == 30 and rot['next_key_fp'] and rot['next_key_fp'] != rot['key_fp'], rot
assert len(rot['key_fp']) == 16 and old['next_key_fp'] is None, (rot, old)
assert (nodate['created'], nodate['age_days'], nodate['expires']) == (None, None, None), nodate
"
jsoncheck "access --json: roles, trust, provider" "
assert agents['boss']['roles'] == ['agent', 'approver'], agents['boss']
assert agents['nodate']['trust'] == 'untrusted' and agents['rot']['trust'] == 'trusted'
assert agents['rot']['provider'] == 'anthropic' and agents['fresh']['provider'] is None
assert agents['boss']['edges'] == []
"
jsoncheck "access --json: every edge with its classes and scopes" "
assert sorted(edges) == [('fresh', 'rot'), ('nodate', 'fresh'), ('old', 'fresh'), ('rot', 'fresh'),
                         ('soon', 'fresh')], sorted(edges)
e = edges[('soon', 'fresh')]
assert (e['classes'], e['actions'], e['tools'], e['resources'], e['outside'], e['scoped'],
        e['privileged'], e['line']) == (['message', 'finance'], ['transfer.create', 'none'], None,
        ['invoice:*'], 'hold', True, True, 34), e
e = edges[('old', 'fresh')]
assert (e['classes'], e['scoped'], e['privileged'], e['actions']) == (['finance'], False, True, None), e
e = edges[('rot', 'fresh')]
assert (e['actions'], e['outside'], e['privileged']) == (['note.*'], 'deny', False), e
assert edges[('fresh', 'rot')]['classes'] == ['message', 'query']
"
run access --policy "$P"
if [ "$rc" -eq 0 ] && [[ "$out" == "$P: 6 agents, 5 edges, hash "* ]] \
&& [[ "$out" == *$'\nsoon\n'*"    -> fresh  message, finance; actions transfer.create, none; resources invoice:*; outside hold" ]] \
&& [[ "$out" == *$'\nold\n'*"expires $(day '-35 days') by bus.key_max_age (expired 35 days ago: refused)"*"    -> fresh  finance; no scope"$'\n'* ]] \
&& [[ "$out" == *$'\nrot\n'*"    next_key  "*"rotation under way"*"provider  anthropic"* ]] \
&& [[ "$out" == *$'\nboss\n'*"roles     agent, approver"*"no edges from it"* ]] \
&& [[ "$out" != *"last used"* ]]; then
    pass "access: the same as text, one block per agent, one line per edge"
else
    fail "access: the same as text, one block per agent, one line per edge" "exit $rc" "$out"
fi

#   ---------------------------------------------------------------------
#   access --data: when each edge and key was last used

#   Not $DIR/data: $DIR/data/bus.pub would be 40 characters, which
#   --bus-key takes for a Z85 key rather than a path (bus_keys_public).
DATA=$DIR/bus-data
EP=ipc://$DIR/bus.sock
mkfifo "$DIR/ready"
start=$(date -u +%s)
"$BIN" serve --policy "$P" --data "$DATA" --endpoint "$EP" --ready-fd 3 \
    3>"$DIR/ready" 2>"$DIR/bus.log" &
BUS_PID=$!
ready=$(timeout $T head -1 "$DIR/ready")
if [ "$ready" != "ready $EP" ]; then
    fail "serve: the bus starts with the access policy" "got '$ready'" "$(tail -5 "$DIR/bus.log")"
    finish
fi
CONN=(--bus "$EP" --bus-key "$DATA/bus.pub")
as () {     # as KEYFILE COMMAND ARGS...
    local key=$1 cmd=$2; shift 2
    run "$cmd" "${CONN[@]}" --key "$DIR/$key.key" "$@"
}
as rot.next send --to fresh --intent message --action note.add --payload "n1" --id r1
expect "rot's next key sends along its scoped edge: queued" 0 "queued seq="* "$out"
as rot send --to fresh --intent message --payload "no action" --id r2
expect "rot's current key, outside the scope: denied SCOPE (not a use of the edge)" 1 \
    "denied seq="*"code=SCOPE"* "$out"
as soon send --to fresh --intent finance --action transfer.create --resource invoice:7 --id s1
expect "soon's finance message in scope: held (a use of the edge)" 0 "held seq="* "$out"
as fresh send --to rot --intent deploy --id f1
expect "fresh -> rot with a class the edge lacks: denied (not a use)" 1 "denied seq="* "$out"
as old send --to fresh --intent finance --timeout 1500 --id o1
if [ "$rc" -ne 0 ] && [[ "$out" != *"seq="* ]]; then
    pass "old's expired key is refused: nothing sent"
else
    fail "old's expired key is refused: nothing sent" "exit $rc" "$out" "$err"
fi
end=$(date -u +%s)

run access --policy "$P" --data "$DATA" --json
jsoncheck "access --data --json: the last use of each edge, null for never" "
import calendar, time
def t(s):
    return calendar.timegm(time.strptime(s, '%Y-%m-%dT%H:%M:%SZ'))
used = {k: e['last_used'] for k, e in edges.items()}
for k in [('rot', 'fresh'), ('soon', 'fresh')]:
    assert used[k] and $start <= t(used[k]) <= $end, (k, used[k])
for k in [('fresh', 'rot'), ('old', 'fresh'), ('nodate', 'fresh')]:
    assert used[k] is None, (k, used[k])
"
jsoncheck "access --data --json: which key of a rotation was used" "
import calendar, time
rot = agents['rot']
assert rot['key_last_used'] and rot['next_key_last_used'], rot
assert agents['old']['key_last_used'] is None and agents['nodate']['key_last_used'] is None
assert 'next_key_last_used' not in agents['old']
"
run access --policy "$P" --data "$DATA"
if [ "$rc" -eq 0 ] && [[ "$out" == "$P: 6 agents, 5 edges, hash "*"; log $DATA: "*" records"* ]] \
&& [[ "$out" == *$'\nrot\n'*"    -> fresh  message; actions note.*; outside deny; last used $(day today)T"* ]] \
&& [[ "$out" == *$'\nfresh\n'*"    -> rot  message, query; no scope; last used never"$'\n'* ]] \
&& [[ "$out" == *$'\nold\n'*"; last used never"$'\n'*"    -> fresh  finance; no scope; last used never"* ]]; then
    pass "access --data: last used per edge and key as text, never for an edge never used"
else
    fail "access --data: last used per edge and key as text, never for an edge never used" "$out"
fi
run access --policy "$P" --data "$DIR/nowhere"
expect "access --data on a directory with no log: exit 1, names it" 1 *"nowhere"* "$err"

kill -TERM "$BUS_PID"
timeout $T tail --pid="$BUS_PID" -f /dev/null
wait "$BUS_PID"
bus_rc=$?
BUS_PID=""
if [ $bus_rc -eq 0 ] && ! grep -q 'Sanitizer' "$DIR/bus.log"; then
    pass "serve: stops cleanly"
else
    fail "serve: stops cleanly" "exit $bus_rc" "$(tail -20 "$DIR/bus.log")"
fi
run access --policy "$P" --data "$DATA" --json
jsoncheck "access --data after the bus stopped: the same answers" "
assert edges[('rot', 'fresh')]['last_used'] and edges[('fresh', 'rot')]['last_used'] is None
"
finish
