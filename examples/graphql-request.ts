/**
 * The examples' GraphQL client: one POST to the gateway's `/graphql` with the caller's headers; the
 * first error (its `extensions.code` and message) is thrown, else the data is answered. Plain `fetch`,
 * so an example copied elsewhere needs nothing but Node.
 */
export async function graphql<T>(
  url: string,
  headers: Record<string, string>,
  query: string,
  variables = {},
): Promise<T> {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as {
    data?: T;
    errors?: { message: string; extensions?: { code?: string } }[];
  };
  if (body.errors?.length) {
    const e = body.errors[0]!;
    throw new Error(`${e.extensions?.code ?? 'ERROR'}: ${e.message}`);
  }
  return body.data as T;
}
