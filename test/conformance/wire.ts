/**
 * Raw RFC 6455 wire primitives for the conformance fuzzers: a frame encoder that can produce any
 * header (bad RSV bits, reserved opcodes, fragmented control frames, oversized control payloads),
 * a frame that is written in parts (one header, payload sent later in pieces), and a lenient
 * incremental frame reader that reports what it sees without enforcing anything.
 *
 * Deliberately independent of src/protocol: a conformance harness that used the implementation's
 * own encoder or parser could not catch a bug they share.
 */
import { createHash, randomBytes } from "node:crypto";

export const OP = {
  CONTINUATION: 0x0,
  TEXT: 0x1,
  BINARY: 0x2,
  CLOSE: 0x8,
  PING: 0x9,
  PONG: 0xa,
} as const;

/** One frame as the fuzzer wants it on the wire. */
export interface FrameSpec {
  readonly opcode: number;
  readonly payload?: Uint8Array | string;
  /** @default true */
  readonly fin?: boolean;
  /**
   * The three reserved bits as one number, as Autobahn numbers them: 4 = RSV1, 2 = RSV2,
   * 1 = RSV3 (so "RSV = 5" is RSV1 + RSV3). @default 0
   */
  readonly rsv?: number;
}

export function bytes(data: Uint8Array | string | undefined): Buffer {
  if (data === undefined) return Buffer.alloc(0);
  if (typeof data === "string") return Buffer.from(data, "utf8");
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

export function hex(data: string): Buffer {
  return Buffer.from(data.replace(/\s+/g, ""), "hex");
}

/** XOR `data[start, end)` in place with `key`, the key phase starting at `phase`. */
export function xorMask(
  data: Buffer,
  key: Uint8Array,
  start = 0,
  end = data.length,
  phase = 0,
): void {
  const k0 = key[0] ?? 0;
  const k1 = key[1] ?? 0;
  const k2 = key[2] ?? 0;
  const k3 = key[3] ?? 0;
  const keys = [k0, k1, k2, k3];
  let p = phase & 3;
  for (let i = start; i < end; i++) {
    data[i] = (data[i] ?? 0) ^ (keys[p] ?? 0);
    p = (p + 1) & 3;
  }
}

/** The header of a frame with `length` payload bytes; `mask` adds the masking key. */
export function frameHeader(
  opcode: number,
  length: number,
  fin: boolean,
  rsv: number,
  mask: Uint8Array | null,
): Buffer {
  const extended = length < 126 ? 0 : length < 65536 ? 2 : 8;
  const out = Buffer.alloc(2 + extended + (mask === null ? 0 : 4));
  out[0] = (fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0x0f);
  const maskBit = mask === null ? 0 : 0x80;
  if (extended === 0) out[1] = maskBit | length;
  else if (extended === 2) {
    out[1] = maskBit | 126;
    out.writeUInt16BE(length, 2);
  } else {
    out[1] = maskBit | 127;
    out.writeBigUInt64BE(BigInt(length), 2);
  }
  if (mask !== null) out.set(mask.subarray(0, 4), 2 + extended);
  return out;
}

/** Encode a whole frame (masked with a fresh random key when `masked`). */
export function encodeFrame(spec: FrameSpec, masked: boolean): Buffer {
  const payload = bytes(spec.payload);
  const key = masked ? randomBytes(4) : null;
  const header = frameHeader(spec.opcode, payload.length, spec.fin ?? true, spec.rsv ?? 0, key);
  const out = Buffer.allocUnsafe(header.length + payload.length);
  header.copy(out, 0);
  payload.copy(out, header.length);
  if (key !== null) xorMask(out, key, header.length);
  return out;
}

/**
 * A frame whose header announces `length` bytes and whose payload is handed over in parts
 * (Autobahn's beginMessageFrame / sendMessageFrameData): masking continues across the parts.
 */
export class PartialFrame {
  readonly header: Buffer;
  private readonly key: Buffer | null;
  private offset = 0;

  constructor(opcode: number, length: number, fin: boolean, masked: boolean) {
    this.key = masked ? randomBytes(4) : null;
    this.header = frameHeader(opcode, length, fin, 0, this.key);
  }

  /** The wire bytes for the next part of the payload. */
  part(data: Uint8Array | string): Buffer {
    const out = Buffer.from(bytes(data));
    if (this.key !== null) xorMask(out, this.key, 0, out.length, this.offset);
    this.offset += out.length;
    return out;
  }
}

/** A frame as received, payload already unmasked. */
export interface WireFrame {
  readonly fin: boolean;
  /** 3-bit value: 4 = RSV1, 2 = RSV2, 1 = RSV3. */
  readonly rsv: number;
  readonly opcode: number;
  readonly masked: boolean;
  readonly payload: Buffer;
  /** The 64-bit length had its most significant bit set (RFC 6455 §5.2 forbids it). */
  readonly lengthMsbSet: boolean;
}

/**
 * Lenient incremental frame reader: any chunking; returns complete frames. It never rejects
 * anything (the fuzzer judges what it reads), except lengths it cannot buffer.
 */
export class FrameReader {
  private readonly chunks: Buffer[] = [];
  /** Index of the first unconsumed chunk. */
  private head = 0;
  private length = 0;
  /** Bytes of the largest frame accepted (beyond it the reader reports an error). */
  private readonly maxFrame: number;

  constructor(maxFrame = 64 * 1024 * 1024) {
    this.maxFrame = maxFrame;
  }

  /** Feed bytes; returns the frames completed by them, or a string describing a fatal problem. */
  push(chunk: Buffer): WireFrame[] | string {
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.length += chunk.length;
    }
    const out: WireFrame[] = [];
    for (;;) {
      if (this.length < 2) return out;
      const head = this.peek(Math.min(14, this.length));
      const b0 = head[0] ?? 0;
      const b1 = head[1] ?? 0;
      const masked = (b1 & 0x80) !== 0;
      let len = b1 & 0x7f;
      let at = 2;
      let msb = false;
      if (len === 126) {
        if (head.length < 4) return out;
        len = head.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (head.length < 10) return out;
        const big = head.readBigUInt64BE(2);
        msb = (big & (1n << 63n)) !== 0n;
        if (big > BigInt(this.maxFrame)) {
          return `frame announces ${big} payload bytes, more than the harness buffers`;
        }
        len = Number(big);
        at = 10;
      }
      if (masked) {
        if (head.length < at + 4) return out;
        at += 4;
      }
      if (this.length < at + len) return out;
      const header = this.take(at);
      const payload = this.take(len);
      if (masked) xorMask(payload, header.subarray(at - 4, at));
      out.push({
        fin: (b0 & 0x80) !== 0,
        rsv: (b0 >> 4) & 7,
        opcode: b0 & 0x0f,
        masked,
        payload,
        lengthMsbSet: msb,
      });
    }
  }

  private peek(n: number): Buffer {
    const first = this.chunks[this.head];
    if (first !== undefined && first.length >= n) return first.subarray(0, n);
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    for (let i = this.head; i < this.chunks.length && at < n; i++) {
      const c = this.chunks[i]!;
      const k = Math.min(c.length, n - at);
      c.copy(out, at, 0, k);
      at += k;
    }
    return out;
  }

  /** Remove and return the next `n` bytes (a private copy: it is unmasked in place). */
  private take(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const c = this.chunks[this.head]!;
      const k = Math.min(c.length, n - at);
      c.copy(out, at, 0, k);
      at += k;
      if (k === c.length) this.head++;
      else this.chunks[this.head] = c.subarray(k);
    }
    if (this.head > 1024 && this.head * 2 > this.chunks.length) {
      this.chunks.splice(0, this.head);
      this.head = 0;
    }
    this.length -= n;
    return out;
  }
}

