// Interop peer: Node's `ws` client against the ohws server at process.argv[2], driven by
// tests/test_interop.py. Runs the scenario and prints one JSON line per step,
// {"step": name, "got": what it observed}; large payloads are reported as [kind, length, sha256].
// Any failure prints {"error": message} and exits 1.
'use strict';
const crypto = require('crypto');
const WebSocket = require('ws');

const url = process.argv[2];
const TEXT = process.argv[3];
const FRAGMENTS = ['frag', 'ment', 'ed \u{1F389}'];
const report = (step, got) => console.log(JSON.stringify({ step, got }));
const digest = (data) => [
  typeof data === 'string' ? 'text' : 'binary',
  Buffer.byteLength(data),
  crypto.createHash('sha256').update(data).digest('hex'),
];

function open(protocols) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { maxPayload: 64 * 1024 * 1024 });
    const queue = [];
    const waiters = [];
    ws.on('message', (data, isBinary) => {
      const item = isBinary ? data : data.toString();
      if (waiters.length) waiters.shift()(item); else queue.push(item);
    });
    ws.next = () => new Promise((res) => (queue.length ? res(queue.shift()) : waiters.push(res)));
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

async function main() {
  const ws = await open(['chat']);
  report('open', ws.protocol);
  ws.send(TEXT);
  report('text', await ws.next());
  ws.send(Buffer.from([0x00, 0xff]));
  report('binary-2', digest(await ws.next()));
  const big = Buffer.alloc(8 * 1024 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = i % 251;
  ws.send(big);
  report('binary-8MiB', digest(await ws.next()));
  ws.send('x'.repeat(100 * 1000));
  report('text-100KB', digest(await ws.next()));
  FRAGMENTS.forEach((part, i) => ws.send(part, { fin: i === FRAGMENTS.length - 1 }));
  report('fragmented', await ws.next());
  const pong = new Promise((resolve) => ws.once('pong', (payload) => resolve(payload.toString())));
  ws.ping(Buffer.from('ohws-ping'));
  report('ping', await pong);
  const closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve([code, reason.toString()])));
  ws.send('cmd:close');
  report('server-close', await closed);

  const second = await open(['chat']);
  const done = new Promise((resolve) => second.once('close', () => resolve(true)));
  second.close(1000, 'client done');
  report('client-close', await done);
}

main().then(
  () => process.exit(0),
  (err) => { console.log(JSON.stringify({ error: String(err) })); process.exit(1); },
);
