/**
 * Resumable RFC 6455 frame parser. Bytes go in with any chunking (one byte at a time works);
 * frame headers and unmasked payload pieces come out through a {@link FrameSink}.
 *
 * Stateless header rules are checked here, in this fixed order (each cites its section):
 *
 * 1. RSV2 or RSV3 set → 1002 (§5.2: MUST be 0 unless an extension defines them).
 * 2. RSV1 set without permessage-deflate negotiated → 1002 (§5.2, RFC 7692 §6).
 * 3. Unknown opcode (0x3-0x7, 0xB-0xF) → 1002 (§5.2: MUST fail the connection).
 * 4. Control frame (opcode ≥ 0x8): FIN clear → 1002 (§5.5 "MUST NOT be fragmented");
 *    RSV1 set → 1002 (RFC 7692 §6.1: RSV1 only on the first frame of a data message);
 *    payload > 125 → 1002 (§5.5); Close with a 1-byte payload → 1002 (§5.5.1).
 * 5. Continuation frame with RSV1 set → 1002 (RFC 7692 §6.1).
 * 6. MASK bit: a server requires it (§5.1 "MUST close the connection upon receiving a frame
 *    that is not masked"), a client rejects it (§5.1 "MUST close ... if it detects a masked frame").
 * 7. 64-bit length with the most significant bit set → 1002 (§5.2 "the most significant bit
 *    MUST be 0"); a length above 2^53 - 1 → 1009 (cannot be counted exactly, and far above any limit).
 *
 * Rules that depend on the message in progress (continuation order, cumulative size, fragment
 * count, UTF-8) are the sink's: see connection.ts.
 */
import { ProtocolError } from "./errors.js";
import { applyMaskBytes } from "./mask.js";

/** Returned by a sink to stop parsing until {@link FrameParser.resume} is called. */
export const PAUSE = 1;
/** Returned by a sink to keep parsing. */
export const CONTINUE = 0;
export type SinkResult = typeof PAUSE | typeof CONTINUE | ProtocolError;

export interface FrameSink {
  /** A frame header passed the stateless rules. Return an error to fail the connection. */
  onFrameHeader(
    fin: boolean,
    rsv1: boolean,
    opcode: number,
    length: number,
  ): ProtocolError | undefined;
  /**
   * A piece of the current frame's payload, already unmasked (a view into the input where
   * possible: no copy). `last` is true for the final piece; an empty payload gives one empty
   * piece. `whole` is true when this single piece is the entire payload.
   */
  onFramePayload(data: Uint8Array, last: boolean, whole: boolean): SinkResult;
}

const EMPTY = new Uint8Array(0);
/** Shared until a connection needs a queue of its own (never pushed to). */
const EMPTY_QUEUE: Uint8Array[] = [];
enum State {
  HEADER = 0,
  PAYLOAD = 1,
  DONE = 2,
}

export class FrameParser {
  /** permessage-deflate negotiated: RSV1 allowed on the first frame of data messages. */
  rsv1Allowed = false;
  private readonly expectMask: boolean;
  private readonly sink: FrameSink;
  private state: State = State.HEADER;
  /** Header bytes collected so far when a header is split across chunks (allocated then). */
  private head: Uint8Array | null = null;
  private headLength = 0;
  private k0 = 0;
  private k1 = 0;
  private k2 = 0;
  private k3 = 0;
  private masked = false;
  private maskOffset = 0;
  private remaining = 0;
  private pieceIsWhole = false;
  private paused = false;
  private running = false;
  /** Input that arrived while paused or while the sink re-entered us. */
  private queue: Uint8Array[] = EMPTY_QUEUE;

