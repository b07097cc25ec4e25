import { envVar, httpUrl, invalid, oneOf, text } from './env-var.js';
import type { TracingConfig } from './gateway-config.js';
import type { EnvValues } from './read-env.js';

export const tracingEnv = {
  OTEL_TRACES_EXPORTER: envVar(
    {
      group: 'tracing',
      description: 'Where spans go: `otlp` (OTLP/HTTP), `console` (stdout) or `none`.',
      example: 'console',
      defaultText: '`otlp` when OTEL_EXPORTER_OTLP_ENDPOINT is set, else `none`',
    },
    oneOf(['otlp', 'console', 'none'], '"otlp", "console" or "none"'),
  ),
  OTEL_EXPORTER_OTLP_ENDPOINT: envVar(
    {
      group: 'tracing',
      description:
        'Base URL of the OTLP/HTTP collector (spans go to `/v1/traces` under it); turns tracing on.',
      example: 'http://127.0.0.1:4318',
      defaultText: 'none (the exporter then uses http://localhost:4318)',
    },
    (value) => (httpUrl(value) ? value : invalid('an http(s) URL')),
  ),
  OTEL_SERVICE_NAME: envVar(
    {
      group: 'tracing',
      description: 'The `service.name` of every span.',
      example: 'backup-gateway-eu',
      default: 'atlas-backup-gateway',
    },
    text,
  ),
};

export function tracingFromEnv(v: EnvValues<typeof tracingEnv>): TracingConfig {
  return {
    exporter: v.OTEL_TRACES_EXPORTER ?? (v.OTEL_EXPORTER_OTLP_ENDPOINT !== undefined ? 'otlp' : 'none'),
    endpoint: v.OTEL_EXPORTER_OTLP_ENDPOINT,
    serviceName: v.OTEL_SERVICE_NAME,
  };
}
