// Point-to-point messaging with Petrel and MQTT.js (MQTT 5).
//
// A receiver connects and subscribes to nothing. A requester publishes to
// `demo/p2p/<receiver's client ID>`: Petrel hands the message to exactly that client. Each
// request carries a Response Topic (the requester's own P2P topic) and Correlation Data, so the
// receiver answers point-to-point as well and the requester matches replies to requests.
//
//   npm install mqtt        (once, next to this file; or see examples/README.md)
//   node p2p.mjs [HOST] [PORT] [COUNT]        (defaults: 127.0.0.1 1883 3)
//
// Prints one `receiver:` and one `requester:` line per request, then `done: N requests
// answered`; exits 1 if anything is missing after 10 seconds.

import mqtt from 'mqtt';

const [host = '127.0.0.1', port = '1883', countArg = '3'] = process.argv.slice(2);
const count = Number(countArg);
const PARENT = 'demo';
// The P2P topic of a client: `<parent>/p2p/<client id>`, the ID verbatim.
const p2pTopic = (clientId) => `${PARENT}/p2p/${clientId}`;

// ApsaraMQ-style client IDs: group ID, "@@@", device ID.
const receiverId = `GID_demo@@@DEVICE_${process.pid}`;
const requesterId = `GID_demo@@@REQUESTER_${process.pid}`;
const options = { protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 10000 };

const timer = setTimeout(() => {
  console.error('timed out waiting for replies');
  process.exit(1);
}, 10000);

// The receiver: no subscribe() call anywhere. MQTT.js emits every PUBLISH it gets as
// 'message', with the full topic name.
const receiver = await mqtt.connectAsync(`mqtt://${host}:${port}`, { ...options, clientId: receiverId });
receiver.on('message', (topic, payload, packet) => {
  console.log(`receiver: ${topic} ${payload}`);
  const { responseTopic, correlationData } = packet.properties ?? {};
  if (responseTopic) {
    receiver.publish(responseTopic, `re: ${payload}`, { qos: 1, properties: { correlationData } });
  }
});

const requester = await mqtt.connectAsync(`mqtt://${host}:${port}`, { ...options, clientId: requesterId });
let answered = 0;
const allAnswered = new Promise((resolve) => {
  requester.on('message', (topic, payload, packet) => {
    console.log(`requester: ${payload} correlation=${packet.properties.correlationData}`);
    if (++answered === count) resolve();
  });
});

for (let i = 1; i <= count; i++) {
  await requester.publishAsync(p2pTopic(receiverId), `hello ${i}`, {
    qos: 1,
    properties: { responseTopic: p2pTopic(requesterId), correlationData: Buffer.from(`req-${i}`) },
  });
}
await allAnswered;
clearTimeout(timer);
await requester.endAsync();
await receiver.endAsync();
console.log(`done: ${count} requests answered`);
