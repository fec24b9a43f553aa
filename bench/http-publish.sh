#!/usr/bin/env bash
# bench/http-publish.sh - HTTP API publish rate to P2P receivers (issue 8).
#
# For each round, each `workers` value and each case, starts a fresh Petrel with an MQTT
# listener and an HTTP API listener (loopback, ephemeral ports, a generated write key,
# http_rate_limit 0), runs `petrel-bench --scenario http` against it, samples the broker's CPU
# time and the load average every 0.25 s, stops the broker, and finally prints a Markdown table
# of medians. Every raw JSON line and sample stays in the output directory.
#
#   bench/http-publish.sh [--petrel BIN] [--bench BIN] [--rounds N] [--duration S]
#                         [--warmup S] [--receivers N] [--workers "1 2"] [--cases "..."]
#                         [--out DIR]
#
# A case is single-q<Q>-h<H> (POST /api/v1/publish, QoS Q, H connections) or
# batch<B>-q<Q>-h<H> (POST /api/v1/publish/batch with B messages a request).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PETREL=$ROOT/build/petrel
BENCH=$ROOT/build/petrel-bench
ROUNDS=3
DURATION=10
WARMUP=2
RECEIVERS=100
WORKERS="1 2"
CASES="single-q0-h1 single-q0-h8 single-q1-h1 single-q1-h8 batch100-q0-h1 batch100-q0-h8 batch100-q1-h1 batch100-q1-h8"
OUT=

while [ $# -gt 0 ]; do
    case $1 in
    --petrel) PETREL=$2; shift 2 ;;
    --bench) BENCH=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --receivers) RECEIVERS=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --cases) CASES=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "usage: see the top of $0" >&2; exit 2 ;;
    esac
done
[ -n "$OUT" ] || OUT=$(mktemp -d /tmp/http-publish.XXXXXX)
mkdir -p "$OUT"
KEY=bench-write-key-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')
printf '%s write bench\n' "$KEY" >"$OUT/api-keys"

proc_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

BROKER_PID=
stop_broker() {
    if [ -n "$BROKER_PID" ]; then
        kill "$BROKER_PID" 2>/dev/null || true
        wait "$BROKER_PID" 2>/dev/null || true
        BROKER_PID=
    fi
}
trap stop_broker EXIT

# run_one ROUND WORKERS CASE
run_one() {
    local round=$1 w=$2 case=$3 dir="$OUT/r$1-w$2-$3"
    local kind=${case%%-*} qos=${case#*-q} conns=${case##*-h} batch=0
    qos=${qos%%-*}
    [ "$kind" = single ] || batch=${kind#batch}
    mkdir -p "$dir"
    cat >"$dir/petrel.conf" <<EOF
listener 0 127.0.0.1
http_listener 0 127.0.0.1
http_api_key_file $OUT/api-keys
http_rate_limit 0
workers $w
EOF
    : >"$dir/broker.log" # exists before the broker opens it, for the port look-up below
    "$PETREL" -c "$dir/petrel.conf" >"$dir/broker.log" 2>&1 &
    BROKER_PID=$!
    local mport= hport= i
    for i in $(seq 100); do
        mport=$(sed -n 's/.*port=\([0-9]*\) protocol=mqtt.*/\1/p' "$dir/broker.log" | head -1)
        hport=$(sed -n 's/.*port=\([0-9]*\) protocol=http.*/\1/p' "$dir/broker.log" | head -1)
        [ -n "$mport" ] && [ -n "$hport" ] && break
        sleep 0.05
    done
    if [ -z "$mport" ] || [ -z "$hport" ]; then
        echo "broker did not start, see $dir/broker.log" >&2
        exit 1
    fi
    local args=(--scenario http --port "$mport" --http-port "$hport" --http-key "$KEY"
        --clients "$RECEIVERS" --qos "$qos" --http-conns "$conns" --http-batch "$batch"
        --duration "$DURATION" --warmup "$WARMUP" --quiet)
    echo "petrel-bench ${args[*]}" | sed "s/$KEY/KEY/" >"$dir/command"
    local t0
    t0=$(date +%s.%N)
    "$BENCH" "${args[@]}" >"$dir/bench.json" 2>"$dir/bench.err" &
    local bpid=$!
    : >"$dir/samples"
    while kill -0 "$bpid" 2>/dev/null; do
        echo "$(date +%s.%N) $(proc_ticks "$BROKER_PID") $(cut -d' ' -f1 /proc/loadavg)" \
            >>"$dir/samples"
        sleep 0.25
    done
    wait "$bpid" || echo "petrel-bench exited $? in $dir" >&2
    echo "$t0" >"$dir/t0"
    stop_broker
    python3 - "$dir" "$round" "$w" "$case" "$WARMUP" "$DURATION" >>"$OUT/runs.jsonl" <<'PY'
import json, os, sys
d, rnd, w, case, warm, dur = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5]), float(sys.argv[6])
b = json.loads(open(os.path.join(d, "bench.json")).read().strip() or "{}")
t0 = float(open(os.path.join(d, "t0")).read())
s = [tuple(map(float, l.split())) for l in open(os.path.join(d, "samples")) if len(l.split()) == 3]
lo, hi = t0 + b.get("setup_s", 0) + warm, t0 + b.get("setup_s", 0) + warm + dur
win = [x for x in s if lo <= x[0] <= hi]
hz = os.sysconf("SC_CLK_TCK")
cpu = 100.0 * (win[-1][1] - win[0][1]) / hz / (win[-1][0] - win[0][0]) if len(win) > 1 else None
loads = [x[2] for x in win]
print(json.dumps({"round": rnd, "workers": w, "case": case, "bench": b, "broker_cpu": cpu,
                  "load_min": min(loads) if loads else None, "load_max": max(loads) if loads else None}))
PY
    tail -1 "$OUT/runs.jsonl" | python3 -c '
import json, sys
r = json.loads(sys.stdin.read()); b = r["bench"]
print("  w%d %-16s round %d: %9.0f msgs/s %8.0f req/s  p50 %7.0f us p99 %7.0f us  lost %s non200 %s  broker cpu %s%%  load %s-%s%s" % (
    r["workers"], r["case"], r["round"], b.get("msgs_per_s", 0), b.get("http_req_per_s", 0),
    b.get("lat_us", {}).get("p50", 0), b.get("lat_us", {}).get("p99", 0), b.get("lost"),
    b.get("http_non200"), "%.0f" % r["broker_cpu"] if r["broker_cpu"] is not None else "?",
    r["load_min"], r["load_max"], "  ERROR " + b["error"] if "error" in b else ""))' >&2
}

