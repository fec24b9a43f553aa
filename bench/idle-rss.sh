#!/bin/bash
# RSS growth per idle connection, a quick check outside compare.sh.
# usage: bench/idle-rss.sh BROKER_BINARY WORKERS   (needs build/petrel-bench; ulimit -n >= 10100)
BIN=$1; W=$2; D=$(mktemp -d)
printf 'listener 0 127.0.0.1\nallow_anonymous true\nworkers %s\npersistence false\nlog_type error\n' $W > $D/p.conf
$BIN -c $D/p.conf 2> $D/log & PID=$!
sleep 0.5
PORT=$(grep -o 'port=[0-9]*' $D/log | head -1 | cut -d= -f2)
[ -z "$PORT" ] && PORT=$(ss -ltnp | grep "pid=$PID" | grep -o '127.0.0.1:[0-9]*' | head -1 | cut -d: -f2)
R0=$(grep VmRSS /proc/$PID/status | awk '{print $2}')
${BENCH:-build/petrel-bench} --port $PORT --scenario conn --clients 10000 --duration 4 --warmup 0 > $D/out 2>/dev/null &
BP=$!
MAX=0; for i in $(seq 1 40); do sleep 0.15; R=$(grep VmRSS /proc/$PID/status | awk '{print $2}'); [ $R -gt $MAX ] && MAX=$R; done
wait $BP
echo "workers=$W rss_before=${R0}kB peak=${MAX}kB per_conn=$(( (MAX-R0)*1024/10000 ))B"
kill $PID; wait $PID 2>/dev/null; rm -rf $D
