import { describe, expect, it } from 'vitest';
import { AtlasApiError, createAtlasClient } from '../../src/atlas/index.js';
import { toGraphQLError } from '../../src/graphql/errors.js';
import { JobPollers } from '../../src/jobs/job-pollers.js';
import type { RestoreJobSource } from '../../src/backup/model.js';
import { track } from '../support/disposer.js';
import { ManualTimers } from '../support/manual-timers.js';
import { json, startTinyServer } from '../support/tiny-server.js';

const G = '6650a1b2c3d4e5f6a7b8c9d0';
const UNAUTHORIZED = {
  error: 401,
  errorCode: 'UNAUTHORIZED',
  reason: 'Unauthorized',
  detail: 'x',
  parameters: [],
};

/** A Digest server whose nonces are always stale by the time a resend arrives (or that refuses the key). */
async function digestServer(answer: 'stale' | 'refused') {
  let n = 0;
  return startTinyServer((req, res) => {
    const first = !req.headers.authorization;
    const stale = !first && answer === 'stale' ? ', stale=true' : '';
    json(res, 401, UNAUTHORIZED, {
      'www-authenticate': `Digest realm="MMS Public API", qop="auth", nonce="n${++n}", algorithm=MD5${stale}`,
    });
  });
}

async function failure(answer: 'stale' | 'refused') {
  const server = await digestServer(answer);
  const client = track(
    createAtlasClient({ baseUrl: server.url, auth: { type: 'digest', publicKey: 'k', privateKey: 'p' } }),
    'atlas client',
  );
  const err = await client.projects.getGroup({ groupId: G }).then(
    () => undefined,
    (e: unknown) => e,
  );
  return { err: err as AtlasApiError, requests: server.seen.length };
}

describe('digest-stale-resend: a nonce that keeps going stale is not a refused key', () => {
  it('gives up after the challenge and three stale resends with a 401 marked nonceStale', async () => {
    const { err, requests } = await failure('stale');
    expect(err).toBeInstanceOf(AtlasApiError);
    expect({ status: err.status, nonceStale: err.nonceStale, requests }).toEqual({
      status: 401,
      nonceStale: true,
      requests: 4,
    });
    expect(toGraphQLError(err)!.extensions).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', retryable: true });
  });

  it('a refused key (no stale) is still UNAUTHENTICATED after one re-challenge', async () => {
    const { err, requests } = await failure('refused');
    expect({ status: err.status, nonceStale: err.nonceStale, requests }).toEqual({
      status: 401,
      nonceStale: false,
      requests: 2,
    });
    expect(toGraphQLError(err)!.extensions).toMatchObject({ code: 'UNAUTHENTICATED', retryable: false });
  });

  it('a job poller keeps the subscription through a stale-nonce 401 and delivers the next state', async () => {
    const timers = new ManualTimers();
    const pollers = new JobPollers({ timers, intervalMs: 1000 });
    const job = (status: string): RestoreJobSource => ({
      projectId: G,
      clusterName: 'c',
      family: 'FLEX',
      dto: { id: 'j1', status } as RestoreJobSource['dto'],
    });
    const answers: (() => RestoreJobSource)[] = [
      () => job('QUEUED'),
      () => {
        throw new AtlasApiError({ operation: 'x', status: 401, errorCode: 'UNAUTHORIZED', nonceStale: true });
      },
      () => job('COMPLETED'),
    ];
    let reads = 0;
    const stream = pollers.watch('k', async () => answers[reads++]!());
    const seen: string[] = [];
    const done = (async () => {
      for await (const e of stream) seen.push('dto' in e ? (e.dto.status ?? '') : 'SHUTTING_DOWN');
    })();
    await expect.poll(() => seen).toEqual(['QUEUED']);
    for (let i = 0; i < 4 && reads < 3; i++) {
      timers.fire();
      await expect.poll(() => reads > i + 1 || reads === 3).toBe(true);
    }
    await done;
    expect({ seen, reads }).toEqual({ seen: ['QUEUED', 'COMPLETED'], reads: 3 });
  });
});
