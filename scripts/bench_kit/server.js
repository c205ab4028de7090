// Benchmark peer: Node's `ws` server on loopback, plus a raw TCP echo server (the floor).
// ws paths: /echo echoes every message; /flood?n=N&size=S sends N messages of S bytes
// when it receives "go". Prints {"ws": port, "tcp": port} once both listen.
'use strict';
const net = require('net');
const { WebSocketServer } = require('ws');

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 256 * 1024 * 1024 });
wss.on('connection', (ws, req) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/flood') {
    const n = Number(url.searchParams.get('n') || 20000);
    const payload = Buffer.alloc(Number(url.searchParams.get('size') || 64), 120).toString();
    ws.on('message', () => {
      for (let i = 0; i < n; i++) ws.send(payload);
    });
    return;
  }
  if (url.pathname === '/sink') return; // swallows everything (measures the send path alone)
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});

const tcp = net.createServer((sock) => {
  sock.setNoDelay(true);
  sock.on('data', (chunk) => sock.write(chunk));
  sock.on('error', () => {});
});

wss.on('listening', () => {
  tcp.listen(0, '127.0.0.1', () => {
    console.log(JSON.stringify({ ws: wss.address().port, tcp: tcp.address().port }));
  });
});
process.on('SIGTERM', () => process.exit(0));
