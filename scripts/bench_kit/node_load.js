// Load client for the server scenarios: Node's `ws` client drives whichever server is measured.
// Usage: node node_load.js MODE PORT COUNT CLIENTS -> {"metrics": {"rate": N}}
//   echo     CLIENTS connections, each with 16 messages of 64 bytes in flight, COUNT echoes in all
//   connect  CLIENTS workers opening and closing connections (full close handshake), COUNT in all
'use strict';
const WebSocket = require('ws');
const [mode, port, countArg, clientsArg] = process.argv.slice(2);
const total = Number(countArg);
const clients = Number(clientsArg);
const url = `ws://127.0.0.1:${port}/`;
const payload = 'x'.repeat(64);
const WINDOW = 16;
let started = null;
let finished = 0;

function done() {
  if (++finished < clients) return;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  console.log(JSON.stringify({ metrics: { rate: total / seconds } }));
  process.exit(0);
}

function fail(error) {
  console.error(`node_load: ${error}`);
  process.exit(1);
}

function echoClient(n, ready) {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  let sent = 0, received = 0;
  ws.on('error', fail);
  ws.on('open', () => ready(() => { for (; sent < Math.min(WINDOW, n); sent++) ws.send(payload); }));
  ws.on('message', () => {
    if (++received === n) { ws.close(); return; }
    if (sent < n) { sent++; ws.send(payload); }
  });
  ws.on('close', done);
}

function connectWorker(n) {
  let left = n;
  const next = () => {
    if (left-- === 0) return done();
    const ws = new WebSocket(url, { perMessageDeflate: false });
    ws.on('error', fail);
    ws.on('open', () => ws.close());
    ws.on('close', next);
  };
  next();
}

const share = (i) => Math.floor(total / clients) + (i < total % clients ? 1 : 0);
if (mode === 'echo') {
  // Every connection opens first; the clock starts when the last one is open.
  const starters = [];
  for (let i = 0; i < clients; i++) {
    echoClient(share(i), (go) => {
      starters.push(go);
      if (starters.length === clients) { started = process.hrtime.bigint(); starters.forEach((s) => s()); }
    });
  }
} else if (mode === 'connect') {
  started = process.hrtime.bigint();
  for (let i = 0; i < clients; i++) connectWorker(share(i));
} else {
  fail(`unknown mode ${mode}`);
}
