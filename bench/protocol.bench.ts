/**
 * Protocol-level cases, Duplex against ws 8 in the same process:
 *
 * - parse: a stream of frames cut into 64 KiB chunks (as a socket delivers them), fed to a
 *   Duplex `Connection` and to ws's `Receiver`. Both unmask in place, so each contender gets a
 *   fresh copy of the stream before every unit, outside the timed region.
 * - serialize: `Connection.send` vs `Sender#send` (the API path down to socket.write), and
 *   `encodeFrame`/`encodeFrameParts` vs `Sender.frame` (framing alone).
 * - UTF-8: Duplex's pure-JS `isValidUtf8` vs node:buffer `isUtf8` (what ws uses) vs a fatal
 *   TextDecoder.
 */
import { isUtf8 } from "node:buffer";
import { Connection, type ConnectionHandler } from "../src/protocol/connection.js";
import type { ProtocolError } from "../src/protocol/errors.js";
import { encodeFrame, encodeFrameParts, Opcode } from "../src/protocol/frame.js";
import { isValidUtf8 } from "../src/protocol/utf8.js";
import { KiB, MiB, maskKeys, nonAsciiShare, randomBytes, sizeLabel, utf8Text } from "./data.js";
import { type CaseSpec, type Contender, spec } from "./harness.js";
import { Receiver, Sender, type WsSocketLike } from "./ws-internals.js";

/** What a socket typically hands to the 'data' listener at a time. */
export const CHUNK_BYTES = 64 * KiB;
/** Aim for about this many wire bytes per timed unit (at least one frame). */
const UNIT_BYTES = 512 * KiB;
/** Upper bound on messages per serialize unit (tiny frames). */
const MAX_SENDS_PER_UNIT = 4096;
/** ws's WebSocketServer default maxPayload (100 MiB); Duplex's default limit is 16 MiB. */
const WS_MAX_PAYLOAD = 100 * MiB;

const alloc = (n: number): Uint8Array => Buffer.allocUnsafe(n);

export const PARSE_SIZES = [2, 125, 16 * KiB, 64 * KiB, MiB] as const;
export const TEXT_SIZES = [125, 16 * KiB] as const;

class Counter {
  messages = 0;
  bytes = 0;
  error: Error | null = null;

  check(what: string, messages: number, bytes: number): void {
    if (this.error !== null) throw new Error(`${what}: ${this.error.message}`);
    if (this.messages !== messages || this.bytes !== bytes) {
      throw new Error(
        `${what}: expected ${messages} messages / ${bytes} bytes, got ${this.messages} / ${this.bytes}`,
      );
    }
  }
}

/** Counts what a Duplex connection delivers; writes (e.g. a Close on error) are counted too. */
class CountingHandler implements ConnectionHandler {
  readonly counter = new Counter();
  written = 0;
  onMessage(data: Uint8Array): void {
    this.counter.messages++;
    this.counter.bytes += data.length;
  }
  onPing(): void {}
  onPong(): void {}
  onCloseFrame(): void {}
  onError(error: ProtocolError): void {
    this.counter.error = error;
  }
  onWrite(chunk: Uint8Array): void {
    this.written += chunk.length;
  }
}

/** A stream of `count` identical frames, cut into CHUNK_BYTES views of one buffer. */
interface Stream {
  readonly buffer: Buffer;
  readonly frames: number;
}

function buildStream(payload: Buffer, opcode: number, masked: boolean, count: number): Stream {
  const keys = maskKeys(64);
  const frames: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    frames.push(encodeFrame({ opcode, payload, mask: masked ? keys[i % keys.length] : undefined }));
  }
  return { buffer: Buffer.concat(frames), frames: count };
}

/** Views of `buffer` CHUNK_BYTES long (the last one shorter). */
function chunksOf(buffer: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < buffer.length; at += CHUNK_BYTES) {
    out.push(buffer.subarray(at, Math.min(at + CHUNK_BYTES, buffer.length)));
  }
  return out;
}

/** A contender fed a fresh copy of `stream` before every unit (the parser unmasks in place). */
function parseContender(
  name: string,
  stream: Stream,
  payloadSize: number,
  feed: (chunk: Buffer) => void,
  counter: Counter,
): Contender {
  const work = Buffer.allocUnsafe(stream.buffer.length);
  const chunks = chunksOf(work);
  return {
    name,
    before: () => {
      stream.buffer.copy(work);
    },
    run: () => {
      for (let i = 0; i < chunks.length; i++) feed(chunks[i]!);
    },
    verify: (units) =>
      counter.check(name, units * stream.frames, units * stream.frames * payloadSize),
  };
}

