import { apiKeyAuth, generateApiKey, hashApiKey, type ApiKeyEntry } from '../../src/callers/api-keys.js';
import { authenticateWith } from '../../src/callers/authenticate-with.js';
import type { Authenticate, Caller } from '../../src/callers/caller.js';
import { GatewayError } from '../../src/errors/index.js';

/** A request to the gateway carrying only these headers. */
export const requestWith = (headers: Record<string, string> = {}): Request =>
  new Request('http://gateway.test/graphql', { method: 'POST', headers });

/** The UNAUTHENTICATED error an `Authenticate` throws for these headers (fails if it answers a caller). */
export async function refusal(
  authenticate: Authenticate,
  headers: Record<string, string>,
): Promise<GatewayError> {
  let caller: Caller | undefined;
  try {
    caller = await authenticate(requestWith(headers));
  } catch (err) {
    if (err instanceof GatewayError) return err;
    throw err;
  }
  throw new Error(`expected a refusal, got caller ${caller.id}`);
}

/** One API-key caller of a test: its key in clear, what the gateway's key entry holds. */
export interface TestKeyCaller {
  id: string;
  key: string;
  projects: ApiKeyEntry['projects'];
  rights: ApiKeyEntry['rights'];
}

/** A test caller with a fresh API key. */
export const keyCaller = (
  id: string,
  projects: ApiKeyEntry['projects'],
  rights: ApiKeyEntry['rights'],
): TestKeyCaller => ({ id, key: generateApiKey(), projects, rights });

/** The caller check of a gateway whose callers are these API keys (`x-api-key`). */
export const apiKeyCallers = (callers: Record<string, TestKeyCaller>): Authenticate =>
  authenticateWith([
    apiKeyAuth({
      keys: Object.values(callers).map((c) => ({
        id: c.id,
        hash: hashApiKey(c.key),
        projects: c.projects,
        rights: c.rights,
      })),
    }),
  ]);
