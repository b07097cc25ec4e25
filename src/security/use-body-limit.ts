import type { Plugin } from 'graphql-yoga';
import { httpStatusOf, type GatewayErrorCode } from '../errors/index.js';

/**
 * Refuses request bodies over `maxBytes` with HTTP 413, before yoga reads or parses them.
 *
 * Hand-written although yoga has `maxRequestBodySize`: yoga's pipes every body through a
 * TransformStream, declared length or not (~5 % of the CPU of a small query in bench/), and its
 * `REQUEST_ENTITY_TOO_LARGE` is not one of the gateway's codes; graphql-armor works on parsed
 * documents. Here a declared `Content-Length` is checked without reading anything (Node's HTTP parser
 * already holds a body to its declared length). A body without one (chunked) is read here up to the
 * limit and handed on as bytes, so a client cannot stream an endless body into `request.json()`.
 * `createGateway` installs it first (`maxBodyBytes`) and turns yoga's off.
 */
export function useBodyLimit(maxBytes: number): Plugin {
  const code = 'BAD_USER_INPUT' satisfies GatewayErrorCode;
  const tooLarge = (fetchAPI: { Response: typeof Response }) =>
    new fetchAPI.Response(
      JSON.stringify({
        errors: [
          {
            message: `The request body is larger than the ${maxBytes} bytes this gateway accepts.`,
            extensions: { code, maxBodyBytes: maxBytes },
          },
        ],
      }),
      // `connection: close`: the rest of an oversized body is not worth reading to keep the socket.
      {
        status: httpStatusOf(code, 413),
        headers: { 'content-type': 'application/json; charset=utf-8', connection: 'close' },
      },
    );

  return {
    onRequest({ request, setRequest, endResponse, fetchAPI }) {
      if (request.body === null || request.method === 'GET' || request.method === 'HEAD') return;
      const declared = request.headers.get('content-length');
      if (declared !== null && /^\s*\d+\s*$/.test(declared)) {
        if (Number(declared) > maxBytes) endResponse(tooLarge(fetchAPI));
        return;
      }
      return readAtMost(request.body, maxBytes).then((bytes) => {
        if (bytes === undefined) return endResponse(tooLarge(fetchAPI));
        setRequest(
          new fetchAPI.Request(request.url, {
            method: request.method,
            headers: request.headers,
            body: bytes,
            signal: request.signal,
          }),
        );
      });
    },
  };
}

/** The whole stream if it holds at most `max` bytes, else undefined (and the stream is cancelled). */
async function readAtMost(
  body: ReadableStream<Uint8Array>,
  max: number,
): Promise<Uint8Array<ArrayBuffer> | undefined> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => {});
      return undefined;
    }
    chunks.push(value);
  }
  const out = new Uint8Array(new ArrayBuffer(size));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}
