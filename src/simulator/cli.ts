import { parseArgs } from 'node:util';
import { ConfigError, loadSimulatorConfig } from '../config/index.js';
import { startSimulator, simulatorOptionsFromConfig } from './index.js';

// `npm run simulator -- --port N` (or ATLAS_SIM_PORT=N): the simulator alone, for curl, other clients or the peer gateway.
const { values } = parseArgs({
  options: { port: { type: 'string' }, host: { type: 'string', default: '127.0.0.1' } },
});
let config;
try {
  config = loadSimulatorConfig(process.env);
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(2);
}
const options = simulatorOptionsFromConfig(config);
// --port first, then ATLAS_SIM_PORT (the variable demo mode reads too), then the usual 8080.
const port = values.port !== undefined ? Number(values.port) : (config.port ?? 8080);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`--port: expected an integer in [0, 65535], got "${values.port}"`);
  process.exit(2);
}
const sim = await startSimulator({ ...options, port, host: values.host });
const [owner, readOnly] = options.credentials;
console.log(`Atlas simulator listening on ${sim.url}`);
console.log(`  API base:          ${sim.url}/api/atlas/v2  (legacy: ${sim.url}/api/atlas/v1.0)`);
console.log(`  OAuth token URL:   ${sim.url}/api/oauth/token`);
for (const [label, c] of [
  ['owner', owner],
  ['read-only', readOnly],
] as const) {
  if (!c) continue;
  console.log(`  ${label.padEnd(9)} service account: ${c.clientId} / ${c.clientSecret}`);
  console.log(`  ${label.padEnd(9)} API key (Digest): ${c.publicKey} / ${c.privateKey}`);
}
console.log(
  `  admin routes:      ${options.adminRoutes ? `${sim.url}/__admin/faults` : 'off (ATLAS_SIM_ADMIN=true)'}`,
);
const stop = () => void sim.close().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
