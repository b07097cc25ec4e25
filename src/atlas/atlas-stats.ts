/** Counters of one client, for tests and benchmarks. */
export interface AtlasStatsSnapshot {
  /** Calls made by users of the client, by operation id. */
  callsByOperation: Record<string, number>;
  /**
   * HTTP round trips sent upstream, by operation id: calls plus Digest challenges, 401 resends and
   * retries; the OAuth endpoints count as `oauthToken` and `oauthRevoke`.
   */
  requestsByOperation: Record<string, number>;
  /** Sum of `requestsByOperation`. */
  requests: number;
  /** Successful OAuth token requests. */
  tokenFetches: number;
  /** Successful OAuth token revocations. */
  tokenRevocations: number;
  /** 401 Digest challenges taken up (the first one, then one per expired or stale nonce). */
  digestChallenges: number;
  /** Requests sent again after a 401 with fresh credentials. */
  authResends: number;
  /** Retries after a retryable status or network error. */
  retries: number;
}

export class AtlasStats {
  readonly #calls = new Map<string, number>();
  readonly #requests = new Map<string, number>();
  tokenFetches = 0;
  tokenRevocations = 0;
  digestChallenges = 0;
  authResends = 0;
  retries = 0;

  call(operation: string): void {
    this.#calls.set(operation, (this.#calls.get(operation) ?? 0) + 1);
  }

  request(operation: string): void {
    this.#requests.set(operation, (this.#requests.get(operation) ?? 0) + 1);
  }

  snapshot(): AtlasStatsSnapshot {
    const requestsByOperation = Object.fromEntries(this.#requests);
    return {
      callsByOperation: Object.fromEntries(this.#calls),
      requestsByOperation,
      requests: Object.values(requestsByOperation).reduce((a, b) => a + b, 0),
      tokenFetches: this.tokenFetches,
      tokenRevocations: this.tokenRevocations,
      digestChallenges: this.digestChallenges,
      authResends: this.authResends,
      retries: this.retries,
    };
  }
}
