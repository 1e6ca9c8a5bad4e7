/**
 * Shared machinery of the Connection fuzz target (run.ts), its corpus replay (corpus.test.ts) and
 * the property tests (test/protocol/connection.property.test.ts).
 *
 * A {@link FeedCase} is a byte stream, a role, limits, an optional inflate codec and a chunking.
 * {@link checkCase} runs it through a Connection and checks that the Connection behaves as a total
 * function of its input:
 *
 * - receiveData never throws;
 * - the events are messages / pings / pongs, possibly ended by ONE peer Close frame or ONE onError
 *   with a ProtocolError whose closeCode is 1002, 1007, 1008 or 1009; nothing comes after it;
 * - what is written is exactly what the events call for: one Pong echoing each Ping, one Close
 *   echoing the peer's code, and after a failure exactly one Close frame carrying its closeCode;
 * - text messages are valid UTF-8 and no message exceeds maxMessageBytes;
 * - state and closeStatus agree with the events;
 * - feeding the same bytes whole gives the same events and the same written bytes
 *   (segmentation invariance);
 * - the events equal those of {@link referenceEvents}, a deliberately simple whole-buffer decoder
 *   written from RFC 6455 / RFC 7692 and docs/protocol-core.md (rule order, limits).
 */
import { Buffer } from "node:buffer";
import * as zlib from "node:zlib";
import {
  type CodecCallback,
  CodecLimitError,
  type MessageCodec,
} from "../../src/protocol/codec.js";
import { Connection, type ConnectionHandler, ReadyState } from "../../src/protocol/connection.js";
import { ProtocolError } from "../../src/protocol/errors.js";
import { DEFAULT_LIMITS, type Limits, resolveLimits } from "../../src/protocol/limits.js";

export type Role = "server" | "client";

/** The limits a case may set; the others keep their defaults. */
export interface CaseLimits {
  readonly maxMessageBytes: number;
  readonly maxFragments: number;
}

/** permessage-deflate as the receiving side's inflater sees it (the peer's direction). */
export interface InflateSpec {
  /** The peer's max window bits, 8..15. */
  readonly windowBits: number;
  /** The peer resets its compressor after each message. */
  readonly noContextTakeover: boolean;
}

export interface FeedCase {
  readonly role: Role;
  /** null: DEFAULT_LIMITS. */
  readonly limits: CaseLimits | null;
  /** null: no extension negotiated (RSV1 is a protocol error). */
  readonly codec: InflateSpec | null;
  readonly input: Uint8Array;
  /**
   * Sizes of the chunks fed one receiveData call each (0 feeds an empty chunk). Bytes beyond their
   * sum are fed as one last chunk; sizes beyond the input are cut. [] feeds the input whole.
   */
  readonly chunks: readonly number[];
}

/** What a Connection reported, with byte payloads as hex so events compare with deepEqual. */
export type HarnessEvent =
  | { readonly type: "message"; readonly binary: boolean; readonly data: string }
  | { readonly type: "ping"; readonly data: string }
  | { readonly type: "pong"; readonly data: string }
  | { readonly type: "close"; readonly code: number; readonly reason: string }
  | { readonly type: "error"; readonly code: string; readonly closeCode: number };

export interface Observation {
  readonly events: HarnessEvent[];
  /** Every onWrite chunk (a copy), tagged with the number of events emitted before it. */
  readonly writes: { readonly at: number; readonly bytes: Uint8Array }[];
  /** What receiveData threw, if anything (the first throw; feeding stops there). */
  thrown: unknown;
  /** Handler-level surprises, e.g. onError called with something that is no ProtocolError. */
  readonly anomalies: string[];
  /** Index of the chunk being fed when each event was emitted (-1: after feeding, async). */
  readonly eventChunk: number[];
  state: ReadyState;
  closeStatus: { code: number; reason: string; wasClean: boolean };
}

export const ALLOWED_FAILURE_CODES: ReadonlySet<number> = new Set([1002, 1007, 1008, 1009]);

