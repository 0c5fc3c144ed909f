#!/usr/bin/env bash
# soak.sh: the hardening soak (not a test).
#
# PHONES SIPp phones (one SIPp process, one socket, from 127.0.0.1) re-register every PERIOD
# seconds for MINUTES minutes against `sipsvc serve --workers WORKERS`, answering every NOTIFY
# 200 (-aa); a bulk check-sync of the account runs every SYNC_EVERY seconds; a password guesser
# (a second SIPp, from 127.0.0.2, wrong passwords for real usernames) runs at GUESS_RATE/s
# the whole time. Prints: failed registrations of the phones (target 0), the workers' memory
# (RSS) once every phone has registered and at the end (target: within 10 %), the event-loop
# lag p99 from /metrics (target < 50 ms), the bulk syncs' summaries and the guesser's outcome.
#
# Environment: PHONES=10000 MINUTES=10 PERIOD=60 SYNC_EVERY=120 GUESS_RATE=5 WORKERS=2
#   REDIS_URL=redis://127.0.0.1:6379/13 (flushed first)  HTTP_PORT=18095 SIP_PORT=15095
# Loopback only; every process is bounded in calls and time.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
PHONES=${PHONES:-10000}
MINUTES=${MINUTES:-10}
PERIOD=${PERIOD:-60}
SYNC_EVERY=${SYNC_EVERY:-120}
GUESS_RATE=${GUESS_RATE:-5}
WORKERS=${WORKERS:-2}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/13}
HTTP_PORT=${HTTP_PORT:-18095}
SIP_PORT=${SIP_PORT:-15095}
REALM=${REALM:-soak.sip.test}
SIPSVC=${SIPSVC:-$ROOT/.venv/bin/sipsvc}
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
RUNDIR=$(mktemp -d /tmp/soak.XXXXXX)
ADMIN=bench-admin-$RANDOM$RANDOM
API=http://127.0.0.1:$HTTP_PORT
PIDS=()

command -v sipp >/dev/null || { echo "sipp not found (apt-get install -y sip-tester)" >&2; exit 3; }
redis-cli -u "$REDIS_URL" flushdb >/dev/null || { echo "cannot flush $REDIS_URL" >&2; exit 3; }
cleanup() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
}
trap cleanup EXIT

SIPSVC_ADMIN_TOKEN=$ADMIN SIPSVC_DIGEST_ALGORITHMS=MD5,SHA-256 SIPSVC_LOG_LEVEL=warning \
    "$SIPSVC" serve --workers "$WORKERS" --http "127.0.0.1:$HTTP_PORT" --sip "127.0.0.1:$SIP_PORT" \
    --redis-url "$REDIS_URL" --data-dir "$RUNDIR/data" > "$RUNDIR/sipsvc.log" 2>&1 &
SUPERVISOR=$!
PIDS+=("$SUPERVISOR")
for _ in $(seq 100); do
    curl -s -o /dev/null "$API/v2/accounts/x" && break
    sleep 0.1
done
"$PYTHON" "$HERE/provision_users.py" "$API" "$ADMIN" "$REALM" "$PHONES" | tee "$RUNDIR/provision.txt" || exit 4
ACCOUNT=$(sed -n 's/.*(account \([0-9a-f]*\)).*/\1/p' "$RUNDIR/provision.txt")
[[ -n "$ACCOUNT" ]] || { echo "no account id in the provisioning output" >&2; exit 4; }

