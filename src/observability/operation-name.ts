import { getOperationAST, type DocumentNode } from 'graphql';

/** The operation's name from the document itself: clients often omit `operationName`. */
export function operationName(document: DocumentNode, given: string | null | undefined): string {
  return getOperationAST(document, given)?.name?.value ?? 'anonymous';
}
