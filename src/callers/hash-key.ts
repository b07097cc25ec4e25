import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { generateApiKey, hashApiKey } from './api-keys.js';

/**
 * `tsx src/callers/hash-key.ts [key]`: what to print for an operator. With a key, its hash; without,
 * a fresh key, its hash and an entry for `GATEWAY_API_KEYS` to fill in. Only the hash goes into the
 * configuration; the key is given to the service and kept nowhere else.
 */
export function hashKeyCommand(args: readonly string[]): { stdout: string; stderr: string } {
  const given = args[0];
  if (given !== undefined && given !== '') {
    // On stderr, so that `$(tsx src/callers/hash-key.ts "$KEY")` is the hash alone.
    const stderr =
      given.length < 32
        ? 'warning: a short key; the fast hash is only safe for long random keys. Prefer one made by this command without arguments.\n'
        : '';
    return { stdout: `${hashApiKey(given)}\n`, stderr };
  }
  const key = generateApiKey();
  const hash = hashApiKey(key);
  const entry = { id: 'my-service', hash, projects: '*', rights: ['read'] };
  const stdout = [
    `key:   ${key}`,
    `hash:  ${hash}`,
    `entry: ${JSON.stringify(entry)}`,
    '# give the key to the service (x-api-key or Authorization: Bearer); configure only the hash.',
    '',
  ].join('\n');
  return { stdout, stderr: '' };
}

const invokedDirectly = (() => {
  const argv1 = process.argv[1];
  if (argv1 === undefined) return false;
  try {
    return realpathSync(argv1) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
})();

if (invokedDirectly) {
  const { stdout, stderr } = hashKeyCommand(process.argv.slice(2));
  process.stderr.write(stderr);
  process.stdout.write(stdout);
}
