// Publish/subscribe with Petrel and MQTT.js, over TCP or WebSocket.
//
// A subscriber subscribes to `demo/news/#` (QoS 1); a publisher sends COUNT messages to
// `demo/news/1`, `demo/news/2`, ...; the subscriber prints each one. With TRANSPORT `ws` both
// clients connect to a WebSocket listener (`protocol websockets`) at ws://HOST:PORT/mqtt,
// exactly as a browser page would.
//
//   npm install mqtt        (once, next to this file; or see examples/README.md)
//   node pubsub.mjs [HOST] [PORT] [COUNT] [tcp|ws]     (defaults: 127.0.0.1 1883 3 tcp)
//
// Prints one `subscriber:` line per message, then `done: N messages received`; exits 1 if
// anything is missing after 10 seconds.

import mqtt from 'mqtt';

const [host = '127.0.0.1', port = '1883', countArg = '3', transport = 'tcp'] = process.argv.slice(2);
const count = Number(countArg);
const url = transport === 'ws' ? `ws://${host}:${port}/mqtt` : `mqtt://${host}:${port}`;
const options = { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10000 };

const timer = setTimeout(() => {
  console.error('timed out waiting for messages');
  process.exit(1);
}, 10000);

const subscriber = await mqtt.connectAsync(url, { ...options, clientId: `demo-sub-${process.pid}` });
let received = 0;
const allReceived = new Promise((resolve) => {
  subscriber.on('message', (topic, payload) => {
    console.log(`subscriber: ${topic} ${payload}`);
    if (++received === count) resolve();
  });
});
await subscriber.subscribeAsync('demo/news/#', { qos: 1 });

const publisher = await mqtt.connectAsync(url, { ...options, clientId: `demo-pub-${process.pid}` });
for (let i = 1; i <= count; i++) {
  await publisher.publishAsync(`demo/news/${i}`, `news ${i}`, { qos: 1 });
}
await allReceived;
clearTimeout(timer);
await publisher.endAsync();
await subscriber.endAsync();
console.log(`done: ${count} messages received`);
