#!/bin/bash
#   console.test.sh: `bulkhead console` against the real bus, in a real
#   browser (tests/console_browser.py: Debian's chromium, headless, through
#   /usr/bin/chromedriver and python3-selenium; nothing is downloaded), and
#   what it refuses over plain HTTP (curl): no token, a wrong token, a wrong
#   Host, a state change without the token header or not JSON, a listen
#   address that is not loopback. Then the notify hook, of the console and
#   of `pending --follow`: one JSON object per new hold, batched.
#
#   Env: BULKHEAD_BIN, BULKHEAD_BUILD (screenshots go to
#   BUILD/console-desktop.png and BUILD/console-phone.png). The bus listens
#   on ipc:// in a fresh temporary directory and says it is ready through a
#   fifo; the console listens on 127.0.0.1, a port the kernel picks (port 0),
#   so parallel runs cannot collide. Every command is bounded by timeout,
#   the whole test by 90 s. Ends with "N passed, N failed".
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BULKHEAD_BIN:-$ROOT/build/asan/bulkhead}
BUILD=${BULKHEAD_BUILD:-$(dirname "$BIN")}
T=10
unset BULKHEAD_BUS BULKHEAD_BUS_KEY BULKHEAD_KEY
umask 022

. "$ROOT/tests/lib.sh"

PY=/usr/bin/python3
if ! [ -x /usr/bin/chromium ] || ! [ -x /usr/bin/chromedriver ] || ! "$PY" -c 'import selenium' 2>/dev/null; then
    fail "chromium, chromium-driver and python3-selenium" "scripts/install-deps test installs them"
    finish
fi
test_dir console
CONSOLE_PID=""
FOLLOW_PID=""
stop_all () {
    for pid in $CONSOLE_PID $FOLLOW_PID; do
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    cleanup
}
trap stop_all EXIT
#   The whole test in 90 s, whatever hangs (about 35 s on an idle 2-core
#   machine, 45 s under ASan; CONSOLE_TEST_LIMIT=S for a crowded one).
LIMIT=${CONSOLE_TEST_LIMIT:-90}
( sleep "$LIMIT" && echo "FAIL the whole test ran past $LIMIT s" && kill -TERM $$ ) 2>/dev/null &
WATCHDOG=$!
trap 'pkill -P $WATCHDOG sleep 2>/dev/null; kill $WATCHDOG 2>/dev/null; stop_all' EXIT

keygens=""
for name in planner helper payments bank alice bob carol; do
    timeout $T "$BIN" keygen "$name" --dir "$DIR" >/dev/null &
    keygens="$keygens $!"
done
for pid in $keygens; do wait "$pid"; done
for name in planner helper payments bank alice bob carol; do
    [ -f "$DIR/$name.pub" ] || { fail "keygen $name"; finish; }
done
pub () { sed -n 's/^ *public-key = "\(.*\)"$/\1/p' "$DIR/$1.pub"; }
cat >"$DIR/policy.cfg" <<EOF
classes
    finance
        approvers = alice, bob, carol
        restricted = hold
agents
    planner
        key = "$(pub planner)"
    helper
        key = "$(pub helper)"
        trust = untrusted
    payments
        key = "$(pub payments)"
        class = finance
    bank
        key = "$(pub bank)"
        class = finance
    alice
        key = "$(pub alice)"
        role = agent, approver
    bob
        key = "$(pub bob)"
        role = approver
    carol
        key = "$(pub carol)"
        role = approver
edges
    helper
        planner = message
    planner
        payments = finance
        bank = finance
    alice
        payments = finance
        planner = message
    payments
        planner = message
EOF

DATA=$DIR/data
EP=ipc://$DIR/bus.sock
mkfifo "$DIR/ready"
"$BIN" serve --policy "$DIR/policy.cfg" --data "$DATA" --endpoint "$EP" --ready-fd 3 \
    3>"$DIR/ready" 2>"$DIR/bus.log" &
BUS_PID=$!
if [ "$(timeout $T head -1 "$DIR/ready")" != "ready $EP" ]; then
    fail "the bus starts" "$(tail -5 "$DIR/bus.log")"
    finish
fi
CONN="--bus $EP --bus-key $DATA/bus.pub"

#   Before the console runs (a command with its key would take its notices
#   over): alice's own payment, and a message of hers that will be a cause.
line=$(timeout $T "$BIN" send $CONN --key "$DIR/alice.key" --to payments --intent finance \
       --payload mine --justification "alice pays herself")
