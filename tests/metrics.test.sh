#!/bin/bash
#   metrics.test.sh: `serve --metrics` while traffic flows, checked by
#   Prometheus's own `promtool check metrics`; the example alerting rules
#   checked by `promtool check rules`; the Grafana dashboard is JSON that
#   names only series the bus serves; loopback only unless --metrics-public.
#
#   Env: BULKHEAD_BIN (the binary). The bus listens on ipc:// in a fresh
#   temporary directory; metrics on 127.0.0.1 port 0 (the kernel picks a
#   free one, read from the bus's BUS-METRICS line), so parallel runs do
#   not collide. Every command is bounded by timeout. Ends with
#   "N passed, N failed".
set -u
set -f
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BULKHEAD_BIN:-$ROOT/build/asan/bulkhead}
T=10
unset BULKHEAD_BUS BULKHEAD_BUS_KEY BULKHEAD_KEY
umask 022

. "$ROOT/tests/lib.sh"

test_dir metrics

if ! command -v promtool >/dev/null || ! command -v curl >/dev/null; then
    fail "promtool and curl are installed (scripts/install-deps)"
    finish
fi

for name in planner worker payments alice ops; do
    timeout $T "$BIN" keygen "$name" --dir "$DIR" >/dev/null || fail "keygen $name"
done
pub () { sed -n 's/^ *public-key = "\(.*\)"$/\1/p' "$DIR/$1.pub"; }
{
    printf 'classes\n    finance\n        approvers = alice\n'
    printf 'agents\n'
    for name in planner worker payments; do
        printf '    %s\n        key = "%s"\n' "$name" "$(pub $name)"
    done
    printf '    alice\n        key = "%s"\n        role = approver\n' "$(pub alice)"
    printf '    ops\n        key = "%s"\n        role = operator\n' "$(pub ops)"
    printf 'edges\n    planner\n        worker = message\n        payments = finance\n'
} >"$DIR/policy.cfg"
DATA=$DIR/data
EP=ipc://$DIR/bus.sock
CONN=(--bus "$EP" --bus-key "$DATA/bus.pub")
mkfifo "$DIR/ready"

run () {
    timeout $T "$BIN" "$@" >"$DIR/out" 2>"$DIR/err"
    rc=$?
    out=$(cat "$DIR/out")
    err=$(cat "$DIR/err")
}
as () {
    local who=$1 cmd=$2; shift 2
    run "$cmd" "${CONN[@]}" --key "$DIR/$who.key" "$@"
}

#   Loopback only, unless said otherwise.
run serve --policy "$DIR/policy.cfg" --data "$DIR/refused" --endpoint "ipc://$DIR/r.sock" \
    --metrics 0.0.0.0:0
if [ "$rc" -ne 0 ] && [[ "$err" == *"not a loopback address"*"--metrics-public"* ]]; then
    pass "--metrics 0.0.0.0 is refused without --metrics-public, saying why"
else
    fail "--metrics 0.0.0.0 is refused without --metrics-public" "exit $rc" "$err"
fi
run serve --policy "$DIR/policy.cfg" --data "$DIR/refused" --endpoint "ipc://$DIR/r.sock" \
    --metrics 127.0.0.1:99999
if [ "$rc" -ne 0 ] && [[ "$err" == *"not a port"* ]]; then
    pass "--metrics with a bad port is refused"
else
    fail "--metrics with a bad port is refused" "exit $rc" "$err"
fi

"$BIN" serve --policy "$DIR/policy.cfg" --data "$DATA" --endpoint "$EP" --ready-fd 3 \
    --metrics 127.0.0.1:0 3>"$DIR/ready" 2>>"$DIR/bus.log" &
BUS_PID=$!
ready=$(timeout $T head -1 "$DIR/ready")
if [ "$ready" != "ready $EP" ]; then
    fail "serve --metrics starts" "got '$ready'" "$(tail -5 "$DIR/bus.log")"
    finish
fi
PORT=$(sed -n 's/.*BUS-METRICS .*port=\([0-9]*\).*/\1/p' "$DIR/bus.log" | head -1)
if [ -n "$PORT" ] && [ "$PORT" -gt 0 ]; then
    pass "the bus says where metrics are (port $PORT)"
else
    fail "the bus says where metrics are" "$(cat "$DIR/bus.log")"
    finish
fi
URL=http://127.0.0.1:$PORT/metrics

#   Traffic in the background while we scrape: delivered, denied, held.
(
    for i in $(seq 1 40); do
        timeout $T "$BIN" send "${CONN[@]}" --key "$DIR/planner.key" --to worker \
            --intent message --payload "m $i" >/dev/null 2>&1
    done
) &
AGENT_PID=$!
as planner send --to payments --intent finance --payload "pay 1"
as planner send --to payments --intent deploy --payload "nope"
as worker send --to planner --intent message --payload "no edge"

scrapes=0
for i in $(seq 1 20); do
    if timeout $T curl -fsS "$URL" -o "$DIR/scrape.$i"; then
        scrapes=$((scrapes + 1))
    fi
    sleep 0.2
