// Test helpers: start the Petrel binary on a free loopback port and drive MQTT.js clients.
//
// PETREL_BIN names the broker binary (default: <repo>/build/petrel). Each broker gets a temporary
// folder with its config (`listener PORT 127.0.0.1` plus extra lines) and its log; stop() ends it
// by PID (SIGTERM, then SIGKILL after 10 s) and fails when it did not exit cleanly.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const PETREL_BIN = process.env.PETREL_BIN || path.resolve(HERE, '..', '..', 'build', 'petrel');
// Sanitizer builds are slower: stretch every timeout, as tests/integration/support.py does.
export const SCALE = process.env.PETREL_SANITIZED === '1' ? 3 : 1;

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => { s.destroy(); resolve(false); });
  });
}

// `websockets: true` adds a WebSocket listener (`protocol websockets`, path /mqtt) after the
// extra lines: its URL is `wsUrl`, its port `wsPort`.
export async function startBroker(extraLines = [], { websockets = false } = {}) {
  if (!fs.existsSync(PETREL_BIN)) {
    throw new Error(`broker binary ${PETREL_BIN} does not exist (build it, or set PETREL_BIN)`);
  }
  const port = await freePort();
  const wsPort = websockets ? await freePort() : null;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'petrel-js-'));
  const conf = path.join(dir, 'petrel.conf');
  const logPath = path.join(dir, 'petrel.log');
  const wsLines = websockets ? [`listener ${wsPort} 127.0.0.1`, 'protocol websockets'] : [];
  fs.writeFileSync(conf, [`listener ${port} 127.0.0.1`, 'allow_anonymous true', ...extraLines, ...wsLines, ''].join('\n'));
  const logFd = fs.openSync(logPath, 'w');
  const proc = spawn(PETREL_BIN, ['-c', conf], { cwd: dir, stdio: ['ignore', logFd, logFd] });
  fs.closeSync(logFd);
  let exit = null;
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => {
    exit = { code, signal };
    resolve(exit);
  }));
  const log = () => { try { return fs.readFileSync(logPath, 'utf8'); } catch { return ''; } };

  const deadline = Date.now() + 10000 * SCALE;
  for (;;) {
    if (exit) throw new Error(`broker exited during start-up (${JSON.stringify(exit)}):\n${log()}`);
    if (await canConnect(port)) break;
    if (Date.now() > deadline) {
      process.kill(proc.pid, 'SIGKILL');
      throw new Error(`broker did not listen on port ${port}:\n${log()}`);
    }
    await sleep(20);
  }

  async function stop() {
    if (!exit) {
      process.kill(proc.pid, 'SIGTERM');
      const timer = sleep(10000 * SCALE).then(() => 'timeout');
      if ((await Promise.race([exited, timer])) === 'timeout') {
        process.kill(proc.pid, 'SIGKILL');
        await exited;
        throw new Error(`broker pid ${proc.pid} did not exit within 10 s of SIGTERM:\n${log()}`);
      }
    }
    const text = log();
    const clean = (exit.code === 0 || exit.signal === 'SIGTERM') && !/Sanitizer|runtime error:/.test(text);
    if (!clean) throw new Error(`broker pid ${proc.pid} ended badly (${JSON.stringify(exit)}):\n${text.slice(-6000)}`);
    fs.rmSync(dir, { recursive: true, force: true });
  }

  const wsUrl = websockets ? `ws://127.0.0.1:${wsPort}/mqtt` : null;
  return { port, wsPort, wsUrl, pid: proc.pid, url: `mqtt://127.0.0.1:${port}`, log, stop };
}

// An MQTT.js client whose received messages (and every packet it receives) are kept in
// order, with waiting helpers. Handlers are attached before the CONNACK so that messages the
// broker sends right after it (an offline queue) are not missed.
// `url` in opts picks another listener (broker.wsUrl for WebSocket).
export async function client(broker, clientId, { url = broker.url, ...opts } = {}) {
  const c = mqtt.connect(url, {
    clientId,
    protocolVersion: 5,
    reconnectPeriod: 0,
    connectTimeout: 5000 * SCALE,
    ...opts,
  });
  const messages = [];
  const packets = [];
  const waiters = [];
  c.on('message', (topic, payload, packet) => {
    messages.push({ topic, payload: payload.toString(), qos: packet.qos, retain: packet.retain, packet });
    while (waiters.length) waiters.shift()();
  });
  c.on('packetreceive', (p) => packets.push(p));
  await new Promise((resolve, reject) => {
    c.once('connect', resolve);
    c.once('error', reject);
  });
  c.on('error', () => {});

  // The next `n` messages, in arrival order; rejects after `timeoutMs`.
  c.take = async (n = 1, timeoutMs = 5000) => {
    const deadline = Date.now() + timeoutMs * SCALE;
    while (messages.length < n) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${clientId}: got ${messages.length} of ${n} messages`);
      await new Promise((resolve) => {
        const t = setTimeout(resolve, left);
        waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
    return messages.splice(0, n);
  };
  // Asserts that nothing arrives within `windowMs`.
  c.expectNothing = async (windowMs = 1000) => {
    await sleep(windowMs);
    if (messages.length) {
      throw new Error(`${clientId}: unexpected message on ${messages[0].topic}: ${messages[0].payload}`);
    }
  };
  c.packets = packets;
  c.close = () => c.endAsync();
  return c;
}
