import { createGateway } from '../src/gateway.js';
import { openAccess } from '../src/callers/caller.js';
import { SEED } from '../src/simulator/seed.js';
import { graphql } from './graphql-client.js';
import { OWNER, startUpstream } from './upstream.js';

// Issue #17: upstream calls and bytes per mutation on a Flex cluster with 2,160 jobs (the realistic
// simulator's busy-flex), and how long each took. Before #17 a mutation read the whole job list first
// (5 GETs of 500, about 1.4 MB from the simulator); now only its recent end. Run: npx tsx
// bench/mutation-volume.ts (prints a JSON row per mutation).
const R = SEED.realistic;

const DOWNLOAD = `mutation($input: RequestDownloadInput!) { requestDownload(input: $input) { reused job { id } } }`;
const RESTORE = `mutation($input: RequestRestoreInput!) { requestRestore(input: $input) { reused job { id } } }`;

export interface MutationVolumeRow {
  mutation: string;
  calls: number;
  listCalls: number;
  bytes: number;
  ms: number;
}

export async function runMutationVolume(): Promise<MutationVolumeRow[]> {
  const upstream = await startUpstream({ profile: 'realistic', jobMs: 60_000 });
  const gateway = createGateway({
    authenticate: openAccess,
    atlas: {
      baseUrl: upstream.url,
      auth: { type: 'oauth', clientId: OWNER.clientId, clientSecret: OWNER.clientSecret },
    },
    logging: false,
    graphiql: false,
  });
  const rows: MutationVolumeRow[] = [];
  try {
    const url = await gateway.listen(0, '127.0.0.1');
    const snapshots = upstream.sim.store.listSnapshots(R.groupId, R.busyClusterName);
    const cases: [string, string, Record<string, unknown>][] = [
      ['requestDownload (newest snapshot)', DOWNLOAD, { snapshotId: snapshots[0]!.id, reuseExisting: true }],
      [
        'requestDownload (week-old snapshot)',
        DOWNLOAD,
        { snapshotId: snapshots.at(-1)!.id, reuseExisting: true },
      ],
      ['requestRestore', RESTORE, { snapshotId: snapshots[0]!.id, targetClusterName: R.busyClusterName }],
    ];
    for (const [mutation, query, input] of cases) {
      const before = upstream.sim.stats().requests.length;
      const t0 = performance.now();
      await graphql(url, query, {
        input: { projectId: R.groupId, clusterName: R.busyClusterName, ...input },
      });
      const ms = performance.now() - t0;
      const calls = upstream.sim
        .stats()
        .requests.slice(before)
        .filter((r) => !r.operationId.startsWith('oauth.'));
      rows.push({
        mutation,
        calls: calls.length,
        listCalls: calls.filter((c) => c.operationId === 'listGroupFlexClusterBackupRestoreJobs').length,
        bytes: calls.reduce((n, c) => n + c.bytes, 0),
        ms: Math.round(ms * 10) / 10,
      });
    }
  } finally {
    await gateway.close();
    await upstream.close();
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const row of await runMutationVolume()) console.log(JSON.stringify(row));
}