ALICE_OWN=$(echo "$line" | sed -n 's/.*approval=\(h-[0-9a-f]*\).*/\1/p')
line=$(timeout $T "$BIN" send $CONN --key "$DIR/alice.key" --to planner --intent message \
       --payload "please pay the consultant")
ALICE_CAUSE=$(echo "$line" | sed -n 's/.*seq=\([0-9]*\) .*/\1/p')
if [ -n "$ALICE_OWN" ] && [ -n "$ALICE_CAUSE" ]; then
    pass "alice's own hold and her message"
else
    fail "alice's own hold and her message" "$line"
fi

#   ---------------------------------------------------------------------
#   the console starts, and refuses what it must

timeout $T "$BIN" console $CONN --key "$DIR/alice.key" --listen 10.1.2.3:0 >"$DIR/out" 2>"$DIR/err"
if [ $? -eq 2 ] && grep -q "not a loopback address" "$DIR/err"; then
    pass "console: a listen address that is not loopback is refused"
else
    fail "console: a listen address that is not loopback is refused" "$(cat "$DIR/err")"
fi

"$BIN" console $CONN --key "$DIR/alice.key" --listen 127.0.0.1:0 --policy "$DIR/policy.cfg" \
    --notify "cat >>'$DIR/console-notified'; echo run >>'$DIR/console-runs'" --notify-interval 1 \
    >"$DIR/console.out" 2>"$DIR/console.err" &
CONSOLE_PID=$!
URL=""
for _ in $(seq 100); do
    URL=$(sed -n 's/^ *\(http:\/\/127\.0\.0\.1:[0-9]*\/?token=[0-9a-f]*\)$/\1/p' "$DIR/console.out")
    [ -n "$URL" ] && break
    sleep 0.1
done
if [ -n "$URL" ]; then
    pass "console: prints a loopback URL with a token"
else
    fail "console: prints a loopback URL with a token" "$(cat "$DIR/console.out" "$DIR/console.err")"
    finish
