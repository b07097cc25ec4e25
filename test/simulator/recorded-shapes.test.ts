import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SIM_CREDENTIALS, ManualClock } from '../../src/simulator/index.js';
import { SEED } from '../../src/simulator/seed.js';
import { ATLAS_RATE_LIMITS } from '../../src/simulator/rate-limiter.js';
import { startContractSimulator } from '../support/contract.js';
import { call, fetchToken, type RawAnswer } from '../support/sim-http.js';

// Issue #17: the simulator against three answers recorded from the real Atlas (schema/atlas/recorded,
// from the Atlas CLI's e2e tests, August 2026): same keys, same value formats, same order, same
// lifecycle. Values that name the recorder's project differ by nature; shapes must not.
const FLEX_TYPE = 'application/vnd.atlas.2024-11-13+json';

interface Recorded {
  status: number;
  headers: Record<string, string>;
  body: Record<string, unknown>;
}

function recorded(name: string): Recorded {
  const raw = readFileSync(new URL(`../../schema/atlas/recorded/${name}.http`, import.meta.url), 'utf8');
  const [head, body] = raw.split(/\r?\n\r?\n/, 2) as [string, string];
  const [statusLine, ...lines] = head.split(/\r?\n/);
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  return {
    status: Number(statusLine!.split(' ')[1]),
    headers,
    body: JSON.parse(body) as Record<string, unknown>,
  };
}

const WHOLE_SECONDS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
const keys = (o: unknown) => Object.keys(o as object).sort();
/** Each date-like value's format: whole-second ISO-8601, as Atlas sends it. */
const dateFormats = (o: Record<string, unknown>) =>
  Object.entries(o)
    .filter(([k]) => /Date$|Time$|^expiration$/.test(k))
    .map(([k, v]) => [k, WHOLE_SECONDS.test(String(v))]);

async function simulator() {
  // The realistic data, Atlas's lifecycle (PENDING first) and rate limits, as a real project looks.
  const clock = new ManualClock();
  const sim = await startContractSimulator({
    clock,
    profile: 'realistic',
    firstJobStatus: 'PENDING',
    jobMs: 60_000,
    rateLimit: { capacity: 1000, refillPerSecond: 100, capacityBySet: ATLAS_RATE_LIMITS },
  });
  const [owner] = DEFAULT_SIM_CREDENTIALS;
  const token = (await fetchToken(sim, owner!)).body.access_token as string;
  const base = `/api/atlas/v2/groups/${SEED.realistic.groupId}/flexClusters/${SEED.realistic.busyClusterName}/backup`;
  const get = (path: string) => call(sim, 'GET', `${base}${path}`, { accept: FLEX_TYPE, token });
  const post = (path: string, body: unknown) =>
    call(sim, 'POST', `${base}${path}`, { accept: FLEX_TYPE, contentType: FLEX_TYPE, token, body });
  return { sim, clock, token, get, post };
}

const json = (r: RawAnswer) => r.json() as Record<string, unknown>;

describe('the simulator against answers recorded from Atlas', () => {
  it('limits per endpoint set as Atlas does: Ratelimit-Limit 1200 on Flex routes, 10000 on cluster routes', async () => {
    const { sim, token, get } = await simulator();
    expect((await get('/snapshots')).headers['ratelimit-limit']).toBe('1200');
    const clusters = await call(sim, 'GET', `/api/atlas/v2/groups/${SEED.realistic.groupId}/clusters`, {
      accept: 'application/vnd.atlas.2024-08-05+json',
      token,
    });
    expect(clusters.headers['ratelimit-limit']).toBe('10000');
  });

  it('lists Flex snapshots as Atlas does: 8 daily ones, oldest first, the same keys and whole-second dates', async () => {
    const real = recorded('flex-snapshots-list');
    const { get } = await simulator();
    const ours = await get('/snapshots');
    expect(ours.status).toBe(real.status);
    expect(ours.headers['content-type']).toBe(real.headers['content-type']);
    expect(ours.headers['ratelimit-limit']).toBe(real.headers['ratelimit-limit']);
    const body = json(ours);
    expect(keys(body)).toEqual(keys(real.body));
    const items = body.results as Record<string, unknown>[];
    const realItems = real.body.results as Record<string, unknown>[];
    expect(items).toHaveLength(realItems.length);
    expect(body.totalCount).toBe(real.body.totalCount);
    for (const item of items) {
      expect(keys(item)).toEqual(keys(realItems[0]));
      expect(dateFormats(item)).toEqual(dateFormats(realItems[0]!));
    }
    // Oldest first, one a day, kept 8 days.
    const times = (list: Record<string, unknown>[]) => list.map((s) => Date.parse(s.scheduledTime as string));
    for (const list of [realItems, items]) {
      const t = times(list);
      expect([...t].sort((a, b) => a - b)).toEqual(t);
      expect(t[1]! - t[0]!).toBe(24 * 3600_000);
    }
    // The self link as Atlas writes it.
    const selfOf = (b: Record<string, unknown>) =>
      new URL((b.links as { rel: string; href: string }[]).find((l) => l.rel === 'self')!.href).search;
    expect(selfOf(body)).toBe(selfOf(real.body));
  });

  it('starts a RESTORE job PENDING with expirationDate = restoreScheduledDate + 6 h, the keys Atlas sends', async () => {
    const created = recorded('flex-restore-job-create');
    const completed = recorded('flex-restore-job-completed');
    const { clock, get, post } = await simulator();
    const ours = await post('/restoreJobs', {
      snapshotId: SEED.realistic.busyNewestSnapshotId,
      targetDeploymentItemName: SEED.realistic.busyClusterName,
    });
    expect(ours.status).toBe(created.status);
    expect(ours.headers['content-type']).toBe(created.headers['content-type']);
    const job = json(ours);
    expect(job.status).toBe(created.body.status);
    expect(keys(job)).toEqual(keys(created.body));
    expect(dateFormats(job)).toEqual(dateFormats(created.body));
    const sixHours = (b: Record<string, unknown>) =>
      Date.parse(b.expirationDate as string) - Date.parse(b.restoreScheduledDate as string);
    expect(sixHours(job)).toBe(sixHours(created.body));
    expect(sixHours(job)).toBe(6 * 3600_000);

    clock.advance(60_000);
    const done = json(await get(`/restoreJobs/${job.id as string}`));
    expect(done.status).toBe(completed.body.status);
    expect(keys(done)).toEqual(keys(completed.body));
    expect(done.expirationDate).toBe(job.expirationDate);
  });

  it('answers errors as Atlas does: application/json with X-Error-Code; a 401 is UNEXPECTED_ERROR, indented, without parameters', async () => {
    const { sim, get } = await simulator();
    const missing = await get(`/restoreJobs/${SEED.unknownId}`);
    expect(missing.status).toBe(404);
    expect(missing.headers['content-type']).toBe('application/json');
    expect(missing.headers['x-error-code']).toBe('RESOURCE_NOT_FOUND');
    const denied = await call(sim, 'GET', '/api/atlas/v2/groups', { accept: FLEX_TYPE });
    expect(denied.status).toBe(401);
    expect(denied.headers['x-error-code']).toBe('UNEXPECTED_ERROR');
    expect(denied.text).toContain('\n  "errorCode": "UNEXPECTED_ERROR"');
    expect(denied.json()).not.toHaveProperty('parameters');
  });
});
