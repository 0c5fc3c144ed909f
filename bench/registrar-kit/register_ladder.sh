#!/usr/bin/env bash
# register_ladder.sh HOST PORT
#
# Runs a bounded SIPp REGISTER(+digest auth) rate ladder against a registrar on
# the loopback interface and prints one line per rate:
#   target rate, offered rate (SIPp CallRate), achieved rate (completed calls/s),
#   successful / failed calls, SIPp retransmissions, UDP rcvbuf drops,
#   response time p50/p99 (ms, SIPp 1 ms resolution), CPU of the registrar
#   process tree (if TARGET_PID is given), of sipp, and of the whole machine.
#
# One "call" = REGISTER -> 401 -> REGISTER(Authorization) -> 200 (2 transactions),
# AOR sip:userNNNN@HOST, password "pwuserNNNN", realm as challenged by the server.
#   rt_full = first REGISTER .. 200 ; rt_auth = authenticated REGISTER .. 200
#
# Environment (all optional):
#   RATES="500 1000 2000 4000 8000"  calls/s per step
#   CALLS=auto             calls per step (-m); auto = max(20000, 5 s x rate).
#                          users.csv has 10000 users, so calls > 10000 re-register
#                          (refresh) the same AORs
#   LIMIT=2000             max simultaneous calls (-l)
#   TRANSPORT=u1           u1 = one UDP socket (default), t1 = one TCP connection
#   LOCAL_PORT=25061       sipp's local port (-p)
#   SCENARIO=<dir>/sipp/register_auth.xml   (or sipp/unregister.xml)
#   INF=<dir>/sipp/users.csv
#   TARGET_PID=<pid>       root PID of the registrar; CPU of it + descendants
#   OUTDIR=/tmp/register_ladder.<pid>   raw sipp output per step
#   DOMAIN=<HOST>          SIP domain used in From/To (the registrar account realm)
#   RECV_TIMEOUT_MS=5000   per-recv timeout in sipp (failed call after that)
#   BUFF_SIZE=4194304      sipp socket send/recv buffer (-buff_size; the default
#                          64 KB makes sipp's own socket drop replies above ~9k calls/s,
#                          capped by net.core.rmem_max / wmem_max)
#   MIN_RATIO=0.97         achieved/target needed for "OK"
#   STOP_ON_FAIL=0         1 = stop after the first failing step
#   PAUSE=2                seconds between steps
#   SIPP_EXTRA=""          more sipp options (e.g. "-max_socket 10000" with TRANSPORT=un)
#
# Columns: rt = response time in ms (SIPp clock has 1 ms resolution: "0" = <1 ms);
#   rcvdrp = kernel UDP RcvbufErrors during the step (any socket on the host);
#   reg_cpu / sipp_cpu / mach_cpu = % of ONE core (mach = whole host, all processes).
# Only loopback targets are accepted. Every step is bounded by -m calls and by
# a wall-clock timeout (calls/rate + 20 s for sipp, +15 s hard kill).
set -u

HOST=${1:-}
PORT=${2:-}
if [[ -z "$HOST" || -z "$PORT" ]]; then
    echo "usage: $0 HOST PORT   (HOST must be 127.x.x.x)" >&2
    exit 2
