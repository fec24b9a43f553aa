#!/usr/bin/env bash
# compare.sh - run the same petrel-bench scenarios against Mosquitto and Petrel, interleaved,
# and print per scenario the medians and the Petrel/Mosquitto ratio, with each broker's CPU and
# memory as sampled from /proc while it ran.
#
# Each run starts a fresh broker on a free loopback port with a generated configuration in a
# temporary directory, runs petrel-bench against it, and stops it. Rounds are interleaved
# (mosquitto petrel mosquitto petrel ...) so that slow drifts of a shared machine hit both.
# Only processes this script started are ever stopped (by PID, on exit too).
#
# Usage: bench/compare.sh [options]            (bench/README.md has the details)
#   --rounds N            runs per broker and scenario (3)
#   --duration S          measured seconds per run (10)
#   --warmup S            warm-up seconds per run (2)
#   --scenarios "A B"     scenario names, see --list (default: the standard set)
#   --brokers "X Y"       mosquitto, petrel, petrel-wN (Petrel with `workers N`); the ratio is
#                         last / first                     (mosquitto petrel)
#   --bench-threads N     petrel-bench --threads (1)
#   --settle S            petrel-bench --settle: wait S seconds after set-up (0)
#   --summarize DIR       only print the summary of an earlier run kept in DIR
#   --out DIR             keep results there (default: a new /tmp/petrel-compare.XXXXXX)
#   --petrel PATH         broker binary (build/petrel)
#   --bench PATH          generator binary (build/petrel-bench)
#   --list                print the scenario table and exit
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
PY=/usr/bin/python3

ROUNDS=3
DURATION=10
WARMUP=2
BROKERS="mosquitto petrel"
BENCH_THREADS=1
SETTLE=0
SUMMARIZE=""
OUT=""
PETREL_BIN="$ROOT/build/petrel"
BENCH_BIN="$ROOT/build/petrel-bench"
MOSQUITTO_BIN=/usr/sbin/mosquitto
DEFAULT_SCENARIOS="pairs-q0 pairs-q1 fanin-q0 fanout-q0 p2p-q1 latency-q1 conn-10k"

# name -> petrel-bench arguments. Payloads are 64 bytes (the generator's default).
declare -A SC
SC[pairs-q0]="--scenario pairs --qos 0 --clients 100"
SC[pairs-q1]="--scenario pairs --qos 1 --clients 100"
SC[pairs-q2]="--scenario pairs --qos 2 --clients 100"
SC[pairs-q1-v5]="--scenario pairs --qos 1 --clients 100 --mqtt 5"
SC[fanin-q0]="--scenario fanin --qos 0 --publishers 50"
SC[fanin-q1]="--scenario fanin --qos 1 --publishers 50"
SC[fanout-q0]="--scenario fanout --qos 0 --subscribers 50"
SC[fanout-q1]="--scenario fanout --qos 1 --subscribers 50"
SC[shared-q1]="--scenario shared --qos 1 --publishers 50 --subscribers 10"
SC[p2p-q1]="--scenario p2p --qos 1 --clients 100"
# Fixed offered load: 100 publishers x 50 msgs/s = 5 000 msgs/s.
SC[latency-q1]="--scenario pairs --qos 1 --clients 100 --rate 50"
SC[latency-q0]="--scenario pairs --qos 0 --clients 100 --rate 50"
SC[conn-10k]="--scenario conn --clients 10000 --conn-rate 0"
SC[conn-1k]="--scenario conn --clients 1000 --conn-rate 0"
# Over TLS (tls-*: both brokers get one TLS listener with the same generated certificate and
# key; petrel-bench verifies it against the generated CA) and over WebSocket (ws-*: both get a
# `protocol websockets` listener, plus a plain TCP one that Mosquitto needs to start).
SC[tls-conn]="--scenario conn --clients 2000 --conn-rate 0"
SC[tls-pairs-q0]="--scenario pairs --qos 0 --clients 100"
SC[ws-pairs-q0]="--scenario pairs --qos 0 --clients 100"
# P2P flatness: the same P2P load with N unrelated filters (bg/<i>/+/x) subscribed first,
# against the same traffic as ordinary pub/sub.
for n in 0 10000 100000; do
    k=$([ $n = 0 ] && echo 0 || echo $((n / 1000))k)
    SC[p2p-bg$k]="--scenario p2p --qos 1 --clients 100 --background-subs $n"
    SC[pairs-bg$k]="--scenario pairs --qos 1 --clients 100 --background-subs $n"
    # and at a fixed 5 000 msgs/s, for latency without queueing
    SC[p2p-lat-bg$k]="--scenario p2p --qos 1 --clients 100 --rate 50 --background-subs $n"
    SC[pairs-lat-bg$k]="--scenario pairs --qos 1 --clients 100 --rate 50 --background-subs $n"
