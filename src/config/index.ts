export { ConfigError } from './config-error.js';
export { loadConfig, loadSimulatorConfig, ENV } from './load-config.js';
export {
  envDeclarations,
  renderEnvTable,
  withEnvTable,
  ENV_TABLE_START,
  ENV_TABLE_END,
} from './env-table.js';
export { envRegistry, trimmed, type EnvGroup, type EnvVarMeta } from './env-var.js';
export type { Env } from './read-env.js';
export * from './gateway-config.js';