fi
BASE=${URL%%/?token=*}
TOKEN=${URL#*token=}
HOSTPORT=${BASE#http://}

#   What approving unlocks, from the blast-radius analysis of --policy:
#   payments, once it has the payment, may steer planner into a payment
#   to the bank (finance to bank, two hops, an approver in the way).
curl -s -N -m 3 "$BASE/events?token=$TOKEN" >"$DIR/events" 2>/dev/null
if grep -q '"unlocks": *\["finance to bank (needs approval, 2 hops)"\]' "$DIR/events"; then
    pass "console --policy: each hold says what approving unlocks (the recipient's reach)"
else
    fail "console --policy: each hold says what approving unlocks" "$(grep -o "\"unlocks\":[^]]*]" "$DIR/events" | head -3)"
fi

#   status METHOD URL [curl args...]: the HTTP status, headers in $DIR/headers.
status () {
    local method=$1 url=$2
    shift 2
    curl -s -m $T -o "$DIR/body" -D "$DIR/headers" -w '%{http_code}' -X "$method" "$@" "$url"
}
expect_status () {   # NAME WANT GOT
    if [ "$3" = "$2" ]; then pass "$1"; else fail "$1" "status $3, want $2" "$(cat "$DIR/body")"; fi
}

got=$(status GET "$BASE/")
expect_status "no token: refused" 403 "$got"
got=$(status GET "$BASE/?token=${TOKEN%?}0")
[ "${TOKEN: -1}" = 0 ] && got=$(status GET "$BASE/?token=${TOKEN%?}1")
expect_status "a wrong token: refused" 403 "$got"
got=$(status GET "$BASE/events")
expect_status "the event stream without the token: refused" 403 "$got"
got=$(status GET "$URL" -H "Host: evil.example:${HOSTPORT#*:}")
expect_status "a wrong Host (DNS rebinding): refused" 403 "$got"
got=$(status POST "$BASE/api/approve?token=$TOKEN" -H 'Content-Type: application/json' -d '{"id":"h-1","digest":"00"}')
expect_status "a state change with the token only in the URL: refused" 403 "$got"
got=$(status POST "$BASE/api/deny" -H "X-Bulkhead-Token: x$TOKEN" -H 'Content-Type: application/json' -d '{"id":"h-1","reason":"r"}')
expect_status "a state change with a wrong token header: refused" 403 "$got"
got=$(status POST "$BASE/api/deny" -H "X-Bulkhead-Token: $TOKEN" -H 'Content-Type: text/plain' -d '{"id":"h-1","reason":"r"}')
expect_status "a state change that is not JSON (a form post): refused" 415 "$got"
got=$(status POST "$BASE/api/deny" -H "X-Bulkhead-Token: $TOKEN" -H 'Content-Type: application/json' -d '{"id":"h-nope","reason":"r"}')
expect_status "a deny of a hold the console does not show: refused" 409 "$got"

got=$(status GET "$URL")
csp=$(grep -i '^Content-Security-Policy:' "$DIR/headers")
if [ "$got" = 200 ] && [[ "$csp" == *"default-src 'none'"*"script-src 'sha256-"*"style-src 'sha256-"*"frame-ancestors 'none'"* ]] \
   && [[ "$csp" != *unsafe* ]] && grep -qi '^X-Frame-Options: DENY' "$DIR/headers" \
   && grep -qi '^Cache-Control: no-store' "$DIR/headers" && grep -qi '^Referrer-Policy: no-referrer' "$DIR/headers"; then
    pass "the page: strict CSP (hashes, nothing inline unhashed, nothing external), no framing, no caching"
else
    fail "the page: strict CSP, no framing, no caching" "status $got" "$(cat "$DIR/headers")"
fi
if ! grep -qE '(src|href)="(https?:)?//' "$DIR/body"; then
    pass "the page loads nothing from outside"
else
    fail "the page loads nothing from outside" "$(grep -oE '(src|href)="[^"]*"' "$DIR/body")"
fi
got=$(status GET "$BASE/api/hold?id=h-1&token=$TOKEN")
if [ "$got" = 404 ] && grep -qi '^Cache-Control: no-store' "$DIR/headers"; then
    pass "the API: not cached"
else
    fail "the API: not cached" "status $got" "$(cat "$DIR/headers")"
fi

#   Slow clients cannot hold the console's connections: 40 connections
#   without the token whose headers never end (a byte every half second, so
#   never idle). The page with the token still loads at once; each of the
#   40 is closed, the oldest as soon as more than 16 wait, the rest when
#   their 5 s for a whole request are up.
timeout 20 "$PY" - "$HOSTPORT" "${URL#http://$HOSTPORT}" >"$DIR/slow.out" 2>&1 <<'PYEOF'
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
path = sys.argv[2]
slow, closed = [], {}
t0 = time.monotonic()
for i in range(40):
    s = socket.create_connection((host, int(port)), timeout=2)
    s.sendall(b"GET / HTTP/1.1\r\nHost: " + sys.argv[1].encode() + b"\r\nX-Slow: ")
    s.setblocking(False)
    slow.append(s)
def sweep():
    now = time.monotonic() - t0
    for i, s in enumerate(slow):
        if i in closed:
            continue
        try:
            s.send(b"a")
            if s.recv(4096) == b"":
                closed[i] = now
        except BlockingIOError:
            pass
        except OSError:
            closed[i] = now
time.sleep(0.3)
sweep()
before = len(closed)
t = time.monotonic()
page = socket.create_connection((host, int(port)), timeout=3)
page.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (path, sys.argv[1])).encode())
answer = b""
try:
    while True:
        chunk = page.recv(65536)
        if not chunk:
            break
        answer += chunk
except OSError as e:
    print("page error", e)
print("page", answer[:12].decode(errors="replace").split(" ")[-1] if answer else "none",
      "in %d ms" % ((time.monotonic() - t) * 1000))
while len(closed) < len(slow) and time.monotonic() - t0 < 9:
    sweep()
    time.sleep(0.5)
print("closed before the page", before)
print("closed by 9 s", len(closed), "last at %.1f s" % max(closed.values(), default=0))
PYEOF
page=$(sed -n 's/^page \([0-9]*\) in \([0-9]*\) ms$/\1 \2/p' "$DIR/slow.out")
if [ "${page% *}" = 200 ] && [ "${page#* }" -lt 3000 ] && grep -q "^closed before the page 24$" "$DIR/slow.out" \
   && grep -q "^closed by 9 s 40 " "$DIR/slow.out"; then
    pass "slow clients: 40 endless headers without the token do not block the page; all closed ($(sed -n 's/^closed by 9 s 40 //p' "$DIR/slow.out"))"
else
    fail "slow clients: 40 endless headers without the token do not block the page" "$(cat "$DIR/slow.out")"
