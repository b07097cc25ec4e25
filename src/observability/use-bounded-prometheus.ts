import {
  createCounter,
  createHistogram,
  usePrometheus,
  type FillLabelsFnParams,
  type PrometheusTracingPluginConfig,
} from '@graphql-yoga/plugin-prometheus';
import type { Plugin } from 'graphql-yoga';
import type { Registry } from 'prom-client';
import { operationName } from './operation-name.js';
import { OperationNameLabels, type OperationNameLabelsOptions } from './operation-name-labels.js';

type Metrics = NonNullable<PrometheusTracingPluginConfig['metrics']>;
type HttpParams = FillLabelsFnParams & { request: Request; response: Response };

/** What `useBoundedPrometheus` needs. */
export interface BoundedPrometheusOptions {
  /** Where the metrics live (the gateway's registry). */
  registry: Registry;
  /** Where they are served. @default '/metrics' */
  endpoint?: string;
  /** Which operation names may be label values. @default learn the first 50 */
  operationNames?: OperationNameLabelsOptions;
}

/** The two plugins of `useBoundedPrometheus`, and the names they label with. */
export interface BoundedPrometheus {
  /** yoga's Prometheus plugin with bounded labels: among the gateway's first plugins. */
  metrics: Plugin;
  /**
   * Marks an operation admitted once every other plugin let it run: the very last plugin, so that
   * an operation refused by any check (authentication, rate limit, cost, …) is never admitted.
   */
  admission: Plugin;
  names: OperationNameLabels;
}

/**
 * `@graphql-yoga/plugin-prometheus` with no label taking an unbounded value. Its defaults label
 * every series with the request's `url` (Host header and query string included) and the operation
 * name the client sent, before authentication, so each made-up name or host is new series that
 * live for the life of the process. Here:
 * - `url` is gone (every GraphQL request has the one route `/graphql`), as is the error `path`
 *   (aliases are the caller's words); `method` is GET, POST or `other`.
 * - `operationName` appears only on metrics of operations that ran (execute, subscribe, the whole
 *   request, errors, HTTP duration), and is the operation's name only when it was admitted and is in
 *   the bounded set of `OperationNameLabels`; otherwise `other`. Parse, validate and context come
 *   before the caller is known and are labelled by operation type only.
 * The plugin's `labels` option can only drop a label; bounding one takes its metric factories with a
 * `fillLabelsFn` of our own, which is what they are for.
 */
export function useBoundedPrometheus(options: BoundedPrometheusOptions): BoundedPrometheus {
  const names = new OperationNameLabels(options.operationNames);
  return {
    metrics: usePrometheus({
      endpoint: options.endpoint ?? '/metrics',
      registry: options.registry,
      metrics: boundedMetrics(options.registry, names),
    }),
    admission: useAdmission(names),
    names,
  };
}

// prom-client's default buckets, as the plugin's own metrics have them.
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

