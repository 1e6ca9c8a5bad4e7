/**
 * Property tests of the sans-I/O Connection, both roles (fast-check):
 *
 * (a) segmentation invariance: a stream of valid frames gives the same events and written bytes
 *     whatever the chunking, and those events are the ones the frame model predicts;
 * (b) round trip: what one Connection sends, the other receives identically (data, binary flag,
 *     order), fragmented or not, plain or with permessage-deflate (two DeflateCodecs);
 * (c) total function: arbitrary and mutated input never makes receiveData throw, ends in at most
 *     one ProtocolError (1002/1007/1008/1009) followed by nothing but exactly one Close frame with
 *     that code, and agrees with the reference decoder (test/fuzz/harness.ts);
 * (d) UTF-8 fail-fast: invalid text in fragment k fails while fragment k's frame is being fed, in
 *     the very chunk holding the first impossible byte.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as zlib from "node:zlib";
import fc from "fast-check";
import { DeflateCodec, type DeflateCodecOptions } from "../../src/node/deflate-codec.js";
import { Connection, type ConnectionHandler } from "../../src/protocol/connection.js";
import { encodeFrame } from "../../src/protocol/frame.js";
import {
  type CaseLimits,
  checkCase,
  checkObservation,
  compareObservations,
  concatBytes,
  type FeedCase,
  firstDifference,
  type HarnessEvent,
  type InflateSpec,
  prng,
  type Role,
  referenceEvents,
  runAsync,
  runSync,
  settle,
  toHex,
} from "../fuzz/harness.js";

const encoder = new TextEncoder();

// ---- a model of valid frame streams -------------------------------------------------------------

interface Control {
  readonly opcode: 0x9 | 0xa;
  readonly data: Uint8Array;
}

interface Message {
  readonly binary: boolean;
  readonly data: Uint8Array;
  /** Fragment boundaries (sorted offsets into data; equal offsets make empty fragments). */
  readonly cuts: readonly number[];
  /** Control frames sent after fragment i (index i), interleaved in the message. */
  readonly between: readonly (Control | null)[];
  /** Compress this message (only when the receiver has a codec). */
  readonly deflate: boolean;
}

type Item =
  | { readonly kind: "message"; readonly m: Message }
  | { readonly kind: "control"; readonly c: Control };

interface CloseSpec {
  readonly code: number | null;
  readonly reason: string;
}

interface Stream {
  readonly items: readonly Item[];
  readonly close: CloseSpec | null;
  readonly maskSeed: number;
}

/** Big payloads (16-bit and 64-bit lengths) are made from a seed: cheap to generate and shrink. */
function seededBytes(seed: number, length: number): Uint8Array {
  const next = prng(seed);
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = next() & 0xff;
  return out;
}

const textArb: fc.Arbitrary<Uint8Array> = fc
  .oneof(
    { weight: 4, arbitrary: fc.string({ unit: "binary", maxLength: 40 }) },
    { weight: 2, arbitrary: fc.string({ unit: "grapheme", maxLength: 40 }) },
    { weight: 1, arbitrary: fc.string({ maxLength: 300 }) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.constantFrom("é", "€", "😀", "a"), fc.integer({ min: 100, max: 25_000 }))
        .map(([s, n]) => s.repeat(n)),
    },
  )
  .map((s) => encoder.encode(s));

const binaryArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 6, arbitrary: fc.uint8Array({ maxLength: 200 }) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.integer(), fc.constantFrom(125, 126, 127, 65535, 65536, 70_000))
      .map(([seed, n]) => seededBytes(seed, n)),
  },
);

const controlArb: fc.Arbitrary<Control> = fc.record({
  opcode: fc.constantFrom(0x9 as const, 0xa as const),
  data: fc.uint8Array({ maxLength: 125 }),
});

const messageArb: fc.Arbitrary<Message> = fc
  .record({
    binary: fc.boolean(),
    text: textArb,
    bytes: binaryArb,
    cuts: fc.array(fc.nat(), { maxLength: 5 }),
    between: fc.array(fc.option(controlArb, { freq: 3 }), { maxLength: 6 }),
    deflate: fc.boolean(),
  })
  .map(({ binary, text, bytes, cuts, between, deflate }) => ({
    binary,
    data: binary ? bytes : text,
    cuts,
    between,
    deflate,
  }));

