#!/bin/bash
# Soak test: mixed traffic against one broker for a bounded time, then health checks.
#
#   bench/soak.sh [--duration SECONDS] [--warmup SECONDS] [--bin build/petrel]
#                 [--bench build/petrel-bench] [--workers N] [--keep]
#
# Traffic (all on 127.0.0.1, all at moderate rates so that a 2-core machine stays usable):
#   petrel-bench, one scenario after another: pairs (QoS 1, 3.1.1; QoS 2, MQTT 5), fanout
#   (QoS 1), fanin (QoS 2), p2p (QoS 1), shared (QoS 1), pairs QoS 0, and conn (connection
#   churn); and at the same time bench/soak_driver.py: numbered QoS 1/2 messages to a steady
#   and a coming-and-going persistent subscriber, retained messages, wills, takeovers, a
#   8 KiB flood with two slow consumers that read nothing, and $SYS.
# Phases: warm-up (the same mix, --warmup seconds, default duration/10 within 20..60), idle,
# then the measured run (--duration, default 600), idle.
# Checks: the broker is alive and exits cleanly on SIGTERM; no QoS 1/2 message lost among
# well-behaved clients (petrel-bench's "lost" and the driver's counts); RSS after the run within
# 10% of RSS after the warm-up (both idle, every client gone); the number of open file
# descriptors back to its post-warm-up level; what the slow consumers missed is no more than
# $SYS/broker/messages/dropped counted; every will delivered, every takeover closing the old
# connection. Prints one summary; exits 0 when all pass, 1 otherwise.
set -u
cd "$(dirname "$0")/.."

DURATION=600
WARMUP=
BIN=build/petrel
BENCH=build/petrel-bench
WORKERS=2
KEEP=0
while [ $# -gt 0 ]; do
    case $1 in
    --duration) DURATION=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --bin) BIN=$2; shift 2 ;;
    --bench) BENCH=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    *) echo "usage: $0 [--duration S] [--warmup S] [--bin PATH] [--bench PATH] [--workers N] [--keep]" >&2
       exit 2 ;;
    esac
done
if [ -z "$WARMUP" ]; then
    WARMUP=$((DURATION / 10))
    [ $WARMUP -lt 20 ] && WARMUP=20
    [ $WARMUP -gt 60 ] && WARMUP=60
fi
PY=/usr/bin/python3
# Each petrel-bench run: long enough to reach a steady state, short enough that a 2-minute
# soak still goes through every scenario.
RUN_SECONDS=$((DURATION / 8))
[ $RUN_SECONDS -lt 10 ] && RUN_SECONDS=10
[ $RUN_SECONDS -gt 30 ] && RUN_SECONDS=30
for f in "$BIN" "$BENCH"; do
    [ -x "$f" ] || { echo "soak: $f not built (make)" >&2; exit 2; }
done

DIR=$(mktemp -d /tmp/petrel-soak.XXXXXX)
cat > "$DIR/petrel.conf" <<EOF
listener 0 127.0.0.1
allow_anonymous true
workers $WORKERS
sys_interval 1
max_queued_messages 1000
max_inflight_messages 20
# The flood's two slow consumers stay connected all the run, so that what they miss can be
# checked against the drop counters; closing stalled sockets has its own tests
# (tests/integration/test_slow_consumers.py).
write_stall_timeout 0
persistence false
log_type error
log_type warning
log_type notice
EOF
ulimit -n 65536 2>/dev/null || true
"$BIN" -c "$DIR/petrel.conf" 2> "$DIR/broker.log" &
PID=$!
cleanup() {
    kill "$PID" 2>/dev/null
    [ -n "${DRIVER:-}" ] && kill "$DRIVER" 2>/dev/null
    [ $KEEP = 1 ] || rm -rf "$DIR"
}
trap cleanup EXIT
PORT=
for _ in $(seq 1 100); do
    PORT=$(grep -o 'listening address=[^ ]* port=[0-9]*' "$DIR/broker.log" | head -1 | sed 's/.*port=//')
    [ -n "$PORT" ] && break
    sleep 0.1
done
[ -n "$PORT" ] || { echo "soak: broker did not start"; cat "$DIR/broker.log"; exit 1; }

rss() { awk '/^VmRSS/ {print $2}' /proc/$PID/status 2>/dev/null; }
fds() { ls /proc/$PID/fd 2>/dev/null | wc -l; }
log() { echo "soak: $(date +%T) $*" >&2; }

