import { getOperationAST, Kind, parse, type DocumentNode } from 'graphql';

/** The operation's name from the document itself: clients often omit `operationName`. */
export function operationName(document: DocumentNode, given: string | null | undefined): string {
  return getOperationAST(document, given)?.name?.value ?? 'anonymous';
}

/** The operation names of `documents` (a persisted-operations manifest's), each once; unparsable ones skipped. */
export function operationNamesOf(documents: Iterable<string>): string[] {
  const names = new Set<string>();
  for (const source of documents) {
    let document: DocumentNode;
    try {
      document = parse(source);
    } catch {
      continue;
    }
    for (const d of document.definitions) {
      if (d.kind === Kind.OPERATION_DEFINITION && d.name) names.add(d.name.value);
    }
  }
  return [...names];
}