// ---- small helpers ------------------------------------------------------------------------------

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

export function fromHex(text: string): Uint8Array {
  const clean = text.replace(/\s+/g, "");
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(clean)) throw new Error(`not hex: ${text.slice(0, 40)}`);
  return new Uint8Array(Buffer.from(clean, "hex"));
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** mulberry32: a tiny deterministic PRNG (uniform 32-bit outputs). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** A deterministic `random` option for client Connections, so two runs mask identically. */
export function seededRandom(seed: number): (out: Uint8Array) => void {
  const next = prng(seed);
  return (out) => {
    for (let i = 0; i < out.length; i++) out[i] = next() & 0xff;
  };
}

export function resolveCaseLimits(limits: CaseLimits | null): Limits {
  return limits === null ? DEFAULT_LIMITS : resolveLimits(limits);
}

/** Split `input` into fresh copies following {@link FeedCase.chunks}. */
export function splitChunks(input: Uint8Array, sizes: readonly number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  for (const size of sizes) {
    const end = Math.min(input.length, at + Math.max(0, Math.floor(size)));
    out.push(input.slice(at, end));
    at = end;
  }
  if (at < input.length || out.length === 0) out.push(input.slice(at));
  return out;
}

function describeError(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}\n${e.stack ?? ""}`;
  return String(e);
}

// ---- a synchronous permessage-deflate inflater ----------------------------------------------------

/** The empty stored block that ends every sync flush (RFC 7692 §7.2.1). */
const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

/**
 * A synchronous {@link MessageCodec} built on zlib's one-shot calls, for speed and for exact
 * reproducibility (no thread pool). Decompression re-inflates everything received since the last
 * context reset with Z_SYNC_FLUSH and returns the new bytes: quadratic, fine for fuzz-sized inputs,
 * and it yields the output frame by frame like a streaming inflater. Compression is one-shot per
 * frame, which is valid for any negotiated parameters (it never refers back).
 */
export class SyncInflateCodec implements MessageCodec {
  private readonly spec: InflateSpec;
  private history: Buffer[] = [];
  private emitted = 0;
  private broken = false;

  constructor(spec: InflateSpec) {
    this.spec = spec;
  }

  compress(data: Uint8Array, fin: boolean, callback: CodecCallback): void {
    let out = zlib.deflateRawSync(data, {
      finishFlush: zlib.constants.Z_SYNC_FLUSH,
      windowBits: Math.max(9, this.spec.windowBits),
    });
    if (fin && out.length >= 4 && out.subarray(out.length - 4).equals(TAIL)) {
      out = out.subarray(0, out.length - 4);
    }
    callback(null, out);
  }

  decompress(data: Uint8Array, fin: boolean, maxOutput: number, callback: CodecCallback): void {
    if (this.broken) return callback(new Error("codec unusable after an error"), null);
    this.history.push(Buffer.from(data));
    if (fin) this.history.push(TAIL);
    let out: Buffer;
    try {
      out = zlib.inflateRawSync(Buffer.concat(this.history), {
        finishFlush: zlib.constants.Z_SYNC_FLUSH,
        windowBits: this.spec.windowBits,
        maxOutputLength: Math.min(this.emitted + maxOutput + 1, 2 ** 31 - 1),
      });
    } catch (error) {
      this.broken = true;
      const tooBig = (error as { code?: unknown }).code === "ERR_BUFFER_TOO_LARGE";
      return callback(tooBig ? new CodecLimitError(maxOutput) : (error as Error), null);
    }
    if (out.length < this.emitted) {
      this.broken = true;
      return callback(new Error("inflate output shrank"), null);
    }
    const fresh = out.subarray(this.emitted);
    if (fresh.length > maxOutput) {
      this.broken = true;
      return callback(new CodecLimitError(maxOutput), null);
    }
    this.emitted = out.length;
    if (fin && this.spec.noContextTakeover) {
      this.history = [];
      this.emitted = 0;
    }
    callback(null, fresh);
  }

  close(): void {
    this.broken = true;
    this.history = [];
  }
}

// ---- running a case -----------------------------------------------------------------------------

export type CodecFactory = (spec: InflateSpec, role: Role) => MessageCodec;

export const syncCodecFactory: CodecFactory = (spec) => new SyncInflateCodec(spec);

interface Run {
  readonly conn: Connection;
  readonly obs: Observation;
  readonly codec: MessageCodec | null;
  current: { chunk: number };
}

function startRun(c: FeedCase, makeCodec: CodecFactory): Run {
  const obs: Observation = {
    events: [],
    writes: [],
    thrown: undefined,
    anomalies: [],
    eventChunk: [],
    state: ReadyState.CONNECTING,
    closeStatus: { code: 0, reason: "", wasClean: false },
  };
  const current = { chunk: -1 };
  const push = (e: HarnessEvent): void => {
    obs.events.push(e);
    obs.eventChunk.push(current.chunk);
  };
  const handler: ConnectionHandler = {
    onMessage: (data, binary) => push({ type: "message", binary, data: toHex(data) }),
    onPing: (data) => push({ type: "ping", data: toHex(data) }),
    onPong: (data) => push({ type: "pong", data: toHex(data) }),
    onCloseFrame: (code, reason) => push({ type: "close", code, reason }),
    onError: (error) => {
      if (!(error instanceof ProtocolError)) {
        obs.anomalies.push(`onError got a non-ProtocolError: ${describeError(error)}`);
      }
      push({ type: "error", code: String(error.code), closeCode: error.closeCode });
    },
    onWrite: (chunk) => {
      if (!(chunk instanceof Uint8Array)) obs.anomalies.push("onWrite got a non-Uint8Array");
      obs.writes.push({ at: obs.events.length, bytes: chunk.slice() });
    },
  };
  const conn = new Connection(
    { role: c.role, limits: resolveCaseLimits(c.limits), random: seededRandom(0x5eed) },
    handler,
  );
  const codec = c.codec === null ? null : makeCodec(c.codec, c.role);
  conn.open(codec);
  return { conn, obs, codec, current };
}

function feed(run: Run, chunk: Uint8Array, index: number): boolean {
  run.current.chunk = index;
  try {
    run.conn.receiveData(chunk);
  } catch (error) {
    run.obs.thrown = error;
    return false;
  } finally {
    run.current.chunk = -1;
  }
  return true;
}

function endRun(run: Run): Observation {
  run.obs.state = run.conn.state;
  run.obs.closeStatus = { ...run.conn.closeStatus };
  run.codec?.close();
  return run.obs;
}

/** Feed a case with a synchronous codec: every event is emitted before this returns. */
export function runSync(c: FeedCase, makeCodec: CodecFactory = syncCodecFactory): Observation {
  const run = startRun(c, makeCodec);
  const chunks = splitChunks(c.input, c.chunks);
  for (let i = 0; i < chunks.length; i++) if (!feed(run, chunks[i]!, i)) break;
  return endRun(run);
}

/**
 * Feed a case with a codec that may call back later (DeflateCodec): optionally yield to the event
 * loop between chunks, then wait until the Connection is neither paused on the codec nor open
 * with work left. Rejects if it does not settle within `timeoutMs`.
 */
export async function runAsync(
  c: FeedCase,
  makeCodec: CodecFactory,
  options: { yieldBetweenChunks?: boolean; timeoutMs?: number } = {},
): Promise<Observation> {
  const run = startRun(c, makeCodec);
  const chunks = splitChunks(c.input, c.chunks);
  for (let i = 0; i < chunks.length; i++) {
    if (!feed(run, chunks[i]!, i)) break;
    if (options.yieldBetweenChunks) await settle(run.conn, options.timeoutMs ?? 5000);
  }
  await settle(run.conn, options.timeoutMs ?? 5000);
  return endRun(run);
}

/** Resolve once `conn` no longer waits on its codec (or is closed). */
export async function settle(conn: Connection, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  // One extra turn even when not paused: a codec callback may still be on its way.
  do {
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (Date.now() > deadline) throw new Error(`connection did not settle in ${timeoutMs} ms`);
  } while (conn.isReceivePaused && conn.state !== ReadyState.CLOSED);
}

// ---- decoding what a Connection wrote -----------------------------------------------------------

export interface WireFrame {
  readonly fin: boolean;
  readonly rsv: number;
  readonly opcode: number;
  readonly masked: boolean;
  readonly payload: Uint8Array;
}

/** Decode a byte string that must be a whole number of frames; a string describes what is wrong. */
export function decodeFrames(bytes: Uint8Array): WireFrame[] | string {
  const frames: WireFrame[] = [];
  let p = 0;
  while (p < bytes.length) {
    if (bytes.length - p < 2) return `truncated header at ${p}`;
    const b0 = bytes[p]!;
    const b1 = bytes[p + 1]!;
    let length = b1 & 0x7f;
    let q = p + 2;
    if (length === 126) {
      if (bytes.length - q < 2) return `truncated 16-bit length at ${p}`;
      length = (bytes[q]! << 8) | bytes[q + 1]!;
      if (length < 126) return `non-minimal 16-bit length ${length} at ${p}`;
      q += 2;
    } else if (length === 127) {
      if (bytes.length - q < 8) return `truncated 64-bit length at ${p}`;
      const big = Buffer.from(bytes.subarray(q, q + 8)).readBigUInt64BE(0);
      if (big > BigInt(Number.MAX_SAFE_INTEGER)) return `64-bit length ${big} at ${p}`;
      length = Number(big);
      if (length < 65536) return `non-minimal 64-bit length ${length} at ${p}`;
      q += 8;
    }
    const masked = (b1 & 0x80) !== 0;
    let key: Uint8Array | null = null;
    if (masked) {
      if (bytes.length - q < 4) return `truncated mask at ${p}`;
      key = bytes.subarray(q, q + 4);
      q += 4;
    }
    if (bytes.length - q < length) return `truncated payload at ${p}`;
    const payload = bytes.slice(q, q + length);
    if (key !== null) for (let i = 0; i < payload.length; i++) payload[i]! ^= key[i & 3]!;
    frames.push({ fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 7, opcode: b0 & 0x0f, masked, payload });
    p = q + length;
  }
  return frames;
}

// ---- the invariants -----------------------------------------------------------------------------

function isUtf8(bytes: Uint8Array): boolean {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

function shortJson(value: unknown): string {
  const s = JSON.stringify(value);
  return s.length > 200 ? `${s.slice(0, 200)}…` : s;
}

/**
 * The invariants of a Connection fed arbitrary bytes (see the file comment), for one observation.
 * Returns a description of each violation; [] when all hold.
 */
export function checkObservation(c: FeedCase, obs: Observation): string[] {
  const v: string[] = [];
  const limits = resolveCaseLimits(c.limits);
  if (obs.thrown !== undefined) v.push(`receiveData threw: ${describeError(obs.thrown)}`);
  v.push(...obs.anomalies);

  const terminal = obs.events.findIndex((e) => e.type === "error" || e.type === "close");
  if (terminal >= 0 && terminal < obs.events.length - 1) {
    v.push(
      `event after ${obs.events[terminal]!.type}: ${shortJson(obs.events.slice(terminal + 1))}`,
    );
  }
  for (const e of obs.events) {
    if (e.type === "error" && !ALLOWED_FAILURE_CODES.has(e.closeCode)) {
      v.push(`error ${e.code} with close code ${e.closeCode}, not 1002/1007/1008/1009`);
    }
    if (e.type === "message") {
      const bytes = fromHex(e.data);
      if (bytes.length > limits.maxMessageBytes) {
        v.push(
          `message of ${bytes.length} bytes exceeds maxMessageBytes ${limits.maxMessageBytes}`,
        );
      }
      if (!e.binary && !isUtf8(bytes)) v.push(`text message is not valid UTF-8: ${e.data}`);
    }
    if ((e.type === "ping" || e.type === "pong") && e.data.length > 250) {
      v.push(`${e.type} payload over 125 bytes`);
    }
  }

  // Writes, grouped by the event they precede (a Pong before its onPing, a Close before its
  // onCloseFrame / onError); the group after the last event must be empty.
  const groups: Uint8Array[][] = Array.from({ length: obs.events.length + 1 }, () => []);
  for (const w of obs.writes) {
    const g = groups[w.at];
    if (g === undefined) v.push(`write tagged with event ${w.at} of ${obs.events.length}`);
    else g.push(w.bytes);
  }
  const expectMasked = c.role === "client";
  for (let i = 0; i < groups.length; i++) {
    const bytes = concatBytes(groups[i]!);
    const e = obs.events[i];
    const where = e === undefined ? "after the last event" : `before event ${i} (${e.type})`;
    const frames = decodeFrames(bytes);
    if (typeof frames === "string") {
      v.push(`written bytes ${where} are not frames: ${frames}: ${toHex(bytes)}`);
      continue;
    }
    const owed = e?.type === "ping" || e?.type === "close" || e?.type === "error" ? 1 : 0;
    if (frames.length !== owed) {
      v.push(`${frames.length} frame(s) written ${where}, expected ${owed}: ${toHex(bytes)}`);
      continue;
    }
    const f = frames[0];
    if (f === undefined || e === undefined) continue;
    if (!f.fin || f.rsv !== 0 || f.masked !== expectMasked) {
      v.push(`frame written ${where} has fin=${f.fin} rsv=${f.rsv} masked=${f.masked}`);
    }
    if (e.type === "ping") {
      if (f.opcode !== 0xa || toHex(f.payload) !== e.data) {
        v.push(`reply to ping ${e.data} is opcode ${f.opcode} payload ${toHex(f.payload)}`);
      }
    } else {
      if (f.opcode !== 0x8) {
        v.push(`frame written ${where} has opcode ${f.opcode}, expected a Close`);
        continue;
      }
      const p = f.payload;
      const code = p.length >= 2 ? (p[0]! << 8) | p[1]! : 1005;
      if (e.type === "close") {
        // §5.5.1: the reply echoes the status code; echoing the reason too is allowed.
        const code = toHex(new Uint8Array([e.code >> 8, e.code & 0xff]));
        const echo = code + toHex(new TextEncoder().encode(e.reason));
        const ok = e.code === 1005 ? p.length === 0 : toHex(p) === code || toHex(p) === echo;
        if (!ok) v.push(`Close reply ${toHex(p)} does not echo code ${e.code}`);
      } else if (e.type === "error") {
        if (p.length < 2 || code !== e.closeCode) {
          v.push(`Close after ${e.code} carries ${toHex(p)}, expected code ${e.closeCode}`);
        }
        if (p.length > 125 || !isUtf8(p.subarray(2))) v.push(`bad Close reason ${toHex(p)}`);
      }
    }
  }

  // State and closeStatus.
  const last = terminal >= 0 ? obs.events[terminal] : undefined;
  if (obs.thrown === undefined) {
    const want = last === undefined ? ReadyState.OPEN : ReadyState.CLOSED;
    if (obs.state !== want) v.push(`state ${obs.state} after ${last?.type ?? "no terminal"}`);
    if (last?.type === "error") {
      const s = obs.closeStatus;
      if (s.code !== last.closeCode || s.wasClean) {
        v.push(`closeStatus ${shortJson(s)} after error with close code ${last.closeCode}`);
      }
    }
    if (last?.type === "close") {
      const s = obs.closeStatus;
      if (s.code !== last.code || s.reason !== last.reason || !s.wasClean) {
        v.push(`closeStatus ${shortJson(s)} after Close ${last.code}`);
      }
    }
  }
  return v;
}

/** Differences between two observations of the same input (events and written bytes). */
export function compareObservations(label: string, a: Observation, b: Observation): string[] {
  const v: string[] = [];
  const diff = firstDifference(a.events, b.events);
  if (diff !== null) v.push(`${label}: events differ at ${diff}`);
  const wa = toHex(concatBytes(a.writes.map((w) => w.bytes)));
  const wb = toHex(concatBytes(b.writes.map((w) => w.bytes)));
  if (wa !== wb)
    v.push(`${label}: written bytes differ: ${wa.slice(0, 120)} vs ${wb.slice(0, 120)}`);
  return v;
}

/** A description of the first index where two event lists differ, or null. */
export function firstDifference(
  a: readonly HarnessEvent[],
  b: readonly HarnessEvent[],
): string | null {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i] === undefined ? "(none)" : JSON.stringify(a[i]);
    const y = b[i] === undefined ? "(none)" : JSON.stringify(b[i]);
    if (x !== y) {
      const cut = (s: string): string => (s.length > 160 ? `${s.slice(0, 160)}…` : s);
      return `#${i}: ${cut(x)} vs ${cut(y)}`;
    }
  }
  return null;
}

