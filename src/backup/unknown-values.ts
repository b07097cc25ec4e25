/** The enums the gateway reads from Atlas, by the GraphQL field that shows them. */
export type EnumKind = 'status' | 'deliveryType' | 'clusterState' | 'backingProvider';

/**
 * Values Atlas sent for an enum the gateway does not know. Atlas adds enum values without a new API
 * version (a proxy turned a Flex job's status into `CANCELLED`; Atlas's docs mention `CLOSED`), so
 * they are answered as `UNKNOWN` with the raw string beside it, never as an error that nulls the
 * parent. Each new (kind, value) is reported once (`onFirst`, the gateway logs it), and every
 * sighting is counted (the `gateway_unknown_enum_values_total` metric).
 */
export class UnknownValues {
  readonly #seen = new Map<string, number>();
  readonly #onFirst: (kind: EnumKind, raw: string) => void;
  /** Sightings by kind, since start. */
  readonly counts: Record<EnumKind, number> = {
    status: 0,
    deliveryType: 0,
    clusterState: 0,
    backingProvider: 0,
  };
  /** Distinct (kind, value) pairs remembered at most; later new ones are counted, not logged. */
  static readonly MAX_DISTINCT = 1000;

  /** @param onFirst called the first time a (kind, value) pair is seen. @default nothing */
  constructor(onFirst: (kind: EnumKind, raw: string) => void = () => undefined) {
    this.#onFirst = onFirst;
  }

  /** Counts one sighting; reports a new pair once. */
  note(kind: EnumKind, value: string): void {
    this.counts[kind] += 1;
    // An enum value is a short word; anything longer is cut before it reaches a log line.
    const raw = value.length > 64 ? `${value.slice(0, 64)}…` : value;
    const key = `${kind}:${raw}`;
    const n = this.#seen.get(key);
    if (n !== undefined) {
      this.#seen.set(key, n + 1);
      return;
    }
    // Bounded: a misbehaving upstream cannot grow the map (or the log) without end.
    if (this.#seen.size >= UnknownValues.MAX_DISTINCT) return;
    this.#seen.set(key, 1);
    this.#onFirst(kind, raw);
  }
}

/**
 * `raw` when it is one of `known`, else `UNKNOWN` (and noted in `unknown`); null when Atlas sent
 * nothing, so a nullable field stays null.
 */
export function readEnum<T extends string>(
  kind: EnumKind,
  known: readonly T[],
  raw: unknown,
  unknown?: UnknownValues,
): T | 'UNKNOWN' | null {
  if (raw === undefined || raw === null) return null;
  if (typeof raw === 'string' && (known as readonly string[]).includes(raw)) return raw as T;
  unknown?.note(kind, typeof raw === 'string' ? raw : JSON.stringify(raw));
  return 'UNKNOWN';
}

export const JOB_STATUSES = ['PENDING', 'QUEUED', 'RUNNING', 'COMPLETED', 'FAILED'] as const;
export const DELIVERY_TYPES = ['DOWNLOAD', 'RESTORE'] as const;
export const CLUSTER_STATES = ['IDLE', 'CREATING', 'UPDATING', 'DELETING', 'REPAIRING'] as const;
export const PROVIDERS = ['AWS', 'GCP', 'AZURE'] as const;