fi
sleep 1.2
if grep -q "closed [0-9]* HTTP connections so far: .* sent no whole request within 5 s, .* were the oldest of more than 16 without the token" "$DIR/console.err"; then
    pass "slow clients: the console says what it closed, and why"
else
    fail "slow clients: the console says what it closed" "$(tail -3 "$DIR/console.err")"
fi

#   ---------------------------------------------------------------------
#   pending --follow with the notify hook, as bob

"$BIN" pending --follow $CONN --key "$DIR/bob.key" \
    --notify "cat >>'$DIR/follow-notified'; echo run >>'$DIR/follow-runs'" --notify-interval 2 \
    >"$DIR/follow.out" 2>"$DIR/follow.err" &
FOLLOW_PID=$!
for _ in $(seq 100); do
    grep -q "wait.* for bob" "$DIR/follow.out" 2>/dev/null && break
    sleep 0.1
done

#   ---------------------------------------------------------------------
#   the browser

mkdir -p "$BUILD"
CONSOLE_URL=$URL BIN=$BIN AGENT=$BUILD/examples/agent CONN=$CONN DIR=$DIR SHOTS=$BUILD \
    ALICE_OWN=$ALICE_OWN ALICE_CAUSE=$ALICE_CAUSE \
    timeout 45 "$PY" "$ROOT/tests/console_browser.py" >"$DIR/browser.out" 2>&1
browser_rc=$?
while IFS= read -r line; do
    case "$line" in
        "ok   "*) pass "browser: ${line#ok   }" ;;
        "FAIL "*) fail "browser: ${line#FAIL }" ;;
        "     "*) echo "$line" ;;
    esac
done <"$DIR/browser.out"
if [ $browser_rc -ne 0 ] && ! grep -q '^FAIL ' "$DIR/browser.out"; then
    fail "browser: the script ran to its end" "exit $browser_rc" "$(tail -20 "$DIR/browser.out")"
fi
for shot in console-desktop console-phone; do
    size=$(stat -c %s "$BUILD/$shot.png" 2>/dev/null || echo 0)
    if [ "$size" -gt 10000 ]; then
        pass "screenshot $BUILD/$shot.png ($size bytes)"
    else
        fail "screenshot $BUILD/$shot.png"
    fi
done

#   ---------------------------------------------------------------------
#   notify: one JSON object per new hold, batched

#   A flood: 8 holds at once, from 8 senders' processes (planner's key).
runs_before=$(cat "$DIR/follow-runs" 2>/dev/null | wc -l)
start=$SECONDS
sends=""
for i in $(seq 8); do
    timeout $T "$BIN" send $CONN --key "$DIR/planner.key" --to payments --intent finance \
        --payload "flood $i" --justification "flood $i" >"$DIR/send-$i.out" 2>&1 &
    sends="$sends $!"
done
for pid in $sends; do wait "$pid"; done
flood_sent=$(cat "$DIR"/send-*.out | grep -c '^held ')
if [ "$flood_sent" -eq 8 ]; then
    pass "a flood of 8 holds"
else
    fail "a flood of 8 holds" "$flood_sent held" "$(cat "$DIR"/send-*.out)"
