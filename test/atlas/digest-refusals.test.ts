import { describe, expect, it } from 'vitest';
import type { Dispatcher } from 'undici';
import { createAtlasDispatcher } from '../../src/atlas/index.js';
import type { Simulator } from '../../src/simulator/index.js';
import { SEED } from '../../src/simulator/seed.js';
import { startAtlasClient } from '../support/atlas-client.js';
import { track } from '../support/disposer.js';

// The Digest client keeps one shared nonce and counts the non-stale 401s it gets on it in a row
// (`refusedInRow`): at 8 in a row the nonce is taken as dead and replaced. A success in between resets
// the count, so out-of-order refusals spread over time never add up to a replaced nonce. Refusals are
// made deterministic here: requests are held before they leave until a later nc has been accepted, so
// the simulator, set to insist on increasing nc per nonce (`digestNcWindow: 0`), refuses each of them once.

const G = SEED.projects.payments.id;

/** A dispatcher that, while `holding`, keeps requests back until `release()`. */
function holdingDispatcher() {
  const agent = track(createAtlasDispatcher({ connections: 4 }), 'dispatcher');
  const held: (() => void)[] = [];
  const state = { holding: false };
  const dispatcher: Dispatcher = agent.compose((dispatch) => (opts, handler) => {
    if (!state.holding) return dispatch(opts, handler);
    held.push(() => dispatch(opts, handler));
    return true;
  });
  return {
    dispatcher,
    state,
    held: () => held.length,
    release: () => {
      for (const send of held.splice(0)) send();
    },
  };
}

const nonceOf = (authorization: string | undefined) => /nonce="([^"]+)"/.exec(authorization ?? '')?.[1];

async function setup() {
  const hold = holdingDispatcher();
  const { sim, client } = await startAtlasClient({
    auth: 'digest',
    // A server that insists on increasing counts refuses the late ones: what this file needs.
    sim: { digestNcWindow: 0 },
    config: { dispatcher: hold.dispatcher },
    sleepMovesClock: false,
  });
  const call = () => client.projects.getGroup({ groupId: G });
  /**
   * `n` calls sent on the shared nonce but held back until one call after them was accepted: each of
   * the `n` is then refused once (its nc is too low) and re-hashed with its own fresh nonce.
   */
  async function refusedOutOfOrder(n: number): Promise<void> {
    hold.state.holding = true;
    const late = Array.from({ length: n }, call);
    await expect.poll(() => hold.held()).toBe(n);
    hold.state.holding = false;
    await call();
    hold.release();
    const groups = await Promise.all(late);
    expect(groups.every((g) => g.id === G)).toBe(true);
  }
  return { sim, client, call, refusedOutOfOrder };
}

/** The nonce of the shared state: what the last accepted request on it carried. */
const lastAcceptedNonce = (sim: Simulator) =>
  nonceOf(
    sim
      .stats()
      .requests.filter((r) => r.status === 200)
      .at(-1)?.authorization,
  );

describe('Digest: refusals of the shared nonce in a row', () => {
  it('keeps the nonce through 7 refusals in a row; one refusal costs exactly one round trip', async () => {
    const { sim, client, call, refusedOutOfOrder } = await setup();
    await call(); // challenge + call
    const nonce = lastAcceptedNonce(sim);
    expect(nonce).toBeDefined();
    await refusedOutOfOrder(7);
    // 2 + (7 held + 1 + 7 re-hashed); then one round trip on the very same nonce.
    expect(sim.stats().total).toBe(17);
    await call();
    expect(sim.stats().total).toBe(18);
    expect(lastAcceptedNonce(sim)).toBe(nonce);
    expect(sim.stats().requests.filter((r) => r.status === 401)).toHaveLength(8);
    expect(client.stats()).toMatchObject({ requests: 18, digestChallenges: 8, retries: 0 });
  });

  it('replaces the nonce at the 8th refusal in a row (the cap)', async () => {
    const { sim, call, refusedOutOfOrder } = await setup();
    await call();
    const nonce = lastAcceptedNonce(sim);
    await refusedOutOfOrder(8);
    expect(sim.stats().total).toBe(2 + 8 + 1 + 8);
    await call();
    expect(sim.stats().total).toBe(20);
    expect(lastAcceptedNonce(sim)).not.toBe(nonce);
  });

  // Regression: `refusedInRow` must start over after a success; counted over the nonce's whole life,
  // refusals spread over time would replace a healthy nonce (and close the gate on every request).
  it('starts counting again after a success: 7 refusals, a success, 7 more keep the nonce', async () => {
    const { sim, client, call, refusedOutOfOrder } = await setup();
    await call();
    const nonce = lastAcceptedNonce(sim);
    await refusedOutOfOrder(7);
    await refusedOutOfOrder(7);
    expect(sim.stats().total).toBe(2 + 15 + 15);
    await call();
    expect(sim.stats().total).toBe(33);
    expect(lastAcceptedNonce(sim)).toBe(nonce);
    expect(client.stats()).toMatchObject({ requests: 33, digestChallenges: 15, retries: 0 });
    // Every accepted request outside the private re-hashes carried the first nonce.
    const shared = sim.stats().requests.filter((r) => r.status === 200 && nonceOf(r.authorization) === nonce);
    expect(shared).toHaveLength(1 + 1 + 1 + 1);
  });
});
