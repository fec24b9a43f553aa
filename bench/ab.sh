#!/usr/bin/env bash
# ab.sh - compare Petrel builds (or worker counts) on one petrel-bench scenario, interleaved,
# with the broker's CPU time per delivered message, which a shared machine disturbs less than
# the throughput does.
#
# Usage: bench/ab.sh ROUNDS "NAME:BINARY:WORKERS ..." PETREL-BENCH-ARGS...
#   e.g. bench/ab.sh 3 "old:/tmp/old/petrel:2 new:build/petrel:2" --scenario pairs --qos 0 \
#            --clients 100 --duration 4 --warmup 1
# Each run starts a fresh broker (the configuration of compare.sh) on a free loopback port,
# runs petrel-bench against it and, from SKIP seconds after the broker listens, counts the
# broker's CPU for MEASURE seconds with `perf stat -e task-clock` (env SKIP, MEASURE: 2 and 3;
# keep them inside the measured part of the run). One line per run:
#   NAME rROUND msgs/s p50 p99 lost broker_cpu_ms ns_per_msg
# ns_per_msg = broker CPU / (msgs/s * MEASURE). Needs perf; BENCH names petrel-bench
# (build/petrel-bench). Only processes this script started are stopped, by PID.
set -euo pipefail

ROUNDS=$1
CONFS=$2
shift 2
BENCH=${BENCH:-build/petrel-bench}
SKIP=${SKIP:-2}
MEASURE=${MEASURE:-3}
DIR=$(mktemp -d /tmp/petrel-ab.XXXXXX)
BROKER=""
trap '[ -n "$BROKER" ] && kill "$BROKER" 2>/dev/null; rm -rf "$DIR"' EXIT

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

run() {   # NAME BIN WORKERS ROUND ARGS...
    local name=$1 bin=$2 w=$3 round=$4 port cpu
    shift 4
    port=$(free_port)
    printf 'listener %s 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\nworkers %s\npersistence false\nmax_inflight_messages 20\nmax_queued_messages 1000000\nlog_type error\n' \
        "$port" "$w" > "$DIR/p.conf"
    "$bin" -c "$DIR/p.conf" 2> "$DIR/log" &
    BROKER=$!
    for _ in $(seq 100); do ss -ltn | grep -q ":$port " && break; sleep 0.05; done
    (sleep "$SKIP"; perf stat -x, -e task-clock -p "$BROKER" -o "$DIR/stat" -- sleep "$MEASURE" \
        > /dev/null 2>&1) &
    local stat=$!
    "$BENCH" --port "$port" "$@" > "$DIR/out.json" 2> /dev/null || true
    wait "$stat" || true
    kill "$BROKER" 2> /dev/null || true
    wait "$BROKER" 2> /dev/null || true
    BROKER=""
    cpu=$(grep task-clock "$DIR/stat" | cut -d, -f1)
    /usr/bin/python3 - "$name" "$round" "${cpu:-0}" "$MEASURE" "$DIR/out.json" <<'EOF'
import json, sys
name, rnd, cpu, measure, path = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
try:
    d = json.load(open(path))
except ValueError:
    print(f"{name} r{rnd} failed"); sys.exit(0)
rate = d["msgs_per_s"]
ns = cpu * 1e6 / (rate * measure) if rate else 0
print(f"{name} r{rnd} {rate:12.0f} p50={d['lat_us']['p50']:9.1f} p99={d['lat_us']['p99']:9.1f} "
      f"lost={d['lost']} cpu_ms={cpu:7.0f} ns/msg={ns:9.1f}")
EOF
}

for r in $(seq 1 "$ROUNDS"); do
    for c in $CONFS; do
        IFS=: read -r name bin w <<< "$c"
        run "$name" "$bin" "$w" "$r" "$@"
    done
done
