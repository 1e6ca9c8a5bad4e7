import type { Alloc } from "./frame.js";

/**
 * A growable byte buffer for reassembling messages. Fragments are copied in as they arrive, so a
 * message split into many tiny frames costs its bytes, not one object per fragment.
 */
export class ByteAccumulator {
  private buf: Uint8Array | null = null;
  private used = 0;
  private readonly alloc: Alloc;

  constructor(alloc: Alloc) {
    this.alloc = alloc;
  }

  get length(): number {
    return this.used;
  }

  /** Make room for `extra` more bytes; `limit` caps speculative growth (the message limit). */
  reserve(extra: number, limit: number): void {
    const need = this.used + extra;
    const cap = this.buf === null ? 0 : this.buf.length;
    if (need <= cap) return;
    const size = Math.max(need, Math.min(cap * 2, limit));
    const next = this.alloc(size);
    if (this.buf !== null && this.used > 0) next.set(this.buf.subarray(0, this.used), 0);
    this.buf = next;
  }

  append(data: Uint8Array, limit: number): void {
    if (data.length === 0) return;
    this.reserve(data.length, limit);
    (this.buf as Uint8Array).set(data, this.used);
    this.used += data.length;
  }

  /** The bytes collected so far; the accumulator starts over empty (the result is not reused). */
  take(): Uint8Array {
    const out = this.buf === null ? new Uint8Array(0) : this.buf.subarray(0, this.used);
    this.buf = null;
    this.used = 0;
    return out;
  }

  clear(): void {
    this.buf = null;
    this.used = 0;
  }
}
