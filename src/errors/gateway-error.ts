import { httpStatusOf, type GatewayErrorCode } from './error-codes.js';

/** What a {@link GatewayError} carries besides its code and message. */
export interface GatewayErrorOptions {
  /**
   * Facts a client may act on, sent next to the code in `extensions` (never secrets, never upstream
   * text: they reach the client as they are).
   * @default {}
   */
  extensions?: Record<string, unknown>;
  /**
   * The error this one stands for, kept for logs and for `instanceof` checks up the stack.
   * @default undefined (none)
   */
  cause?: unknown;
}

/** An error the gateway raises itself, with a stable code; the code alone decides its HTTP status. */
export class GatewayError extends Error {
  /** What clients see in `extensions.code`. */
  readonly code: GatewayErrorCode;
  /** The code's own status in `HTTP_STATUSES`, used when the error fails the whole request. */
  readonly status: number;
  /** Sent to clients next to the code. */
  readonly extensions: Record<string, unknown>;

  constructor(code: GatewayErrorCode, message: string, options: GatewayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GatewayError';
    this.code = code;
    this.status = httpStatusOf(code);
    this.extensions = options.extensions ?? {};
  }
}

/** A bad argument, caught before any upstream call: names it, what was expected and what arrived. */
export class BadUserInputError extends GatewayError {
  constructor(argumentName: string, expected: string, received: unknown) {
    super(
      'BAD_USER_INPUT',
      `Argument "${argumentName}" must be ${expected}; got ${JSON.stringify(received)}.`,
      {
        extensions: { argumentName, expected, received },
      },
    );
  }
}
