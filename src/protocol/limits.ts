import { LimitsError } from "./errors.js";

/**
 * Every size limit of the protocol core in one place. The defaults are documented in
 * docs/limits.md; a test keeps that table and these values in step.
 */
export interface Limits {
  /**
   * Largest message accepted, in bytes, counted cumulatively across fragments and after
   * decompression. Exceeding it fails the connection with 1009 before the bytes are buffered.
   * @default 16 MiB (16_777_216)
   */
  readonly maxMessageBytes: number;
  /**
   * Largest number of frames one message may be split into; empty fragments count.
   * Exceeding it fails the connection with 1008.
   * @default 131_072
   */
  readonly maxFragments: number;
  /**
   * Largest opening handshake (request or response line plus headers), in bytes. Beyond it: 431.
   * @default 16 KiB (16_384)
   */
  readonly maxHandshakeBytes: number;
  /**
   * Largest number of header fields in an opening handshake. Beyond it: 431.
   * @default 100
   */
  readonly maxHeaderCount: number;
}

export const DEFAULT_LIMITS: Limits = Object.freeze({
  maxMessageBytes: 16 * 1024 * 1024,
  maxFragments: 131_072,
  maxHandshakeBytes: 16 * 1024,
  maxHeaderCount: 100,
});

/** Inclusive ranges each limit must fall in. */
const RANGES: { readonly [K in keyof Limits]: readonly [min: number, max: number] } = {
  // 2^53 - 1: JavaScript cannot count bytes exactly beyond it.
  maxMessageBytes: [1, Number.MAX_SAFE_INTEGER],
  maxFragments: [1, 2 ** 32],
  maxHandshakeBytes: [512, 1024 * 1024],
  maxHeaderCount: [4, 10_000],
};

/**
 * Merge user limits over the defaults, validate each field and freeze the result.
 * Throws {@link LimitsError} naming the first invalid field.
 */
export function resolveLimits(partial: Partial<Limits> = {}): Limits {
  if (typeof partial !== "object" || partial === null) {
    throw new LimitsError("limits", "must be an object");
  }
  const out: Record<keyof Limits, number> = { ...DEFAULT_LIMITS };
  for (const key of Object.keys(partial)) {
    if (!Object.hasOwn(RANGES, key)) throw new LimitsError(key, "unknown limit");
    const field = key as keyof Limits;
    const value = partial[field];
    if (value === undefined) continue;
    const [min, max] = RANGES[field];
    if (typeof value !== "number" || !Number.isInteger(value)) {
      throw new LimitsError(field, `must be an integer, got ${String(value)}`);
    }
    if (value < min || value > max) {
      throw new LimitsError(field, `must be between ${min} and ${max}, got ${value}`);
    }
    out[field] = value;
  }
  return Object.freeze(out);
}
