/** What a redacted value becomes. */
export const REDACTED = '[redacted]';

/**
 * Query parameters that carry a signature or a credential (lowercased): the simulator's and S3's
 * pre-signed URLs, Google Cloud Storage and Azure SAS, and generic token/key names. `expires` and the
 * other non-secret parameters stay, so a log still tells which URL and until when.
 */
const SENSITIVE_PARAMS = new Set([
  'signature',
  'sig',
  'token',
  'access_token',
  'id_token',
  'refresh_token',
  'code',
  'key',
  'apikey',
  'api_key',
  'password',
  'secret',
  'client_secret',
  'credential',
  'x-amz-signature',
  'x-amz-credential',
  'x-amz-security-token',
  'awsaccesskeyid',
  'x-goog-signature',
  'x-goog-credential',
  'googleaccessid',
]);

/** Request and response headers that carry credentials (lowercased). */
const SENSITIVE_HEADERS = new Set([
  'authorization',
  'proxy-authorization',
  'x-api-key',
  'x-atlas-access-token',
  'cookie',
  'set-cookie',
]);

const decodeName = (raw: string): string => {
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' ')).toLowerCase();
  } catch {
    return raw.toLowerCase();
  }
};

/**
 * A URL fit for logs and error messages (e.g. a download job's `snapshotUrl`): scheme, host, path and
 * harmless parameters kept; signature and credential parameters, user info and fragment replaced by
 * `[redacted]`. Something that does not parse as a URL is redacted whole, as it may be anything.
 */
export function redactUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return REDACTED;
  }
  const userinfo = u.username !== '' || u.password !== '' ? `${REDACTED}@` : '';
  // Rebuilt by hand, not through URLSearchParams, so untouched parameters keep their exact spelling.
  const query = u.search
    .slice(1)
    .split('&')
    .filter((pair) => pair !== '')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const name = eq === -1 ? pair : pair.slice(0, eq);
      return SENSITIVE_PARAMS.has(decodeName(name)) ? `${name}=${REDACTED}` : pair;
    })
    .join('&');
  return `${u.protocol}//${userinfo}${u.host}${u.pathname}${query ? `?${query}` : ''}${u.hash ? `#${REDACTED}` : ''}`;
}

/** Headers fit for logs: names lowercased, credential headers' values replaced by `[redacted]`. */
export function redactHeaders(
  headers: Headers | Record<string, string | readonly string[] | number | undefined>,
): Record<string, string> {
  const out: Record<string, string> = {};
  const entries: [string, unknown][] =
    headers instanceof Headers ? [...headers.entries()] : Object.entries(headers);
  for (const [name, value] of entries) {
    if (value === undefined) continue;
    const n = name.toLowerCase();
    out[n] = SENSITIVE_HEADERS.has(n) ? REDACTED : Array.isArray(value) ? value.join(', ') : String(value);
  }
  return out;
}