done
wait "$AGENT_PID"
AGENT_PID=""
sleep 1.2                               #   the page is rendered once a second
timeout $T curl -fsS -D "$DIR/headers" "$URL" -o "$DIR/scrape" && scrapes=$((scrapes + 1))
if [ "$scrapes" -eq 21 ]; then
    pass "21 scrapes during and after traffic all answered"
else
    fail "every scrape answered" "$scrapes of 21"
fi
if grep -qi '^content-type: text/plain; version=0.0.4' "$DIR/headers"; then
    pass "served as Prometheus text format 0.0.4"
else
    fail "served as Prometheus text format 0.0.4" "$(cat "$DIR/headers")"
fi
bad=0
for f in $(seq -f "$DIR/scrape.%g" 1 20) "$DIR/scrape"; do
    if ! promtool check metrics <"$f" >"$DIR/promtool.out" 2>&1; then
        bad=$((bad + 1))
        cp "$DIR/promtool.out" "$DIR/promtool.bad"
    fi
done
if [ "$bad" -eq 0 ]; then
    pass "promtool check metrics: every scrape is valid and follows the naming rules"
else
    fail "promtool check metrics" "$bad scrapes bad" "$(cat "$DIR/promtool.bad")"
fi
page=$(cat "$DIR/scrape")
check () {
    if grep -qE "$2" "$DIR/scrape"; then
        pass "$1"
    else
        fail "$1" "no line matching: $2" "$(head -40 "$DIR/scrape")"
    fi
}
check "messages by sender, recipient, class, verdict" \
    '^bulkhead_messages_total\{sender="planner",recipient="worker",class="message",verdict="delivered"\} 40$'
check "a held message counted" \
    '^bulkhead_messages_total\{sender="planner",recipient="payments",class="finance",verdict="held"\} 1$'
check "denied counted" 'verdict="denied"\} [1-9]'
check "a send along no edge: the recipient is other, so no agent can mint series" \
    '^bulkhead_messages_total\{sender="worker",recipient="other",class="message",verdict="denied"\} 1$'
if grep -q 'sender="worker",recipient="planner"' "$DIR/scrape"; then
    fail "no series for a recipient the sender has no edge to" "$(grep 'sender="worker"' "$DIR/scrape")"
else
    pass "no series for a recipient the sender has no edge to"
fi
check "holds waiting" '^bulkhead_holds_waiting 1$'
check "alerts by kind" '^bulkhead_alerts_opened_total\{kind="loop"\} 0$'
check "commit latency histogram" '^bulkhead_commit_duration_seconds_bucket\{le="\+Inf"\} [1-9]'
check "log size" '^bulkhead_log_bytes [1-9]'
check "log records" '^bulkhead_log_records [1-9]'
check "sessions online gauge" '^bulkhead_sessions_online [0-9]+$'
check "the series cap's counter" '^bulkhead_metrics_series_dropped_total 0$'

#   Only GET /metrics.
code=$(timeout $T curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/other")
[ "$code" = 404 ] && pass "other paths: 404" || fail "other paths: 404" "got $code"
code=$(timeout $T curl -s -o /dev/null -w '%{http_code}' -X POST -d x "$URL")
[ "$code" = 405 ] && pass "POST: 405" || fail "POST: 405" "got $code"
#   DNS rebinding: a page whose name now points at 127.0.0.1 sends its own
#   name as Host; only loopback names are served.
code=$(timeout $T curl -s -o /dev/null -w '%{http_code}' -H "Host: evil.example:$PORT" "$URL")
[ "$code" = 403 ] && pass "a Host that is not loopback: 403" || fail "a Host that is not loopback: 403" "got $code"
code=$(timeout $T curl -s -o /dev/null -w '%{http_code}' -H "Host: localhost:$PORT" "$URL")
[ "$code" = 200 ] && pass "Host localhost: served" || fail "Host localhost: served" "got $code"

kill -TERM "$BUS_PID"
timeout $T tail --pid="$BUS_PID" -f /dev/null
wait "$BUS_PID"
BUS_PID=""

#   The examples: alerting rules and a dashboard over these series.
if promtool check rules "$ROOT/examples/prometheus/bulkhead.rules.yml" >"$DIR/rules.out" 2>&1; then
    pass "promtool check rules: examples/prometheus/bulkhead.rules.yml"
else
    fail "promtool check rules" "$(cat "$DIR/rules.out")"
fi
dash=$ROOT/examples/prometheus/grafana-dashboard.json
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
if "$PY" - "$dash" "$DIR/scrape" <<'PYEOF'
import json, re, sys
d = json.load(open(sys.argv[1]))
served = set(re.findall(r'^# TYPE (\S+)', open(sys.argv[2]).read(), re.M))
used = set()
for panel in d["panels"]:
    for target in panel.get("targets", []):
        for name in re.findall(r'bulkhead_[a-z_]+', target["expr"]):
            used.add(re.sub(r'_(bucket|sum|count)$', '', name))
missing = used - served
if missing or not used:
    print("dashboard uses series the bus does not serve:", sorted(missing))
    sys.exit(1)
PYEOF
then
    pass "the Grafana dashboard is JSON and uses only served series"
else
    fail "the Grafana dashboard is JSON and uses only served series"
fi
finish