  /** @param expectMask true for a server (client frames are masked), false for a client. */
  constructor(expectMask: boolean, sink: FrameSink) {
    this.expectMask = expectMask;
    this.sink = sink;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** Bytes received but not parsed yet (waiting while paused). */
  get queuedBytes(): number {
    let n = 0;
    for (const c of this.queue) n += c.length;
    return n;
  }

  /**
   * Feed bytes. The parser takes ownership of `chunk`: masked payloads are unmasked in place
   * and delivered as views of it, so the caller must not reuse the buffer.
   */
  push(chunk: Uint8Array): void {
    if (this.state === State.DONE || chunk.length === 0) return;
    if (!this.paused && !this.running && this.queue.length === 0) {
      // Fast path: nothing queued, parse the chunk in place.
      this.running = true;
      let at: number;
      try {
        at = this.parse(chunk);
      } finally {
        this.running = false;
      }
      if (at < chunk.length && !this.isDone()) this.enqueue(chunk.subarray(at), true);
      if (!this.paused && this.queue.length > 0) this.drain();
      return;
    }
    this.enqueue(chunk, false);
    if (!this.paused && !this.running) this.drain();
  }

  private enqueue(chunk: Uint8Array, front: boolean): void {
    if (this.queue === EMPTY_QUEUE) this.queue = [];
    if (front) this.queue.unshift(chunk);
    else this.queue.push(chunk);
  }

  /** Continue after a sink returned {@link PAUSE}. */
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    if (!this.running) this.drain();
  }

  /** Stop for good: every later byte is discarded (RFC 6455 §7.1.7 after failing). */
  stop(): void {
    this.state = State.DONE;
    this.queue = EMPTY_QUEUE;
    // Nothing is awaited any more: the transport may be read (to its end) again.
    this.paused = false;
  }

  private isDone(): boolean {
    return this.state === State.DONE;
  }

  private drain(): void {
    this.running = true;
    try {
      while (!this.paused && this.state !== State.DONE) {
        const chunk = this.queue.shift();
        if (chunk === undefined) break;
        const at = this.parse(chunk);
        if (at < chunk.length && !this.isDone()) {
          this.enqueue(at === 0 ? chunk : chunk.subarray(at), true);
        }
      }
    } finally {
      this.running = false;
    }
  }

  /** Parse as much of `chunk` as possible; returns how many bytes were consumed. */
  private parse(chunk: Uint8Array): number {
    let at = 0;
    const end = chunk.length;
    while (at < end && !this.paused && this.state !== State.DONE) {
      if (this.state === State.HEADER) {
        at = this.readHeader(chunk, at);
      } else {
        const n = Math.min(this.remaining, end - at);
        const piece = chunk.subarray(at, at + n);
        if (this.masked) {
          applyMaskBytes(piece, this.k0, this.k1, this.k2, this.k3, 0, n, this.maskOffset);
          this.maskOffset = (this.maskOffset + n) & 3;
        }
        this.remaining -= n;
        at += n;
        const whole = this.pieceIsWhole && this.remaining === 0;
        this.pieceIsWhole = false;
        if (this.remaining === 0) this.state = State.HEADER;
        this.handle(this.sink.onFramePayload(piece, this.remaining === 0, whole));
      }
    }
    return at;
  }

  private handle(result: SinkResult): void {
    if (result === CONTINUE) return;
    if (result === PAUSE) {
      this.paused = true;
      return;
    }
    this.failWith(result);
  }

  /** Read (the rest of) a header from `chunk` at `at`; returns the new offset. */
  private readHeader(chunk: Uint8Array, at: number): number {
    let src: Uint8Array;
    let base: number;
    const available = chunk.length - at;
    if (this.headLength === 0 && available >= 2) {
      const need = needed(chunk[at + 1] ?? 0);
      if (available >= need) {
        src = chunk;
        base = at;
        at += need;
      } else {
        this.head ??= new Uint8Array(14);
        this.head.set(chunk.subarray(at), 0);
        this.headLength = available;
        return chunk.length;
      }
    } else {
      // Collect into the scratch header: first the two fixed bytes, then the rest.
      if (this.head === null) this.head = new Uint8Array(14);
      const head = this.head;
      while (this.headLength < 2 && at < chunk.length) head[this.headLength++] = chunk[at++] ?? 0;
      if (this.headLength < 2) return at;
      const need = needed(head[1] ?? 0);
      const take = Math.min(need - this.headLength, chunk.length - at);
      head.set(chunk.subarray(at, at + take), this.headLength);
      this.headLength += take;
      at += take;
      if (this.headLength < need) return at;
      src = head;
      base = 0;
      this.headLength = 0;
    }
    this.decodeHeader(src, base);
    return at;
  }