{
    echo "# $(date -u +%FT%TZ) petrel $PETREL, petrel-bench $BENCH"
    echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'); load average $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/header" >&2
for round in $(seq "$ROUNDS"); do
    for w in $WORKERS; do
        for case in $CASES; do
            run_one "$round" "$w" "$case"
        done
    done
done
echo "# done $(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg); raw runs in $OUT/runs.jsonl" >&2

python3 - "$OUT/runs.jsonl" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
keys = []
for r in runs:
    k = (r["workers"], r["case"])
    if k not in keys:
        keys.append(k)
def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None
def f(x, p="%.0f"):
    return "-" if x is None else p % x
print("| workers | case | delivered msgs/s (min - max) | HTTP req/s | latency p50 / p99 / p99.9 us | HTTP answer p50 / p99 us | lost / dup / ooo | non-200 | broker CPU % | generator CPU % | load avg |")
print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for k in keys:
    rs = [r for r in runs if (r["workers"], r["case"]) == k]
    b = [r["bench"] for r in rs]
    tput = [x.get("msgs_per_s", 0) for x in b]
    g = lambda fn: med([fn(x) for x in b])
    print("| %d | %s | %s (%s - %s) | %s | %s / %s / %s | %s / %s | %d / %d / %d | %d | %s | %s | %s - %s |" % (
        k[0], k[1], f(med(tput)), f(min(tput)), f(max(tput)), f(g(lambda x: x.get("http_req_per_s"))),
        f(g(lambda x: x["lat_us"]["p50"])), f(g(lambda x: x["lat_us"]["p99"])), f(g(lambda x: x["lat_us"]["p999"])),
        f(g(lambda x: x["http_lat_us"]["p50"])), f(g(lambda x: x["http_lat_us"]["p99"])),
        sum(x.get("lost", 0) for x in b), sum(x.get("duplicated", 0) for x in b),
        sum(x.get("out_of_order", 0) for x in b), sum(x.get("http_non200", 0) for x in b),
        f(med([r["broker_cpu"] for r in rs])), f(g(lambda x: 100 * x.get("bench_cpu", 0))),
        f(min(r["load_min"] for r in rs if r["load_min"] is not None), "%.1f"),
        f(max(r["load_max"] for r in rs if r["load_max"] is not None), "%.1f")))
errs = [r for r in runs if "error" in r["bench"]]
for r in errs:
    print("\nerror in round %d w%d %s: %s" % (r["round"], r["workers"], r["case"], r["bench"]["error"]))
PY
