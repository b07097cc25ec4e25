import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { systemClock, type Clock } from '../time/clock.js';
import { GatewayError } from '../errors/index.js';
import { ALL_RIGHTS, type Caller, type Right } from './caller.js';
import { unauthenticated, type CredentialMethod } from './credentials.js';

/** Where the JWT signing keys come from: exactly one. */
export type JwtKeySource =
  | {
      /** The identity provider's JWKS (https, or http on loopback); fetched on demand and cached. */
      jwksUrl: URL;
      /** How long fetched keys are trusted before a refetch. @default 600000 */
      cacheMaxAgeMs?: number;
      /** Least time between two fetches triggered by an unknown `kid` (key rotation). @default 30000 */
      cooldownMs?: number;
      /** Time limit of one JWKS fetch. @default 5000 */
      timeoutMs?: number;
    }
  | {
      /** A PEM public key (SPKI) or certificate (RSA, EC or Ed25519). */
      publicKey: string;
    }
  | {
      /** A shared secret for HMAC (HS256): at least 32 bytes, as RFC 7518 §3.2 requires. */
      secret: string;
    };

/** Options of `jwtAuth`. */
export interface JwtAuthOptions {
  key: JwtKeySource;
  /** Accepted `iss`; required, one of them must match. */
  issuer: string | string[];
  /** Accepted `aud`; required, one of them must be in the token's. */
  audience: string | string[];
  /**
   * Claim holding the caller's project ids: an array of 24-hex ids, or `"*"` (every project). A token
   * without it is refused (a token minted for another purpose must not pass as "no projects").
   * @default 'atlas_projects'
   */
  projectsClaim?: string;
  /**
   * Claim holding the caller's rights: an array of `read`, `download`, `restore`. Without it the caller
   * may only read (least privilege).
   * @default 'atlas_rights'
   */
  rightsClaim?: string;
  /** Leeway for `exp` and `nbf` against clock skew between the gateway and the identity provider. @default 30 */
  clockToleranceSec?: number;
  /**
   * Accepted `alg` values; pinned so that a token cannot pick a weaker or unintended algorithm.
   * @default ['HS256'] with a secret, ASYMMETRIC_ALGORITHMS with a public key or JWKS
   */
  algorithms?: string[];
  /** @default systemClock */
  clock?: Clock;
}

/** The signature algorithms accepted with a public key or a JWKS unless configured otherwise. */
export const ASYMMETRIC_ALGORITHMS: readonly string[] = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
];
export const HMAC_ALGORITHMS: readonly string[] = ['HS256', 'HS384', 'HS512'];

const PROJECT_ID = /^[0-9a-f]{24}$/;
/** Three base64url segments: a JWS in compact serialization. */
export const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** Parses a PEM public key or certificate; `\n` written literally (as in .env files) counts as a newline. */
export function parsePublicKeyPem(pem: string): KeyObject {
  return createPublicKey(pem.replace(/\\n/g, '\n'));
}

const claimCheck: Record<string, string> = {
  iss: 'issuer (iss)',
  aud: 'audience (aud)',
  nbf: 'not-before time (nbf)',
  iat: 'issued-at time (iat)',
  exp: 'expiry (exp)',
  sub: 'subject (sub)',
};

/** The client's message for a failed verification: which check failed, never the token or its claims. */
function verifyFailure(err: unknown): GatewayError {
  if (err instanceof errors.JWTExpired) return unauthenticated('The JWT has expired (exp).');
  if (err instanceof errors.JWTClaimValidationFailed) {
    const what = claimCheck[err.claim] ?? `claim "${err.claim}"`;
    if (err.reason === 'missing') return unauthenticated(`The JWT has no ${what}.`);
    if (err.claim === 'nbf') return unauthenticated('The JWT is not valid yet (nbf).');
    if (err.claim === 'iss' || err.claim === 'aud') {
      return unauthenticated(`The JWT ${what} is not one this gateway accepts.`);
    }
    return unauthenticated(`The JWT ${what} is invalid.`);
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) {
    return unauthenticated('The JWT signature does not verify.');
  }
  if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) {
    return unauthenticated('The JWT algorithm (alg) is not one this gateway accepts.');
  }
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) {
    return unauthenticated('No single key of the JWKS matches the JWT (kid, alg).');
  }
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) {
    return unauthenticated('The bearer token is not a well-formed JWT.');
  }
  // The identity provider's JWKS could not be read: not the caller's fault, and worth retrying.
  return new GatewayError('UPSTREAM_UNAVAILABLE', 'The JWT signing keys (JWKS) could not be fetched.', {
    extensions: { retryable: true },
    cause: err,
  });
}

