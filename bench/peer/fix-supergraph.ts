import { Kind, parse, print, visit, type ConstValueNode, type DirectiveNode } from 'graphql';

/** What the fixes need from the OpenAPI document: the 2xx media types of each operation. */
interface OpenApiDoc {
  paths: Record<string, Record<string, { operationId?: string; responses?: Record<string, Response> }>>;
}
interface Response {
  content?: Record<string, unknown>;
}

/**
 * The Accept each operation must send: its first 2xx media type (Atlas picks the API version from
 * Accept, and answers 406 to `application/json`). The first, because Mesh types a multi-version
 * answer (the cluster routes offer three) as the first member of its union, the oldest version.
 */
export function successMediaTypes(spec: OpenApiDoc): Map<string, string> {
  const out = new Map<string, string>();
  for (const item of Object.values(spec.paths)) {
    for (const op of Object.values(item)) {
      if (!op.operationId || !op.responses) continue;
      const types = Object.entries(op.responses)
        .filter(([status]) => status.startsWith('2'))
        .flatMap(([, r]) => Object.keys(r.content ?? {}));
      const first = types[0];
      if (first) out.set(op.operationId, first);
    }
  }
  return out;
}

const stringList = (values: string[][]): ConstValueNode => ({
  kind: Kind.LIST,
  values: values.map((pair) => ({
    kind: Kind.LIST,
    values: pair.map((value) => ({ kind: Kind.STRING, value })),
  })),
});

/**
 * Two compose-time fixes stock Mesh needs on this spec (bench/README.md, "The peer"):
 * - every operation's `accept` header is `application/json` (the error responses' media type wins
 *   over the 2xx one), which Atlas refuses with 406: set it to the operation's 2xx media type;
 * - `\p{L}` / `\p{N}` patterns are compiled without the `u` flag, so `Cluster0` fails validation:
 *   rewrite them to the ASCII classes, which is all the seed data (and most real names) use.
 * Everything else of the composed supergraph is left as Mesh wrote it.
 */
export function fixSupergraph(sdl: string, spec: OpenApiDoc): { sdl: string; acceptFixed: number } {
  const accept = successMediaTypes(spec);
  let acceptFixed = 0;
  let fieldName = '';
  const doc = visit(parse(sdl), {
    FieldDefinition: {
      enter(node) {
        fieldName = node.name.value;
      },
    },
    Directive(node: DirectiveNode): DirectiveNode | undefined {
      if (node.name.value === 'httpOperation') {
        const mediaType = accept.get(fieldName);
        if (!mediaType) return undefined;
        const args = node.arguments ?? [];
        const current = args.find((a) => a.name.value === 'operationSpecificHeaders');
        const pairs: string[][] =
          current?.value.kind === Kind.LIST
            ? current.value.values.map((pair) =>
                pair.kind === Kind.LIST
                  ? pair.values.map((v) => (v.kind === Kind.STRING ? v.value : ''))
                  : [],
              )
            : [];
        const headers = [...pairs.filter((p) => p[0]?.toLowerCase() !== 'accept'), ['accept', mediaType]];
        acceptFixed += 1;
        const rest = args.filter((a) => a.name.value !== 'operationSpecificHeaders');
        return {
          ...node,
          arguments: [
            ...rest,
            {
              kind: Kind.ARGUMENT,
              name: { kind: Kind.NAME, value: 'operationSpecificHeaders' },
              value: stringList(headers),
            },
          ],
        };
      }
      if (node.name.value === 'regexp') {
        return {
          ...node,
          arguments: (node.arguments ?? []).map((a) =>
            a.name.value === 'pattern' && a.value.kind === Kind.STRING
              ? {
                  ...a,
                  value: {
                    ...a.value,
                    value: a.value.value.replace(/\\p\{L\}/g, 'A-Za-z').replace(/\\p\{N\}/g, '0-9'),
                  },
                }
              : a,
          ),
        };
      }
      return undefined;
    },
  });
  return { sdl: print(doc), acceptFixed };
}
