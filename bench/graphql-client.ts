import { request } from 'undici';

/** A GraphQL answer: `data` and `errors` as the server sent them. */
export interface GraphQLAnswer<T> {
  data?: T | null;
  errors?: { message: string; extensions?: Record<string, unknown> }[];
}

/** POSTs one operation to `{url}/graphql`; throws with the server's errors when there are any. */
export async function graphql<T = Record<string, unknown>>(
  url: string,
  query: string,
  variables: Record<string, unknown> = {},
): Promise<T> {
  const res = await request(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
    body: JSON.stringify({ query, variables }),
  });
  const text = await res.body.text();
  let answer: GraphQLAnswer<T>;
  try {
    answer = JSON.parse(text) as GraphQLAnswer<T>;
  } catch {
    throw new Error(`${url}/graphql answered ${res.statusCode} with non-JSON: ${text.slice(0, 300)}`);
  }
  if (answer.errors?.length || !answer.data) {
    throw new Error(
      `${url}/graphql answered ${res.statusCode} with errors: ${JSON.stringify(answer.errors ?? answer).slice(0, 600)}`,
    );
  }
  return answer.data;
}

/** The body autocannon sends for a query: the same bytes each time, as a client app would. */
export const graphqlBody = (query: string): string => JSON.stringify({ query });

export const GRAPHQL_HEADERS = {
  'content-type': 'application/json',
  accept: 'application/graphql-response+json',
} as const;