function boundedMetrics(registry: Registry, names: OperationNameLabels): Metrics {
  // `document.definitions[0].operation` in the plugin: undefined when the document opens with a fragment.
  const type = (p: FillLabelsFnParams) => p.operationType ?? 'unknown';
  const byType = <P extends 'parse' | 'validate' | 'context'>(name: string, help: string, phase: P) =>
    createHistogram({
      registry,
      histogram: { name, help, labelNames: ['operationType'], buckets: BUCKETS },
      fillLabelsFn: (p) => ({ operationType: type(p) }),
      phases: [phase],
    });
  const byName = <P extends 'execute' | 'subscribe'>(name: string, help: string, phases: [P, ...P[]]) =>
    createHistogram({
      registry,
      histogram: { name, help, labelNames: ['operationType', 'operationName'], buckets: BUCKETS },
      fillLabelsFn: (p, context: unknown) => ({
        operationType: type(p),
        operationName: names.labelOf(context),
      }),
      phases,
    });
  return {
    graphql_envelop_phase_parse: byType(
      'graphql_envelop_phase_parse',
      'Time spent on running GraphQL "parse" function',
      'parse',
    ),
    graphql_envelop_phase_validate: byType(
      'graphql_envelop_phase_validate',
      'Time spent on running GraphQL "validate" function',
      'validate',
    ),
    graphql_envelop_phase_context: byType(
      'graphql_envelop_phase_context',
      'Time spent on building the GraphQL context',
      'context',
    ),
    graphql_envelop_phase_execute: byName(
      'graphql_envelop_phase_execute',
      'Time spent on running the GraphQL "execute" function',
      ['execute'],
    ),
    graphql_envelop_phase_subscribe: byName(
      'graphql_envelop_phase_subscribe',
      'Time spent on running the GraphQL "subscribe" function',
      ['subscribe'],
    ),
    graphql_envelop_request_duration: byName(
      'graphql_envelop_request_duration',
      'Time spent on running the GraphQL operation from parse to execute',
      ['execute', 'subscribe'],
    ),
    graphql_envelop_request: createCounter({
      registry,
      counter: {
        name: 'graphql_envelop_request',
        help: 'Counts the amount of GraphQL requests executed through Envelop',
        labelNames: ['operationType', 'operationName'],
      },
      fillLabelsFn: (p, context: unknown) => ({
        operationType: type(p),
        operationName: names.labelOf(context),
      }),
      phases: ['execute', 'subscribe'],
    }),
    graphql_envelop_error_result: createCounter({
      registry,
      counter: {
        name: 'graphql_envelop_error_result',
        help: 'Counts the amount of errors reported from all phases',
        labelNames: ['operationType', 'operationName', 'phase'],
      },
      fillLabelsFn: (p, context: unknown) => ({
        operationType: type(p),
        operationName: names.labelOf(context),
        // The plugin reports a subscription's error event without a phase.
        phase: p.errorPhase ?? 'subscribe',
      }),
      phases: ['parse', 'validate', 'context', 'execute', 'subscribe'],
    }),
    graphql_yoga_http_duration: createHistogram<'request', string, HttpParams>({
      registry,
      histogram: {
        name: 'graphql_yoga_http_duration',
        help: 'Time spent on HTTP connection',
        labelNames: ['operationType', 'operationName', 'method', 'statusCode'],
        buckets: BUCKETS,
      },
      fillLabelsFn: (p) => ({
        operationType: p.operationType ?? 'unknown',
        operationName: names.labelOf(p.request),
        method: p.request.method === 'GET' || p.request.method === 'POST' ? p.request.method : 'other',
        statusCode: p.response.status,
      }),
      phases: ['request'],
    }),
    // Walks every document on every request (~0.1 ms, bench/), and this schema deprecates only an
    // enum value, which that counter does not see anyway.
    graphql_envelop_deprecated_field: false,
    // The same durations as the request_duration histogram, as a summary: its sliding quantiles
    // cost CPU per request and cannot be summed across replicas; the histogram can.
    graphql_envelop_request_time_summary: false,
  };
}

/**
 * The last plugin: an operation that gets here was let through by every check before it, so it is
 * admitted under its name (from the document, not the client's `operationName`), and the name is
 * learned once the operation ran without error (a made-up pass-through token gets Atlas's 401).
 */
function useAdmission(names: OperationNameLabels): Plugin {
  const keysOf = (context: unknown) => [context, (context as { request?: unknown } | null)?.request];
  return {
    onExecute({ args, executeFn, setExecuteFn }) {
      const name = operationName(args.document, args.operationName);
      names.admit(keysOf(args.contextValue), name);
      setExecuteFn(async (execArgs) => {
        const result = await executeFn(execArgs);
        if (!(Symbol.asyncIterator in result) && !result.errors?.length) names.learn(name);
        return result;
      });
    },
    onSubscribe({ args, subscribeFn, setSubscribeFn }) {
      const name = operationName(args.document, args.operationName);
      names.admit(keysOf(args.contextValue), name);
      setSubscribeFn(async (subscribeArgs) => {
        const result = await subscribeFn(subscribeArgs);
        // A stream started (an error answers a result object instead).
        if (Symbol.asyncIterator in result) names.learn(name);
        return result;
      });
    },
  };
}