/** RFC 6455 §1.3: the Sec-WebSocket-Accept value for a key. */
export function acceptFor(key: string): string {
  return createHash("sha1").update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64");
}

/** A parsed HTTP/1.1 head (request or response): first line and headers, names lower-cased. */
export interface HttpHead {
  readonly startLine: string;
  readonly headers: ReadonlyArray<readonly [string, string]>;
}

/** Parse `head` (without the final CRLF CRLF). Returns null when it is not HTTP/1.1-shaped. */
export function parseHead(head: string): HttpHead | null {
  const lines = head.split("\r\n");
  const startLine = lines.shift();
  if (startLine === undefined || startLine === "") return null;
  const headers: [string, string][] = [];
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon <= 0) return null;
    headers.push([line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()]);
  }
  return { startLine, headers };
}

/** All values of a header joined with ", " (RFC 9110 §5.3), or undefined when absent. */
export function header(head: HttpHead, name: string): string | undefined {
  const values = head.headers.filter(([n]) => n === name).map(([, v]) => v);
  return values.length === 0 ? undefined : values.join(", ");
}

/** True when the comma-separated `value` contains `token` (case-insensitive). */
export function hasToken(value: string | undefined, token: string): boolean {
  if (value === undefined) return false;
  return value
    .split(",")
    .map((t) => t.trim().toLowerCase())
    .includes(token.toLowerCase());
}

/** Read from `socket` until CRLF CRLF; resolves with the head text and the bytes after it. */
export function readHead(
  socket: import("node:net").Socket,
  maxBytes = 64 * 1024,
): Promise<{ head: string; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let got: Buffer = Buffer.alloc(0);
    const cleanup = (): void => {
      socket.off("data", onData);
      socket.off("close", onClose);
      socket.off("error", onError);
    };
    const onData = (chunk: Buffer): void => {
      got = got.length === 0 ? chunk : Buffer.concat([got, chunk]);
      const end = got.indexOf("\r\n\r\n");
      if (end >= 0) {
        cleanup();
        socket.pause();
        resolve({ head: got.subarray(0, end).toString("latin1"), rest: got.subarray(end + 4) });
      } else if (got.length > maxBytes) {
        cleanup();
        reject(new Error(`HTTP head longer than ${maxBytes} bytes`));
      }
    };
    const onClose = (): void => {
      cleanup();
      reject(new Error("connection closed before the HTTP head was complete"));
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(error);
    };
    socket.on("data", onData);
    socket.on("close", onClose);
    socket.on("error", onError);
  });
}
