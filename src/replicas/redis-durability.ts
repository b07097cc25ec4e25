import type { Redis } from 'ioredis';

/** What `CONFIG GET` told about the settings idempotency keys rely on, and what is wrong with them. */
export interface RedisDurability {
  /** False when the server does not allow `CONFIG` (managed Redis often does not): nothing was checked. */
  checked: boolean;
  /** `appendonly`, `appendfsync`, `maxmemory-policy` as the server reported them. */
  settings: Record<string, string>;
  /** One sentence per setting that breaks the guarantee; empty when they all hold. */
  problems: string[];
}

/**
 * Checks the Redis settings the "one job per idempotency key" guarantee needs: an append-only file
 * (`appendonly yes`, `appendfsync everysec` or `always`), so a restart does not forget the keys, and
 * `maxmemory-policy noeviction`, so memory pressure does not drop them. A Redis that refuses `CONFIG`
 * answers `checked: false`.
 */
export async function checkRedisDurability(client: Redis): Promise<RedisDurability> {
  const settings: Record<string, string> = {};
  try {
    for (const name of ['appendonly', 'appendfsync', 'maxmemory-policy']) {
      const [, value] = (await client.config('GET', name)) as string[];
      if (value !== undefined) settings[name] = value;
    }
  } catch {
    return { checked: false, settings, problems: [] };
  }
  const problems: string[] = [];
  if (settings.appendonly !== 'yes') {
    problems.push(
      `appendonly is ${settings.appendonly ?? 'unknown'}: a restart forgets every idempotency key (set appendonly yes)`,
    );
  } else if (!['everysec', 'always'].includes(settings.appendfsync ?? '')) {
    problems.push(
      `appendfsync is ${settings.appendfsync ?? 'unknown'}: a crash may lose recent idempotency keys (set everysec or always)`,
    );
  }
  if (settings['maxmemory-policy'] !== 'noeviction') {
    problems.push(
      `maxmemory-policy is ${settings['maxmemory-policy'] ?? 'unknown'}: memory pressure may evict idempotency keys (set noeviction)`,
    );
  }
  return { checked: true, settings, problems };
}
