import { loadConfig } from '../src/config/index.js';
import { createGatewayFromConfig } from '../src/gateway-from-config.js';

// One gateway replica of the chaos fleet (chaos/fleet.ts), in a process of its own so it can be
// killed for real: built from the environment exactly as `npm start` builds it, but for the upstream
// timeouts, which no variable sets (CHAOS_UPSTREAM_TIMEOUT_MS), so a hung POST times out within a
// scenario. Prints `listening <url>` once it listens; SIGTERM closes it.
const config = loadConfig(process.env);
const timeoutMs = Number(process.env.CHAOS_UPSTREAM_TIMEOUT_MS ?? 3000);
const built = createGatewayFromConfig(config, {
  atlas: { timeouts: { connectMs: timeoutMs, headersMs: timeoutMs, bodyMs: timeoutMs } },
});
const url = await built.gateway.listen(0, '127.0.0.1');
console.log(`listening ${url}`);
process.once('SIGTERM', () => {
  void built.close({ graceMs: 200 }).finally(() => process.exit(0));
});
