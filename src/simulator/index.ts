export { startSimulator } from './server.js';
export type { Simulator, SimulatorOptions, ResponseInfo, RequestRecord } from './server.js';
export { simulatorOptionsFromConfig, type ConfiguredSimulatorOptions } from './options-from-config.js';
export { ManualClock, systemClock, type Clock } from '../time/clock.js';
export { DEFAULT_SIM_CREDENTIALS } from './auth-server/sim-auth.js';
export type { FaultRule } from './faults.js';
export type { SimCredential, Principal } from './http-types.js';
export { checkAgainstSpec, type Violation } from './spec-check.js';
