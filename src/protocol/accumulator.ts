import type { Alloc } from "./frame.js";

/** Pieces at least this long are kept as views (no copy until the message completes). */
const KEEP_MIN = 4096;
/** First size of the buffer that collects small pieces. */
const SMALL_START = 256;

/**
 * Collects the pieces of one message (fragments, TCP chunks) and joins them once at the end.
 *
 * Large pieces are kept as views of the received chunks and copied exactly once, into a buffer
 * of the exact final size, by {@link take}. Small pieces are copied into a growing buffer as they
 * arrive, so a message split into many tiny frames costs its bytes, not one object per
 * fragment, and never pins a large chunk for a few bytes. Memory follows the bytes received:
 * nothing is allocated from a length a peer merely announced.
 */
export class ByteAccumulator {
  private parts: Uint8Array[] = [];
  private small: Uint8Array | null = null;
  private smallUsed = 0;
  private total = 0;
  private readonly alloc: Alloc;

  constructor(alloc: Alloc) {
    this.alloc = alloc;
  }

  get length(): number {
    return this.total;
  }

  /** Add a piece; `limit` caps how far the small-piece buffer grows (the message limit). */
  append(data: Uint8Array, limit: number): void {
    const n = data.length;
    if (n === 0) return;
    this.total += n;
    if (n >= KEEP_MIN) {
      this.flushSmall();
      this.parts.push(data);
      return;
    }
    let small = this.small;
    if (small === null || this.smallUsed + n > small.length) {
      this.flushSmall();
      // Grow geometrically with the bytes seen so far, never beyond the message limit.
      const size = Math.min(Math.max(SMALL_START, n, this.total), Math.max(n, limit));
      small = this.alloc(size);
      this.small = small;
    }
    small.set(data, this.smallUsed);
    this.smallUsed += n;
  }

  /** The bytes collected, joined (a single large piece is returned as is); then start over. */
  take(): Uint8Array {
    this.flushSmall();
    const parts = this.parts;
    let out: Uint8Array;
    if (parts.length === 1) {
      out = parts[0] as Uint8Array;
    } else {
      out = this.alloc(this.total);
      let at = 0;
      for (const p of parts) {
        out.set(p, at);
        at += p.length;
      }
    }
    this.clear();
    return out;
  }

  clear(): void {
    this.parts = [];
    this.small = null;
    this.smallUsed = 0;
    this.total = 0;
  }

  private flushSmall(): void {
    if (this.small !== null && this.smallUsed > 0) {
      this.parts.push(this.small.subarray(0, this.smallUsed));
      this.small = this.small.subarray(this.smallUsed);
      this.smallUsed = 0;
      if (this.small.length === 0) this.small = null;
    }
  }
}
