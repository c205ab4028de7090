// Interop peer: Node's `ws` server on 127.0.0.1:0, driven by tests/test_interop.py.
// Echoes every message; the texts "cmd:fragment", "cmd:ping" and "cmd:close" ask for a
// fragmented message, a ping (answered with "pong:<payload>" once the pong arrives) and a
// close with 4001 "bye". Prints {"port": N} once listening, then {"close": [code, reason]}
// for each connection that ends.
'use strict';
const { WebSocketServer } = require('ws');

const FRAGMENTS = ['frag', 'ment', 'ed \u{1F389}'];
const wss = new WebSocketServer({
  host: '127.0.0.1',
  port: 0,
  maxPayload: 64 * 1024 * 1024,
  handleProtocols: (protocols) => (protocols.has('chat') ? 'chat' : false),
});

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    const text = isBinary ? null : data.toString();
    if (text === 'cmd:fragment') {
      FRAGMENTS.forEach((part, i) => ws.send(part, { fin: i === FRAGMENTS.length - 1 }));
    } else if (text === 'cmd:ping') {
      ws.once('pong', (payload) => ws.send('pong:' + payload.toString()));
      ws.ping(Buffer.from('ohws-ping'));
    } else if (text === 'cmd:close') {
      ws.close(4001, 'bye');
    } else {
      ws.send(data, { binary: isBinary });
    }
  });
  ws.on('close', (code, reason) => console.log(JSON.stringify({ close: [code, reason.toString()] })));
});
wss.on('listening', () => console.log(JSON.stringify({ port: wss.address().port })));
process.on('SIGTERM', () => process.exit(0));
