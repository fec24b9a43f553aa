#!/bin/sh
# Durable QoS 1 pairs to persistent sessions: Petrel (sync always, periodic 100 ms) vs Mosquitto.
# usage: run.sh PETREL_BIN PETREL_BENCH ROUNDS
P=$1; B=$2; R=${3:-2}; D=/var/tmp/bench-dur
for r in $(seq 1 $R); do
  for broker in petrel-always mosquitto petrel-periodic; do
    rm -rf $D/petrel-always $D/petrel-periodic $D/mosq; mkdir -p $D/mosq
    case $broker in
      mosquitto) mosquitto -c $D/mosquitto.conf & port=28831 ;;
      petrel-always) $P -c $D/petrel-always.conf & port=28830 ;;
      petrel-periodic) $P -c $D/petrel-periodic.conf & port=28832 ;;
    esac
    pid=$!
    sleep 1
    printf '%s round %s: ' $broker $r
    $B --scenario pairs --qos 1 --persistent --clients 50 --duration 10 --port $port 2>/dev/null
    rss=$(awk '/VmRSS/{print $2}' /proc/$pid/status)
    kill $pid; wait $pid
    echo "  rss_kb=$rss"
  done
done