const closeArb: fc.Arbitrary<CloseSpec> = fc.oneof(
  fc.constant({ code: null, reason: "" }),
  fc.record({
    code: fc.oneof(
      fc.constantFrom(1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1014),
      fc.integer({ min: 3000, max: 4999 }),
    ),
    reason: fc.string({ unit: "binary", maxLength: 30 }),
  }),
);

const streamArb: fc.Arbitrary<Stream> = fc.record({
  items: fc.array(
    fc.oneof(
      { weight: 3, arbitrary: messageArb.map((m) => ({ kind: "message" as const, m })) },
      { weight: 1, arbitrary: controlArb.map((c) => ({ kind: "control" as const, c })) },
    ),
    { maxLength: 6 },
  ),
  close: fc.option(closeArb, { freq: 3 }),
  maskSeed: fc.integer(),
});

function fragmentsOf(data: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const offsets = cuts.map((c) => c % (data.length + 1)).sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let at = 0;
  for (const o of offsets) {
    out.push(data.subarray(at, o));
    at = o;
  }
  out.push(data.subarray(at));
  return out;
}

/** One-shot raw deflate with the final `00 00 ff ff` removed (valid for every parameter set). */
function deflateMessage(data: Uint8Array, spec: InflateSpec): Uint8Array {
  const out = zlib.deflateRawSync(data, {
    finishFlush: zlib.constants.Z_SYNC_FLUSH,
    windowBits: Math.max(9, spec.windowBits),
  });
  return out.subarray(0, out.length - 4);
}

function closePayload(close: CloseSpec): Uint8Array {
  if (close.code === null) return new Uint8Array(0);
  return concatBytes([
    new Uint8Array([close.code >> 8, close.code & 0xff]),
    encoder.encode(close.reason),
  ]);
}

/**
 * Encode a stream for a receiver of `role` (masked frames for a server), and the events the
 * receiver must report. Compressed messages only when `codec` is given.
 */
function encodeStream(
  s: Stream,
  role: Role,
  codec: InflateSpec | null,
): { bytes: Uint8Array; frames: Uint8Array[]; expected: HarnessEvent[] } {
  const nextMask = prng(s.maskSeed);
  const frames: Uint8Array[] = [];
  const expected: HarnessEvent[] = [];
  const frame = (opcode: number, payload: Uint8Array, fin = true, rsv1 = false): void => {
    const mask =
      role === "server"
        ? new Uint8Array([
            nextMask() & 0xff,
            nextMask() & 0xff,
            nextMask() & 0xff,
            nextMask() & 0xff,
          ])
        : undefined;
    frames.push(encodeFrame({ opcode, payload, fin, rsv1, mask }));
  };
  const control = (c: Control): void => {
    frame(c.opcode, c.data);
    expected.push({ type: c.opcode === 0x9 ? "ping" : "pong", data: toHex(c.data) });
  };
  for (const item of s.items) {
    if (item.kind === "control") {
      control(item.c);
      continue;
    }
    const m = item.m;
    const deflate = codec !== null && m.deflate;
    const pieces = fragmentsOf(deflate ? deflateMessage(m.data, codec) : m.data, m.cuts);
    pieces.forEach((piece, k) => {
      if (k > 0) {
        const c = m.between[k - 1];
        if (c) control(c);
      }
      frame(
        k === 0 ? (m.binary ? 0x2 : 0x1) : 0x0,
        piece,
        k === pieces.length - 1,
        deflate && k === 0,
      );
    });
    expected.push({ type: "message", binary: m.binary, data: toHex(m.data) });
  }
  if (s.close !== null) {
    frame(0x8, closePayload(s.close));
    expected.push({ type: "close", code: s.close.code ?? 1005, reason: s.close.reason });
  }
  return { bytes: concatBytes(frames), frames, expected };
}

// ---- chunkings ----------------------------------------------------------------------------------

type Chunking =
  | { readonly kind: "whole" }
  | { readonly kind: "bytes" }
  | { readonly kind: "sizes"; readonly sizes: readonly number[] }
  | { readonly kind: "cuts"; readonly at: readonly number[] };

