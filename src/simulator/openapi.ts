import { readFileSync } from 'node:fs';
import { Ajv, type ValidateFunction, type ErrorObject } from 'ajv';
import addFormatsImport from 'ajv-formats';

// ajv-formats is CommonJS; under NodeNext its default export arrives as the module object.
const addFormats = addFormatsImport as unknown as typeof addFormatsImport.default;

/** The official Atlas OpenAPI subset, copied unchanged into the project (provenance in schema/atlas/SOURCE.md). */
export const SPEC_URL = new URL('../../schema/atlas/openapi.json', import.meta.url);

type Json = Record<string, unknown>;

export interface SpecParameter {
  name: string;
  in: 'path' | 'query' | 'header';
  required: boolean;
  schema: Json;
}

export interface SpecOperation {
  operationId: string;
  method: string;
  /** e.g. `/api/atlas/v2/groups/{groupId}/flexClusters/{name}` */
  pathTemplate: string;
  deprecated: boolean;
  parameters: SpecParameter[];
  /** Versioned media types the request body may use (empty for GET). */
  requestMediaTypes: string[];
  /** Versioned media types of the 200 answer, in the spec's order. */
  successMediaTypes: string[];
  /** status → media type → JSON-schema `$ref` of the body */
  responses: Record<string, Record<string, string | undefined>>;
  /** media type → `$ref` of the request body schema */
  requestSchemas: Record<string, string | undefined>;
  /** media type → `x-sunset` date, where the spec announces one */
  sunset: Record<string, string>;
}

interface CompiledRoute {
  op: SpecOperation;
  regex: RegExp;
  names: string[];
}

export interface Spec {
  operations: SpecOperation[];
  byId: Map<string, SpecOperation>;
  match(method: string, path: string): { op: SpecOperation; params: Record<string, string> } | undefined;
  /** A compiled validator for `#/components/schemas/X` or any `$ref` string of the spec. */
  validator(ref: string): ValidateFunction;
}

let cached: Spec | undefined;

/** Loads and indexes the spec once per process; routing and validation are both driven by it. */
export function loadSpec(): Spec {
  cached ??= buildSpec(patchRegionName(JSON.parse(readFileSync(SPEC_URL, 'utf8')) as Json));
  return cached;
}

/**
 * The one place the spec is corrected to what Atlas sends. Region configs declare `regionName` as
 * `type: object` with a `oneOf` of string enums, which no value satisfies (and `US_EAST_2` is both an
 * AWS and an Azure region, so even a string would match two). Atlas sends the name as a string
 * (`US_EAST_1` on a tenant cluster, issue #17), so the check takes any of the enums.
 */
function patchRegionName(doc: Json): Json {
  const schemas = (doc.components as Json | undefined)?.schemas as Record<string, Json> | undefined;
  for (const schema of Object.values(schemas ?? {})) {
    const props = schema.properties as Record<string, Json> | undefined;
    const region = props?.regionName;
    if (region && region.type === 'object' && Array.isArray(region.oneOf)) {
      const { type: _object, oneOf, ...rest } = region;
      props.regionName = { ...rest, anyOf: oneOf };
    }
  }
  return doc;
}

