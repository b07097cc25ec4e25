import { request } from 'undici';

/** The media types the naive resolvers ask for: the same versions the gateway reads. */
export const MEDIA = {
  groups: 'application/vnd.atlas.2023-01-01+json',
  clusters: 'application/vnd.atlas.2024-08-05+json',
  flex: 'application/vnd.atlas.2024-11-13+json',
  tenantBackup: 'application/vnd.atlas.2023-01-01+json',
} as const;

/** An Atlas error answer. */
export class RestError extends Error {
  constructor(
    readonly status: number,
    readonly errorCode: string | undefined,
    detail: string,
  ) {
    super(`Atlas answered ${status} ${errorCode ?? ''}: ${detail}`);
  }
}

/** Atlas's list envelope. */
export interface Paginated<T> {
  results: T[];
  totalCount?: number;
}

/**
 * The plainest REST client: one undici request per call, a static bearer token, no cache, no retry.
 * What a resolver set written without loaders calls from every field.
 */
export class AtlasRest {
  constructor(
    readonly baseUrl: string,
    readonly token: string,
  ) {}

  get<T>(path: string, mediaType: string): Promise<T> {
    return this.#send<T>('GET', path, mediaType);
  }

  post<T>(path: string, mediaType: string, body: unknown): Promise<T> {
    return this.#send<T>('POST', path, mediaType, body);
  }

  async #send<T>(method: 'GET' | 'POST', path: string, mediaType: string, body?: unknown): Promise<T> {
    const res = await request(`${this.baseUrl}/api/atlas/v2${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        accept: mediaType,
        ...(body !== undefined ? { 'content-type': mediaType } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const json = (await res.body.json()) as T & { errorCode?: string; detail?: string };
    if (res.statusCode >= 400) throw new RestError(res.statusCode, json.errorCode, json.detail ?? '');
    return json;
  }
}
