import { describe, expect, it } from 'vitest';
import { type Caller, type Right } from '../../src/callers/caller.js';
import { GatewayError } from '../../src/errors/index.js';
import { requireAccess } from '../../src/graphql/access.js';

const caller = (projects: Caller['projects'], rights: Right[]): Caller => ({
  id: 'svc',
  kind: 'apiKey',
  projects,
  rights: new Set(rights),
});

/** What `requireAccess` threw, as a client would see it: code, message, extensions. */
function refusal(c: Caller, projectId: string, right: Right) {
  try {
    requireAccess(c, projectId, right);
  } catch (err) {
    if (!(err instanceof GatewayError)) throw err;
    return { code: err.code, message: err.message, extensions: err.extensions };
  }
  return undefined;
}

describe('requireAccess', () => {
  it('lets a caller with the project and the right through', () => {
    expect(refusal(caller(new Set(['p1']), ['read', 'restore']), 'p1', 'restore')).toBeUndefined();
    expect(refusal(caller('all', ['download']), 'any', 'download')).toBeUndefined();
  });

  it('answers a project outside the caller’s list exactly as one that does not exist', () => {
    expect(refusal(caller(new Set(['p1']), ['read', 'download', 'restore']), 'p2', 'read')).toEqual({
      code: 'NOT_FOUND',
      message: 'No project with id p2 exists.',
      extensions: {},
    });
  });

  it('says NOT_FOUND, not FORBIDDEN, for a hidden project even without the right', () => {
    expect(refusal(caller(new Set(['p1']), []), 'p2', 'restore')?.code).toBe('NOT_FOUND');
  });

  it('refuses a visible project without the right with FORBIDDEN naming the right', () => {
    expect(refusal(caller(new Set(['p1']), ['read', 'download']), 'p1', 'restore')).toEqual({
      code: 'FORBIDDEN',
      message: 'This caller may not restore in project p1.',
      extensions: { right: 'restore' },
    });
  });
});