function deref(doc: Json, node: Json): Json {
  const ref = node.$ref;
  if (typeof ref !== 'string') return node;
  const parts = ref.replace(/^#\//, '').split('/');
  let cur: unknown = doc;
  for (const p of parts) cur = (cur as Json)[p];
  return deref(doc, cur as Json);
}

function schemaRef(content: Json | undefined, mediaType: string): string | undefined {
  const schema = (content?.[mediaType] as Json | undefined)?.schema as Json | undefined;
  return typeof schema?.$ref === 'string' ? schema.$ref : undefined;
}

function buildSpec(doc: Json): Spec {
  const operations: SpecOperation[] = [];
  for (const [pathTemplate, item] of Object.entries(doc.paths as Record<string, Json>)) {
    for (const method of ['get', 'post', 'put', 'patch', 'delete']) {
      const raw = item[method] as Json | undefined;
      if (!raw) continue;
      const parameters = ((raw.parameters as Json[] | undefined) ?? []).map((p) => {
        const d = deref(doc, p);
        return {
          name: d.name as string,
          in: d.in as SpecParameter['in'],
          required: d.required === true,
          schema: (d.schema as Json | undefined) ?? {},
        };
      });
      const reqContent = (raw.requestBody as Json | undefined)?.content as Json | undefined;
      const responses: SpecOperation['responses'] = {};
      for (const [status, r] of Object.entries(raw.responses as Record<string, Json>)) {
        const content = deref(doc, r).content as Json | undefined;
        responses[status] = Object.fromEntries(
          Object.keys(content ?? {}).map((mt) => [mt, schemaRef(content, mt)]),
        );
      }
      const ok = (raw.responses as Record<string, Json>)['200'];
      const okContent = (ok ? deref(doc, ok).content : undefined) as Json | undefined;
      const sunset: Record<string, string> = {};
      for (const [mt, c] of Object.entries(okContent ?? {})) {
        const s = (c as Json)['x-sunset'];
        if (typeof s === 'string') sunset[mt] = s;
      }
      operations.push({
        operationId: raw.operationId as string,
        method: method.toUpperCase(),
        pathTemplate,
        deprecated: raw.deprecated === true,
        parameters,
        requestMediaTypes: Object.keys(reqContent ?? {}),
        requestSchemas: Object.fromEntries(
          Object.keys(reqContent ?? {}).map((mt) => [mt, schemaRef(reqContent, mt)]),
        ),
        successMediaTypes: Object.keys(okContent ?? {}),
        responses,
        sunset,
      });
    }
  }

  const routes: CompiledRoute[] = operations.map((op) => {
    const names: string[] = [];
    // Paths of this spec hold only letters, digits, `/` and `{param}`: nothing else needs escaping.
    const source = op.pathTemplate.replace(/\{(\w+)\}/g, (_m, name: string) => {
      names.push(name);
      return '([^/]+)';
    });
    return { op, regex: new RegExp(`^${source}$`), names };
  });

  const ajv = createAjv();
  ajv.addSchema({ $id: 'atlas', components: discriminatorsForAjv(doc.components as Json) }, 'atlas');
  const validators = new Map<string, ValidateFunction>();

  return {
    operations,
    byId: new Map(operations.map((o) => [o.operationId, o])),
    match(method, path) {
      for (const r of routes) {
        if (r.op.method !== method) continue;
        const m = r.regex.exec(path);
        if (!m) continue;
        const params: Record<string, string> = {};
        r.names.forEach((n, i) => (params[n] = decodeURIComponent(m[i + 1] ?? '')));
        return { op: r.op, params };
      }
      return undefined;
    },
    validator(ref) {
      let v = validators.get(ref);
      if (!v) {
        const key = `atlas${ref.startsWith('#') ? ref : `#/components/schemas/${ref}`}`;
        v = ajv.getSchema(key);
        if (!v) throw new Error(`no schema ${key} in the Atlas spec`);
        validators.set(ref, v);
      }
      return v;
    },
  };
}

/**
 * The spec models polymorphism the OpenAPI 3.0 way: a parent (`ClusterProviderSettings`) has a
 * `discriminator` and `oneOf` its children, and each child `allOf`s the parent. Read as plain JSON
 * Schema that recurses forever, and `oneOf` fails when two children accept the same object. So each
 * parent's `oneOf` becomes one `if providerName = K then child` per mapping entry, and children
 * `allOf` a copy of the parent without them (`Parent__base`).
 */
function discriminatorsForAjv(components: Json): Json {
  const copy = structuredClone(components) as { schemas: Record<string, Json> };
  const schemas = copy.schemas;
  const parentOf = new Map<string, string>();
  for (const [name, schema] of Object.entries(schemas)) {
    const d = schema.discriminator as { propertyName: string; mapping?: Record<string, string> } | undefined;
    if (!d || !Array.isArray(schema.oneOf)) continue;
    const { discriminator: _d, oneOf: _o, ...base } = schema;
    schemas[`${name}__base`] = base;
    const branches = Object.entries(d.mapping ?? {}).map(([value, ref]) => {
      parentOf.set(ref, name);
      return {
        if: { properties: { [d.propertyName]: { const: value } }, required: [d.propertyName] },
        then: { $ref: ref },
      };
    });
    schemas[name] = { ...base, allOf: [...((base.allOf as Json[] | undefined) ?? []), ...branches] };
  }
  for (const [ref, parent] of parentOf) {
    const child = schemas[ref.replace('#/components/schemas/', '')];
    const allOf = child?.allOf as Json[] | undefined;
    if (!allOf) continue;
    child!.allOf = allOf.map((part) =>
      part.$ref === `#/components/schemas/${parent}`
        ? { $ref: `#/components/schemas/${parent}__base` }
        : part,
    );
  }
  // ApiError.parameters is typed `items: {type: object}` (a Java `Object`, i.e. anything), but Atlas
  // sends strings and numbers: the real 410 body in mongodb-atlas-cli#4472 has
  // `"parameters":["2023-02-01","api/atlas/v2/groups/X/clusters"]`. Validate what Atlas really sends.
  const parameters = (schemas.ApiError?.properties as Record<string, Json> | undefined)?.parameters;
  if (parameters) parameters.items = {};
  return copy as unknown as Json;
}

/** ajv set up for the spec's OpenAPI 3.0 dialect. */
export function createAjv(): Ajv {
  // strict:false because OpenAPI 3.0 schemas carry keywords JSON Schema does not know (example, x-*,
  // discriminator without ajv's stricter rules). unicodeRegExp stays on: the spec's `\p{L}` patterns need it.
  const ajv = new Ajv({ strict: false, allErrors: true, unicodeRegExp: true });
  addFormats(ajv);
  ajv.addFormat('int32', {
    type: 'number',
    validate: (n: number) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31,
  });
  ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isInteger(n) });
  ajv.addFormat('double', { type: 'number', validate: () => true });
  return ajv;
}

/** ajv's errors as Atlas's `badRequestDetail.fields`: the field path and what was wrong with it. */
export function fieldViolations(
  errors: ErrorObject[] | null | undefined,
  prefix = '',
): { field: string; description: string }[] {
  return (errors ?? []).map((e) => {
    const missing = e.keyword === 'required' ? `.${String(e.params.missingProperty)}` : '';
    const field = `${prefix}${e.instancePath.replace(/^\//, '').replace(/\//g, '.')}${missing}`.replace(
      /^\./,
      '',
    );
    return { field: field || '(body)', description: e.message ?? 'is invalid' };
  });
}