  private decodeHeader(b: Uint8Array, i: number): undefined {
    const b0 = b[i] ?? 0;
    const b1 = b[i + 1] ?? 0;
    const fin = (b0 & 0x80) !== 0;
    const rsv1 = (b0 & 0x40) !== 0;
    const opcode = b0 & 0x0f;
    const masked = (b1 & 0x80) !== 0;
    let length = b1 & 0x7f;
    let p = i + 2;
    // 1-2. Reserved bits.
    if ((b0 & 0x30) !== 0) return this.fail("WS_ERR_INVALID_RSV", "RSV2 and RSV3 must be clear");
    if (rsv1 && !this.rsv1Allowed) {
      return this.fail("WS_ERR_INVALID_RSV", "RSV1 must be clear: no extension negotiated");
    }
    // 3. Opcode.
    if (opcode > 0xa || (opcode > 0x2 && opcode < 0x8)) {
      return this.fail("WS_ERR_INVALID_OPCODE", `invalid opcode ${opcode}`);
    }
    if (opcode >= 0x8) {
      // 4. Control frames.
      if (!fin) return this.fail("WS_ERR_CONTROL_NOT_FIN", "control frames must not be fragmented");
      if (rsv1) return this.fail("WS_ERR_INVALID_RSV", "RSV1 must be clear on control frames");
      if (length > 125) {
        return this.fail("WS_ERR_CONTROL_TOO_LONG", "control frame payload exceeds 125 bytes");
      }
      if (opcode === 0x8 && length === 1) {
        return this.fail("WS_ERR_INVALID_CLOSE_PAYLOAD", "close frame payload of 1 byte");
      }
    } else if (opcode === 0x0 && rsv1) {
      // 5. RSV1 belongs to the first frame of a message only.
      return this.fail("WS_ERR_INVALID_RSV", "RSV1 must be clear on continuation frames");
    }
    // 6. Mask direction.
    if (masked !== this.expectMask) {
      return this.expectMask
        ? this.fail("WS_ERR_EXPECTED_MASK", "client frames must be masked")
        : this.fail("WS_ERR_UNEXPECTED_MASK", "server frames must not be masked");
    }
    // 7. Extended length.
    if (length === 126) {
      length = ((b[p] ?? 0) << 8) | (b[p + 1] ?? 0);
      p += 2;
    } else if (length === 127) {
      const high =
        (((b[p] ?? 0) << 24) |
          ((b[p + 1] ?? 0) << 16) |
          ((b[p + 2] ?? 0) << 8) |
          (b[p + 3] ?? 0)) >>>
        0;
      const low =
        (((b[p + 4] ?? 0) << 24) |
          ((b[p + 5] ?? 0) << 16) |
          ((b[p + 6] ?? 0) << 8) |
          (b[p + 7] ?? 0)) >>>
        0;
      p += 8;
      if (high >= 0x8000_0000) {
        return this.fail(
          "WS_ERR_INVALID_LENGTH",
          "64-bit payload length has its most significant bit set",
        );
      }
      if (high > 0x1f_ffff) {
        return this.failWith(
          new ProtocolError("WS_ERR_MESSAGE_TOO_BIG", 1009, "payload length above 2^53 - 1"),
        );
      }
      length = high * 0x1_0000_0000 + low;
    }
    if (masked) {
      this.k0 = b[p] ?? 0;
      this.k1 = b[p + 1] ?? 0;
      this.k2 = b[p + 2] ?? 0;
      this.k3 = b[p + 3] ?? 0;
    }
    this.masked = masked;
    this.maskOffset = 0;
    this.remaining = length;
    this.pieceIsWhole = true;
    const error = this.sink.onFrameHeader(fin, rsv1, opcode, length);
    if (error !== undefined) return this.failWith(error);
    if (length === 0) {
      this.pieceIsWhole = false;
      this.handle(this.sink.onFramePayload(EMPTY, true, true));
      return;
    }
    this.state = State.PAYLOAD;
  }

  private fail(code: ProtocolError["code"], message: string): undefined {
    return this.failWith(new ProtocolError(code, 1002, message));
  }

  private failWith(error: ProtocolError): undefined {
    if (this.state === State.DONE) return;
    this.stop();
    this.onError(error);
  }

  /** Set by the owner: called once when a header rule fails. */
  onError: (error: ProtocolError) => void = () => {};
}

/** Header size announced by the second header byte (RFC 6455 §5.2). */
function needed(b1: number): number {
  const len = b1 & 0x7f;
  const base = len === 126 ? 4 : len === 127 ? 10 : 2;
  return (b1 & 0x80) !== 0 ? base + 4 : base;
}