const chunkingArb: fc.Arbitrary<Chunking> = fc.oneof(
  fc.constant({ kind: "whole" as const }),
  fc.constant({ kind: "bytes" as const }),
  fc.record({
    kind: fc.constant("sizes" as const),
    sizes: fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 60 }),
  }),
  fc.record({
    kind: fc.constant("cuts" as const),
    at: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 10 }),
  }),
);

/** Chunk sizes (harness FeedCase.chunks) for a stream of `length` bytes. */
function chunkSizes(ch: Chunking, length: number): number[] {
  switch (ch.kind) {
    case "whole":
      return [];
    case "bytes":
      // One byte at a time for short streams; long ones in 7-byte steps (still splits every header).
      return new Array<number>(length <= 4096 ? length : Math.ceil(length / 7)).fill(
        length <= 4096 ? 1 : 7,
      );
    case "sizes": {
      // Repeat the pattern over the whole stream (bounded: zero-only patterns end at once).
      const out: number[] = [];
      let total = 0;
      for (let i = 0; total < length && i < 100_000; i++) {
        const n = ch.sizes[i % ch.sizes.length]!;
        out.push(n);
        total += n;
      }
      return out;
    }
    case "cuts": {
      const points = ch.at.map((x) => Math.floor(x * length)).sort((a, b) => a - b);
      let prev = 0;
      return points.map((p) => {
        const n = p - prev;
        prev = p;
        return n;
      });
    }
  }
}

const roleArb = fc.constantFrom<Role>("server", "client");
const inflateSpecArb: fc.Arbitrary<InflateSpec> = fc.record({
  windowBits: fc.integer({ min: 8, max: 15 }),
  noContextTakeover: fc.boolean(),
});

function assertClean(violations: readonly string[]): void {
  assert.deepEqual(violations, [], violations.join("\n"));
}

// ---- (a) segmentation invariance ----------------------------------------------------------------

describe("Connection property (a): segmentation invariance", () => {
  for (const role of ["server", "client"] as const) {
    it(`${role}: any chunking gives the events and bytes of the whole stream, as modelled`, () => {
      fc.assert(
        fc.property(
          streamArb,
          chunkingArb,
          fc.option(inflateSpecArb, { freq: 4 }),
          (s, ch, codec) => {
            const { bytes, expected } = encodeStream(s, role, codec);
            const c: FeedCase = {
              role,
              limits: null,
              codec,
              input: bytes,
              chunks: chunkSizes(ch, bytes.length),
            };
            const chunked = runSync(c);
            const whole = runSync({ ...c, chunks: [] });
            assertClean(checkObservation(c, chunked));
            assertClean(compareObservations("chunked vs whole", chunked, whole));
            assert.equal(firstDifference(chunked.events, expected), null);
          },
        ),
        { numRuns: 300 },
      );
    });
  }
});

// ---- (b) round trip -----------------------------------------------------------------------------

interface Outgoing {
  readonly binary: boolean;
  readonly data: Uint8Array;
  readonly cuts: readonly number[];
  readonly compress: boolean;
}

const outgoingArb: fc.Arbitrary<Outgoing> = fc
  .record({
    binary: fc.boolean(),
    text: textArb,
    bytes: binaryArb,
    cuts: fc.array(fc.nat(), { maxLength: 4 }),
    compress: fc.oneof(
      { weight: 4, arbitrary: fc.constant(true) },
      { weight: 1, arbitrary: fc.constant(false) },
    ),
  })
  .map(({ binary, text, bytes, cuts, compress }) => ({
    binary,
    data: binary ? bytes : text,
    cuts,
    compress,
  }));

function sendAll(conn: Connection, messages: readonly Outgoing[]): void {
  for (const m of messages) {
    const pieces = fragmentsOf(m.data, m.cuts);
    pieces.forEach((piece, k) => {
      conn.send(piece, m.binary, { fin: k === pieces.length - 1, compress: m.compress });
    });
  }
}

function expectedOf(messages: readonly Outgoing[]): HarnessEvent[] {
  return messages.map((m) => ({ type: "message", binary: m.binary, data: toHex(m.data) }));
}

