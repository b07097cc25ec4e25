import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import { httpStatusOf, isGatewayErrorCode } from '../errors/index.js';

/**
 * The HTTP status of a request refused before it produced any data, from its errors' codes, as for a
 * refused HTTP query: a subscription refused when it starts (`NOT_FOUND`, `FORBIDDEN`, a bad argument,
 * `RATE_LIMITED`) is 404, 403, 400, 429, not 500. yoga answers such a result (errors, no `data`)
 * with 500 unless an error carries an `http` extension, and the gateway's field errors do not carry one
 * (in a result with data they travel in a 200). Results that have data, streams, and results whose
 * status is already set are left alone. yoga reads `extensions.http` and strips it from the body.
 */
export function useRefusalStatus(): Plugin {
  return {
    onResultProcess({ result, setResult }) {
      if (Array.isArray(result) || isAsyncIterable(result)) return;
      if ('data' in result || !result.errors?.length || result.extensions?.http) return;
      if (result.errors.some((e) => e.extensions?.http)) return;
      let status = 0;
      for (const error of result.errors) {
        const code = error.extensions?.code;
        if (!isGatewayErrorCode(code)) return;
        status = Math.max(status, httpStatusOf(code));
      }
      setResult({ ...result, extensions: { ...result.extensions, http: { status } } });
    },
  };
}
