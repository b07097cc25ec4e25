import {
  defaultFieldResolver,
  getDirectiveValues,
  isObjectType,
  type FieldDefinitionNode,
  type GraphQLDirective,
  type GraphQLFieldResolver,
  type GraphQLSchema,
} from 'graphql';
import { ALL_RIGHTS, type Right } from '../callers/caller.js';
import type { GatewayContext } from './context.js';
import { requireAccess } from './access.js';

/** The SDL's directive (schema/schema.graphql): `@requiresRight(right: DOWNLOAD)` on a field. */
export const REQUIRES_RIGHT = 'requiresRight';

/** `Type.field` → the right it needs, for every field of `schema` that carries `@requiresRight`. */
export function fieldsRequiringRights(schema: GraphQLSchema): Map<string, Right> {
  const directive = schema.getDirective(REQUIRES_RIGHT);
  const found = new Map<string, Right>();
  if (!directive) return found;
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith('__')) continue;
    for (const field of Object.values(type.getFields())) {
      const right = field.astNode ? rightOf(directive, field.astNode) : undefined;
      if (right) found.set(`${type.name}.${field.name}`, right);
    }
  }
  return found;
}

function rightOf(directive: GraphQLDirective, node: FieldDefinitionNode): Right | undefined {
  const values = getDirectiveValues(directive, node);
  if (!values) return undefined;
  const right = String(values.right).toLowerCase();
  if (!ALL_RIGHTS.has(right as Right))
    throw new Error(`@${REQUIRES_RIGHT}: unknown right ${String(values.right)}`);
  return right as Right;
}

/**
 * Enforces `@requiresRight` on every field that carries it, once for the whole schema, so no resolver
 * can forget it: whether the field is reached from a query, a list nested anywhere, a mutation's
 * payload or a subscription event, its resolver runs only after `requireAccess(caller, projectId,
 * right)`, and a caller without the right gets null with the same `FORBIDDEN` error (`extensions.right`)
 * as a mutation it may not run, on that field's path. The project is the `projectId` of the object the
 * field belongs to (every backup source carries it, src/backup/model.ts); an object without one fails
 * closed (an internal error, masked, and no value).
 *
 * Wraps the resolvers of `schema` in place (the schema `makeExecutableSchema` has just built, held by
 * nobody else yet) and returns it. graphql's own `getDirectiveValues` reads the directive;
 * `@graphql-tools/utils`' `mapSchema` would copy the schema for the same result, but it is only a
 * transitive dependency here.
 */
export function enforceRequiredRights(schema: GraphQLSchema): GraphQLSchema {
  const required = fieldsRequiringRights(schema);
  for (const [coordinate, right] of required) {
    const [typeName, fieldName] = coordinate.split('.') as [string, string];
    const type = schema.getType(typeName);
    if (!isObjectType(type)) continue;
    const field = type.getFields()[fieldName]!;
    const resolve: GraphQLFieldResolver<unknown, GatewayContext> = field.resolve ?? defaultFieldResolver;
    field.resolve = (source, args, context: GatewayContext, info) => {
      requireAccess(context.caller, projectIdOf(source, coordinate), right);
      return resolve(source, args, context, info);
    };
  }
  return schema;
}

function projectIdOf(source: unknown, coordinate: string): string {
  const projectId = (source as { projectId?: unknown } | null)?.projectId;
  if (typeof projectId !== 'string' || projectId === '') {
    throw new Error(`@${REQUIRES_RIGHT} on ${coordinate}: the parent object carries no projectId`);
  }
  return projectId;
}