done

# What a broker without P2P needs to carry the p2p load: receivers subscribe to their own
# P2P topic (ordinary pub/sub on the same topics).
mosquitto_extra() {
    case "$1" in
    p2p*) echo "--p2p-subscribe" ;;
    *) echo "" ;;
    esac
}

die() { echo "compare.sh: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
    case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --scenarios) SCENARIOS=$2; shift 2 ;;
    --brokers) BROKERS=$2; shift 2 ;;
    --bench-threads) BENCH_THREADS=$2; shift 2 ;;
    --settle) SETTLE=$2; shift 2 ;;
    --summarize) SUMMARIZE=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --petrel) PETREL_BIN=$2; shift 2 ;;
    --bench) BENCH_BIN=$2; shift 2 ;;
    --list)
        for k in $(printf '%s\n' "${!SC[@]}" | sort); do printf '%-14s %s\n' "$k" "${SC[$k]}"; done
        exit 0 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (try --help)" ;;
    esac
done

# The transport a scenario runs over: its name's prefix.
transport() {
    case "$1" in
    tls-*) echo tls ;;
    ws-*) echo ws ;;
    *) echo tcp ;;
    esac
}

# A CA and a server certificate for 127.0.0.1 (ECDSA P-256), made once per comparison in
# $OUT/pki. Readable by all: Mosquitto started as root reads them as user mosquitto.
make_pki() {
    PKI="$OUT/pki"
    [ -f "$PKI/server.crt" ] && return 0
    command -v openssl >/dev/null || die "openssl is needed for the tls-* scenarios"
    mkdir -p "$PKI"
    local ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
    # shellcheck disable=SC2086
    (cd "$PKI" && openssl req -x509 $ec -keyout ca.key -out ca.crt -days 7 \
            -subj "/CN=compare.sh CA" &&
        openssl req $ec -keyout server.key -out server.csr -subj /CN=localhost &&
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' \
            > ext.cnf &&
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
            -out server.crt -days 7 -extfile ext.cnf) > "$OUT/pki.log" 2>&1 ||
        die "openssl failed; see $OUT/pki.log"
    chmod 755 "$OUT" "$PKI"
    chmod 644 "$PKI"/*
}

# ---------------------------------------------------------------------------- processes
STARTED=()            # PIDs this script started and has not reaped yet
cleanup() {
    for pid in "${STARTED[@]:-}"; do
        [ -n "$pid" ] || continue
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    STARTED=()
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

forget() {   # forget a reaped PID
    local keep=() p
    for p in "${STARTED[@]:-}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    STARTED=("${keep[@]:-}")
}

free_port() {
    $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_listening() {   # port pid
    for _ in $(seq 200); do
        kill -0 "$2" 2>/dev/null || return 1
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    return 1
}

# The same settings for both brokers; keys are Mosquitto's, which Petrel reads.
write_config() {   # file port broker transport
    local workers=""
    case "$3" in petrel-w*) workers="workers ${3#petrel-w}" ;; esac
    {
        echo "listener $2 127.0.0.1"
        case "$4" in
        tls) echo "certfile $PKI/server.crt"; echo "keyfile $PKI/server.key" ;;
        ws) echo "protocol websockets" ;;
        esac
        echo "allow_anonymous true"
        echo "set_tcp_nodelay true"          # Nagle off on both (Petrel's default anyway)
        echo "max_inflight_messages 20"      # both brokers' default, written out
        echo "max_queued_messages 1000000"   # large enough that the load is never dropped
        echo "persistence false"
        echo "log_dest stderr"
        echo "log_type error"
        echo "log_type warning"
        [ -z "$workers" ] || echo "$workers"
        # Mosquitto 2.0.11 does not start with a WebSocket listener only; unused otherwise.
        [ "$4" != ws ] || echo "listener $(free_port) 127.0.0.1"
    } > "$1"
}

proc_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
proc_rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

# ---------------------------------------------------------------------------- one run
run_one() {   # broker scenario round
    local broker=$1 scen=$2 round=$3
    local dir="$OUT/runs/$scen/$broker-$round"
    mkdir -p "$dir"
    local port; port=$(free_port)
    local tp; tp=$(transport "$scen")
    write_config "$dir/broker.conf" "$port" "$broker" "$tp"
    local targs=""
    case "$tp" in
    tls) targs="--tls --cafile $PKI/ca.crt" ;;
    ws) targs="--ws" ;;
    esac
    local bin=$PETREL_BIN
    [ "$broker" = mosquitto ] && bin=$MOSQUITTO_BIN
    "$bin" -c "$dir/broker.conf" > "$dir/broker.log" 2>&1 &
    local bpid=$!
    STARTED+=("$bpid")
    if ! wait_listening "$port" "$bpid"; then
        echo "  $broker did not start; see $dir/broker.log" >&2
        kill -TERM "$bpid" 2>/dev/null || true; wait "$bpid" 2>/dev/null || true; forget "$bpid"
        return 1
    fi
    local extra=""
    [ "$broker" = mosquitto ] && extra=$(mosquitto_extra "$scen")
    # shellcheck disable=SC2086
    local args="--host 127.0.0.1 --port $port --duration $DURATION --warmup $WARMUP \
--settle $SETTLE --threads $BENCH_THREADS --client-prefix cmp ${SC[$scen]} $extra $targs"
    echo "$BENCH_BIN $args" > "$dir/command"
    local rss0 t0 tk0
    rss0=$(proc_rss "$bpid")
    # shellcheck disable=SC2086
    timeout $((${DURATION%.*} + ${WARMUP%.*} + ${SETTLE%.*} + 120)) "$BENCH_BIN" $args \
        > "$dir/bench.json" 2> "$dir/bench.err" &
    local gpid=$!
    STARTED+=("$gpid")
    # Sample the broker every 0.25 s: time (ns), CPU ticks, RSS (kB).
    : > "$dir/samples"
    while kill -0 "$gpid" 2>/dev/null; do
        echo "$(date +%s%N) $(proc_ticks "$bpid") $(proc_rss "$bpid")" >> "$dir/samples"
        sleep 0.25
    done
    local brc=0
    wait "$gpid" || brc=$?
    forget "$gpid"
    kill -TERM "$bpid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$bpid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$bpid" 2>/dev/null || true
    wait "$bpid" 2>/dev/null || true
    forget "$bpid"
    $PY - "$dir" "$broker" "$scen" "$round" "$brc" "$rss0" "$WARMUP" "$DURATION" >> "$RESULTS" <<'EOF'
import json, os, sys
d, broker, scen, rnd, rc, rss0, warmup, duration = sys.argv[1:]
try:
    bench = json.loads(open(os.path.join(d, "bench.json")).read().strip().splitlines()[-1])
except Exception as e:
    bench = {"error": "no JSON from petrel-bench (%s)" % e}
samples = []
for line in open(os.path.join(d, "samples")):
    p = line.split()
    if len(p) == 3 and int(p[2]) > 0:
        samples.append((int(p[0]) / 1e9, int(p[1]), int(p[2])))
hz = os.sysconf("SC_CLK_TCK")
cpu = None
if len(samples) >= 2:
    # CPU over the measured window: petrel-bench reports how long its set-up took; the first
    # sample is taken just after it started.
    t0 = samples[0][0] + float(bench.get("setup_s", 0)) + float(bench.get("settle_s", 0)) \
        + float(warmup)
    t1 = t0 + float(duration)
    win = [s for s in samples if t0 <= s[0] <= t1] or samples
    if len(win) >= 2 and win[-1][0] > win[0][0]:
        cpu = 100.0 * (win[-1][1] - win[0][1]) / hz / (win[-1][0] - win[0][0])
rec = {"broker": broker, "scenario": scen, "round": int(rnd), "exit": int(rc), "bench": bench,
       "cpu_pct": cpu, "rss_base_kb": int(rss0),
       "rss_max_kb": max((s[2] for s in samples), default=0)}
print(json.dumps(rec))
EOF
    local last; last=$(tail -n 1 "$RESULTS")
    $PY -c 'import json,sys; r=json.loads(sys.argv[1]); b=r["bench"]
if r["bench"].get("scenario") == "conn":
    print("  %-10s %-12s round %d: %7.0f conn/s, %d failed, RSS %d -> %d kB%s" % (r["broker"], r["scenario"], r["round"], b.get("connect_rate", 0), b.get("connect_failed", 0), r["rss_base_kb"], r["rss_max_kb"], "  ERROR " + b["error"] if "error" in b else ""))
else:
    print("  %-10s %-12s round %d: %9.0f msgs/s  p50 %7.0f us  p99 %7.0f us  lost %d dup %d  cpu %s%%%s" % (r["broker"], r["scenario"], r["round"], b.get("msgs_per_s", 0), b.get("lat_us", {}).get("p50", 0), b.get("lat_us", {}).get("p99", 0), b.get("lost", 0), b.get("duplicated", 0), "%.0f" % r["cpu_pct"] if r["cpu_pct"] is not None else "?", "  ERROR " + b["error"] if "error" in b else ""))' "$last" >&2
}

summarize() {   # results.jsonl brokers scenarios
    $PY - "$1" "$2" "$3" <<'EOF'
import json, statistics, sys
path, brokers, scenarios = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
runs = [json.loads(l) for l in open(path) if l.strip()]

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None

def fmt(x, f="%.0f"):
    return "-" if x is None else f % x

def per(scen, broker, key):
    out = []
    for r in runs:
        if r["scenario"] == scen and r["broker"] == broker:
            out.append(key(r))
    return out

first, last = brokers[0], brokers[-1]
print()
rounds = max([r["round"] for r in runs] or [0])
print("Medians over %d round(s) per broker and scenario; ratio = %s / %s (throughput; p99 "
      "latency for fixed-rate runs, where lower is better)." % (rounds, last, first))
print()
print("| scenario | broker | msgs/s | (min-max) | p50 us | p99 us | p99.9 us | lost | dup | errors | broker CPU % | bench CPU % | broker RSS max MB | ratio |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
conn_rows = []
for scen in scenarios:
    if any(r["scenario"] == scen and r["bench"].get("scenario") == "conn" for r in runs):
        conn_rows.append(scen)
        continue
    # fixed offered load: compare p99 latency (lower is better) instead of throughput
    latency = any(r["bench"].get("rate", 0) for r in runs if r["scenario"] == scen)
    vals = {}
    for b in brokers:
        ok = lambda r: "error" not in r["bench"]
        tputs = [x for x in per(scen, b, lambda r: r["bench"].get("msgs_per_s") if ok(r) else None)
                 if x is not None]
        tput = med(tputs)
        spread = "%.0f-%.0f" % (min(tputs), max(tputs)) if tputs else "-"
        p50 = med(per(scen, b, lambda r: r["bench"].get("lat_us", {}).get("p50") if ok(r) else None))
        p99 = med(per(scen, b, lambda r: r["bench"].get("lat_us", {}).get("p99") if ok(r) else None))
        p999 = med(per(scen, b, lambda r: r["bench"].get("lat_us", {}).get("p999") if ok(r) else None))
        lost = sum(per(scen, b, lambda r: r["bench"].get("lost", 0)))
        dup = sum(per(scen, b, lambda r: r["bench"].get("duplicated", 0)))
        errs = sum(per(scen, b, lambda r: r["bench"].get("errors", 0) + (1 if "error" in r["bench"] else 0)))
        cpu = med(per(scen, b, lambda r: r["cpu_pct"]))
        gcpu = med(per(scen, b, lambda r: 100 * r["bench"]["bench_cpu"] if "bench_cpu" in r["bench"] else None))
        rss = med(per(scen, b, lambda r: r["rss_max_kb"] / 1024.0))
        vals[b] = (tput, p99)
        ratio = ""
        if b == last and b != first:
            if latency and vals[first][1] and p99:
                ratio = "p99 %.2fx" % (p99 / vals[first][1])
            elif vals[first][0] and tput:
                ratio = "**%.2fx**" % (tput / vals[first][0])
        print("| %s | %s | %s | %s | %s | %s | %s | %d | %d | %d | %s | %s | %s | %s |" % (
            scen, b, fmt(tput), spread, fmt(p50), fmt(p99), fmt(p999), lost, dup, errs, fmt(cpu),
            fmt(gcpu), fmt(rss, "%.1f"), ratio))
if conn_rows:
    print()
    print("| scenario | broker | connected | failed | connect/s | CONNACK p50 us | p99 us | RSS growth KB/conn | ratio (connect/s) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for scen in conn_rows:
        rates = {}
        for b in brokers:
            conn = med(per(scen, b, lambda r: r["bench"].get("connected")))
            failed = sum(per(scen, b, lambda r: r["bench"].get("connect_failed", 0)))
            rate = med(per(scen, b, lambda r: r["bench"].get("connect_rate")))
            p50 = med(per(scen, b, lambda r: r["bench"].get("lat_us", {}).get("p50")))
            p99 = med(per(scen, b, lambda r: r["bench"].get("lat_us", {}).get("p99")))
            growth = med(per(scen, b, lambda r: (r["rss_max_kb"] - r["rss_base_kb"]) / r["bench"]["connected"]
                             if r["bench"].get("connected") else None))
            rates[b] = rate
            ratio = ""
            if b == last and b != first and rates[first] and rate:
                ratio = "**%.2fx**" % (rate / rates[first])
            print("| %s | %s | %s | %d | %s | %s | %s | %s | %s |" % (
                scen, b, fmt(conn), failed, fmt(rate), fmt(p50), fmt(p99), fmt(growth, "%.2f"), ratio))
EOF
}

# ---------------------------------------------------------------------------- main
if [ -n "$SUMMARIZE" ]; then
    [ -f "$SUMMARIZE/results.jsonl" ] || die "no $SUMMARIZE/results.jsonl"
    # brokers and scenarios in the order they were run
    b=$($PY -c 'import json,sys; seen=[]; [seen.append(json.loads(l)["broker"]) for l in open(sys.argv[1]) if l.strip() and json.loads(l)["broker"] not in seen]; print(" ".join(seen))' "$SUMMARIZE/results.jsonl")
    s=$($PY -c 'import json,sys; seen=[]; [seen.append(json.loads(l)["scenario"]) for l in open(sys.argv[1]) if l.strip() and json.loads(l)["scenario"] not in seen]; print(" ".join(seen))' "$SUMMARIZE/results.jsonl")
    summarize "$SUMMARIZE/results.jsonl" "$b" "$s"
    exit 0
fi

SCENARIOS=${SCENARIOS:-$DEFAULT_SCENARIOS}
for s in $SCENARIOS; do [ -n "${SC[$s]:-}" ] || die "unknown scenario '$s' (try --list)"; done
for b in $BROKERS; do
    case "$b" in mosquitto|petrel|petrel-w[0-9]*) ;; *) die "unknown broker '$b'" ;; esac
done
[ -x "$BENCH_BIN" ] || die "$BENCH_BIN not found: build it (make, or cmake + make petrel-bench)"
case " $BROKERS " in *" petrel"*) [ -x "$PETREL_BIN" ] || die "$PETREL_BIN not found" ;; esac
case " $BROKERS " in
*" mosquitto "*)
    if [ ! -x "$MOSQUITTO_BIN" ]; then
        [ "$(id -u)" = 0 ] || die "mosquitto is not installed (apt-get install mosquitto)"
        echo "installing mosquitto..." >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null
    fi ;;
esac

if [ -z "$OUT" ]; then OUT=$(mktemp -d /tmp/petrel-compare.XXXXXX); fi
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
: > "$RESULTS"
case " $SCENARIOS " in *" tls-"*) make_pki ;; esac
{
    echo "# compare.sh $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "# brokers: $BROKERS; rounds $ROUNDS; duration $DURATION s; warm-up $WARMUP s"
    # (the tree this script runs from: the binary is assumed to be built from it)
    echo "# petrel: $PETREL_BIN (tree at $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$( \
        [ -n "$(git -C "$ROOT" status --porcelain -- src CMakeLists.txt 2>/dev/null)" ] \
        && echo ', with uncommitted changes in src/'))"
    echo "# mosquitto: $($MOSQUITTO_BIN -h 2>/dev/null | head -n 1 || true)"
    echo "# machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'); open files $(ulimit -n); load average $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/header.txt" >&2

for scen in $SCENARIOS; do
    echo "== $scen: petrel-bench ${SC[$scen]}" >&2
    for round in $(seq "$ROUNDS"); do
        for broker in $BROKERS; do
            run_one "$broker" "$scen" "$round" || true
        done
    done
done

summarize "$RESULTS" "$BROKERS" "$SCENARIOS" | tee "$OUT/summary.md"
echo "results: $OUT (results.jsonl, summary.md, runs/<scenario>/<broker>-<round>/)" >&2
