import { boolean, envVar } from './env-var.js';
import { redactRedisUrl } from './redis-env.js';
import type { EnvReading, EnvValues } from './read-env.js';

const OVERRIDE = 'GATEWAY_ALLOW_INSECURE_UPSTREAM';

export const insecureUpstreamEnv = {
  [OVERRIDE]: envVar(
    {
      group: 'upstream',
      description:
        'Lets secrets cross unencrypted links off loopback (an `http://` Atlas URL, `redis://` with a password): labs only.',
      example: 'true',
      default: false,
    },
    boolean,
  ),
};

/** This machine: `localhost`, 127.0.0.0/8 or `[::1]` (as `URL.hostname` writes them). */
export function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127(\.\d{1,3}){3}$/.test(hostname);
}

function parsed(url: string | undefined): URL | undefined {
  if (url === undefined) return undefined;
  try {
    return new URL(url);
  } catch {
    return undefined;
  }
}

/**
 * Refuses, at start, configurations that would send secrets in clear text over a network: the
 * gateway's Atlas credentials (an OAuth client secret in the token request, a Digest exchange over
 * which the data flows unencrypted too) or its callers' own Atlas tokens (pass-through) to an
 * `http://` Atlas that is not on this machine, and a Redis password to a remote `redis://` (no TLS),
 * where the job events also carry `snapshotUrl`s. Loopback stays allowed (the simulator, a local
 * sidecar or tunnel); `GATEWAY_ALLOW_INSECURE_UPSTREAM=true` allows the rest, in a lab, on purpose.
 *
 * @param atlasBaseUrl the Atlas URL the gateway will use; undefined in demo mode (the embedded simulator).
 */
export function checkUpstreamTransport(
  v: EnvValues<typeof insecureUpstreamEnv>,
  upstream: { atlasBaseUrl: string | undefined; redisUrl: string | undefined },
  reading: EnvReading,
): void {
  if (v[OVERRIDE]) return;
  const atlas = parsed(upstream.atlasBaseUrl);
  if (atlas?.protocol === 'http:' && !isLoopbackHost(atlas.hostname)) {
    reading.problem(
      'MONGODB_ATLAS_BASE_URL',
      `MONGODB_ATLAS_BASE_URL: expected an https URL (http only on localhost, 127.0.0.1 or [::1]), got ${JSON.stringify(atlas.origin)}: the gateway would send Atlas credentials (its own, or its callers' tokens) unencrypted to another host; use https, or set ${OVERRIDE}=true in a lab`,
    );
  }
  const redis = parsed(upstream.redisUrl);
  if (redis?.protocol === 'redis:' && redis.password !== '' && !isLoopbackHost(redis.hostname)) {
    reading.problem(
      'REDIS_URL',
      `REDIS_URL: expected rediss:// (TLS) for a Redis with a password on another host, got ${JSON.stringify(redactRedisUrl(upstream.redisUrl ?? ''))}: the password and the shared job state (download URLs included) would cross the network unencrypted; use rediss://, or set ${OVERRIDE}=true in a lab`,
    );
  }
}
