import type { Caller } from '../auth/caller.js';
import type { Loaders } from './loaders.js';

/** What every resolver gets: who calls, and this request's loaders. */
export interface GatewayContext {
  caller: Caller;
  loaders: Loaders;
}
