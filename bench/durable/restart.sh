#!/bin/sh
# restart.sh PETREL_BIN CONF PORT : start, time until the port accepts, RSS, stop
P=$1; C=$2; port=$3
t0=$(date +%s.%N)
$P -c $C > restart.log 2>&1 &
pid=$!
while ! /usr/bin/python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null; do sleep 0.01; done
t1=$(date +%s.%N)
sleep 1
echo "accepting_after_s=$(echo "$t1 - $t0" | bc) rss_kb=$(awk '/VmRSS/{print $2}' /proc/$pid/status) rss_anon_kb=$(awk '/RssAnon/{print $2}' /proc/$pid/status) rss_file_kb=$(awk '/RssFile/{print $2}' /proc/$pid/status)"
grep -E "store (opened|loaded)|persistence location" restart.log | sed 's/^[^ ]* //'
kill $pid; wait $pid
