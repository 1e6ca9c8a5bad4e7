/**
 * Full-jitter exponential backoff (AWS Architecture Blog, "Exponential Backoff And Jitter"):
 *
 *   delay(attempt) = random() * min(maxMs, minMs * 2 ** attempt)      attempt = 0, 1, 2, …
 *
 * Spreading reconnects uniformly over [0, cap) keeps thousands of clients that lost the same
 * server from coming back in lockstep. No Node-only imports (runs in browsers).
 */

/** The delay (ms) before retry number `attempt` (0-based). */
export function backoffDelay(
  attempt: number,
  minMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  // 2 ** 1100 is Infinity, and min(maxMs, Infinity) is maxMs: no overflow to guard against.
  const cap = Math.min(maxMs, minMs * 2 ** Math.max(0, attempt));
  return random() * cap;
}

export interface BackoffOptions {
  readonly minMs: number;
  readonly maxMs: number;
  /** A number in [0, 1). @default Math.random */
  readonly random?: () => number;
}

/** A retry counter: next() gives the next delay and counts the attempt; reset() after a success. */
export class Backoff {
  readonly minMs: number;
  readonly maxMs: number;
  readonly #random: () => number;
  #attempt = 0;

  constructor(options: BackoffOptions) {
    if (!(options.minMs >= 0) || !(options.maxMs >= options.minMs)) {
      throw new RangeError("backoff needs 0 <= minMs <= maxMs");
    }
    this.minMs = options.minMs;
    this.maxMs = options.maxMs;
    this.#random = options.random ?? Math.random;
  }

  /** Attempts counted since the last reset(). */
  get attempt(): number {
    return this.#attempt;
  }

  next(): number {
    const delay = backoffDelay(this.#attempt, this.minMs, this.maxMs, this.#random);
    this.#attempt++;
    return delay;
  }

  reset(): void {
    this.#attempt = 0;
  }
}
