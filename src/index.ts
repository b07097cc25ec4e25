import { startSimulator, simulatorOptionsFromEnv, SimEnvError } from './simulator/index.js';

// Until the GraphQL gateway lands (issue #4), `npm start` runs demo mode's upstream: the embedded
// simulator, with the same environment variables the gateway's demo mode will use.
let options;
try {
  options = simulatorOptionsFromEnv(process.env);
} catch (err) {
  console.error(err instanceof SimEnvError ? err.message : err);
  process.exit(2);
}
const port = Number(process.env.PORT ?? 4000);
const sim = await startSimulator({ ...options, port, host: process.env.HOST ?? '127.0.0.1' });
console.log(
  `demo mode: Atlas simulator on ${sim.url}/api/atlas/v2 (the GraphQL gateway arrives with issue #4)`,
);
const stop = () => void sim.close().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
