/**
 * permessage-deflate round trips: compress a message as one side would, inflate it as the peer
 * would, sequentially (the next message starts when the previous one is back). Duplex's
 * DeflateCodec vs ws's PerMessageDeflate, both with context takeover and 15-bit windows.
 *
 * The codecs are driven directly, so ws's 1 KiB `threshold` (below which ws.send does not
 * compress at all) does not apply: every message is compressed by both.
 * Duplex compresses at zlib level 1 by default, ws at zlib's default level (6); the case also
 * runs ws at level 1 so the codecs are compared on equal work.
 */
import { DeflateCodec, type DeflateCodecOptions } from "../src/node/deflate-codec.js";
import { KiB, MiB, nonAsciiShare, sizeLabel, utf8Text } from "./data.js";
import { type CaseSpec, type Contender, spec } from "./harness.js";
import { PerMessageDeflate, type WsPerMessageDeflate } from "./ws-internals.js";

const SIZES = [125, 16 * KiB, 64 * KiB] as const;
const MAX_MESSAGE = 16 * MiB;

/** Round trips per timed unit: enough to dwarf the timer, few enough for many units per round. */
function tripsPerUnit(size: number): number {
  return size <= 1024 ? 32 : size <= 16 * KiB ? 8 : 2;
}

type RoundTrip = (payload: Buffer) => Promise<number>;

function duplexRoundTrip(): RoundTrip {
  const params: Omit<DeflateCodecOptions, "role"> = {
    serverNoContextTakeover: false,
    clientNoContextTakeover: false,
    serverMaxWindowBits: 15,
    clientMaxWindowBits: 15,
  };
  const client = new DeflateCodec({ role: "client", ...params });
  const server = new DeflateCodec({ role: "server", ...params });
  return (payload) =>
    new Promise((resolve, reject) => {
      client.compress(payload, true, (error, packed) => {
        if (error !== null || packed === null) return reject(error ?? new Error("no output"));
        server.decompress(packed, true, MAX_MESSAGE, (error2, out) => {
          if (error2 !== null || out === null) return reject(error2 ?? new Error("no output"));
          resolve(out.length);
        });
      });
    });
}

function wsRoundTrip(level: number | undefined): RoundTrip {
  const deflateOptions = level === undefined ? {} : { zlibDeflateOptions: { level } };
  const client: WsPerMessageDeflate = new PerMessageDeflate({ isServer: false, ...deflateOptions });
  const server: WsPerMessageDeflate = new PerMessageDeflate({
    isServer: true,
    maxPayload: 100 * MiB,
    ...deflateOptions,
  });
  // Negotiate the defaults: the client offers nothing special, the server accepts it as is.
  server.accept([{}]);
  client.accept([{}]);
  return (payload) =>
    new Promise((resolve, reject) => {
      client.compress(payload, true, (error, packed) => {
        if (error !== null) return reject(error);
        server.decompress(packed, true, (error2, out) => {
          if (error2 !== null) return reject(error2);
          resolve(out.length);
        });
      });
    });
}

/** Distinct messages of one size, sent in turn (identical messages would compress to nothing). */
function payloads(size: number): Buffer[] {
  return Array.from({ length: 16 }, (_, i) => utf8Text(size, "chat", 100 + i));
}

function contender(name: string, trip: RoundTrip, messages: Buffer[], trips: number): Contender {
  let bad = 0;
  let next = 0;
  return {
    name,
    run: async () => {
      for (let i = 0; i < trips; i++) {
        const payload = messages[next++ % messages.length]!;
        if ((await trip(payload)) !== payload.length) bad++;
      }
    },
    verify: () => {
      if (bad > 0) throw new Error(`${name}: ${bad} round trips returned the wrong length`);
    },
  };
}

/** Compressed size of `payload` through a fresh codec (first message, empty window). */
function packedSize(trip: "duplex" | "ws", payload: Buffer, level?: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const done = (error: Error | null, out: Uint8Array | null): void =>
      error !== null || out === null ? reject(error) : resolve(out.length);
    if (trip === "duplex") {
      new DeflateCodec({
        role: "client",
        serverNoContextTakeover: false,
        clientNoContextTakeover: false,
        serverMaxWindowBits: 15,
        clientMaxWindowBits: 15,
      }).compress(payload, true, done);
    } else {
      const pmd = new PerMessageDeflate(
        level === undefined
          ? { isServer: false }
          : { isServer: false, zlibDeflateOptions: { level } },
      );
      pmd.accept([{}]);
      pmd.compress(payload, true, done);
    }
  });
}

/** One line for the report: how well each side compresses the payload. */
export async function describeDeflatePayloads(): Promise<string[]> {
  const lines: string[] = [];
  for (const size of SIZES) {
    const payload = utf8Text(size, "chat", 100);
    const d = await packedSize("duplex", payload);
    const w = await packedSize("ws", payload);
    const w1 = await packedSize("ws", payload, 1);
    lines.push(
      `${sizeLabel(size)}: duplex (level 1) ${d} B, ws (default level) ${w} B, ws level 1 ${w1} B`,
    );
  }
  return lines;
}

export function deflateCases(): CaseSpec[] {
  return SIZES.map((size) =>
    spec(`deflate/roundtrip/${size}`, () => {
      const messages = payloads(size);
      const trips = tripsPerUnit(size);
      return {
        group: "deflate",
        label: `round trip ${sizeLabel(size)}`,
        notes: `16 distinct chat-like JSON messages in turn, ${(nonAsciiShare(messages[0]!) * 100).toFixed(0)}% non-ASCII; sequential compress + inflate, context takeover`,
        messagesPerUnit: trips,
        bytesPerUnit: trips * size,
        contenders: [
          contender("duplex", duplexRoundTrip(), messages, trips),
          contender("ws", wsRoundTrip(undefined), messages, trips),
          contender("ws level 1", wsRoundTrip(1), messages, trips),
        ],
        compare: [
          ["duplex", "ws"],
          ["duplex", "ws level 1"],
        ],
      };
    }),
  );
}
