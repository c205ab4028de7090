// Reference client: Node's `ws` client on the same scenarios, to show the server is not the
// bottleneck. Usage: node node_client.js SCENARIO WS_PORT COUNT -> {"metrics": {"rate": N}}
'use strict';
const WebSocket = require('ws');
const [scenario, port, countArg] = process.argv.slice(2);
const n = Number(countArg);
const shapes = { rtt64: [1, 'x'.repeat(64)], win32: [32, 'x'.repeat(64)], big1m: [1, Buffer.alloc(1 << 20, 7)] };

function finish(started) {
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  console.log(JSON.stringify({ metrics: { rate: n / seconds } }));
  process.exit(0);
}

if (scenario === 'flood') {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/flood?n=${n}&size=64`);
  let received = 0, started;
  ws.on('open', () => { started = process.hrtime.bigint(); ws.send('go'); });
  ws.on('message', () => { if (++received === n) finish(started); });
} else {
  const [windowSize, payload] = shapes[scenario];
  const ws = new WebSocket(`ws://127.0.0.1:${port}/echo`);
  let received = 0, sent = 0, started;
  ws.on('open', () => {
    started = process.hrtime.bigint();
    for (; sent < windowSize; sent++) ws.send(payload);
  });
  ws.on('message', () => {
    if (++received === n) return finish(started);
    if (sent < n) { sent++; ws.send(payload); }
  });
}
