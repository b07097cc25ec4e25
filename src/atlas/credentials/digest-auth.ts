import { abortable } from '../abortable.js';
import type { AtlasStats } from '../atlas-stats.js';
import type { AuthAttempt, AuthOutcome, AuthRequest, AuthStrategy } from './auth-strategy.js';
import { digestAuthorization, parseDigestChallenge, type DigestChallenge } from './digest-header.js';

/** API key pair settings (HTTP Digest). */
export interface DigestOptions {
  /** The username. */
  publicKey: string;
  /** The password. */
  privateKey: string;
  /** Client nonce per request; injected for reproducible tests. @default 16 random hex characters */
  cnonce?: () => string;
}

interface Gate {
  promise: Promise<void>;
  open: () => void;
}

interface NonceState {
  challenge: DigestChallenge;
  /** Last nonce count used with this nonce. */
  nc: number;
  /** Refused (non-stale 401s) in a row; reset by any success. */
  refusedInRow: number;
}

/**
 * After this many non-stale 401s in a row on the shared nonce, it is taken as dead (a server that
 * forgot it without saying `stale=true`) and replaced, instead of paying a re-challenge per request.
 */
const DEAD_NONCE_REFUSALS = 8;

/**
 * Digest with nonce reuse. The Go clients Atlas ships (mongodb-forks/digest) answer a fresh 401
 * challenge on every request: two round trips per call. Like Python requests we keep the nonce and
 * send `nc`+1 preemptively, so a challenge costs one extra round trip per nonce.
 *
 * - Single flight: the first request goes out unauthenticated and its 401 is the challenge; others
 *   wait (the "gate") until that request's authorised resend is answered, so nc=1 of a new nonce is
 *   used before nc=2….
 * - `stale=true` (the nonce expired): the first request to see it installs the new nonce for all,
 *   behind the gate again.
 * - Any other 401 on the shared nonce: the request is re-hashed with the fresh nonce of its own 401,
 *   used by no other request. A server that insists on strictly increasing nc per nonce (RFC 7616
 *   only asks to reject an nc seen twice) refuses concurrent requests that arrive out of order;
 *   this way each such refusal costs one round trip and never cascades into an error.
 * - At most one re-challenge per request, never more.
 */
export class DigestAuth implements AuthStrategy {
  readonly scheme = 'digest';
  readonly #opts: DigestOptions;
  readonly #stats: AtlasStats;
  #state: NonceState | undefined;
  #gate: Gate | undefined;
  /** A challenger got no 401: the server does not ask for Digest, so don't serialise behind a gate. */
  #unchallenged = false;

  constructor(opts: DigestOptions, deps: { stats: AtlasStats }) {
    this.#opts = opts;
    this.#stats = deps.stats;
  }

  async begin(req: AuthRequest): Promise<AuthAttempt> {
    for (;;) {
      if (this.#gate) {
        await abortable(this.#gate.promise, req.signal);
        continue;
      }
      const state = this.#state;
      if (state) return this.#authorized(req, state, undefined);
      return this.#unauthenticated(req, !this.#unchallenged);
    }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  /** Closes the gate for new requests; undefined if someone else holds it already. */
  #closeGate(): Gate | undefined {
    if (this.#gate) return undefined;
    let open!: () => void;
    const promise = new Promise<void>((resolve) => (open = resolve));
    this.#gate = { promise, open };
    return this.#gate;
  }

  #openGate(gate: Gate | undefined): void {
    if (!gate) return;
    if (this.#gate === gate) this.#gate = undefined;
    gate.open();
  }

  /** A request without credentials; its 401 is the challenge. */
  #unauthenticated(req: AuthRequest, gated: boolean): AuthAttempt {
    const gate = gated ? this.#closeGate() : undefined;
    return once({
      authorization: undefined,
      settle: (outcome, mayResend) => {
        const challenge = challengeOf(outcome);
        if (!challenge || !mayResend) {
          if (outcome && outcome.status !== 401) this.#unchallenged = true;
          this.#openGate(gate);
          return Promise.resolve(undefined);
        }
        this.#unchallenged = false;
        this.#stats.digestChallenges++;
        const state: NonceState = { challenge, nc: 0, refusedInRow: 0 };
        this.#state = state;
        // The gate stays closed until this request's authorised resend is answered.
        return Promise.resolve(this.#authorized(req, state, gate));
      },
    });
  }

  #authorized(req: AuthRequest, state: NonceState, gate: Gate | undefined): AuthAttempt {
    state.nc++;
    const authorization = digestAuthorization({
      challenge: state.challenge,
      username: this.#opts.publicKey,
      password: this.#opts.privateKey,
      method: req.method,
      uri: req.target,
      nc: state.nc,
      ...(this.#opts.cnonce ? { cnonce: this.#opts.cnonce() } : {}),
      body: req.body,
    });
    return once({
      authorization,
      settle: (outcome, mayResend) => {
        this.#openGate(gate);
        if (outcome?.status !== 401) {
          if (outcome) state.refusedInRow = 0;
          return Promise.resolve(undefined);
        }
        const challenge = challengeOf(outcome);
        if (!challenge || !mayResend) return Promise.resolve(undefined);
        this.#stats.digestChallenges++;
        const shared = this.#state === state;
        if (shared && (challenge.stale || ++state.refusedInRow >= DEAD_NONCE_REFUSALS)) {
          const next: NonceState = { challenge, nc: 0, refusedInRow: 0 };
          this.#state = next;
          return Promise.resolve(this.#authorized(req, next, this.#closeGate()));
        }
        return Promise.resolve(this.#authorized(req, { challenge, nc: 0, refusedInRow: 0 }, undefined));
      },
    });
  }
}

function challengeOf(outcome: AuthOutcome | undefined): DigestChallenge | undefined {
  return outcome?.status === 401 ? parseDigestChallenge(outcome.headers['www-authenticate']) : undefined;
}

/** Guards `settle` against a second call (it would release a gate or count a challenge twice). */
function once(attempt: AuthAttempt): AuthAttempt {
  let settled = false;
  return {
    authorization: attempt.authorization,
    settle: (outcome, mayResend) => {
      if (settled) return Promise.resolve(undefined);
      settled = true;
      return attempt.settle(outcome, mayResend);
    },
  };
}
