// MQTT.js over WebSocket (issue 7): a client on the broker's `protocol websockets` listener
// (ws://127.0.0.1:PORT/mqtt) exchanges pub/sub and P2P messages with a client on the TCP
// listener, in MQTT 3.1.1 and 5. Run: cd tests/js && npm ci && PETREL_BIN=... node --test

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { client, startBroker } from './broker.mjs';

describe('MQTT.js over WebSocket', () => {
  let broker;
  before(async () => { broker = await startBroker([], { websockets: true }); });
  after(async () => { await broker.stop(); });

  for (const protocolVersion of [4, 5]) {
    const v = protocolVersion === 5 ? '5' : '3.1.1';

    test(`MQTT ${v}: pub/sub between WebSocket and TCP, QoS 0, 1 and 2`, async () => {
      const web = await client(broker, `js-ws-sub-${v}`, { url: broker.wsUrl, protocolVersion });
      const tcp = await client(broker, `js-tcp-sub-${v}`, { protocolVersion });
      await web.subscribeAsync('to-web/#', { qos: 2 });
      await tcp.subscribeAsync('to-tcp/#', { qos: 2 });
      for (const qos of [0, 1, 2]) {
        await tcp.publishAsync(`to-web/${qos}`, `from tcp ${qos}`, { qos });
        const [a] = await web.take(1);
        assert.deepEqual([a.topic, a.payload, a.qos], [`to-web/${qos}`, `from tcp ${qos}`, qos]);
        await web.publishAsync(`to-tcp/${qos}`, `from ws ${qos}`, { qos });
        const [b] = await tcp.take(1);
        assert.deepEqual([b.topic, b.payload, b.qos], [`to-tcp/${qos}`, `from ws ${qos}`, qos]);
      }
      // a payload larger than a socket buffer, both ways
      const big = 'x'.repeat(400 * 1024);
      await tcp.publishAsync('to-web/big', big, { qos: 1 });
      assert.equal((await web.take(1))[0].payload.length, big.length);
      await web.publishAsync('to-tcp/big', big, { qos: 1 });
      assert.equal((await tcp.take(1))[0].payload, big);
      await web.close();
      await tcp.close();
    });

    test(`MQTT ${v}: P2P between WebSocket and TCP, no SUBSCRIBE`, async () => {
      const webId = `GID_js@@@web-${v}`;
      const tcpId = `GID_js@@@tcp-${v}`;
      const web = await client(broker, webId, { url: broker.wsUrl, protocolVersion });
      const tcp = await client(broker, tcpId, { protocolVersion });
      for (const qos of [0, 1, 2]) {
        await tcp.publishAsync(`app/p2p/${webId}`, `to web ${qos}`, { qos });
        const [a] = await web.take(1);
        assert.deepEqual([a.topic, a.payload, a.qos], [`app/p2p/${webId}`, `to web ${qos}`, qos]);
        await web.publishAsync(`app/p2p/${tcpId}`, `to tcp ${qos}`, { qos });
        const [b] = await tcp.take(1);
        assert.deepEqual([b.topic, b.payload, b.qos], [`app/p2p/${tcpId}`, `to tcp ${qos}`, qos]);
      }
      await web.expectNothing(300);
      await web.close();
      await tcp.close();
    });
  }

  test('MQTT 5 request/response over WebSocket: Response Topic and Correlation Data kept', async () => {
    const web = await client(broker, 'js-ws-responder', { url: broker.wsUrl });
    const tcp = await client(broker, 'js-tcp-requester');
    web.on('message', (topic, payload, packet) => {
      const { responseTopic, correlationData } = packet.properties || {};
      if (responseTopic) {
        web.publish(responseTopic, `re: ${payload}`, { qos: 1, properties: { correlationData } });
      }
    });
    await tcp.publishAsync('app/p2p/js-ws-responder', 'ping', {
      qos: 1,
      properties: { responseTopic: 'app/p2p/js-tcp-requester', correlationData: Buffer.from('c-1') },
    });
    const [r] = await tcp.take(1);
    assert.equal(r.payload, 're: ping');
    assert.equal(r.packet.properties.correlationData.toString(), 'c-1');
    await web.close();
    await tcp.close();
  });
});
