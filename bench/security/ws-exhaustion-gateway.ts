import { loadConfig } from '../../src/config/index.js';
import { createGatewayFromConfig } from '../../src/gateway-from-config.js';

// The gateway alone in a process, built from its environment as `npm start` builds it, for
// ws-exhaustion.ts: the RSS it reports is the gateway's, not the attacker's. Atlas is never called
// (every attack is refused before any upstream call), so it points at a closed port.
const send = (m: unknown) => process.send?.(m);

const configured = createGatewayFromConfig(loadConfig(process.env), {
  atlas: { baseUrl: 'http://127.0.0.1:9', auth: { type: 'none' } },
  logging: false,
});
const { gateway } = configured;

let closing = false;
const close = async () => {
  if (closing) return;
  closing = true;
  try {
    await configured.close({ graceMs: 1000 });
  } finally {
    process.exit(0);
  }
};
// Never outlive the bench: the IPC channel closes when the parent dies, however it dies.
process.on('disconnect', () => void close());
process.on('SIGTERM', () => void close());
process.on('message', (m: { type: string }) => {
  if (m.type === 'close') void close();
  if (m.type === 'state') {
    if (typeof global.gc === 'function') global.gc();
    send({
      type: 'state',
      rss: process.memoryUsage().rss,
      connections: gateway.webSocket.openConnections(),
    });
  }
});

try {
  send({ type: 'ready', url: await gateway.listen(0, '127.0.0.1') });
} catch (err) {
  send({ type: 'error', message: (err as Error).message });
  process.exit(1);
}
