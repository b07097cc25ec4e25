import autocannon from 'autocannon';
import { Pool } from 'undici';
import { performance } from 'node:perf_hooks';

/** One HTTP request, sent over and over by the load generators. */
export interface LoadRequest {
  url: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string;
}

/** What one load point measured. Latencies in milliseconds, from every answered request. */
export interface LoadResult {
  connections: number;
  durationSec: number;
  /** Answered requests (any status). */
  requests: number;
  /** Requests sent, answered or not (the ones in flight when the point ended count too). */
  sent: number;
  /** 2xx answers per second. */
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
  non2xx: number;
  errors: number;
}

/** Exact percentiles of the recorded samples (no histogram buckets: sub-millisecond values matter). */
export function summarize(
  samples: Float64Array,
  n: number,
): Pick<LoadResult, 'p50' | 'p90' | 'p99' | 'max' | 'mean'> {
  if (n === 0) return { p50: NaN, p90: NaN, p99: NaN, max: NaN, mean: NaN };
  const sorted = samples.slice(0, n).sort();
  const at = (q: number) => sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))]!;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i]!;
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: sorted[n - 1]!, mean: sum / n };
}

class Samples {
  data = new Float64Array(1 << 16);
  n = 0;
  push(v: number): void {
    if (this.n === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.n++] = v;
  }
}

/**
 * A closed-loop run with autocannon: `connections` sockets, each sending the next request when the
 * previous answer arrived, for `durationSec`. autocannon's own latency histogram has 1 ms buckets, so
 * the per-response times it emits (float ms from `process.hrtime`) are kept and summarized exactly.
 */
export async function autocannonRun(
  req: LoadRequest,
  connections: number,
  durationSec: number,
): Promise<LoadResult> {
  const samples = new Samples();
  let non2xx = 0;
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: req.url,
        method: req.method,
        headers: req.headers,
        ...(req.body !== undefined ? { body: req.body } : {}),
        connections,
        pipelining: 1,
        duration: durationSec,
        timeout: 30,
      },
      (err, res) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve(res)),
    );
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      samples.push(responseTime);
      if (statusCode < 200 || statusCode >= 300) non2xx += 1;
    });
  });
  const stats = summarize(samples.data, samples.n);
  return {
    connections,
    durationSec: result.duration,
    requests: samples.n,
    sent: result.requests.sent,
    rps: (samples.n - non2xx) / result.duration,
    ...stats,
    non2xx,
    errors: result.errors,
  };
}

/**
 * The same closed loop with undici (a `Pool` of `connections` sockets and as many workers): what a
 * Node REST client calling the simulator directly sees.
 */
export async function undiciRun(
  req: LoadRequest,
  connections: number,
  durationSec: number,
): Promise<LoadResult> {
  const url = new URL(req.url);
  const pool = new Pool(url.origin, { connections, pipelining: 1 });
  const samples = new Samples();
  let non2xx = 0;
  let errors = 0;
  let sent = 0;
  const start = performance.now();
  const end = start + durationSec * 1000;
  try {
    await Promise.all(
      Array.from({ length: connections }, async () => {
        while (performance.now() < end) {
          const t0 = performance.now();
          sent += 1;
          try {
            const res = await pool.request({
              path: url.pathname + url.search,
              method: req.method,
              headers: req.headers,
              ...(req.body !== undefined ? { body: req.body } : {}),
            });
            await res.body.arrayBuffer();
            samples.push(performance.now() - t0);
            if (res.statusCode < 200 || res.statusCode >= 300) non2xx += 1;
          } catch {
            errors += 1;
          }
        }
      }),
    );
  } finally {
    await pool.close();
  }
  const elapsed = (performance.now() - start) / 1000;
  return {
    connections,
    durationSec: elapsed,
    requests: samples.n,
    sent,
    rps: (samples.n - non2xx) / elapsed,
    ...summarize(samples.data, samples.n),
    non2xx,
    errors,
  };
}
