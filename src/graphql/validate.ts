import { BadUserInputError } from '../errors/index.js';

// The spec's patterns (UPSTREAM-NOTES §3): checked here so a bad argument costs no upstream call.
const HEX24 = /^[a-f0-9]{24}$/;
const CLUSTER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9-]*$/;

export function checkId(argumentName: string, value: string): string {
  if (!HEX24.test(value)) throw new BadUserInputError(argumentName, 'a 24-character lowercase hex id', value);
  return value;
}

export function checkClusterName(argumentName: string, value: string): string {
  if (value.length > 64 || !CLUSTER_NAME.test(value)) {
    throw new BadUserInputError(
      argumentName,
      'a cluster name (letters, digits and hyphens, not starting with a hyphen, at most 64 characters)',
      value,
    );
  }
  return value;
}