fi
if [[ ! "$HOST" =~ ^127\.[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
    echo "refusing non-loopback target '$HOST' (only 127.0.0.0/8 allowed)" >&2
    exit 2
fi
if [[ ! "$PORT" =~ ^[0-9]+$ ]]; then
    echo "bad port '$PORT'" >&2
    exit 2
fi

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RATES=${RATES:-"500 1000 2000 4000 8000"}
CALLS=${CALLS:-auto}
LIMIT=${LIMIT:-2000}
TRANSPORT=${TRANSPORT:-u1}
LOCAL_PORT=${LOCAL_PORT:-25061}
SCENARIO=${SCENARIO:-$HERE/sipp/register_auth.xml}
INF=${INF:-$HERE/sipp/users.csv}
TARGET_PID=${TARGET_PID:-}
OUTDIR=${OUTDIR:-/tmp/register_ladder.$$}
DOMAIN=${DOMAIN:-$HOST}   # SIP domain of the AORs (To/From host); sipp -key domain
RECV_TIMEOUT_MS=${RECV_TIMEOUT_MS:-5000}
BUFF_SIZE=${BUFF_SIZE:-4194304}
MIN_RATIO=${MIN_RATIO:-0.97}
MAX_P99_MS=${MAX_P99_MS:-50}   # a step is clean only if the full-registration p99 is at most this
STOP_ON_FAIL=${STOP_ON_FAIL:-0}
PAUSE=${PAUSE:-2}
HZ=$(getconf CLK_TCK)
NCPU=$(nproc)

command -v sipp >/dev/null || { echo "sipp not found (apt-get install -y sip-tester)" >&2; exit 3; }
[[ -f "$SCENARIO" ]] || { echo "scenario $SCENARIO not found" >&2; exit 3; }
[[ -f "$INF" ]] || { echo "injection file $INF not found" >&2; exit 3; }
if [[ -n "$TARGET_PID" && ! -d /proc/$TARGET_PID ]]; then
    echo "TARGET_PID $TARGET_PID not running" >&2; exit 3
fi
mkdir -p "$OUTDIR"

# utime+stime (clock ticks) of PID and all its descendants
tree_ticks() {
    local root=$1
    [[ -z "$root" ]] && { echo 0; return; }
    cat /proc/[0-9]*/stat 2>/dev/null | awk -v root="$root" '
        {
            s = $0; p = match(s, /\)[^)]*$/); if (!p) next
            pid = substr(s, 1, index(s, " ") - 1)
            n = split(substr(s, p + 2), a, " ")
            ppid[pid] = a[2]; t[pid] = a[12] + a[13]
        }
        END {
            sum = 0
            for (pid in t) {
                q = pid; hops = 0
                while (q != "" && q != 0 && q != root && hops < 64) { q = ppid[q]; hops++ }
                if (q == root) sum += t[pid]
            }
            print sum
        }'
}
# uptime and summed idle time of all CPUs (s). /proc/uptime idle is exact with
# NOHZ; the user/system tick counters of /proc/stat under-count bursty load in a VM.
cpu_up_idle() {
    cat /proc/uptime
}
udp_rcvbuf_errors() {
    awk '/^Udp:/ { if (!h) { for (i = 1; i <= NF; i++) if ($i == "RcvbufErrors") c = i; h = 1 } else print $c }' /proc/net/snmp
}
# column value from the last line of a sipp stat csv, by header name
stat_col() {
    awk -F';' -v name="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == name) c = i; next } { v = $c } END { print (c ? v : "NA") }' "$1"
}
# p50 p99 of one rtd from a sipp rtt csv (integer ms)
rtt_pct() {
    awk -F';' -v rtd="$2" 'NR > 1 && $3 == rtd { print $2 }' "$1" | sort -n |
        awk '{ v[NR] = $1 } END { if (NR == 0) { print "NA NA"; exit }
                 i50 = int(NR * 0.50 + 0.999999); i99 = int(NR * 0.99 + 0.999999)
                 printf "%.0f %.0f\n", v[i50], v[i99] }'
}
# completions/s from the rtt csv (first..last completion of rtd "full")
rtt_rate() {
    awk -F';' 'NR > 1 && $3 == "full" { n++; if (n == 1) f = $1; l = $1 }
               END { if (n > 1 && l > f) printf "%.0f", (n - 1) * 1000 / (l - f); else print "NA" }' "$1"
}

echo "# register_ladder: target=$HOST:$PORT transport=$TRANSPORT calls/step=$CALLS limit=$LIMIT scenario=$(basename "$SCENARIO")"
echo "# target_pid=${TARGET_PID:-none} cpus=$NCPU outdir=$OUTDIR  (CPU columns: % of one core; machine max = $((NCPU * 100))%)"
read -r bu0 bi0 < <(cpu_up_idle); sleep 3; read -r bu1 bi1 < <(cpu_up_idle)
echo "# host background CPU before the ladder (3 s, no load from us): $(awk -v u0="$bu0" -v u1="$bu1" -v i0="$bi0" -v i1="$bi1" -v n="$NCPU" \
    'BEGIN { d = u1 - u0; printf "%.0f%%", (d > 0 ? 100 * (n * d - (i1 - i0)) / d : 0) }') of one core"
printf "%-7s %-6s %-8s %-8s %-7s %-6s %-7s %-6s %-9s %-9s %-7s %-7s %-7s %-4s\n" \
    target calls offered achieved success failed retrans rcvdrp "full50/99" "auth50/99" reg_cpu sipp_cpu mach_cpu ok
