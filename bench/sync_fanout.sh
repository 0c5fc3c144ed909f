#!/usr/bin/env bash
# sync_fanout.sh: the check-sync fan-out benchmark (not a test).
#
# Starts sipsvc (one worker, NOTIFY rate RATE/s), provisions PHONES devices user0000.. in one
# account, registers them all from SIPp phones (SIPS processes over UDP, each one socket; the
# phones stay up and answer NOTIFYs 200 with sipp-scenarios/uas-notify-answer-200.xml), then
# runs ONE bulk sync (POST /v2/accounts/{A}/devices/sync) and prints the service's summary:
# achieved NOTIFY rate, answered count by status, timeouts, p50/p99 answer time, and the wall
# time of the HTTP call.
#
# Environment: PHONES=5000 RATE=1000 SIPS=2 REG_RATE=500
#   REDIS_URL=redis://127.0.0.1:6379/10 (flushed first)  HTTP_PORT=18090 SIP_PORT=15090
# Loopback only; every step is bounded in count and time.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
PHONES=${PHONES:-5000}
RATE=${RATE:-1000}
SIPS=${SIPS:-2}
REG_RATE=${REG_RATE:-500}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/10}
HTTP_PORT=${HTTP_PORT:-18090}
SIP_PORT=${SIP_PORT:-15090}
REALM=${REALM:-fanout.sip.test}
SIPSVC=${SIPSVC:-$ROOT/.venv/bin/sipsvc}
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
RUNDIR=$(mktemp -d /tmp/sync_fanout.XXXXXX)
ADMIN=bench-admin-$RANDOM$RANDOM
PIDS=()

command -v sipp >/dev/null || { echo "sipp not found (apt-get install -y sip-tester)" >&2; exit 3; }
redis-cli -u "$REDIS_URL" flushdb >/dev/null || { echo "cannot flush $REDIS_URL" >&2; exit 3; }

cleanup() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
}
trap cleanup EXIT

# SIPp 3.6 answers only the first challenge and knows only MD5: offer MD5 first.
SIPSVC_ADMIN_TOKEN=$ADMIN SIPSVC_DIGEST_ALGORITHMS=MD5,SHA-256 SIPSVC_LOG_LEVEL=warning \
    SIPSVC_NOTIFY_RATE=$RATE \
    "$SIPSVC" serve --workers 1 --http "127.0.0.1:$HTTP_PORT" --sip "127.0.0.1:$SIP_PORT" \
    --redis-url "$REDIS_URL" --data-dir "$RUNDIR/data" > "$RUNDIR/sipsvc.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$HTTP_PORT/v2/accounts/x" && break
    sleep 0.1
done
"$PYTHON" "$HERE/provision_users.py" "http://127.0.0.1:$HTTP_PORT" "$ADMIN" "$REALM" "$PHONES" \
    | tee "$RUNDIR/provision.txt" || exit 4
ACCOUNT=$(sed -n 's/.*(account \([0-9a-f]*\)).*/\1/p' "$RUNDIR/provision.txt")
[[ -n "$ACCOUNT" ]] || { echo "no account id in the provisioning output" >&2; exit 4; }

# The phones: SIPS SIPp processes, each registering its share and then staying up.
per=$(( (PHONES + SIPS - 1) / SIPS ))
for ((s = 0; s < SIPS; s++)); do
    csv=$RUNDIR/phones-$s.csv
    echo SEQUENTIAL > "$csv"
    for ((n = s * per; n < (s + 1) * per && n < PHONES; n++)); do
        printf 'user%04d;[authentication username=user%04d password=pwuser%04d];\n' "$n" "$n" "$n" >> "$csv"
    done
    count=$(( $(wc -l < "$csv") - 1 ))
    sipp "127.0.0.1:$SIP_PORT" -sf "$ROOT/sipp-scenarios/uac-register-then-wait.xml" \
        -oocsf "$ROOT/sipp-scenarios/uas-notify-answer-200.xml" -inf "$csv" -key domain "$REALM" \
        -i 127.0.0.1 -p $((SIP_PORT + 10 + s)) -t u1 -m "$count" -r $((REG_RATE / SIPS)) \
        -l $((count + 10)) -d 300000 -timeout 400s -nostdin \
        -trace_err -error_file "$RUNDIR/sipp-$s-errors.log" > /dev/null 2>&1 &
    PIDS+=($!)
done

# Wait (bounded) until every phone is registered.
deadline=$(( SECONDS + PHONES / REG_RATE + 60 ))
while :; do
    registered=$(curl -s -H "X-Auth-Token: $ADMIN" "http://127.0.0.1:$HTTP_PORT/v2/accounts/$ACCOUNT/devices/status" \
        | "$PYTHON" -c 'import json, sys; print(len(json.load(sys.stdin)["data"]))')
    [[ "$registered" -ge "$PHONES" ]] && break
    if (( SECONDS > deadline )); then echo "only $registered of $PHONES phones registered" >&2; exit 5; fi
    sleep 1
done
echo "# $registered phones registered from $SIPS SIPp process(es); one bulk sync at $RATE NOTIFY/s"

started=$("$PYTHON" -c 'import time; print(time.time())')
curl -s -X POST -H "X-Auth-Token: $ADMIN" --max-time 300 \
    "http://127.0.0.1:$HTTP_PORT/v2/accounts/$ACCOUNT/devices/sync" > "$RUNDIR/summary.json"
"$PYTHON" - "$RUNDIR/summary.json" "$started" "$RATE" <<'EOF'
import json, sys, time
wall = time.time() - float(sys.argv[2])
body = json.load(open(sys.argv[1]))
if body.get("status") != "success":
    sys.exit(f"bulk sync failed: {body}")
s = body["data"]
answered = sum(s["answered"].values())
print(f"devices             {s['devices']}")
print(f"NOTIFYs sent        {s['sent']}")
print(f"achieved rate       {s['rate']} NOTIFY/s (asked {sys.argv[3]})")
print(f"answered            {answered} {s['answered']}")
print(f"timed out           {s['timed_out']}   unreachable {s['unreachable']}")
print(f"answer time         p50 {s['answer_ms']['p50']} ms, p99 {s['answer_ms']['p99']} ms, max {s['answer_ms']['max']} ms")
print(f"bulk sync           {s['elapsed_ms']} ms in the service, {wall * 1000:.0f} ms for the HTTP call")
EOF
echo "# raw output: $RUNDIR"
