import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, expect, expectTypeOf, it } from 'vitest';
import {
  DashboardQuery,
  fetchDashboard,
  GraphQLRequestError,
  execute,
  summarize,
  type Dashboard,
} from '../../examples/typed-client/dashboard.js';
import { graphql } from '../../examples/typed-client/gql/gql.js';
import type { BackupFamily, JobStatus } from '../../examples/typed-client/gql/graphql.js';
import { SEED } from '../../src/simulator/seed.js';
import { startStack, type Stack } from '../support/stack.js';

let stack: Stack;
let url: string;
beforeAll(async () => {
  stack = await startStack();
  url = await stack.gateway.listen(0, '127.0.0.1');
});
afterAll(async () => {
  expect(stack.sim.violations).toEqual([]);
  await stack.close();
});

it('examples/typed-client/dashboard.ts answers the typed dashboard over plain fetch', async () => {
  const data = await fetchDashboard(url, { snapshots: 2, jobs: 1 });
  expectTypeOf(data).toEqualTypeOf<Dashboard>();
  // Typed all the way down: enums are the schema's, nullable fields stay nullable.
  expectTypeOf(data.projects[0]!.clusters[0]!.family).toEqualTypeOf<BackupFamily>();
  expectTypeOf(data.projects[0]!.clusters[0]!.snapshots.nodes[0]!.status).toEqualTypeOf<JobStatus>();
  expectTypeOf(data.projects[0]!.clusters[0]!.snapshots.nodes[0]!.finishTime).toEqualTypeOf<string | null>();

  expect(data.projects.map((p) => p!.name)).toEqual(['Payments', 'Analytics', 'Sandbox']);
  const payments = data.projects.find((p) => p!.id === SEED.projects.payments.id)!;
  const tenant = payments.clusters.find((c) => c!.name === SEED.tenant.clusterName)!;
  expect(tenant).toMatchObject({ family: 'TENANT', instanceSize: 'M2', backingProvider: 'AWS' });
  expect(tenant.snapshots.totalCount).toBe(SEED.tenant.snapshotCount);
  expect(tenant.snapshots.nodes).toHaveLength(2);
  expect(tenant.restoreJobs.nodes).toHaveLength(1); // first: 1 of the seed's tenant jobs
  const flex = payments.clusters.find((c) => c!.name === SEED.flex.clusterName)!;
  expect(flex).toMatchObject({ family: 'FLEX', instanceSize: 'FLEX' });

  const lines = summarize(data);
  expect(lines).toContain(
    `Payments/Cluster0 (TENANT M2): 36 snapshots, newest ${tenant.snapshots.nodes[0]!.status} ${
      tenant.snapshots.nodes[0]!.finishTime ?? '(unfinished)'
    }; ${tenant.restoreJobs.totalCount} jobs`,
  );
  expect(lines.length).toBe(data.projects.reduce((n, p) => n + p!.clusters.length, 0));
});

it('types variables and results of other documents too, and errors throw a GraphQLRequestError', async () => {
  // A document outside the codegen input is untyped (`unknown`): only the generated ones are typed.
  expectTypeOf(graphql('{ projects { id } }')).toBeUnknown();
  expectTypeOf<Parameters<typeof fetchDashboard>[1]>().toEqualTypeOf<
    { snapshots: number; jobs: number } | undefined
  >();
  // `first` above 500 is refused by the gateway: a typed call, a GraphQL error, thrown.
  const err = await execute(url, DashboardQuery, { snapshots: 501, jobs: 1 }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(GraphQLRequestError);
  expect((err as GraphQLRequestError).errors[0]?.extensions?.code).toBe('BAD_USER_INPUT');
});

it('the generated client is committed next to the example and matches its documents', async () => {
  const gql = await readFile(new URL('../../examples/typed-client/gql/gql.ts', import.meta.url), 'utf8');
  expect(gql).toContain('query TypedClientDashboard($snapshots: Int!, $jobs: Int!)');
  expect(gql).toContain("from './graphql.js'");
});