workers_rss_kib() {  # the workers' resident memory, summed
    local total=0 pid
    for pid in $(cat "/proc/$SUPERVISOR/task/$SUPERVISOR/children"); do
        total=$(( total + $(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status") ))
    done
    echo "$total"
}

# The phones: every user once per PERIOD, for MINUTES minutes; NOTIFYs answered 200 (-aa).
users=$RUNDIR/users.csv
echo SEQUENTIAL > "$users"
for ((n = 0; n < PHONES; n++)); do
    printf 'user%04d;pwuser%04d;[authentication username=user%04d password=pwuser%04d];\n' "$n" "$n" "$n" "$n" >> "$users"
done
rate=$(( (PHONES + PERIOD - 1) / PERIOD ))
calls=$(( rate * MINUTES * 60 ))
sipp "127.0.0.1:$SIP_PORT" -sf "$HERE/registrar-kit/sipp/register_auth.xml" -inf "$users" \
    -key domain "$REALM" -i 127.0.0.1 -p $((SIP_PORT + 10)) -t u1 -r "$rate" -m "$calls" -l 2000 \
    -aa -nostdin -timeout $(( MINUTES * 60 + 120 ))s -trace_stat -stf "$RUNDIR/phones.csv" -fd 10 \
    -trace_err -error_file "$RUNDIR/phones-errors.log" > /dev/null 2>&1 &
PHONES_PID=$!
PIDS+=("$PHONES_PID")

# The guesser: real usernames, wrong passwords, from another address.
guesses=$RUNDIR/guesses.csv
echo RANDOM > "$guesses"
for ((n = 0; n < 100; n++)); do
    printf 'user%04d;[authentication username=user%04d password=guess%04d];\n' "$n" "$n" "$n" >> "$guesses"
done
sipp "127.0.0.1:$SIP_PORT" -sf "$ROOT/sipp-scenarios/uac-register-wrong-password-expect-403.xml" \
    -inf "$guesses" -key domain "$REALM" -i 127.0.0.2 -p $((SIP_PORT + 11)) -t u1 -r "$GUESS_RATE" \
    -m $(( GUESS_RATE * MINUTES * 60 )) -nostdin -timeout $(( MINUTES * 60 + 60 ))s \
    -trace_stat -stf "$RUNDIR/guesser.csv" -fd 10 -recv_timeout 2000 > /dev/null 2>&1 &
GUESSER_PID=$!
PIDS+=("$GUESSER_PID")

sleep "$PERIOD"
rss_start=$(workers_rss_kib)
echo "# $(date -u +%H:%M:%S) every phone has registered once; workers' RSS $((rss_start / 1024)) MiB"

# A bulk sync every SYNC_EVERY seconds while the phones run.
end=$(( SECONDS + MINUTES * 60 - PERIOD ))
next_sync=$SECONDS
next_sample=$(( SECONDS + 60 ))
n=0
rss_series="$((rss_start / 1024))"
while (( SECONDS < end )); do
    if (( SECONDS >= next_sample )); then  # the memory curve, once a minute
        rss_series="$rss_series $(( $(workers_rss_kib) / 1024 ))"
        next_sample=$(( SECONDS + 60 ))
    fi
    if (( SECONDS >= next_sync )); then
        n=$((n + 1))
        curl -s -X POST -H "X-Auth-Token: $ADMIN" --max-time "$SYNC_EVERY" \
            "$API/v2/accounts/$ACCOUNT/devices/sync" > "$RUNDIR/sync-$n.json" &
        next_sync=$(( SECONDS + SYNC_EVERY ))
    fi
    sleep 1
done
wait "$PHONES_PID"
phones_status=$?
rss_end=$(workers_rss_kib)
echo "# workers' RSS once a minute (MiB): $rss_series $((rss_end / 1024))"
curl -s "$API/metrics" > "$RUNDIR/metrics.txt"
kill -TERM "$GUESSER_PID" 2>/dev/null; wait "$GUESSER_PID" 2>/dev/null

"$PYTHON" - "$RUNDIR" "$rss_start" "$rss_end" "$phones_status" <<'EOF'
import csv, glob, json, re, sys
rundir, rss_start, rss_end, status = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]

def last_stats(path):
    rows = list(csv.DictReader(open(path), delimiter=";"))
    return rows[-1] if rows else {}

phones = last_stats(f"{rundir}/phones.csv")
print(f"phones: {phones.get('SuccessfulCall(C)')} registrations succeeded, "
      f"{phones.get('FailedCall(C)')} failed (target 0), {phones.get('Retransmissions(C)')} retransmissions; "
      f"sipp exit {status}")
change = (rss_end - rss_start) / rss_start * 100
print(f"workers' memory: {rss_start / 1024:.0f} MiB after the first round, {rss_end / 1024:.0f} MiB at the end "
      f"({change:+.1f} %, target within 10 %)")
buckets = []
for line in open(f"{rundir}/metrics.txt"):
    match = re.match(r'sipsvc_event_loop_lag_seconds_bucket\{.*le="([^"]+)".*\} ([0-9.e+]+)', line)
    if match:
        buckets.append((float(match.group(1)), float(match.group(2))))
totals = {}
for bound, count in buckets:  # several workers: one series each; sum per bound
    totals[bound] = totals.get(bound, 0) + count
if totals:
    ordered = sorted(totals.items())
    total = ordered[-1][1]
    p99 = next(bound for bound, count in ordered if count >= 0.99 * total)
    print(f"event-loop lag: p99 <= {p99 * 1000:g} ms over {total:.0f} samples (target < 50 ms)")
for path in sorted(glob.glob(f"{rundir}/sync-*.json")):
    try:
        data = json.load(open(path))["data"]
        print(f"bulk sync {path.rsplit('-', 1)[1][:-5]}: {data['sent']} sent, answered {data['answered']}, "
              f"timed out {data['timed_out']}, {data['rate']} NOTIFY/s")
    except (ValueError, KeyError, TypeError):
        print(f"bulk sync {path}: {open(path).read()[:200]}")
guesser = last_stats(f"{rundir}/guesser.csv")
print(f"guesser: {guesser.get('OutgoingCall(C)')} guesses, {guesser.get('SuccessfulCall(C)')} answered 403, "
      f"{guesser.get('FailedCall(C)')} refused otherwise or dropped")
EOF
echo "# raw output: $RUNDIR"
