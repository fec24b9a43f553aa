#!/usr/bin/env python3
"""Publish/subscribe with Petrel and paho-mqtt, over TCP or WebSocket.

A subscriber subscribes to `demo/news/#` (QoS 1); a publisher sends COUNT messages to
`demo/news/1`, `demo/news/2`, ...; the subscriber prints each one. With TRANSPORT `ws` both
clients connect to a WebSocket listener (`protocol websockets` in petrel.conf) at ws://HOST:PORT/mqtt.

    python3 examples/python/pubsub.py [HOST] [PORT] [COUNT] [tcp|ws]   (defaults: 127.0.0.1 1883 3 tcp)

Prints one `subscriber:` line per message, then `done: N messages received`; exits 1 if
anything is missing after 10 seconds.
"""

import os
import sys
import threading

import paho.mqtt.client as mqtt


def new_client(client_id, transport):
    kw = {"client_id": client_id, "protocol": mqtt.MQTTv311,
          "transport": "websockets" if transport == "ws" else "tcp"}
    # paho-mqtt 2.x wants the callback API version; 1.x (Debian 12) has no such argument.
    if hasattr(mqtt, "CallbackAPIVersion"):
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION1, **kw)
    else:
        c = mqtt.Client(**kw)
    if transport == "ws":
        c.ws_set_options(path="/mqtt")
    return c


def connect(client, host, port):
    connected = threading.Event()
    client.on_connect = lambda c, u, flags, rc: connected.set()
    client.connect(host, port, keepalive=30)
    client.loop_start()
    if not connected.wait(10):
        sys.exit("could not connect to %s:%d" % (host, port))


def main():
    host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 1883
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    transport = sys.argv[4] if len(sys.argv) > 4 else "tcp"
    received = threading.Semaphore(0)

    subscriber = new_client("demo-sub-%d" % os.getpid(), transport)

    def on_message(client, userdata, msg):
        print("subscriber: %s %s" % (msg.topic, msg.payload.decode()), flush=True)
        received.release()

    subscribed = threading.Event()
    subscriber.on_message = on_message
    subscriber.on_subscribe = lambda c, u, mid, granted: subscribed.set()
    connect(subscriber, host, port)
    subscriber.subscribe("demo/news/#", qos=1)
    if not subscribed.wait(10):
        sys.exit("no SUBACK")

    publisher = new_client("demo-pub-%d" % os.getpid(), transport)
    connect(publisher, host, port)
    for i in range(1, count + 1):
        publisher.publish("demo/news/%d" % i, b"news %d" % i, qos=1).wait_for_publish(10)

    ok = all(received.acquire(timeout=10) for _ in range(count))
    for c in (publisher, subscriber):
        c.disconnect()
        c.loop_stop()
    if not ok:
        sys.exit("timed out waiting for messages")
    print("done: %d messages received" % count)


if __name__ == "__main__":
    main()
