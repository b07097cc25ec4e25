import type { YogaServerOptions } from 'graphql-yoga';

type YogaCors = NonNullable<YogaServerOptions<Record<string, never>, Record<string, unknown>>['cors']>;

/** Which browser pages on other origins may read the gateway's answers. */
export interface CorsPolicyOptions {
  /**
   * Origins allowed cross-origin, as browsers send them in `Origin` (`https://app.example.com`), or
   * `['*']`: any origin, never with credentials. Refused in production: a browser there needs a list.
   * @default [] (no cross-origin access)
   */
  origins?: readonly string[];
  /**
   * Also any page served from this machine (`http(s)://localhost`, `127.x.x.x` or `[::1]`, any port),
   * never with credentials: demo mode's default, for a frontend dev server next to the gateway.
   * @default false
   */
  loopback?: boolean;
  /** Production mode: `*` is refused. @default false */
  production?: boolean;
}

/** The policy, in the two shapes its users need. */
export interface CorsPolicy {
  /**
   * Whether a page on `origin` (the `Origin` header's value) may call the gateway cross-origin. The
   * WebSocket upgrade check uses it too: a request without `Origin` (not a browser) or from the
   * gateway's own origin (`isSameOrigin`) is no cross-origin call and needs no policy.
   */
  allowed(origin: string): boolean;
  /**
   * yoga's `cors` option: headers only for an allowed origin (nothing at all for the others, so a
   * browser refuses the read), `Access-Control-Allow-Credentials` only for a listed one.
   */
  yoga: YogaCors;
}

/** `scheme://host[:port]` of an http(s) origin, normalised as a browser sends it, or undefined. */
export function normaliseOrigin(value: string): string | undefined {
  try {
    const url = new URL(value);
    const ok =
      ['http:', 'https:'].includes(url.protocol) && url.origin === value.replace(/\/$/, '').toLowerCase();
    return ok ? url.origin : undefined;
  } catch {
    return undefined;
  }
}

const LOOPBACK_HOSTS = /^(localhost|127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\])$/;

/**
 * The gateway's CORS policy. yoga's own default reflects any `Origin` with
 * `Access-Control-Allow-Credentials: true`, and its list form answers an unlisted origin with the
 * first listed one; this decides per request and hands yoga only what an allowed origin may see.
 */
export function corsPolicy(options: CorsPolicyOptions = {}): CorsPolicy {
  const origins = options.origins ?? [];
  const any = origins.includes('*');
  if (any && options.production) {
    throw new RangeError(
      'corsOrigins: expected an explicit list of origins in production (any site could read the answers), got "*"',
    );
  }
  if (any && origins.length > 1) {
    throw new RangeError(`corsOrigins: expected "*" alone or a list of origins, got ${origins.join(', ')}`);
  }
  const listed = new Set<string>();
  for (const o of any ? [] : origins) {
    const normal = normaliseOrigin(o);
    if (normal === undefined)
      throw new RangeError(
        `corsOrigins: expected origins like https://app.example.com, got ${JSON.stringify(o)}`,
      );
    listed.add(normal);
  }
  const loopback = (origin: string) => {
    const normal = normaliseOrigin(origin);
    return normal !== undefined && LOOPBACK_HOSTS.test(new URL(normal).hostname);
  };
  const isListed = (origin: string) => {
    const normal = normaliseOrigin(origin);
    return normal !== undefined && listed.has(normal);
  };
  const allowed = (origin: string) =>
    any || isListed(origin) || (options.loopback === true && loopback(origin));
  const listedOrigins = [...listed];
  return {
    allowed,
    yoga: (request: Request) => {
      const origin = request.headers.get('origin');
      if (origin === null || !allowed(origin)) return false;
      // A listed origin: yoga answers it (with `Vary: Origin` when several are listed) and allows
      // credentials; an unlisted one never got here.
      if (isListed(origin)) return { origin: listedOrigins, credentials: true };
      // Any origin, or a loopback one: yoga writes the caller's origin (what `*` means to a browser
      // without credentials, with `Vary: Origin`), and never allows credentials.
      return { origin: ['*'], credentials: false };
    },
  };
}

/**
 * Whether `origin` is the gateway's own (`host` is the request's `Host` header): a page the gateway
 * served itself, such as GraphiQL, calling back. A browser always sends the real `Host`.
 */
export function isSameOrigin(origin: string, host: string | null | undefined): boolean {
  const normal = normaliseOrigin(origin);
  return (
    normal !== undefined && host !== null && host !== undefined && new URL(normal).host === host.toLowerCase()
  );
}
