/**
 * Every problem of every group at once, one line each: the variable, what was expected and what
 * arrived (secrets described, never shown). A start-up that fails in rounds costs a deploy per round.
 */
export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}
