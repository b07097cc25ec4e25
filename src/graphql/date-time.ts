import { GraphQLScalarType } from 'graphql';
import { DateTimeISOResolver } from 'graphql-scalars';

/**
 * `DateTime` as the schema promises it: the string Atlas sent, passed through. graphql-scalars'
 * `DateTimeISO` checks it (an RFC 3339 date-time) but re-serialises it through `Date`, which turns
 * Atlas's whole seconds (`2026-08-10T03:03:29Z`) into `…29.000Z`; this scalar keeps the check and
 * answers the original string. Values that are not strings (a `Date` built here) are serialised as
 * graphql-scalars does.
 */
export const DateTimeScalar = new GraphQLScalarType({
  name: 'DateTime',
  description: DateTimeISOResolver.description,
  serialize(value: unknown) {
    const checked = DateTimeISOResolver.serialize(value);
    return typeof value === 'string' ? value : checked;
  },
  parseValue: (value: unknown) => DateTimeISOResolver.parseValue(value),
  parseLiteral: (ast, variables) => DateTimeISOResolver.parseLiteral(ast, variables),
});