function duplexParser(
  name: string,
  stream: Stream,
  size: number,
  masked: boolean,
  validateUtf8: ((bytes: Uint8Array) => boolean) | undefined,
): Contender {
  const handler = new CountingHandler();
  const role = masked ? "server" : "client";
  const conn = new Connection(
    validateUtf8 === undefined ? { role, alloc } : { role, alloc, validateUtf8 },
    handler,
  );
  conn.open();
  return parseContender(name, stream, size, (chunk) => conn.receiveData(chunk), handler.counter);
}

function wsParser(name: string, stream: Stream, size: number, masked: boolean): Contender {
  const counter = new Counter();
  const receiver = new Receiver({
    isServer: masked,
    maxPayload: WS_MAX_PAYLOAD,
    binaryType: "nodebuffer",
  });
  receiver.on("message", (data) => {
    counter.messages++;
    counter.bytes += data.length;
  });
  receiver.on("error", (error) => {
    counter.error = error;
  });
  return parseContender(name, stream, size, (chunk) => receiver.write(chunk), counter);
}

function framesPerUnit(size: number): number {
  return Math.max(1, Math.ceil(UNIT_BYTES / (size + 14)));
}

function parseCases(): CaseSpec[] {
  const cases: CaseSpec[] = [];
  for (const masked of [true, false]) {
    const dir = masked ? "masked" : "unmasked";
    for (const size of PARSE_SIZES) {
      cases.push(
        spec(`parse/${dir}/binary/${size}`, () => {
          const count = framesPerUnit(size);
          const stream = buildStream(randomBytes(size), Opcode.BINARY, masked, count);
          return {
            group: "parse",
            label: `${dir} binary ${sizeLabel(size)}`,
            messagesPerUnit: count,
            bytesPerUnit: count * size,
            contenders: [
              duplexParser("duplex", stream, size, masked, isUtf8),
              wsParser("ws", stream, size, masked),
            ],
            compare: [["duplex", "ws"]],
          };
        }),
      );
    }
    for (const size of TEXT_SIZES) {
      cases.push(
        spec(`parse/${dir}/text/${size}`, () => {
          const count = framesPerUnit(size);
          const text = utf8Text(size, "chat");
          const stream = buildStream(text, Opcode.TEXT, masked, count);
          return {
            group: "parse",
            label: `${dir} text ${sizeLabel(size)}`,
            messagesPerUnit: count,
            bytesPerUnit: count * size,
            notes: `chat-like JSON, ${(nonAsciiShare(text) * 100).toFixed(0)}% non-ASCII bytes`,
            contenders: [
              duplexParser("duplex", stream, size, masked, isUtf8),
              duplexParser("duplex js-utf8", stream, size, masked, undefined),
              wsParser("ws", stream, size, masked),
            ],
            compare: [
              ["duplex", "ws"],
              ["duplex js-utf8", "ws"],
            ],
          };
        }),
      );
    }
  }
  return cases;
}

// ---- serialize ---------------------------------------------------------------------------------

function sendsPerUnit(size: number): number {
  return Math.min(MAX_SENDS_PER_UNIT, Math.max(1, Math.ceil(UNIT_BYTES / size)));
}

/** A socket that only counts: what ws's Sender writes to. */
class CountingSocket implements WsSocketLike {
  written = 0;
  readonly destroyed = false;
  write(chunk: Buffer): boolean {
    this.written += chunk.length;
    return true;
  }
  cork(): void {}
  uncork(): void {}
}

/** Checks that at least the payload bytes of every message were written. */
function checkWritten(name: string, written: () => number, minimum: number): void {
  if (written() < minimum) {
    throw new Error(`${name}: wrote ${written()} bytes, expected at least ${minimum}`);
  }
}

