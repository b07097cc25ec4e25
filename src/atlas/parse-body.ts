import type { AtlasLink, AtlasPage } from './paginate.js';

/** A 2xx body of the wrong shape; the request core turns it into an `AtlasResponseError`. */
export class BodyShapeError extends Error {
  override readonly name = 'BodyShapeError';
}

/**
 * A JSON object, typed as the spec's DTO. Only the envelope is checked: fields are Atlas's to add
 * (the v1.0 bodies carry extra ones), and a resolver should not fail on a field it does not read.
 */
export function parseObject<T extends object>(body: unknown): T {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new BodyShapeError(`expected a JSON object, got ${describe(body)}`);
  }
  return body as T;
}

/** A `Paginated*View`. Specs before 2026-08 do not require `results`, so a missing one is empty. */
export function parsePage<T extends object>(body: unknown): AtlasPage<T> {
  const o = parseObject<{ results?: unknown; totalCount?: unknown; links?: unknown }>(body);
  const results = o.results ?? [];
  if (!Array.isArray(results))
    throw new BodyShapeError(`expected results to be an array, got ${describe(results)}`);
  results.forEach((item, i) => {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) {
      throw new BodyShapeError(`expected results[${i}] to be an object, got ${describe(item)}`);
    }
  });
  if (o.totalCount !== undefined && typeof o.totalCount !== 'number') {
    throw new BodyShapeError(`expected totalCount to be a number, got ${describe(o.totalCount)}`);
  }
  const links = o.links ?? [];
  if (!Array.isArray(links))
    throw new BodyShapeError(`expected links to be an array, got ${describe(links)}`);
  return { results: results as T[], totalCount: o.totalCount, links: links as AtlasLink[] };
}

function describe(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}