interface Endpoint {
  readonly conn: Connection;
  readonly events: HarnessEvent[];
}

/**
 * Two connected Connections. Writes of one are fed to the other (fresh copies) asynchronously, in
 * pieces whose sizes come from `chunkSeed`.
 */
function connectPair(
  codecs: { client: DeflateCodec; server: DeflateCodec } | null,
  chunkSeed: number,
): { client: Endpoint; server: Endpoint } {
  const nextSize = prng(chunkSeed);
  const make = (role: Role, peer: () => Connection): Endpoint => {
    const events: HarnessEvent[] = [];
    const handler: ConnectionHandler = {
      onMessage: (data, binary) => events.push({ type: "message", binary, data: toHex(data) }),
      onPing: (data) => events.push({ type: "ping", data: toHex(data) }),
      onPong: (data) => events.push({ type: "pong", data: toHex(data) }),
      onCloseFrame: (code, reason) => events.push({ type: "close", code, reason }),
      onError: (e) => events.push({ type: "error", code: e.code, closeCode: e.closeCode }),
      onWrite: (chunk) => {
        const copy = chunk.slice();
        setImmediate(() => {
          for (let at = 0; at < copy.length; ) {
            const n = 1 + (nextSize() % 3 === 0 ? nextSize() % 9 : nextSize() % (copy.length + 1));
            peer().receiveData(copy.slice(at, at + n));
            at += n;
          }
        });
      },
    };
    const conn = new Connection({ role }, handler);
    conn.open(codecs === null ? null : codecs[role]);
    return { conn, events };
  };
  const pair: { client: Endpoint; server: Endpoint } = {
    client: make("client", () => pair.server.conn),
    server: make("server", () => pair.client.conn),
  };
  return pair;
}