# One petrel-bench scenario after another until $1 seconds have passed; one JSON line each
# into $2.
bench_loop() {
    local until=$(( $(date +%s) + $1 )) out=$2 i=0
    local runs=(
        "--scenario pairs --qos 1 --mqtt 3 --clients 10 --rate 200"
        "--scenario pairs --qos 2 --mqtt 5 --clients 10 --rate 100"
        "--scenario fanout --qos 1 --subscribers 20 --rate 50"
        "--scenario fanin --qos 2 --publishers 10 --rate 50"
        "--scenario p2p --qos 1 --clients 10 --rate 100"
        "--scenario shared --qos 1 --publishers 4 --subscribers 4 --rate 100"
        "--scenario pairs --qos 0 --clients 10 --rate 500"
        "--scenario conn --clients 200 --conn-rate 100"
    )
    while :; do
        local left=$(( until - $(date +%s) ))
        [ $left -lt 5 ] && break
        local d=$(( left - 3 < RUN_SECONDS ? left - 3 : RUN_SECONDS ))
        [ $d -lt 2 ] && break
        "$BENCH" --port "$PORT" --warmup 0 --drain 3 --duration $d --quiet \
            --client-prefix "soak$i" ${runs[$((i % ${#runs[@]}))]} >> "$out" 2>> "$DIR/bench.err" ||
            echo '{"failed":true}' >> "$out"
        i=$((i + 1))
    done
}

# Both halves of the traffic for $1 seconds; phase name $2.
traffic() {
    "$PY" bench/soak_driver.py --port "$PORT" --duration "$1" --phase "$2" \
        > "$DIR/driver-$2.json" 2>> "$DIR/driver.err" &
    DRIVER=$!
    bench_loop "$1" "$DIR/bench-$2.jsonl"
    wait $DRIVER
    DRIVER=
}

# Wait until the broker has no client left (its fd count stops falling), at most 30 s.
settle() {
    local prev=-1 n
    for _ in $(seq 1 30); do
        sleep 1
        n=$(fds)
        [ "$n" = "$prev" ] && break
        prev=$n
    done
}

log "broker pid=$PID port=$PORT workers=$WORKERS; warm-up ${WARMUP}s"
traffic "$WARMUP" warmup
settle
RSS_WARM=$(rss)
FDS_WARM=$(fds)
log "after warm-up: rss=${RSS_WARM}kB fds=$FDS_WARM; measured run ${DURATION}s"

traffic "$DURATION" main &
TRAFFIC=$!
RSS_PEAK=0
START=$(date +%s)
while kill -0 $TRAFFIC 2>/dev/null; do
    sleep 5
    r=$(rss)
    [ -n "$r" ] && [ "$r" -gt $RSS_PEAK ] && RSS_PEAK=$r
    if [ $(( ($(date +%s) - START) % 60 )) -lt 5 ]; then
        log "running: rss=${r:-?}kB fds=$(fds)"
    fi
done
wait $TRAFFIC
settle
RSS_END=$(rss)
FDS_END=$(fds)

# Checks.
FAILS=()
ALIVE=no
if kill -0 $PID 2>/dev/null &&
    "$PY" -c "
import sys, paho.mqtt.client as m
c = m.Client('soak-alive'); c.connect('127.0.0.1', $PORT, 10)
c.loop_start(); import time; t = time.time()
while not c.is_connected() and time.time() - t < 10: time.sleep(0.05)
sys.exit(0 if c.is_connected() else 1)"; then
    ALIVE=yes
else
    FAILS+=("broker not alive")
fi
read -r BENCH_RUNS BENCH_FAILED BENCH_LOST BENCH_SENT <<< "$("$PY" -c "
import json, sys
runs = [json.loads(l) for l in open('$DIR/bench-main.jsonl') if l.strip()]
lost = sum(r.get('lost', 0) for r in runs if r.get('qos', 0) > 0)
print(len(runs), sum(1 for r in runs if r.get('failed') or r.get('errors')), lost,
      sum(r.get('sent_total', 0) for r in runs))
" 2>/dev/null || echo "0 1 0 0")"
[ "$BENCH_FAILED" = 0 ] || FAILS+=("$BENCH_FAILED petrel-bench runs failed")
[ "$BENCH_LOST" = 0 ] || FAILS+=("petrel-bench lost $BENCH_LOST QoS 1/2 messages")
DRIVER_JSON=$(cat "$DIR/driver-main.json" 2>/dev/null)
DRIVER_FAILS=$("$PY" -c "import json,sys; print('; '.join(json.loads(sys.argv[1])['fails']))" \
    "$DRIVER_JSON" 2>/dev/null || echo "driver printed no result")
[ -z "$DRIVER_FAILS" ] || FAILS+=("driver: $DRIVER_FAILS")
RSS_LIMIT=$(( RSS_WARM * 110 / 100 ))
[ -n "$RSS_END" ] && [ "$RSS_END" -le $RSS_LIMIT ] ||
    FAILS+=("rss ${RSS_END:-?}kB above 110% of ${RSS_WARM}kB")
[ "$FDS_END" = "$FDS_WARM" ] || FAILS+=("fds $FDS_END after the run, $FDS_WARM before")

kill -TERM $PID
EXIT=
for _ in $(seq 1 100); do
    kill -0 $PID 2>/dev/null || break
    sleep 0.1
done
wait $PID
EXIT=$?
[ "$EXIT" = 0 ] || FAILS+=("broker exit status $EXIT after SIGTERM")
if grep -qE "AddressSanitizer|LeakSanitizer|runtime error" "$DIR/broker.log"; then
    FAILS+=("sanitizer report in the broker log")
fi

echo "soak summary: duration=${DURATION}s warmup=${WARMUP}s workers=$WORKERS"
echo "  broker alive=$ALIVE exit=$EXIT"
echo "  rss after warm-up=${RSS_WARM}kB peak=${RSS_PEAK}kB end=${RSS_END}kB" \
     "($(( (RSS_END - RSS_WARM) * 100 / RSS_WARM ))%)"
echo "  fds after warm-up=$FDS_WARM end=$FDS_END"
echo "  petrel-bench runs=$BENCH_RUNS failed=$BENCH_FAILED sent=$BENCH_SENT lost_qos12=$BENCH_LOST"
echo "  driver $DRIVER_JSON"
if [ ${#FAILS[@]} -eq 0 ]; then
    echo "soak: PASS"
    exit 0
fi
printf 'soak: FAIL: %s\n' "${FAILS[@]}"
[ $KEEP = 1 ] && echo "soak: files kept in $DIR"
exit 1
