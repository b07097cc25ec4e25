import type { ServerResponse } from 'node:http';
import { Writable } from 'node:stream';
import type { ExecutionResult } from 'graphql';
import { describe, expect, it } from 'vitest';
import { SseSource } from '../../src/graphql/sse-source.js';
import { SseStream } from '../../src/graphql/sse-stream.js';

// Pure units of the lean SSE writer's fan-out: one execution's events to several client streams.

/** A response whose client reads nothing (`stuck`) or everything; what it was written is kept. */
function response(stuck = false) {
  const written: string[] = [];
  const res = new Writable({
    highWaterMark: 16,
    write(chunk: Buffer, _enc, done) {
      written.push(chunk.toString());
      if (!stuck) done();
    },
  });
  return { res: res as unknown as ServerResponse, written, text: () => written.join('') };
}

/** An execution whose events the test pushes. */
function execution() {
  const queue: ((r: IteratorResult<ExecutionResult>) => void)[] = [];
  const waiting: IteratorResult<ExecutionResult>[] = [];
  let failWith: ((err: Error) => void) | undefined;
  let returned = 0;
  const iterator: AsyncIterator<ExecutionResult> = {
    next: () =>
      new Promise((resolve, reject) => {
        const r = waiting.shift();
        if (r) resolve(r);
        else {
          queue.push(resolve);
          failWith = reject;
        }
      }),
    return: () => {
      returned += 1;
      return Promise.resolve({ done: true, value: undefined });
    },
  };
  const push = (r: IteratorResult<ExecutionResult>) => {
    const resolve = queue.shift();
    if (resolve) resolve(r);
    else waiting.push(r);
  };
  return {
    iterator,
    emit: (status: string) => push({ done: false, value: { data: { s: status } } }),
    done: () => push({ done: true, value: undefined }),
    fail: (err: Error) => failWith?.(err),
    returned: () => returned,
  };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('SseSource', () => {
  it('sends each event once to every stream; a stream that joins first gets the latest state', async () => {
    const exec = execution();
    let closed = 0;
    const source = new SseSource(exec.iterator, true, () => (closed += 1));
    const a = response();
    const streamA = new SseStream(a.res, 1 << 20, (s) => source.remove(s));
    source.add(streamA);
    streamA.pipe(a.res);
    exec.emit('QUEUED');
    await tick();
    exec.emit('RUNNING');
    await tick();
    const b = response();
    const streamB = new SseStream(b.res, 1 << 20, (s) => source.remove(s));
    source.add(streamB);
    // Not handed over yet: what arrives waits, in order, behind the first comment.
    exec.emit('COMPLETED');
    await tick();
    streamB.pipe(b.res);
    exec.done();
    await tick();
    const next = (s: string) => `event: next\ndata: {"data":{"s":"${s}"}}\n\n`;
    const complete = 'event: complete\ndata:\n\n';
    expect(a.text()).toBe(`:\n\n${next('QUEUED')}${next('RUNNING')}${next('COMPLETED')}${complete}`);
    expect(b.text()).toBe(`:\n\n${next('RUNNING')}${next('COMPLETED')}${complete}`);
    expect(closed).toBe(1);
    expect(source.running).toBe(false);
    expect(exec.returned()).toBe(0);
  });

  it('ends the execution when its last stream leaves, not before', async () => {
    const exec = execution();
    let closed = 0;
    const source = new SseSource(exec.iterator, true, () => (closed += 1));
    const streams = [response(), response()].map((r) => {
      const s = new SseStream(r.res, 1 << 20, (x) => source.remove(x));
      source.add(s);
      s.pipe(r.res);
      return s;
    });
    streams[0]!.destroy();
    await tick();
    expect([exec.returned(), closed, source.size]).toEqual([0, 0, 1]);
    streams[1]!.destroy();
    await tick();
    expect([exec.returned(), closed, source.size]).toEqual([1, 1, 0]);
  });

  it('cuts every stream when the execution fails outside GraphQL', async () => {
    const exec = execution();
    const source = new SseSource(exec.iterator, false, () => undefined);
    const r = response();
    const stream = new SseStream(r.res, 1 << 20, (s) => source.remove(s));
    source.add(stream);
    stream.pipe(r.res);
    r.res.on('error', () => undefined);
    exec.fail(new Error('boom'));
    await tick();
    expect(stream.destroyed).toBe(true);
    expect(r.res.destroyed).toBe(true);
  });
});

describe('SseStream', () => {
  it('cuts a client that leaves more than maxBufferedBytes unread, and leaves its source once', async () => {
    const stuck = response(true);
    stuck.res.on('error', () => undefined);
    let left = 0;
    const stream = new SseStream(stuck.res, 100, () => (left += 1));
    stream.pipe(stuck.res);
    stream.send(`event: next\ndata: ${'x'.repeat(60)}\n\n`);
    expect(stream.destroyed).toBe(false);
    stream.send(`event: next\ndata: ${'x'.repeat(60)}\n\n`);
    expect(stream.destroyed).toBe(true);
    expect(stuck.res.destroyed).toBe(true);
    stream.send('more');
    await tick();
    expect(left).toBe(1);
  });
});