export interface CaseResult {
  readonly violations: string[];
  readonly observation: Observation;
  readonly reference: HarnessEvent[];
}

/**
 * Everything for one case with the synchronous codec: the invariants of the chunked run, the
 * chunked run against the whole run, and both against the reference decoder.
 */
export function checkCase(c: FeedCase): CaseResult {
  const obs = runSync(c);
  const violations = checkObservation(c, obs);
  if (c.chunks.length > 0) {
    violations.push(...compareObservations("chunked vs whole", obs, runSync({ ...c, chunks: [] })));
  }
  let reference: HarnessEvent[] = [];
  try {
    reference = referenceEvents(c);
    const diff = firstDifference(obs.events, reference);
    if (diff !== null) violations.push(`connection vs reference: events differ at ${diff}`);
  } catch (error) {
    violations.push(`reference decoder threw: ${describeError(error)}`);
  }
  return { violations, observation: obs, reference };
}

// ---- the reference decoder ----------------------------------------------------------------------

function validWireCloseCode(code: number): boolean {
  return (
    (code >= 1000 && code <= 1003) ||
    (code >= 1007 && code <= 1014) ||
    (code >= 3000 && code <= 4999)
  );
}

/**
 * The events a Connection must emit for the whole of `c.input`, computed without the library's
 * parser or UTF-8 validator: whole-buffer, frame by frame, with TextDecoder (fatal, streaming) as the
 * UTF-8 oracle. Header rules are applied in the documented order (docs/protocol-core.md); a frame
 * whose header is incomplete produces nothing; a frame whose payload is incomplete produces nothing
 * except that uncompressed text is validated as far as it goes (fail-fast, RFC 6455 §8.1).
 */
