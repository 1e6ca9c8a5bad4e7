/** Test helpers for the protocol core: hex fixtures and an event-recording handler. */

import type { MessageCodec } from "../../src/protocol/codec.js";
import {
  Connection,
  type ConnectionHandler,
  type ConnectionOptions,
} from "../../src/protocol/connection.js";
import type { ProtocolError } from "../../src/protocol/errors.js";

/** "81 05 48 65" → bytes. Whitespace is ignored. */
export function hex(text: string): Uint8Array {
  const clean = text.replace(/\s+/g, "");
  if (clean.length % 2 !== 0) throw new Error(`odd hex: ${text}`);
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(clean.slice(i * 2, i * 2 + 2), 16);
  return out;
}

export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");
}

export type Event =
  | { type: "message"; text: string; binary: boolean; bytes: Uint8Array }
  | { type: "ping" | "pong"; bytes: Uint8Array }
  | { type: "close"; code: number; reason: string }
  | { type: "error"; code: string; closeCode: number; error: ProtocolError };

export interface Recorder {
  conn: Connection;
  events: Event[];
  /** Everything written so far, concatenated. */
  written(): Uint8Array;
  /** Forget what was written so far. */
  clearWritten(): void;
  /** Feed hex or bytes (always a fresh copy: the connection takes ownership). */
  feed(data: string | Uint8Array): void;
  /** How many times onClosed was called (once the state is CLOSED it must be 1). */
  closedCount(): number;
}

export function record(
  options: Partial<ConnectionOptions> & Pick<ConnectionOptions, "role">,
  codec: MessageCodec | null = null,
  open = true,
): Recorder {
  const events: Event[] = [];
  let out: Uint8Array[] = [];
  let closed = 0;
  const handler: ConnectionHandler = {
    onMessage: (data, binary) =>
      events.push({
        type: "message",
        text: new TextDecoder().decode(data),
        binary,
        bytes: data.slice(),
      }),
    onPing: (data) => events.push({ type: "ping", bytes: data.slice() }),
    onPong: (data) => events.push({ type: "pong", bytes: data.slice() }),
    onCloseFrame: (code, reason) => events.push({ type: "close", code, reason }),
    onError: (error) =>
      events.push({ type: "error", code: error.code, closeCode: error.closeCode, error }),
    onWrite: (chunk) => out.push(chunk.slice()),
    onClosed: () => {
      closed++;
    },
  };
  const conn = new Connection(options, handler);
  if (open) conn.open(codec);
  return {
    conn,
    events,
    written: () => concat(out),
    clearWritten: () => {
      out = [];
    },
    feed: (data) => conn.receiveData(typeof data === "string" ? hex(data) : data.slice()),
    closedCount: () => closed,
  };
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Mask `payload` with `key` the RFC 6455 §5.3 way (reference implementation for tests). */
export function maskRef(payload: Uint8Array, key: Uint8Array): Uint8Array {
  return payload.map((b, i) => b ^ (key[i % 4] ?? 0));
}
