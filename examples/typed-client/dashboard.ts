/**
 * A typed client for frontends, with nothing but `fetch`: graphql-codegen's client preset reads the
 * `graphql(...)` documents in this folder (`npm run codegen`) and generates `./gql/`, where
 * `graphql()` answers a `TypedDocumentNode`: the result and the variables of each operation are
 * typed from schema/*.graphql, and a field that does not exist fails the build, not the page.
 *
 *   npm start                               # the gateway (demo mode)
 *   npx tsx examples/typed-client/dashboard.ts [http://127.0.0.1:4000]
 *
 * Tested in test/ops/typed-client.test.ts. In a browser app the same `graphql()` documents work
 * with any client that understands TypedDocumentNode (urql, Apollo, graphql-request) or this fetch.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ResultOf, TypedDocumentNode, VariablesOf } from '@graphql-typed-document-node/core';
import { print } from 'graphql';
import { graphql } from './gql/gql.js';

/** The backups at a glance: every project, its clusters, their newest snapshots and jobs. */
export const DashboardQuery = graphql(`
  query TypedClientDashboard($snapshots: Int!, $jobs: Int!) {
    projects {
      id
      name
      clusters {
        name
        family
        instanceSize
        backingProvider
        snapshots(first: $snapshots) {
          totalCount
          nodes {
            id
            status
            finishTime
          }
        }
        restoreJobs(first: $jobs) {
          totalCount
          nodes {
            id
            status
            deliveryType
          }
        }
      }
    }
  }
`);

export type Dashboard = ResultOf<typeof DashboardQuery>;

/** A GraphQL answer that carried errors: the first message, the rest in `errors`. */
export class GraphQLRequestError extends Error {
  constructor(
    readonly status: number,
    readonly errors: { message: string; extensions?: Record<string, unknown> }[],
  ) {
    super(errors[0]?.message ?? `HTTP ${status}`);
    this.name = 'GraphQLRequestError';
  }
}

/**
 * Runs one typed operation over plain `fetch` (POST, JSON) and answers its typed `data`. Errors (or
 * no data) throw a `GraphQLRequestError`: a dashboard has no use for partial data.
 */
export async function execute<TResult, TVariables>(
  gatewayUrl: string,
  document: TypedDocumentNode<TResult, TVariables>,
  variables: TVariables,
  headers: Record<string, string> = {},
): Promise<TResult> {
  const res = await fetch(new URL('/graphql', gatewayUrl), {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json, application/json',
      ...headers,
    },
    body: JSON.stringify({ query: print(document), variables }),
  });
  const body = (await res.json()) as {
    data?: TResult | null;
    errors?: { message: string; extensions?: Record<string, unknown> }[];
  };
  if (body.errors?.length || body.data == null) throw new GraphQLRequestError(res.status, body.errors ?? []);
  return body.data;
}

/** The dashboard's data, typed: `data.projects[0].clusters[0].snapshots.nodes[0].status` and so on. */
export function fetchDashboard(
  gatewayUrl: string,
  variables: VariablesOf<typeof DashboardQuery> = { snapshots: 3, jobs: 3 },
  headers?: Record<string, string>,
): Promise<Dashboard> {
  return execute(gatewayUrl, DashboardQuery, variables, headers);
}

/**
 * One line per cluster, from the typed result: what a dashboard would show. A list item Atlas sent
 * incompletely is null (its error is in `errors`): skipped here.
 */
export function summarize(dashboard: Dashboard): string[] {
  return dashboard.projects.flatMap((project) =>
    (project?.clusters ?? []).flatMap((cluster) => {
      if (!project || !cluster) return [];
      const latest = cluster.snapshots.nodes[0];
      return (
        `${project.name}/${cluster.name} (${cluster.family} ${cluster.instanceSize}): ` +
        `${cluster.snapshots.totalCount} snapshots, newest ${latest ? `${latest.status} ${latest.finishTime ?? '(unfinished)'}` : 'none'}; ` +
        `${cluster.restoreJobs.totalCount} jobs`
      );
    }),
  );
}

const isMain = (() => {
  try {
    return (
      !!process.argv[1] && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))
    );
  } catch {
    return false;
  }
})();
if (isMain) {
  const url = process.argv[2] ?? 'http://127.0.0.1:4000';
  for (const line of summarize(await fetchDashboard(url))) console.log(line);
}