async function until(done: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms`);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

const deflateParamsArb = fc.record({
  serverNoContextTakeover: fc.boolean(),
  clientNoContextTakeover: fc.boolean(),
  serverMaxWindowBits: fc.integer({ min: 8, max: 15 }),
  clientMaxWindowBits: fc.integer({ min: 8, max: 15 }),
});

async function roundTrip(
  toServer: readonly Outgoing[],
  toClient: readonly Outgoing[],
  params: Omit<DeflateCodecOptions, "role"> | null,
  chunkSeed: number,
): Promise<void> {
  const codecs =
    params === null
      ? null
      : {
          client: new DeflateCodec({ ...params, role: "client" }),
          server: new DeflateCodec({ ...params, role: "server" }),
        };
  try {
    const { client, server } = connectPair(codecs, chunkSeed);
    sendAll(client.conn, toServer);
    sendAll(server.conn, toClient);
    const failed = (): boolean =>
      [...client.events, ...server.events].some((e) => e.type === "error");
    await until(
      () =>
        failed() ||
        (server.events.length >= toServer.length && client.events.length >= toClient.length),
    );
    assert.deepEqual(server.events, expectedOf(toServer), "client → server");
    assert.deepEqual(client.events, expectedOf(toClient), "server → client");
  } finally {
    codecs?.client.close();
    codecs?.server.close();
  }
}

describe("Connection property (b): round trip", () => {
  const messages = fc.array(outgoingArb, { maxLength: 6 });

  it("client ⇄ server without compression, fragmented or not", async () => {
    await fc.assert(
      fc.asyncProperty(messages, messages, fc.integer(), (a, b, seed) =>
        roundTrip(a, b, null, seed),
      ),
      { numRuns: 200 },
    );
  });

  it("client ⇄ server with permessage-deflate (two DeflateCodecs, all parameter combinations)", async () => {
    await fc.assert(
      fc.asyncProperty(messages, messages, deflateParamsArb, fc.integer(), (a, b, params, seed) =>
        roundTrip(a, b, params, seed),
      ),
      { numRuns: 120 },
    );
  });
});

// ---- (c) total function -------------------------------------------------------------------------

const limitsArb: fc.Arbitrary<CaseLimits | null> = fc.option(
  fc.record({
    maxMessageBytes: fc.constantFrom(1, 2, 16, 125, 126, 1000, 65536),
    maxFragments: fc.constantFrom(1, 2, 3, 8, 100),
  }),
  { freq: 4, nil: null },
);

interface Mutation {
  readonly op: "flip" | "set" | "insert" | "delete" | "truncate";
  readonly at: number;
  readonly value: number;
}

const mutationArb: fc.Arbitrary<Mutation> = fc.record({
  op: fc.constantFrom("flip", "set", "insert", "delete", "truncate"),
  at: fc.nat(),
  value: fc.integer({ min: 0, max: 255 }),
});

function applyMutations(input: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let b: Uint8Array = input.slice();
  for (const m of mutations) {
    const at = m.at % (b.length + 1);
    if (m.op === "flip" && at < b.length) b[at]! ^= 1 << (m.value & 7);
    else if (m.op === "set" && at < b.length) b[at] = m.value;
    else if (m.op === "insert")
      b = concatBytes([b.subarray(0, at), new Uint8Array([m.value]), b.subarray(at)]);
    else if (m.op === "delete")
      b = concatBytes([b.subarray(0, at), b.subarray(at + 1 + (m.value & 7))]);
    else if (m.op === "truncate") b = b.slice(0, at);
  }
  return b;
}

/** A case: arbitrary bytes, or a valid stream (compressed messages with a codec) with mutations. */
const caseArb: fc.Arbitrary<FeedCase> = fc
  .record({
    role: roleArb,
    limits: limitsArb,
    codec: fc.option(inflateSpecArb, { nil: null }),
    random: fc.uint8Array({ maxLength: 300 }),
    stream: streamArb,
    mutations: fc.array(mutationArb, { maxLength: 4 }),
    useRandom: fc.boolean(),
    chunking: chunkingArb,
  })
  .map(({ role, limits, codec, random, stream, mutations, useRandom, chunking }) => {
    const input = useRandom
      ? random
      : applyMutations(encodeStream(stream, role, codec).bytes, mutations);
    return { role, limits, codec, input, chunks: chunkSizes(chunking, input.length) };
  });

describe("Connection property (c): receiveData is a total function", () => {
  it("arbitrary and mutated input, sync codec: invariants, chunked = whole = reference decoder", () => {
    fc.assert(
      fc.property(caseArb, (c) => assertClean(checkCase(c).violations)),
      { numRuns: 2500 },
    );
  });

  it("with DeflateCodec (async callbacks): invariants, chunked = whole = reference", async () => {
    const deflateCase = caseArb.filter((c) => c.codec !== null);
    await fc.assert(
      fc.asyncProperty(deflateCase, fc.boolean(), async (c, yieldBetween) => {
        const makeCodec = (spec: InflateSpec, role: Role): DeflateCodec =>
          new DeflateCodec({
            role,
            serverNoContextTakeover: spec.noContextTakeover,
            clientNoContextTakeover: spec.noContextTakeover,
            serverMaxWindowBits: spec.windowBits,
            clientMaxWindowBits: spec.windowBits,
          });
        const chunked = await runAsync(c, makeCodec, { yieldBetweenChunks: yieldBetween });
        const whole = await runAsync({ ...c, chunks: [] }, makeCodec);
        assertClean(checkObservation(c, chunked));
        assertClean(compareObservations("chunked vs whole", chunked, whole));
        assert.equal(firstDifference(chunked.events, referenceEvents(c)), null);
      }),
      { numRuns: 200 },
    );
  });
});

// ---- (d) UTF-8 fail-fast across fragments -------------------------------------------------------

/**
 * Invalid sequences whose LAST byte is the first impossible one when they start at a code point
 * boundary (overlong, surrogate, above U+10FFFF, stray continuation, missing continuation, F5..FF).
 */
const INVALID: readonly (readonly number[])[] = [
  [0x80],
  [0xbf],
  [0xc0],
  [0xc1],
  [0xf5],
  [0xff],
  [0xe0, 0x80],
  [0xe0, 0x9f],
  [0xed, 0xa0],
  [0xed, 0xbf],
  [0xf0, 0x8f],
  [0xf4, 0x90],
  [0xc3, 0x41],
  [0xc3, 0xc3],
  [0xe2, 0x82, 0x41],
  [0xf0, 0x9f, 0x98, 0x20],
];

interface FailFast {
  readonly prefix: Uint8Array;
  readonly bad: readonly number[];
  readonly suffix: Uint8Array;
  readonly cuts: readonly number[];
  readonly pings: readonly boolean[];
}

const failFastArb: fc.Arbitrary<FailFast> = fc.record({
  prefix: fc.string({ unit: "binary", maxLength: 30 }).map((s) => encoder.encode(s)),
  bad: fc.constantFrom(...INVALID),
  suffix: fc.string({ unit: "binary", maxLength: 30 }).map((s) => encoder.encode(s)),
  cuts: fc.array(fc.nat(), { minLength: 1, maxLength: 6 }),
  pings: fc.array(fc.boolean(), { maxLength: 7 }),
});

/** The message, its fragments, the index of the first impossible byte and its fragment. */
function failFastMessage(f: FailFast): { fragments: Uint8Array[]; k: number; badIndex: number } {
  const data = concatBytes([f.prefix, new Uint8Array(f.bad), f.suffix]);
  const fragments = fragmentsOf(data, f.cuts);
  const badIndex = f.prefix.length + f.bad.length - 1;
  let start = 0;
  let k = 0;
  for (; k < fragments.length; k++) {
    const end = start + fragments[k]!.length;
    if (badIndex >= start && badIndex < end) break;
    start = end;
  }
  return { fragments, k, badIndex };
}

describe("Connection property (d): UTF-8 fails fast across fragments", () => {
  it("the error comes in the chunk of fragment k's frame that holds the first bad byte", () => {
    fc.assert(
      fc.property(failFastArb, roleArb, chunkingArb, fc.integer(), (f, role, ch, maskSeed) => {
        const { fragments, k, badIndex } = failFastMessage(f);
        const nextMask = prng(maskSeed);
        const mask = (): Uint8Array | undefined =>
          role === "server"
            ? new Uint8Array([nextMask(), nextMask(), nextMask(), nextMask()])
            : undefined;
        // Frames, each fed as its own run of chunks; frame k's split by the chunking.
        const chunks: number[] = [];
        let badChunk = -1;
        let badFrame = -1;
        const frames: Uint8Array[] = [];
        let offset = 0; // message offset of the current fragment
        fragments.forEach((piece, i) => {
          if (i > 0 && f.pings[i - 1]) {
            const ping = encodeFrame({ opcode: 0x9, payload: new Uint8Array([i]), mask: mask() });
            frames.push(ping);
            chunks.push(ping.length);
          }
          const frame = encodeFrame({
            opcode: i === 0 ? 0x1 : 0x0,
            payload: piece,
            fin: i === fragments.length - 1,
            mask: mask(),
          });
          frames.push(frame);
          if (i !== k) {
            chunks.push(frame.length);
          } else {
            badFrame = chunks.length;
            // Where the bad byte sits inside this frame.
            const inFrame = frame.length - piece.length + (badIndex - offset);
            let at = 0;
            for (const size of chunkSizes(ch, frame.length)) {
              if (at + size > frame.length) break;
              if (badChunk < 0 && inFrame < at + size) badChunk = chunks.length;
              chunks.push(size);
              at += size;
            }
            if (at < frame.length) {
              if (badChunk < 0) badChunk = chunks.length;
              chunks.push(frame.length - at);
            }
          }
          offset += piece.length;
        });
        const c: FeedCase = { role, limits: null, codec: null, input: concatBytes(frames), chunks };
        const obs = runSync(c);
        assertClean(checkObservation(c, obs));
        const errorAt = obs.events.findIndex((e) => e.type === "error");
        assert.ok(errorAt >= 0, "no error");
        assert.deepEqual(obs.events[errorAt], {
          type: "error",
          code: "WS_ERR_INVALID_UTF8",
          closeCode: 1007,
        });
        assert.ok(badFrame >= 0 && badChunk >= badFrame);
        assert.equal(
          obs.eventChunk[errorAt],
          badChunk,
          `error in chunk ${obs.eventChunk[errorAt]}`,
        );
        assert.ok(obs.events.every((e) => e.type !== "message"));
      }),
      { numRuns: 800 },
    );
  });

  it("with permessage-deflate: the error comes after inflating fragment k, not before", async () => {
    await fc.assert(
      fc.asyncProperty(failFastArb, deflateParamsArb, async (f, params) => {
        const { fragments, k } = failFastMessage(f);
        const sender = new DeflateCodec({ ...params, role: "client" });
        const receiver = new DeflateCodec({ ...params, role: "server" });
        try {
          // The frames as a client with DeflateCodec sends them: one compressed frame per fragment.
          const frames: Uint8Array[] = [];
          const client = new Connection(
            { role: "client" },
            {
              onMessage() {},
              onPing() {},
              onPong() {},
              onCloseFrame() {},
              onError() {},
              onWrite: (chunk) => frames.push(chunk.slice()),
            },
          );
          client.open(sender);
          fragments.forEach((piece, i) => {
            client.sendText(piece, { fin: i === fragments.length - 1 });
          });
          await until(() => frames.length === fragments.length);

          const events: HarnessEvent[] = [];
          const server = new Connection(
            { role: "server" },
            {
              onMessage: (data, binary) =>
                events.push({ type: "message", binary, data: toHex(data) }),
              onPing() {},
              onPong() {},
              onCloseFrame: (code, reason) => events.push({ type: "close", code, reason }),
              onError: (e) => events.push({ type: "error", code: e.code, closeCode: e.closeCode }),
              onWrite() {},
            },
          );
          server.open(receiver);
          for (let i = 0; i < frames.length; i++) {
            server.receiveData(frames[i]!.slice());
            await settle(server);
            if (i < k) assert.deepEqual(events, [], `error before fragment ${k} (at ${i})`);
            if (i === k) {
              assert.deepEqual(events, [
                { type: "error", code: "WS_ERR_INVALID_UTF8", closeCode: 1007 },
              ]);
            }
          }
          assert.equal(events.length, 1);
        } finally {
          sender.close();
          receiver.close();
        }
      }),
      { numRuns: 100 },
    );
  });
});

// ---- regressions found by these properties ----------------------------------------------------

describe("Connection: compressed messages within maxMessageBytes (regression)", () => {
  // Every non-final compressed fragment a compliant sender writes ends with a sync flush (an
  // empty stored block, 4-5 bytes), so bounding a compressed message's cumulative WIRE bytes by
  // the message limit refused valid messages sent in many fragments. Only each frame's compressed
  // bytes and the inflated output are bounded now.
  it("a 0-byte message in 18 compressed fragments is delivered with maxMessageBytes 16", () => {
    const input = Buffer.from(`4105000000ffff${"0005000000ffff".repeat(16)}8000`, "hex");
    const obs = runSync({
      role: "client",
      limits: { maxMessageBytes: 16, maxFragments: 100 },
      codec: { windowBits: 15, noContextTakeover: false },
      input: new Uint8Array(input),
      chunks: [],
    });
    assert.deepEqual(obs.events, [{ type: "message", binary: false, data: "" }]);
  });
});

describe("Connection: memory follows the bytes received (regression)", () => {
  // A 14-byte header of a non-FIN frame announcing 16 MiB used to make the connection allocate
  // 16 MiB before any payload byte arrived (50 such connections: 800 MB for 700 bytes received).
  it("a 14-byte header announcing 16 MiB allocates at most 1 MiB up front", () => {
    const sizes: number[] = [];
    const conn = new Connection(
      {
        role: "server",
        alloc: (n) => {
          sizes.push(n);
          return new Uint8Array(n);
        },
      },
      {
        onMessage() {},
        onPing() {},
        onPong() {},
        onCloseFrame() {},
        onError() {},
        onWrite() {},
      },
    );
    conn.open();
    // FIN clear, text, masked, 64-bit length 0x00ffffff (16 MiB - 1), mask key 01 02 03 04.
    conn.receiveData(Buffer.from("01ff0000000000ffffff01020304", "hex"));
    assert.ok(Math.max(0, ...sizes) <= 1 << 20, `allocated ${Math.max(...sizes)} bytes`);
  });
});
