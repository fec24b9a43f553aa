#!/usr/bin/env python3
"""Point-to-point messaging with Petrel and paho-mqtt (MQTT 5).

A receiver connects and subscribes to nothing. A requester publishes to
`demo/p2p/<receiver's client ID>`: Petrel hands the message to exactly that client. Each request
carries a Response Topic (the requester's own P2P topic) and Correlation Data, so the receiver
answers point-to-point as well and the requester matches replies to requests.

    python3 examples/python/p2p.py [HOST] [PORT] [COUNT]     (defaults: 127.0.0.1 1883 3)

Prints one `receiver:` and one `requester:` line per request, then `done: N requests answered`;
exits 1 if anything is missing after 10 seconds.
"""

import os
import sys
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

PARENT = "demo"


def p2p_topic(client_id):
    """The P2P topic of a client: `<parent>/p2p/<client id>`, the ID verbatim."""
    return "%s/p2p/%s" % (PARENT, client_id)


def new_client(client_id):
    # paho-mqtt 2.x wants the callback API version; 1.x (Debian 12) has no such argument.
    if hasattr(mqtt, "CallbackAPIVersion"):
        return mqtt.Client(mqtt.CallbackAPIVersion.VERSION1, client_id=client_id,
                           protocol=mqtt.MQTTv5)
    return mqtt.Client(client_id=client_id, protocol=mqtt.MQTTv5)


def connect(client, host, port):
    connected = threading.Event()
    client.on_connect = lambda c, u, flags, rc, props=None: connected.set()
    client.connect(host, port, keepalive=30)
    client.loop_start()
    if not connected.wait(10):
        sys.exit("could not connect to %s:%d" % (host, port))


def main():
    host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 1883
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    # ApsaraMQ-style client IDs: group ID, "@@@", device ID.
    receiver_id = "GID_demo@@@DEVICE_%d" % os.getpid()
    requester_id = "GID_demo@@@REQUESTER_%d" % os.getpid()
    print_lock = threading.Lock()

    def say(line):
        with print_lock:
            print(line, flush=True)

    # The receiver: no subscribe() call anywhere. Every P2P message for it arrives in on_message
    # with the full topic name.
    receiver = new_client(receiver_id)

    def on_request(client, userdata, msg):
        say("receiver: %s %s" % (msg.topic, msg.payload.decode()))
        reply_to = getattr(msg.properties, "ResponseTopic", None)
        if reply_to:
            props = Properties(PacketTypes.PUBLISH)
            props.CorrelationData = msg.properties.CorrelationData
            client.publish(reply_to, b"re: " + msg.payload, qos=1, properties=props)

    receiver.on_message = on_request
    connect(receiver, host, port)

    requester = new_client(requester_id)
    answered = threading.Semaphore(0)

    def on_reply(client, userdata, msg):
        corr = msg.properties.CorrelationData.decode()
        say("requester: %s correlation=%s" % (msg.payload.decode(), corr))
        answered.release()

    requester.on_message = on_reply
    connect(requester, host, port)

    for i in range(1, count + 1):
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = p2p_topic(requester_id)
        props.CorrelationData = b"req-%d" % i
        requester.publish(p2p_topic(receiver_id), b"hello %d" % i, qos=1, properties=props)

    ok = all(answered.acquire(timeout=10) for _ in range(count))
    for c in (requester, receiver):
        c.disconnect()
        c.loop_stop()
    if not ok:
        sys.exit("timed out waiting for replies")
    say("done: %d requests answered" % count)


if __name__ == "__main__":
    main()
