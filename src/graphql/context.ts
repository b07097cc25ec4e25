import type { Loaders } from './loaders.js';

/** What every resolver gets: this request's loaders. */
export interface GatewayContext {
  loaders: Loaders;
}
