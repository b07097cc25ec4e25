import type { AuthMode } from '../callers/credentials.js';
import { boolean, envVar, httpUrl, invalid, text } from './env-var.js';
import type { AtlasConfig, AtlasCredentialsConfig } from './gateway-config.js';
import type { EnvReading, EnvValues } from './read-env.js';

const DEFAULT_BASE_URL = 'https://cloud.mongodb.com';

// Names follow the Atlas CLI; Terraform's names for the API key are accepted too, so one environment
// serves both tools.
export const atlasEnv = {
  MONGODB_ATLAS_BASE_URL: envVar(
    {
      group: 'atlas',
      description: 'The Atlas Admin API the gateway calls.',
      example: 'https://cloud.mongodb.com',
      defaultText: `\`${DEFAULT_BASE_URL}\` (the simulator in demo mode)`,
    },
    (value) => (httpUrl(value) ? value : invalid('an http(s) URL')),
  ),
  MONGODB_ATLAS_CLIENT_ID: envVar(
    {
      group: 'atlas',
      description: 'Client id of the Atlas service account (OAuth) the gateway calls Atlas with; preferred.',
      example: 'mdb_sa_id_0123456789abcdef',
    },
    text,
  ),
  MONGODB_ATLAS_CLIENT_SECRET: envVar(
    {
      group: 'atlas',
      description: 'Client secret of that service account.',
      example: 'mdb_sa_sk_0123456789abcdef',
      secret: true,
    },
    text,
  ),
  MONGODB_ATLAS_PUBLIC_API_KEY: envVar(
    {
      group: 'atlas',
      description:
        'Public key of the Atlas API key (Digest) the gateway calls Atlas with, if no service account.',
      example: 'abcdefgh',
    },
    text,
  ),
  MONGODB_ATLAS_PRIVATE_API_KEY: envVar(
    {
      group: 'atlas',
      description: 'Private key of that API key.',
      example: '01234567-89ab-cdef-0123-456789abcdef',
      secret: true,
    },
    text,
  ),
  MONGODB_ATLAS_PUBLIC_KEY: envVar(
    {
      group: 'atlas',
      description: "Terraform's name for MONGODB_ATLAS_PUBLIC_API_KEY (which wins when both are set).",
      example: 'abcdefgh',
    },
    text,
  ),
  MONGODB_ATLAS_PRIVATE_KEY: envVar(
    {
      group: 'atlas',
      description: "Terraform's name for MONGODB_ATLAS_PRIVATE_API_KEY (which wins when both are set).",
      example: '01234567-89ab-cdef-0123-456789abcdef',
      secret: true,
    },
    text,
  ),
  ATLAS_TENANT_LEGACY_V1: envVar(
    {
      group: 'atlas',
      description: 'Reads tenant backups over the legacy v1.0 routes, which take API keys (Digest) only.',
      example: 'true',
      default: false,
    },
    boolean,
  ),
};

/**
 * The credentials decide the mode: a service account wins over an API key; with neither, demo mode,
 * unless pass-through alone is asked for (callers bring their own Atlas tokens, against real Atlas).
 */
export function atlasFromEnv(
  v: EnvValues<typeof atlasEnv>,
  gatewayAuth: 'none' | readonly AuthMode[] | undefined,
  reading: EnvReading,
): { demo: boolean; atlas: AtlasConfig } {
  const clientId = v.MONGODB_ATLAS_CLIENT_ID;
  const clientSecret = v.MONGODB_ATLAS_CLIENT_SECRET;
  const publicName =
    v.MONGODB_ATLAS_PUBLIC_API_KEY !== undefined
      ? 'MONGODB_ATLAS_PUBLIC_API_KEY'
      : 'MONGODB_ATLAS_PUBLIC_KEY';
  const privateName =
    v.MONGODB_ATLAS_PRIVATE_API_KEY !== undefined
      ? 'MONGODB_ATLAS_PRIVATE_API_KEY'
      : 'MONGODB_ATLAS_PRIVATE_KEY';
  const publicKey = v.MONGODB_ATLAS_PUBLIC_API_KEY ?? v.MONGODB_ATLAS_PUBLIC_KEY;
  const privateKey = v.MONGODB_ATLAS_PRIVATE_API_KEY ?? v.MONGODB_ATLAS_PRIVATE_KEY;
  const pair = (a: string, av: string | undefined, b: string, bv: string | undefined) => {
    if (av === undefined && bv !== undefined)
      reading.problem(a, `${a}: must be set together with ${b}, which is set`);
    if (bv === undefined && av !== undefined)
      reading.problem(b, `${b}: must be set together with ${a}, which is set`);
  };
  pair('MONGODB_ATLAS_CLIENT_ID', clientId, 'MONGODB_ATLAS_CLIENT_SECRET', clientSecret);
  pair(
    publicKey === undefined ? 'MONGODB_ATLAS_PUBLIC_API_KEY' : publicName,
    publicKey,
    privateKey === undefined ? 'MONGODB_ATLAS_PRIVATE_API_KEY' : privateName,
    privateKey,
  );

  let auth: AtlasCredentialsConfig = { type: 'none' };
  // Service accounts are Atlas's recommended method; API keys are legacy. With both set, OAuth wins.
  if (clientId !== undefined && clientSecret !== undefined) auth = { type: 'oauth', clientId, clientSecret };
  else if (publicKey !== undefined && privateKey !== undefined)
    auth = { type: 'digest', publicKey, privateKey };

  const passThroughOnly =
    Array.isArray(gatewayAuth) && gatewayAuth.length === 1 && gatewayAuth[0] === 'passthrough';
  const demo = auth.type === 'none' && !passThroughOnly;
  const baseUrl = v.MONGODB_ATLAS_BASE_URL;
  // Set is enough, valid or not: pointing at an Atlas without credentials is a mistake of its own.
  if (demo && reading.isSet('MONGODB_ATLAS_BASE_URL')) {
    reading.problem(
      'MONGODB_ATLAS_BASE_URL',
      'MONGODB_ATLAS_BASE_URL: set, but no Atlas credentials are (MONGODB_ATLAS_CLIENT_ID/SECRET or MONGODB_ATLAS_PUBLIC_API_KEY/PRIVATE_API_KEY); unset it for demo mode',
    );
  }
  if (v.ATLAS_TENANT_LEGACY_V1 && auth.type === 'oauth') {
    reading.problem(
      'ATLAS_TENANT_LEGACY_V1',
      'ATLAS_TENANT_LEGACY_V1: the v1.0 routes take API keys (Digest) only, not a service account',
    );
  }
  return {
    demo,
    atlas: {
      baseUrl: demo ? undefined : (baseUrl ?? DEFAULT_BASE_URL),
      auth,
      legacyV1: v.ATLAS_TENANT_LEGACY_V1,
    },
  };
}
