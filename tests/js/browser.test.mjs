// A real browser (issue 7): headless Chromium (Debian's `chromium`, driven by playwright-core)
// loads examples/browser/index.html from a small HTTP server on 127.0.0.1. The page connects
// with MQTT.js's browser bundle over WebSocket; a TCP client sends it a P2P request, and the
// test reads the page: the message is listed, and the page's answer reached the TCP client.
// Pub/sub both ways too. Skipped when /usr/bin/chromium is missing (apt-get install chromium).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { client, SCALE, startBroker } from './broker.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const FILES = {
  '/': [path.resolve(HERE, '..', '..', 'examples', 'browser', 'index.html'), 'text/html'],
  '/mqtt.min.js': [path.resolve(HERE, 'node_modules', 'mqtt', 'dist', 'mqtt.min.js'), 'text/javascript'],
};

// Serves the page and MQTT.js's bundle, nothing else.
function serve() {
  const server = http.createServer((req, res) => {
    const file = FILES[new URL(req.url, 'http://x').pathname];
    if (!file || req.method !== 'GET') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': file[1] });
    fs.createReadStream(file[0]).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

describe('browser page over WebSocket', { skip: !fs.existsSync(CHROMIUM) && `${CHROMIUM} is not installed` }, () => {
  let broker, server, context, profile;

  before(async () => {
    const { chromium } = await import('playwright-core');
    broker = await startBroker([], { websockets: true });
    server = await serve();
    profile = fs.mkdtempSync(path.join(os.tmpdir(), 'petrel-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      timeout: 30000 * SCALE,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });

  after(async () => {
    await context?.close();
    if (profile) fs.rmSync(profile, { recursive: true, force: true });
    server?.close();
    await broker?.stop();
  });

  test('the page receives a P2P message from a TCP client and answers it; pub/sub both ways', async () => {
    const id = 'GID_demo@@@BROWSER_test';
    const tcp = await client(broker, 'GID_demo@@@TCP_test');
    await tcp.subscribeAsync('demo/news', { qos: 1 });

    const page = await context.newPage();
    const logs = [];
    page.on('console', (m) => logs.push(m.text()));
    const url = `http://127.0.0.1:${server.address().port}/?url=${encodeURIComponent(broker.wsUrl)}&id=${encodeURIComponent(id)}`;
    await page.goto(url);
    try {
      await page.waitForFunction(() => document.getElementById('status').textContent === 'connected',
        null, { timeout: 10000 * SCALE });
    } catch (e) {
      const status = await page.textContent('#status');
      throw new Error(`page status "${status}"; console: ${logs.join(' | ')}\nbroker log:\n${broker.log()}`);
    }

    // pub/sub, browser -> TCP: the page announced itself on demo/news
    const [joined] = await tcp.take(1);
    assert.deepEqual([joined.topic, joined.payload], ['demo/news', `browser ${id} joined`]);

    // P2P, TCP -> browser: no subscription on the page's side; the page answers point-to-point
    await tcp.publishAsync(`demo/p2p/${id}`, 'hello browser', {
      qos: 1,
      properties: { responseTopic: 'demo/p2p/GID_demo@@@TCP_test', correlationData: Buffer.from('req-1') },
    });
    await page.waitForFunction(() => document.querySelectorAll('#p2p li').length === 1, null,
      { timeout: 5000 * SCALE });
    assert.equal(await page.textContent('#p2p li'), `demo/p2p/${id} hello browser`);
    const [reply] = await tcp.take(1);
    assert.deepEqual([reply.topic, reply.payload], ['demo/p2p/GID_demo@@@TCP_test', 're: hello browser']);
    assert.equal(reply.packet.properties.correlationData.toString(), 'req-1');

    // pub/sub, TCP -> browser
    await tcp.publishAsync('demo/news', 'news from tcp', { qos: 1 });
    await page.waitForFunction(() => [...document.querySelectorAll('#news li')]
      .some((li) => li.textContent === 'demo/news news from tcp'), null, { timeout: 5000 * SCALE });

    await page.close();
    await tcp.close();
  });
});
