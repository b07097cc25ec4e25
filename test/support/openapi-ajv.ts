import { loadSpec } from '../../src/simulator/openapi.js';

/** Readable ajv errors for one body against the spec; the spec loader owns the OpenAPI→ajv rewrite. */
export interface OpenApiAjv {
  /** Empty when `data` is valid against `#/components/schemas/<name>`. */
  validateSchema(name: string, data: unknown): string[];
  /**
   * Same against the 200 body of `operationId`; `mediaType` picks the version
   * (default: the operation's first, e.g. `application/vnd.atlas.2023-01-01+json`).
   */
  validateResponse(operationId: string, data: unknown, mediaType?: string): string[];
}

function errorsOf(ref: string, data: unknown): string[] {
  const validate = loadSpec().validator(ref);
  if (validate(data)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath || '(root)'} ${e.message ?? 'is invalid'}`);
}

export function openApiAjv(): OpenApiAjv {
  return {
    validateSchema: (name, data) => errorsOf(`#/components/schemas/${name}`, data),
    validateResponse(operationId, data, mediaType) {
      const op = loadSpec().byId.get(operationId);
      if (!op) throw new Error(`no operation ${operationId} in the Atlas spec`);
      const mt = mediaType ?? op.successMediaTypes[0]!;
      const ref = op.responses['200']?.[mt];
      if (!ref) throw new Error(`${operationId} declares no 200 body as ${mt}`);
      return errorsOf(ref, data);
    },
  };
}
