#!/usr/bin/env bash
# register_load.sh: the registrar benchmark (not a test).
#
# Starts sipsvc (WORKERS processes, fresh Redis database or embedded store), provisions 10,000
# devices user0000..user9999 in one account, drives digest REGISTERs with the SIPp ladder of
# registrar-kit/ over UDP at RATES and prints, per rate: offered, achieved, failed calls,
# retransmissions, p50/p99 response time and the service's CPU. Then (KAMAILIO=1, the default)
# runs the same ladder against Kamailio from Debian, configured as an in-memory digest
# registrar, in the same invocation, and prints the ratio of the two best clean rates. FLOOR=1 (the
# default) runs it against bench/floor_registrar.py too, the least a Python registrar can do.
# One "call" = REGISTER -> 401 -> REGISTER with digest -> 200 (two transactions).
#
# Environment: WORKERS=2  RATES="1000 2000 3000 4000 5000 6000"  TRANSPORT=u1 (one SIPp socket,
#   which the workers spread by payload hash; un = one socket per call)
#   REDIS_URL=redis://127.0.0.1:6379/12 (flushed; unix:///path?db=N for a Unix socket;
#   EMBEDDED=1 uses the embedded store instead)
#   HTTP_PORT=18080 SIP_PORT=15060 KAMAILIO=1 KAMAILIO_PORT=5070 CALLS=auto
#   FLOOR=1 FLOOR_REDIS_URL=redis://127.0.0.1:6379/9 (not flushed: the floor only overwrites)
# Loopback only; every step is bounded in calls and time.
set -u
# SIPp with -t un opens a socket per call in flight.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
export SIPP_EXTRA=${SIPP_EXTRA:-"-max_socket 10000"}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
WORKERS=${WORKERS:-2}
export RATES=${RATES:-"1000 2000 3000 4000 5000 6000"}
export TRANSPORT=${TRANSPORT:-u1}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/12}
HTTP_PORT=${HTTP_PORT:-18080}
SIP_PORT=${SIP_PORT:-15060}
KAMAILIO=${KAMAILIO:-1}
FLOOR=${FLOOR:-1}
REALM=${REALM:-ladder.sip.test}
SIPSVC=${SIPSVC:-$ROOT/.venv/bin/sipsvc}
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
RUNDIR=$(mktemp -d /tmp/register_load.XXXXXX)
ADMIN=bench-admin-$RANDOM$RANDOM

command -v sipp >/dev/null || { echo "sipp not found (apt-get install -y sip-tester)" >&2; exit 3; }
STORE_ARGS=(--redis-url "$REDIS_URL")
if [[ "${EMBEDDED:-0}" == 1 ]]; then
    STORE_ARGS=()
else
    if [[ "$REDIS_URL" == unix://* ]]; then  # redis-cli -u knows only redis:// URLs
        SOCKET_PATH=${REDIS_URL#unix://}; DB=0
        [[ "$SOCKET_PATH" == *"?db="* ]] && DB=${SOCKET_PATH##*\?db=}
        FLUSH=(redis-cli -s "${SOCKET_PATH%%\?*}" -n "$DB")
    else
        FLUSH=(redis-cli -u "$REDIS_URL")
    fi
    "${FLUSH[@]}" flushdb >/dev/null || { echo "cannot flush $REDIS_URL" >&2; exit 3; }
fi

# SIPp 3.6 answers only the first challenge and knows only MD5: offer MD5 first.
SIPSVC_ADMIN_TOKEN=$ADMIN SIPSVC_DIGEST_ALGORITHMS=MD5,SHA-256 SIPSVC_LOG_LEVEL=warning \
    "$SIPSVC" serve --workers "$WORKERS" --http "127.0.0.1:$HTTP_PORT" --sip "127.0.0.1:$SIP_PORT" \
    --data-dir "$RUNDIR/data" "${STORE_ARGS[@]}" > "$RUNDIR/sipsvc.log" 2>&1 &
SPID=$!
trap 'kill -TERM $SPID 2>/dev/null; wait $SPID 2>/dev/null' EXIT
for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$HTTP_PORT/v2/accounts/x" && break
    sleep 0.1
done
"$PYTHON" "$HERE/provision_users.py" "http://127.0.0.1:$HTTP_PORT" "$ADMIN" "$REALM" 10000 || exit 4

echo "# sipsvc: $WORKERS worker(s), store ${REDIS_URL}$( [[ ${EMBEDDED:-0} == 1 ]] && echo ' (embedded)')"
TARGET_PID=$SPID DOMAIN=$REALM OUTDIR=$RUNDIR/sipsvc-ladder \
    bash "$HERE/registrar-kit/register_ladder.sh" 127.0.0.1 "$SIP_PORT" | tee "$RUNDIR/sipsvc.txt"
kill -TERM $SPID; wait $SPID 2>/dev/null; trap - EXIT

best_rate() { sed -n 's/^# highest rate.*: \([0-9]*\) calls\/s.*/\1/p' "$1"; }
ratio() { awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
if [[ "$FLOOR" == 1 ]]; then
    # The minimal registrar (bench/floor_registrar.py) on the same port, workers and store.
    FLOOR_URL=${FLOOR_REDIS_URL:-redis://127.0.0.1:6379/9}
    echo "# floor: bench/floor_registrar.py, $WORKERS worker(s), store $FLOOR_URL"
    "$PYTHON" "$HERE/floor_registrar.py" "$SIP_PORT" "$WORKERS" "$REALM" "$FLOOR_URL" > "$RUNDIR/floor.log" 2>&1 &
    FPID=$!
    trap 'pkill -P $FPID; kill $FPID 2>/dev/null' EXIT
    sleep 1
    TARGET_PID=$FPID DOMAIN=$REALM OUTDIR=$RUNDIR/floor-ladder \
        bash "$HERE/registrar-kit/register_ladder.sh" 127.0.0.1 "$SIP_PORT" | tee "$RUNDIR/floor.txt"
    pkill -P $FPID; kill $FPID 2>/dev/null; wait $FPID 2>/dev/null; trap - EXIT
    echo "# best clean rate: sipsvc $(best_rate "$RUNDIR/sipsvc.txt")/s, floor $(best_rate "$RUNDIR/floor.txt")/s," \
         "ratio $(ratio "$(best_rate "$RUNDIR/sipsvc.txt")" "$(best_rate "$RUNDIR/floor.txt")")"
fi

if [[ "$KAMAILIO" == 1 ]]; then
    echo "# kamailio (Debian), same ladder"
    PORT=${KAMAILIO_PORT:-5070} NOTIFY_TEST=0 OUTDIR=$RUNDIR/kamailio-ladder \
        bash "$HERE/registrar-kit/kamailio_anchor.sh" | tee "$RUNDIR/kamailio.txt"
    echo "# best clean rate: sipsvc $(best_rate "$RUNDIR/sipsvc.txt")/s, kamailio $(best_rate "$RUNDIR/kamailio.txt")/s," \
         "ratio $(ratio "$(best_rate "$RUNDIR/sipsvc.txt")" "$(best_rate "$RUNDIR/kamailio.txt")")"
fi
echo "# raw output: $RUNDIR"
