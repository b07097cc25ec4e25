/** What decides whether a browser page of some origin may call the gateway cross-origin. */
export interface OriginPolicy {
  /**
   * Origins allowed cross-origin (`https://app.example.com`, normalised as `GATEWAY_CORS_ORIGINS`
   * reads them), or `['*']` for any. Unset: none in production, loopback pages outside it.
   * @default undefined
   */
  allowList?: readonly string[] | undefined;
  /** Production mode: without an allow-list, no cross-origin page at all. @default false */
  production?: boolean;
}

const LOOPBACK_HOST = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])$/i;

/**
 * Whether a request carrying `Origin: origin` to the gateway at `host` (the request's `Host`) may go
 * on. No `Origin` is not a browser (curl, a service, a mobile app): allowed, the caller's credentials
 * decide. The gateway's own origin (GraphiQL, a page it serves) is always allowed. Any other origin
 * only when listed; without a list, only pages on the developer's own machine (loopback) outside
 * production, none in production.
 *
 * Browsers send `Origin` on every WebSocket upgrade and never apply CORS to it, so the gateway checks
 * it itself: otherwise any page a user visits could open a socket to a gateway the user can reach.
 */
export function originAllowed(
  origin: string | undefined,
  host: string | undefined,
  policy: OriginPolicy = {},
): boolean {
  if (origin === undefined || origin === '') return true;
  const list = policy.allowList;
  if (list?.includes('*')) return true;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    // `null` (a sandboxed frame, a file:// page) and anything unreadable: no origin to trust.
    return false;
  }
  if (host !== undefined && url.host === host.toLowerCase()) return true;
  if (list !== undefined) return list.includes(url.origin);
  return !policy.production && LOOPBACK_HOST.test(url.hostname);
}
