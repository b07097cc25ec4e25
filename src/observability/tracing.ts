import { operationName } from './operation-name.js';
import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ConsoleSpanExporter,
  SimpleSpanProcessor,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import type { Plugin } from 'graphql-yoga';

const tracer = trace.getTracer('atlas-backup-gateway/graphql');

/**
 * A span per GraphQL operation; the Atlas client's spans (one per upstream call) nest under it.
 * Hand-written on @opentelemetry/api because @envelop/opentelemetry pins the 1.x SDK, which does not
 * share a provider with the 2.x SDK the gateway registers.
 */
export function useOperationSpans(): Plugin {
  return {
    onExecute({ args, setExecuteFn, executeFn }) {
      const name = operationName(args.document, args.operationName);
      setExecuteFn((execArgs) =>
        tracer.startActiveSpan(
          `graphql ${name}`,
          { kind: SpanKind.SERVER, attributes: { 'graphql.operation.name': name } },
          async (span) => {
            try {
              const result = await executeFn(execArgs);
              const errors = 'errors' in result ? result.errors : undefined;
              if (errors?.length)
                span.setStatus({ code: SpanStatusCode.ERROR, message: `${errors.length} error(s)` });
              return result;
            } finally {
              span.end();
            }
          },
        ),
      );
    },
  };
}

export interface TracingSetup {
  /** Flushes and stops the exporter. */
  shutdown(): Promise<void>;
}

/**
 * Tracing by environment: `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_TRACES_EXPORTER=otlp`) exports over
 * OTLP/HTTP, `OTEL_TRACES_EXPORTER=console` prints spans; otherwise tracing stays off (no-op API).
 * Tests pass their own exporter.
 */
export function setupTracing(env: NodeJS.ProcessEnv, exporter?: SpanExporter): TracingSetup | undefined {
  const mode = env.OTEL_TRACES_EXPORTER ?? (env.OTEL_EXPORTER_OTLP_ENDPOINT ? 'otlp' : undefined);
  const chosen =
    exporter ??
    (mode === 'otlp' ? new OTLPTraceExporter() : mode === 'console' ? new ConsoleSpanExporter() : undefined);
  if (!chosen) return undefined;
  // A given exporter (tests) gets every span at once; real exporters batch.
  const processors: SpanProcessor[] = [
    exporter ? new SimpleSpanProcessor(chosen) : new BatchSpanProcessor(chosen),
  ];
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': env.OTEL_SERVICE_NAME ?? 'atlas-backup-gateway' }),
    spanProcessors: processors,
  });
  // Active spans must follow async work so the upstream calls nest under their operation.
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  trace.setGlobalTracerProvider(provider);
  return {
    shutdown: async () => {
      await provider.shutdown();
      trace.disable();
      context.disable();
    },
  };
}