fi
sent_in=$((SECONDS - start + 1))
#   Everything told within two intervals after the last.
for _ in $(seq 60); do
    [ "$(grep -c '"justification":"flood' "$DIR/follow-notified" 2>/dev/null)" -ge "$flood_sent" ] && break
    sleep 0.1
done
floods=$(grep -c '"justification":"flood' "$DIR/follow-notified" 2>/dev/null)
runs=$(( $(cat "$DIR/follow-runs" 2>/dev/null | wc -l) - runs_before ))
#   At most one run per 2 s interval while the flood lasted, and the last.
limit=$((sent_in / 2 + 2))
if [ "$floods" -eq 8 ] && [ "$runs" -le "$limit" ] && [ "$runs" -ge 1 ]; then
    pass "pending --follow --notify: 8 holds in ${sent_in}s told in $runs runs (at most $limit), one object each"
else
    fail "pending --follow --notify: batched and rate-limited" "$floods flood objects (want 8), $runs runs (at most $limit)"
fi
if "$PY" -c '
import json, sys
for line in open(sys.argv[1]):
    o = json.loads(line)
    assert o["event"] == "pending" and o["approval_id"].startswith("h-") and o["sender"] and o["class"] == "finance"
' "$DIR/follow-notified" 2>"$DIR/json.err"; then
    pass "pending --follow --notify: each line one JSON object with the hold"
else
    fail "pending --follow --notify: each line one JSON object" "$(cat "$DIR/json.err")"
fi
if grep -q '^PENDING h-.* planner -> payments finance RESTRICTED: flood 8$' "$DIR/follow.out" \
   && grep -q '^UPDATE h-.* released' "$DIR/follow.out"; then
    pass "pending --follow: a line per new hold and per decision"
else
    fail "pending --follow: a line per new hold and per decision" "$(tail -5 "$DIR/follow.out")"
fi
cn=$(grep -c '"event":"pending"' "$DIR/console-notified" 2>/dev/null)
if [ "$cn" -ge 2 ] && grep -q '"justification":"paying invoice 42' "$DIR/console-notified"; then
    pass "console --notify: the holds it saw, one JSON object each ($cn)"
else
    fail "console --notify: the holds it saw" "$cn objects" "$(head -c 600 "$DIR/console-notified" 2>&1)"
fi

#   snapshot: the console's state as its event stream sends it first.
snapshot () {
    "$PY" -c '
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=5) as stream:
    for line in stream:
        if line.startswith(b"data: "):
            print(line.decode().strip())
            break
' "$BASE/events?token=$TOKEN" 2>/dev/null
}
#   A reason the bus refuses (a control character) is that request's
#   answer, not the bus gone.
flood_id=$(sed -n 's/.*"approval_id":"\(h-[0-9a-f]*\)".*"justification":"flood 8".*/\1/p' "$DIR/follow-notified")
got=$(status POST "$BASE/api/deny" -H "X-Bulkhead-Token: $TOKEN" -H 'Content-Type: application/json' \
      -d "{\"id\":\"$flood_id\",\"reason\":\"no\\u001b[2J\"}")
if [ "$got" = 409 ] && grep -q '"code":"REFUSED"' "$DIR/body" && grep -q 'MALFORMED' "$DIR/body" \
   && snapshot | grep -q '"bus_ok":true'; then
    pass "a reason the bus refuses: answered as refused, the console stays live"
else
    fail "a reason the bus refuses: answered as refused, the console stays live" "status $got" "$(cat "$DIR/body")"
fi

#   The bus restarts: the console opens a new session by itself and shows
#   what is held after.
kill -TERM "$BUS_PID"
wait "$BUS_PID"
"$BIN" serve --policy "$DIR/policy.cfg" --data "$DATA" --endpoint "$EP" --ready-fd 3 \
    3>"$DIR/ready" 2>>"$DIR/bus.log" &
BUS_PID=$!
timeout $T head -1 "$DIR/ready" >/dev/null
line=$(timeout $T "$BIN" send $CONN --key "$DIR/planner.key" --to payments --intent finance \
       --payload "after restart" --justification "after the restart")
after=$(echo "$line" | sed -n 's/.*approval=\(h-[0-9a-f]*\).*/\1/p')
seen=""
for _ in $(seq 40); do
    if snapshot | grep -q "\"id\":\"$after\".*\"bus_ok\":true\|\"bus_ok\":true.*\"id\":\"$after\""; then
        seen=yes
        break
    fi
    sleep 0.25
done
if [ -n "$after" ] && [ -n "$seen" ]; then
    pass "the bus restarts: the console connects again and shows the new hold"
else
    fail "the bus restarts: the console connects again and shows the new hold" "$line" "$(snapshot | head -c 300)"
fi

#   A clean stop: SIGTERM ends the console and the follower with exit 0.
kill -TERM "$CONSOLE_PID" "$FOLLOW_PID"
wait "$CONSOLE_PID"; crc=$?
wait "$FOLLOW_PID"; frc=$?
CONSOLE_PID=""
FOLLOW_PID=""
if [ $crc -eq 0 ] && [ $frc -eq 0 ]; then
    pass "SIGTERM stops the console and pending --follow cleanly"
else
    fail "SIGTERM stops the console and pending --follow cleanly" "console exit $crc, follow exit $frc" \
        "$(tail -5 "$DIR/console.err")"
fi
if ! grep -q "ERROR: AddressSanitizer\|runtime error:" "$DIR/console.err" "$DIR/follow.err"; then
    pass "no sanitizer report from the console"
else
    fail "no sanitizer report from the console" "$(grep -A5 'ERROR\|runtime error' "$DIR/console.err" | head -20)"
fi
finish
