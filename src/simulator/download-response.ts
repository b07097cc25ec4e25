import type { IncomingHttpHeaders, ServerResponse } from 'node:http';

/** What the object store holds for one download: the bytes and their validators. */
export interface StoredObject {
  body: Buffer;
  /** Quoted, content-based (S3: the MD5 of a single-part object), so every link to the same bytes shares it. */
  etag: string;
  /** Epoch ms. */
  lastModified: number;
}

/** A satisfiable single byte range, inclusive, or why there is none. */
export type RangeAnswer =
  { kind: 'whole' } | { kind: 'part'; start: number; end: number } | { kind: 'unsatisfiable' };

/**
 * How S3 reads a `Range` header (RFC 9110 §14.1.2) against an object of `size` bytes: one range
 * `bytes=a-b`, `bytes=a-` or `bytes=-n`; a syntactically invalid one, or a list of several (S3 serves
 * no multipart/byteranges), is ignored and the whole object answered; a first byte at or past the end
 * is 416. `If-Range` with another ETag asks for the whole object.
 */
export function readRange(headers: IncomingHttpHeaders, size: number, etag: string): RangeAnswer {
  const raw = headers.range;
  if (typeof raw !== 'string') return { kind: 'whole' };
  const ifRange = headers['if-range'];
  if (typeof ifRange === 'string' && ifRange !== etag) return { kind: 'whole' };
  const m = /^bytes=(\d*)-(\d*)$/.exec(raw.trim());
  if (!m || (m[1] === '' && m[2] === '')) return { kind: 'whole' };
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return { kind: 'unsatisfiable' };
    return { kind: 'part', start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (m[2] !== '' && Number(m[2]) < start) return { kind: 'whole' };
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'part', start, end };
}

/** The status, headers and bytes of the answer to a GET of `object` with `headers`. */
export function objectAnswer(
  object: StoredObject,
  headers: IncomingHttpHeaders,
): { status: 200 | 206 | 416; headers: Record<string, string>; body: Buffer } {
  const size = object.body.length;
  const common = {
    'accept-ranges': 'bytes',
    etag: object.etag,
    'last-modified': new Date(object.lastModified).toUTCString(),
  };
  const range = readRange(headers, size, object.etag);
  if (range.kind === 'unsatisfiable') {
    return {
      status: 416,
      headers: { ...common, 'content-type': 'text/plain', 'content-range': `bytes */${size}` },
      body: Buffer.from('The requested range is not satisfiable'),
    };
  }
  if (range.kind === 'part') {
    return {
      status: 206,
      headers: {
        ...common,
        'content-type': 'application/gzip',
        'content-range': `bytes ${range.start}-${range.end}/${size}`,
      },
      body: object.body.subarray(range.start, range.end + 1),
    };
  }
  return { status: 200, headers: { ...common, 'content-type': 'application/gzip' }, body: object.body };
}

/** Open and finished object streams, for tests that check a client let go of its download. */
export interface DownloadStats {
  /** Streams started and not yet ended or cut. */
  open: number;
  started: number;
  /** Sent whole. */
  finished: number;
  /** The client went away before the last byte. */
  abandoned: number;
}

const CHUNK = 64 * 1024;

/**
 * Writes `body` as an object store does: in chunks, only as fast as the client reads (the next chunk
 * waits for `drain`), so a slow reader holds the stream open and a client that goes away shows up as
 * an abandoned stream in `stats`.
 */
export async function streamBody(res: ServerResponse, body: Buffer, stats: DownloadStats): Promise<void> {
  // A client that left while the answer was being prepared: its response never emits 'close' again.
  const gone = () => res.destroyed || !res.socket || res.socket.destroyed;
  stats.open += 1;
  stats.started += 1;
  let counted = false;
  const done = (how: 'finished' | 'abandoned') => {
    if (counted) return;
    counted = true;
    stats.open -= 1;
    stats[how] += 1;
  };
  res.on('close', () => done(res.writableFinished ? 'finished' : 'abandoned'));
  for (let i = 0; i < body.length; i += CHUNK) {
    if (gone()) return done('abandoned');
    if (!res.write(body.subarray(i, i + CHUNK))) {
      await new Promise<void>((resolve) => {
        const settle = () => {
          res.off('drain', settle);
          res.off('close', settle);
          resolve();
        };
        res.on('drain', settle);
        res.on('close', settle);
      });
    }
  }
  if (gone()) return done('abandoned');
  res.end();
}
