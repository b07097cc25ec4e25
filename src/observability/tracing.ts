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

/** What `setupTracing` needs: the `tracing` group of the gateway's config. */
export interface TracingOptions {
  /** `none` leaves the no-op API in place. */
  exporter: 'otlp' | 'console' | 'none';
  /** The OTLP/HTTP base URL (`/v1/traces` is appended). @default the exporter's (http://localhost:4318) */
  endpoint?: string | undefined;
  /** @default 'atlas-backup-gateway' */
  serviceName?: string;
}

/**
 * Tracing as configured: `otlp` exports over OTLP/HTTP, `console` prints spans, `none` keeps tracing
 * off (no-op API). Tests pass their own exporter, which is used whatever the config says.
 */
export function setupTracing(options: TracingOptions, exporter?: SpanExporter): TracingSetup | undefined {
  const mode = options.exporter;
  const otlp = () =>
    new OTLPTraceExporter(
      options.endpoint === undefined
        ? {}
        : { url: new URL('v1/traces', options.endpoint.replace(/\/?$/, '/')).href },
    );
  const chosen =
    exporter ?? (mode === 'otlp' ? otlp() : mode === 'console' ? new ConsoleSpanExporter() : undefined);
  if (!chosen) return undefined;
  // A given exporter (tests) gets every span at once; real exporters batch.
  const processors: SpanProcessor[] = [
    exporter ? new SimpleSpanProcessor(chosen) : new BatchSpanProcessor(chosen),
  ];
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': options.serviceName ?? 'atlas-backup-gateway' }),
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
