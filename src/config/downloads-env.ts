import { boolean, envVar, httpUrl, integer, invalid } from './env-var.js';
import type { DownloadsConfig } from './gateway-config.js';
import type { EnvValues } from './read-env.js';

export const downloadsEnv = {
  GATEWAY_EXPOSE_SNAPSHOT_URL: envVar(
    {
      group: 'security',
      description:
        "`false`: `RestoreJob.snapshotUrl` is always null, so Atlas's signed link (a bearer secret for four hours) never leaves the gateway; callers download through `downloadUrl` with their own credentials. `true`: shown to callers with the `download` right.",
      example: 'false',
      default: true,
    },
    boolean,
  ),
  GATEWAY_PUBLIC_URL: envVar(
    {
      group: 'server',
      description:
        'The origin clients reach the gateway at (behind a proxy or load balancer), which `RestoreJob.downloadUrl` is built on.',
      example: 'https://backups.example.com',
      defaultText: 'the origin of the request that asks for the field',
    },
    (value) => {
      const url = httpUrl(value);
      return url && url.pathname === '/' && !url.search && !url.hash
        ? url.origin
        : invalid('an http(s) origin, no path (https://host[:port])');
    },
  ),
  GATEWAY_DOWNLOAD_RENEW_MARGIN_MS: envVar(
    {
      group: 'upstream',
      description:
        'A download whose Atlas link expires sooner than this is renewed (a fresh download of the same snapshot, one per job however many clients) before it is streamed.',
      example: '300000',
      default: 60_000,
    },
    integer(0, 3_600_000),
  ),
};

export function downloadsFromEnv(v: EnvValues<typeof downloadsEnv>): DownloadsConfig {
  return {
    exposeSnapshotUrl: v.GATEWAY_EXPOSE_SNAPSHOT_URL,
    publicUrl: v.GATEWAY_PUBLIC_URL,
    renewMarginMs: v.GATEWAY_DOWNLOAD_RENEW_MARGIN_MS,
  };
}