export function referenceEvents(c: FeedCase): HarnessEvent[] {
  const limits = resolveCaseLimits(c.limits);
  const max = limits.maxMessageBytes;
  const codec = c.codec === null ? null : new SyncInflateCodec(c.codec);
  const bytes = c.input;
  const expectMask = c.role === "server";
  const events: HarnessEvent[] = [];
  const fail = (code: string, closeCode: number): HarnessEvent[] => {
    events.push({ type: "error", code, closeCode });
    return events;
  };

  let inMessage = false;
  let binary = false;
  let compressed = false;
  let fragments = 0;
  let wireBytes = 0;
  let size = 0;
  let parts: Uint8Array[] = [];
  let utf8 = new TextDecoder("utf-8", { fatal: true });
  const utf8Push = (data: Uint8Array): boolean => {
    try {
      utf8.decode(data, { stream: true });
      return true;
    } catch {
      return false;
    }
  };
  const utf8End = (): boolean => {
    try {
      utf8.decode();
      return true;
    } catch {
      return false;
    }
  };

  let pos = 0;
  for (;;) {
    if (bytes.length - pos < 2) return events;
    const b0 = bytes[pos]!;
    const b1 = bytes[pos + 1]!;
    const len7 = b1 & 0x7f;
    const masked = (b1 & 0x80) !== 0;
    const headerLength = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (masked ? 4 : 0);
    if (bytes.length - pos < headerLength) return events;
    const fin = (b0 & 0x80) !== 0;
    const rsv1 = (b0 & 0x40) !== 0;
    const opcode = b0 & 0x0f;
    const control = opcode >= 0x8;
    if ((b0 & 0x30) !== 0) return fail("WS_ERR_INVALID_RSV", 1002);
    if (rsv1 && codec === null) return fail("WS_ERR_INVALID_RSV", 1002);
    if (![0x0, 0x1, 0x2, 0x8, 0x9, 0xa].includes(opcode))
      return fail("WS_ERR_INVALID_OPCODE", 1002);
    if (control) {
      if (!fin) return fail("WS_ERR_CONTROL_NOT_FIN", 1002);
      if (rsv1) return fail("WS_ERR_INVALID_RSV", 1002);
      if (len7 > 125) return fail("WS_ERR_CONTROL_TOO_LONG", 1002);
      if (opcode === 0x8 && len7 === 1) return fail("WS_ERR_INVALID_CLOSE_PAYLOAD", 1002);
    } else if (opcode === 0x0 && rsv1) {
      return fail("WS_ERR_INVALID_RSV", 1002);
    }
    if (masked !== expectMask) {
      return fail(expectMask ? "WS_ERR_EXPECTED_MASK" : "WS_ERR_UNEXPECTED_MASK", 1002);
    }
    let length = len7;
    if (len7 === 126) {
      length = Buffer.from(bytes.subarray(pos + 2, pos + 4)).readUInt16BE(0);
    } else if (len7 === 127) {
      const big = Buffer.from(bytes.subarray(pos + 2, pos + 10)).readBigUInt64BE(0);
      if (big >= 1n << 63n) return fail("WS_ERR_INVALID_LENGTH", 1002);
      if (big > BigInt(Number.MAX_SAFE_INTEGER)) return fail("WS_ERR_MESSAGE_TOO_BIG", 1009);
      length = Number(big);
    }
    if (!control) {
      if (opcode === 0x0 && !inMessage) return fail("WS_ERR_UNEXPECTED_CONTINUATION", 1002);
      if (opcode !== 0x0 && inMessage) return fail("WS_ERR_EXPECTED_CONTINUATION", 1002);
      if (opcode !== 0x0) {
        inMessage = true;
        binary = opcode === 0x2;
        compressed = rsv1;
        fragments = 0;
        wireBytes = 0;
        size = 0;
        parts = [];
        utf8 = new TextDecoder("utf-8", { fatal: true });
      }
      fragments++;
      if (fragments > limits.maxFragments) return fail("WS_ERR_TOO_MANY_FRAGMENTS", 1008);
      // Uncompressed: the cumulative size is bounded. Compressed: each frame's compressed bytes
      // are bounded (max + max/1024 + 64, stored blocks) and the inflated output by max.
      wireBytes += length;
      if (compressed ? length > max + Math.floor(max / 1024) + 64 : wireBytes > max) {
        return fail("WS_ERR_MESSAGE_TOO_BIG", 1009);
      }
    }
    const start = pos + headerLength;
    const available = Math.min(length, bytes.length - start);
    const payload = bytes.slice(start, start + available);
    if (masked) {
      const key = bytes.subarray(pos + headerLength - 4, pos + headerLength);
      for (let i = 0; i < payload.length; i++) payload[i]! ^= key[i & 3]!;
    }
    if (available < length) {
      // Incomplete frame: only uncompressed text is checked as it arrives.
      if (!control && !compressed && !binary && !utf8Push(payload)) {
        return fail("WS_ERR_INVALID_UTF8", 1007);
      }
      return events;
    }
    pos = start + length;

    if (opcode === 0x9) {
      events.push({ type: "ping", data: toHex(payload) });
      continue;
    }
    if (opcode === 0xa) {
      events.push({ type: "pong", data: toHex(payload) });
      continue;
    }
    if (opcode === 0x8) {
      if (payload.length === 0) {
        events.push({ type: "close", code: 1005, reason: "" });
        return events;
      }
      const code = (payload[0]! << 8) | payload[1]!;
      if (!validWireCloseCode(code)) return fail("WS_ERR_INVALID_CLOSE_CODE", 1002);
      let reason: string;
      try {
        reason = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(
          payload.subarray(2),
        );
      } catch {
        return fail("WS_ERR_INVALID_UTF8", 1007);
      }
      events.push({ type: "close", code, reason });
      return events;
    }

    let data: Uint8Array = payload;
    if (compressed) {
      let result: { error: Error | null; out: Uint8Array | null } | null = null;
      codec!.decompress(payload, fin, max - size, (error, out) => {
        result = { error, out };
      });
      const r = result as { error: Error | null; out: Uint8Array | null } | null;
      if (r === null) throw new Error("SyncInflateCodec did not call back synchronously");
      if (r.error !== null || r.out === null) {
        return r.error instanceof CodecLimitError
          ? fail("WS_ERR_MESSAGE_TOO_BIG", 1009)
          : fail("WS_ERR_INFLATE_FAILED", 1007);
      }
      data = r.out;
      size += data.length;
      if (size > max) return fail("WS_ERR_MESSAGE_TOO_BIG", 1009);
    }
    if (!binary && !utf8Push(data)) return fail("WS_ERR_INVALID_UTF8", 1007);
    parts.push(data);
    if (fin) {
      if (!binary && !utf8End()) return fail("WS_ERR_INVALID_UTF8", 1007);
      events.push({ type: "message", binary, data: toHex(concatBytes(parts)) });
      inMessage = false;
      parts = [];
    }
  }
}

