import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ALL_RIGHTS } from '../../src/callers/caller.js';
import { authenticateWith } from '../../src/callers/authenticate-with.js';
import { passThroughAuth, passThroughCaller } from '../../src/callers/pass-through.js';
import { refusal, requestWith } from '../support/caller-requests.js';

const TOKEN = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJtZGJfc2EifQ.c2lnbmF0dXJl';

describe('pass-through', () => {
  it('finding 9d: makes a caller with every project and right, the token to send upstream, and the full-length hash as id', () => {
    const hex = createHash('sha256').update(TOKEN).digest('hex');
    expect(hex).toHaveLength(64);
    expect(passThroughCaller(TOKEN)).toEqual({
      id: `passthrough:${hex}`,
      kind: 'passThrough',
      projects: 'all',
      rights: ALL_RIGHTS,
      atlasBearerToken: TOKEN,
    });
    expect(passThroughCaller(TOKEN).id).not.toContain(TOKEN.slice(0, 12));
  });

  it('reads x-atlas-access-token; Authorization: Bearer only when asked (the sole method)', async () => {
    const headerOnly = authenticateWith([passThroughAuth()]);
    expect((await headerOnly(requestWith({ 'x-atlas-access-token': TOKEN }))).atlasBearerToken).toBe(TOKEN);
    expect((await refusal(headerOnly, { authorization: `Bearer ${TOKEN}` })).message).toBe(
      'Not authenticated: the credentials sent are not accepted here; send an Atlas access token (x-atlas-access-token).',
    );
    const withBearer = authenticateWith([passThroughAuth({ acceptBearer: true })]);
    expect((await withBearer(requestWith({ authorization: `bearer ${TOKEN}` }))).atlasBearerToken).toBe(
      TOKEN,
    );
  });

  it('refuses a value that cannot be a bearer token, without echoing it', async () => {
    const auth = authenticateWith([passThroughAuth()]);
    const err = await refusal(auth, { 'x-atlas-access-token': 'not a token' });
    expect(err.code).toBe('UNAUTHENTICATED');
    expect(err.message).toMatch(/^The Atlas access token \(x-atlas-access-token\) is not a bearer token/);
    expect(err.message).not.toContain('not a token');
    expect((await refusal(auth, {})).message).toBe(
      'Authentication required: send an Atlas access token (x-atlas-access-token).',
    );
  });
});

describe('passThroughAuth, built inside the test', () => {
  it('is the passthrough method and says which headers it reads', () => {
    expect([passThroughAuth().mode, passThroughAuth().accepts]).toEqual([
      'passthrough',
      'an Atlas access token (x-atlas-access-token)',
    ]);
    expect(passThroughAuth({ acceptBearer: true }).accepts).toBe(
      'an Atlas access token (x-atlas-access-token, or Authorization: Bearer)',
    );
  });

  it('ignores a bearer token unless told to take it, and names the header a malformed token came in', async () => {
    expect(await passThroughAuth().identify({ bearer: 'tok' })).toBeUndefined();
    const err = await passThroughAuth({ acceptBearer: true })
      .identify({ bearer: 'not a token' })
      .catch((e: unknown) => e);
    expect((err as Error).message).toBe(
      'The Atlas access token (Authorization: Bearer) is not a bearer token (RFC 6750 characters, at most 8192).',
    );
  });
});