function serializeCases(): CaseSpec[] {
  const cases: CaseSpec[] = [];
  for (const masked of [true, false]) {
    const dir = masked ? "masked" : "unmasked";
    const role = masked ? "client" : "server";
    for (const size of PARSE_SIZES) {
      const n = sendsPerUnit(size);

      // API path: Connection.send → onWrite vs Sender#send → socket.write.
      cases.push(
        spec(`serialize/${dir}/send/${size}`, () => {
          const payload = randomBytes(size, 11);
          const handler = new CountingHandler();
          const conn = new Connection({ role, alloc }, handler);
          conn.open();
          const socket = new CountingSocket();
          const sender = new Sender(socket);
          const sendOptions = { binary: true, fin: true, mask: masked, compress: false } as const;
          return {
            group: "serialize",
            label: `${dir} send ${sizeLabel(size)}`,
            messagesPerUnit: n,
            bytesPerUnit: n * size,
            contenders: [
              {
                name: "duplex",
                run: () => {
                  for (let i = 0; i < n; i++) conn.sendBinary(payload);
                },
                verify: (units) => checkWritten("duplex", () => handler.written, units * n * size),
              },
              {
                name: "ws",
                run: () => {
                  for (let i = 0; i < n; i++) sender.send(payload, sendOptions);
                },
                verify: (units) => checkWritten("ws", () => socket.written, units * n * size),
              },
            ],
            compare: [["duplex", "ws"]],
          };
        }),
      );

      // Framing alone: encodeFrame / encodeFrameParts vs Sender.frame.
      cases.push(
        spec(`serialize/${dir}/frame/${size}`, () => {
          const payload = randomBytes(size, 11);
          let duplexOut = 0;
          let wsOut = 0;
          // Masking keys as Connection makes them: a pool of random keys, refilled when used up.
          const pool = new Uint8Array(1024);
          let at = pool.length;
          const nextMask = (): Uint8Array => {
            if (at >= pool.length) {
              globalThis.crypto.getRandomValues(pool);
              at = 0;
            }
            at += 4;
            return pool.subarray(at - 4, at);
          };
          const frameOptions = {
            fin: true,
            rsv1: false,
            opcode: Opcode.BINARY,
            mask: masked,
            readOnly: true,
          } as const;
          return {
            group: "serialize",
            label: `${dir} frame ${sizeLabel(size)}`,
            messagesPerUnit: n,
            bytesPerUnit: n * size,
            contenders: [
              {
                name: masked ? "duplex encodeFrame" : "duplex encodeFrameParts",
                run: masked
                  ? () => {
                      for (let i = 0; i < n; i++) {
                        const frame = encodeFrame(
                          { opcode: Opcode.BINARY, payload, mask: nextMask() },
                          alloc,
                        );
                        duplexOut += frame.length;
                      }
                    }
                  : () => {
                      for (let i = 0; i < n; i++) {
                        const parts = encodeFrameParts({ opcode: Opcode.BINARY, payload }, alloc);
                        for (const part of parts) duplexOut += part.length;
                      }
                    },
                verify: (units) => checkWritten("duplex", () => duplexOut, units * n * size),
              },
              {
                name: "ws Sender.frame",
                run: () => {
                  for (let i = 0; i < n; i++) {
                    const parts = Sender.frame(payload, frameOptions);
                    for (const part of parts) wsOut += part.length;
                  }
                },
                verify: (units) => checkWritten("ws", () => wsOut, units * n * size),
              },
            ],
            compare: [
              [masked ? "duplex encodeFrame" : "duplex encodeFrameParts", "ws Sender.frame"],
            ],
          };
        }),
      );
    }
  }
  return cases;
}

// ---- UTF-8 -------------------------------------------------------------------------------------

function utf8Cases(): CaseSpec[] {
  return (["ascii", "mixed"] as const).map((kind) =>
    spec(`utf8/${kind}/${MiB}`, () => {
      const text = utf8Text(MiB, kind, 5);
      const decoder = new TextDecoder("utf-8", { fatal: true });
      let ok = 0;
      let chars = 0;
      const expectValid = (name: string, units: number, count: number): void => {
        if (count !== units) throw new Error(`${name}: input judged invalid`);
      };
      let okJs = 0;
      let okNative = 0;
      return {
        group: "utf8",
        label: `${kind} 1 MiB`,
        messagesPerUnit: 1,
        bytesPerUnit: MiB,
        notes: `${(nonAsciiShare(text) * 100).toFixed(0)}% non-ASCII bytes`,
        contenders: [
          {
            name: "duplex isValidUtf8",
            run: () => {
              if (isValidUtf8(text)) okJs++;
            },
            verify: (units) => expectValid("isValidUtf8", units, okJs),
          },
          {
            name: "buffer.isUtf8",
            run: () => {
              if (isUtf8(text)) okNative++;
            },
            verify: (units) => expectValid("isUtf8", units, okNative),
          },
          {
            name: "TextDecoder fatal",
            run: () => {
              chars += decoder.decode(text).length;
              ok++;
            },
            verify: (units) => {
              expectValid("TextDecoder", units, ok);
              if (chars === 0) throw new Error("TextDecoder: nothing decoded");
            },
          },
        ],
        compare: [
          ["duplex isValidUtf8", "buffer.isUtf8"],
          ["TextDecoder fatal", "buffer.isUtf8"],
        ],
      };
    }),
  );
}

export function protocolCases(): CaseSpec[] {
  return [...parseCases(), ...serializeCases(), ...utf8Cases()];
}