// ---- corpus files -------------------------------------------------------------------------------

/** The JSON form of a case in test/fixtures/corpus/ (bytes as hex). */
export interface CorpusEntry {
  readonly description?: string;
  readonly role: Role;
  readonly limits: CaseLimits | null;
  readonly codec: InflateSpec | null;
  readonly input: string;
  readonly chunks: readonly number[];
  /** Seed files: the exact events expected. */
  readonly expect?: readonly HarnessEvent[];
  /** Fuzz findings: what went wrong when it was found, and how to regenerate it. */
  readonly violations?: readonly string[];
  readonly seed?: number;
  readonly iteration?: number;
}

export function caseToEntry(c: FeedCase): CorpusEntry {
  return {
    role: c.role,
    limits: c.limits,
    codec: c.codec,
    input: toHex(c.input),
    chunks: [...c.chunks],
  };
}

/** Parse and validate a corpus file's JSON; throws with a clear message when malformed. */
export function entryToCase(value: unknown): FeedCase {
  const o = value as Partial<CorpusEntry> | null;
  if (typeof o !== "object" || o === null) throw new Error("corpus entry must be an object");
  if (o.role !== "server" && o.role !== "client") throw new Error("role must be server or client");
  if (typeof o.input !== "string") throw new Error("input must be a hex string");
  if (!Array.isArray(o.chunks) || !o.chunks.every((n) => Number.isInteger(n) && n >= 0)) {
    throw new Error("chunks must be an array of non-negative integers");
  }
  const limits = o.limits ?? null;
  if (
    limits !== null &&
    (!Number.isInteger(limits.maxMessageBytes) || !Number.isInteger(limits.maxFragments))
  ) {
    throw new Error("limits must be null or { maxMessageBytes, maxFragments }");
  }
  const codec = o.codec ?? null;
  if (
    codec !== null &&
    (!Number.isInteger(codec.windowBits) ||
      codec.windowBits < 8 ||
      codec.windowBits > 15 ||
      typeof codec.noContextTakeover !== "boolean")
  ) {
    throw new Error("codec must be null or { windowBits: 8..15, noContextTakeover }");
  }
  return { role: o.role, limits, codec, input: fromHex(o.input), chunks: o.chunks };
}
