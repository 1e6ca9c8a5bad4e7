/**
 * RFC 6455 §5.2 base framing: opcodes and the frame writer. The reader is frame-parser.ts.
 */
import { copyMasked } from "./mask.js";

/** Frame opcodes (RFC 6455 §5.2, §11.8). */
export const Opcode = {
  CONTINUATION: 0x0,
  TEXT: 0x1,
  BINARY: 0x2,
  CLOSE: 0x8,
  PING: 0x9,
  PONG: 0xa,
} as const;
export type Opcode = (typeof Opcode)[keyof typeof Opcode];

/** Largest payload of a control frame (RFC 6455 §5.5). */
export const MAX_CONTROL_PAYLOAD = 125;

/**
 * Unmasked frames whose payload is at most this many bytes are written as one buffer (header +
 * payload copied); larger payloads go out as `[header, payload]` without a copy (the Node layer
 * corks, so both leave in one writev).
 */
export const COPY_THRESHOLD = 1024;

export interface FrameSpec {
  readonly opcode: number;
  readonly payload: Uint8Array;
  /** Last frame of the message. @default true */
  readonly fin?: boolean;
  /** RSV1: set on the first frame of a compressed message (RFC 7692 §6). @default false */
  readonly rsv1?: boolean;
  /** 4-byte masking key (client-to-server frames, RFC 6455 §5.3), or undefined for none. */
  readonly mask?: Uint8Array | undefined;
}

/** Size of the header for a payload of `length` bytes (RFC 6455 §5.2 payload length encoding). */
export function headerSize(length: number, masked: boolean): number {
  const base = length < 126 ? 2 : length < 65536 ? 4 : 10;
  return masked ? base + 4 : base;
}

/** Write the frame header into `out` at `at`; returns the offset where the payload starts. */
export function writeHeader(
  out: Uint8Array,
  at: number,
  opcode: number,
  length: number,
  fin: boolean,
  rsv1: boolean,
  mask: Uint8Array | undefined,
): number {
  out[at] = (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode;
  const maskBit = mask === undefined ? 0 : 0x80;
  let i = at + 2;
  if (length < 126) {
    out[at + 1] = maskBit | length;
  } else if (length < 65536) {
    out[at + 1] = maskBit | 126;
    out[i++] = length >>> 8;
    out[i++] = length & 0xff;
  } else {
    out[at + 1] = maskBit | 127;
    // 64-bit big-endian length; lengths are below 2^53 so the high word fits in 21 bits.
    const high = Math.floor(length / 0x1_0000_0000);
    const low = length >>> 0;
    out[i++] = 0;
    out[i++] = (high >>> 16) & 0xff;
    out[i++] = (high >>> 8) & 0xff;
    out[i++] = high & 0xff;
    out[i++] = low >>> 24;
    out[i++] = (low >>> 16) & 0xff;
    out[i++] = (low >>> 8) & 0xff;
    out[i++] = low & 0xff;
  }
  if (mask !== undefined) {
    out[i++] = mask[0] ?? 0;
    out[i++] = mask[1] ?? 0;
    out[i++] = mask[2] ?? 0;
    out[i++] = mask[3] ?? 0;
  }
  return i;
}

export type Alloc = (size: number) => Uint8Array;
const defaultAlloc: Alloc = (size) => new Uint8Array(size);

/**
 * Encode one frame into a single buffer. The result can be written to any number of
 * connections (a broadcast frames once). Masked frames copy the payload; the caller's buffer is
 * never modified.
 */
export function encodeFrame(spec: FrameSpec, alloc: Alloc = defaultAlloc): Uint8Array {
  const { payload, mask } = spec;
  const size = headerSize(payload.length, mask !== undefined);
  const out = alloc(size + payload.length);
  const start = writeHeader(
    out,
    0,
    spec.opcode,
    payload.length,
    spec.fin ?? true,
    spec.rsv1 ?? false,
    mask,
  );
  if (mask === undefined) out.set(payload, start);
  else copyMasked(payload, out, start, mask);
  return out;
}

/**
 * Encode one frame as the fewest buffers that avoid copying a large unmasked payload:
 * `[frame]` for small or masked frames, `[header, payload]` otherwise (write them with writev/cork).
 */
export function encodeFrameParts(spec: FrameSpec, alloc: Alloc = defaultAlloc): Uint8Array[] {
  if (spec.mask !== undefined || spec.payload.length <= COPY_THRESHOLD) {
    return [encodeFrame(spec, alloc)];
  }
  const header = alloc(headerSize(spec.payload.length, false));
  writeHeader(
    header,
    0,
    spec.opcode,
    spec.payload.length,
    spec.fin ?? true,
    spec.rsv1 ?? false,
    undefined,
  );
  return [header, spec.payload];
}