/** The caller's projects and rights from the verified claims; refuses what it cannot read. */
function callerOf(payload: JWTPayload, projectsClaim: string, rightsClaim: string): Caller {
  if (typeof payload.sub !== 'string' || payload.sub === '') {
    throw unauthenticated('The JWT has no subject (sub).');
  }
  const p = payload[projectsClaim];
  let projects: Caller['projects'];
  if (p === '*' || (Array.isArray(p) && p.length === 1 && p[0] === '*')) projects = 'all';
  else if (Array.isArray(p) && p.every((x) => typeof x === 'string' && PROJECT_ID.test(x))) {
    projects = new Set(p as string[]);
  } else if (p === undefined) {
    throw unauthenticated(`The JWT has no "${projectsClaim}" claim (the projects the caller may use).`);
  } else {
    throw unauthenticated(`The JWT claim "${projectsClaim}" must be "*" or an array of 24-hex project ids.`);
  }
  const r = payload[rightsClaim];
  let rights: ReadonlySet<Right>;
  if (r === undefined) rights = new Set<Right>(['read']);
  else if (Array.isArray(r) && r.every((x) => typeof x === 'string' && ALL_RIGHTS.has(x as Right))) {
    rights = new Set(r as Right[]);
  } else {
    throw unauthenticated(
      `The JWT claim "${rightsClaim}" must be an array of "read", "download", "restore".`,
    );
  }
  return { id: jwtCallerId(payload.iss ?? '', payload.sub), kind: 'jwt', projects, rights };
}

/**
 * `jwt:<issuer, URI-encoded>:<sub>`: a subject is unique only within its issuer (`alice` of two identity
 * providers are two people), so the id, which keys rate limits, idempotency keys and pollers, names
 * both. The issuer is encoded so that it holds no `:` and the pair reads back one way only.
 */
export function jwtCallerId(issuer: string, subject: string): string {
  return `jwt:${encodeURIComponent(issuer)}:${subject}`;
}

/**
 * JWTs for frontends (`Authorization: Bearer <jwt>`): signature, `iss`, `aud`, `exp`/`nbf` checked
 * (`exp` and `sub` are required: a token that never expires is refused; the caller id is
 * `jwtCallerId(iss, sub)`),
 * projects and rights read from claims. A bearer token that is not JWT-shaped is passed on (it may be
 * for the next method); a JWT that fails a check is refused.
 */
export function jwtAuth(options: JwtAuthOptions): CredentialMethod {
  const clock = options.clock ?? systemClock;
  const projectsClaim = options.projectsClaim ?? 'atlas_projects';
  const rightsClaim = options.rightsClaim ?? 'atlas_rights';
  const src = options.key;
  let key: KeyObject | JWTVerifyGetKey;
  let defaultAlgorithms: readonly string[] = ASYMMETRIC_ALGORITHMS;
  if ('jwksUrl' in src) {
    key = createRemoteJWKSet(src.jwksUrl, {
      cacheMaxAge: src.cacheMaxAgeMs ?? 600_000,
      cooldownDuration: src.cooldownMs ?? 30_000,
      timeoutDuration: src.timeoutMs ?? 5_000,
    });
  } else if ('publicKey' in src) {
    key = parsePublicKeyPem(src.publicKey);
  } else {
    key = createSecretKey(Buffer.from(src.secret, 'utf8'));
    defaultAlgorithms = ['HS256'];
  }
  const verifyOptions = {
    issuer: options.issuer,
    audience: options.audience,
    algorithms: [...(options.algorithms ?? defaultAlgorithms)],
    clockTolerance: options.clockToleranceSec ?? 30,
    requiredClaims: ['exp'],
  };
  return {
    mode: 'jwt',
    accepts: 'a JWT (Authorization: Bearer)',
    async identify({ bearer }) {
      if (bearer === undefined) return undefined;
      if (!JWT_SHAPE.test(bearer)) return { reason: 'the bearer token is not a JWT' };
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(bearer, key, {
          ...verifyOptions,
          currentDate: new Date(clock.now()),
        }));
      } catch (err) {
        throw verifyFailure(err);
      }
      return callerOf(payload, projectsClaim, rightsClaim);
    },
  };
}