BEST=0
for RATE in $RATES; do
    STEP="$OUTDIR/r$RATE"
    rm -rf "$STEP"; mkdir -p "$STEP"
    if [[ "$CALLS" == auto ]]; then
        M=$(( RATE * 5 )); (( M < 20000 )) && M=20000
    else
        M=$CALLS
    fi
    DUR=$(( (M + RATE - 1) / RATE ))
    SIPP_TIMEOUT=$(( DUR + 20 ))
    HARD_TIMEOUT=$(( SIPP_TIMEOUT + 15 ))

    t0=$(tree_ticks "$TARGET_PID"); read -r up0 id0 < <(cpu_up_idle); d0=$(udp_rcvbuf_errors)
    w0=$(date +%s.%N)
    (
        cd "$STEP" || exit 1
        TIMEFORMAT='%3U %3S %3R'
        { time timeout -k 5 "$HARD_TIMEOUT" sipp "$HOST:$PORT" -sf "$SCENARIO" -inf "$INF" \
            -i 127.0.0.1 -p "$LOCAL_PORT" -t "$TRANSPORT" -nd -nostdin -key domain "$DOMAIN" \
            -r "$RATE" -rp 1000 -m "$M" -l "$LIMIT" \
            -recv_timeout "$RECV_TIMEOUT_MS" -timeout "${SIPP_TIMEOUT}s" \
            -max_recv_loops 10000 -max_sched_loops 10000 -buff_size "$BUFF_SIZE" \
            -trace_stat -fd 1 -trace_rtt -rtt_freq 1 -trace_screen -trace_err ${SIPP_EXTRA:-} \
            >sipp.stdout 2>sipp.stderr; echo $? > sipp.rc; } 2> sipp.time
    )
    w1=$(date +%s.%N)
    t1=$(tree_ticks "$TARGET_PID"); read -r up1 id1 < <(cpu_up_idle); d1=$(udp_rcvbuf_errors)

    STAT=$(ls "$STEP"/*_.csv 2>/dev/null | head -1)
    RTT=$(ls "$STEP"/*_rtt.csv 2>/dev/null | head -1)
    RC=$(cat "$STEP/sipp.rc" 2>/dev/null || echo NA)
    if [[ -z "$STAT" ]]; then
        echo "$RATE: sipp produced no statistics (rc=$RC); see $STEP/sipp.stderr" >&2
        tail -3 "$STEP/sipp.stderr" >&2
        continue
    fi
    OFFERED=$(stat_col "$STAT" "CallRate(C)")
    SUCC=$(stat_col "$STAT" "SuccessfulCall(C)")
    FAIL=$(stat_col "$STAT" "FailedCall(C)")
    RETR=$(stat_col "$STAT" "Retransmissions(C)")
    ACH=NA; F50=NA; F99=NA; A50=NA; A99=NA
    if [[ -n "$RTT" ]]; then
        ACH=$(rtt_rate "$RTT")
        read -r F50 F99 < <(rtt_pct "$RTT" full)
        read -r A50 A99 < <(rtt_pct "$RTT" auth)
    fi
    read -r SU SS SR < "$STEP/sipp.time" 2>/dev/null || { SU=0; SS=0; SR=0; }
    WALL=$(awk -v a="$w0" -v b="$w1" 'BEGIN { printf "%.3f", b - a }')
    REGCPU=NA
    [[ -n "$TARGET_PID" ]] && REGCPU=$(awk -v d=$((t1 - t0)) -v hz="$HZ" -v w="$WALL" 'BEGIN { printf "%.0f%%", 100 * d / hz / w }')
    SIPPCPU=$(awk -v u="$SU" -v s="$SS" -v w="$WALL" 'BEGIN { printf "%.0f%%", 100 * (u + s) / w }')
    MACH=$(awk -v u0="$up0" -v u1="$up1" -v i0="$id0" -v i1="$id1" -v n="$NCPU" \
        'BEGIN { d = u1 - u0; printf "%.0f%%", (d > 0 ? 100 * (n * d - (i1 - i0)) / d : 0) }')
    OK=no
    if [[ "$FAIL" == 0 && "$SUCC" == "$M" && "$ACH" != NA && "$F99" != NA ]] &&
        awk -v a="$ACH" -v r="$RATE" -v m="$MIN_RATIO" -v p="$F99" -v q="$MAX_P99_MS" \
            'BEGIN { exit !(a >= m * r && p <= q) }'; then
        OK=yes; BEST=$RATE
    fi
    printf "%-7s %-6s %-8s %-8s %-7s %-6s %-7s %-6s %-9s %-9s %-7s %-7s %-7s %-4s\n" \
        "$RATE" "$M" "$(printf '%.0f' "$OFFERED" 2>/dev/null || echo "$OFFERED")" "$ACH" "$SUCC" "$FAIL" "$RETR" \
        "$((d1 - d0))" "$F50/$F99" "$A50/$A99" "$REGCPU" "$SIPPCPU" "$MACH" "$OK"
    echo "$RATE $M $OFFERED $ACH $SUCC $FAIL $RETR $((d1 - d0)) $F50 $F99 $A50 $A99 $REGCPU $SIPPCPU $MACH $WALL $RC $OK" >> "$OUTDIR/summary.txt"
    if [[ "$OK" != yes && "$STOP_ON_FAIL" == 1 ]]; then
        break
    fi
    sleep "$PAUSE"
done
echo "# highest rate with 0 failures, p99 <= ${MAX_P99_MS} ms and achieved >= ${MIN_RATIO} x target: ${BEST} calls/s (= $((BEST * 2)) REGISTER transactions/s)"
echo "# raw sipp output: $OUTDIR"
