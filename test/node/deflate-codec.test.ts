import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import type { EventEmitter } from "node:events";
import { describe, it } from "node:test";
import { constants, deflateRawSync, inflateRawSync } from "node:zlib";
import { DeflateCodec, type DeflateCodecOptions } from "../../src/node/deflate-codec.js";
import { encodeFrame, Opcode } from "../../src/protocol/frame.js";
import { resolveLimits } from "../../src/protocol/limits.js";
import { concat, hex, type Recorder, record, toHex } from "../protocol/helpers.js";

const PARAMS: Omit<DeflateCodecOptions, "role"> = {
  serverNoContextTakeover: false,
  clientNoContextTakeover: false,
  serverMaxWindowBits: 15,
  clientMaxWindowBits: 15,
};

function client(params = PARAMS, limits = {}): Recorder {
  return record(
    { role: "client", limits: resolveLimits(limits) },
    new DeflateCodec({ role: "client", ...params }),
  );
}
function server(params = PARAMS, limits = {}): Recorder {
  return record(
    { role: "server", limits: resolveLimits(limits) },
    new DeflateCodec({ role: "server", ...params }),
  );
}
/** Wait until the recorder has `n` events (the codec calls back asynchronously). */
async function until(r: Recorder, n: number): Promise<void> {
  for (let i = 0; i < 500 && r.events.length < n; i++)
    await new Promise((res) => setTimeout(res, 2));
}
const texts = (r: Recorder) => r.events.map((e) => (e.type === "message" ? e.text : e.type));

describe("RFC 7692 §7.2.3 examples, received by a client", () => {
  it("§7.2.3.1 'Hello' compressed in one frame", async () => {
    const c = client();
    c.feed("c1 07 f2 48 cd c9 c9 07 00");
    await until(c, 1);
    assert.deepEqual(texts(c), ["Hello"]);
  });
  it("§7.2.3.1 'Hello' compressed and fragmented", async () => {
    const c = client();
    c.feed("41 03 f2 48 cd");
    c.feed("80 04 c9 c9 07 00");
    await until(c, 1);
    assert.deepEqual(texts(c), ["Hello"]);
  });
  it("§7.2.3.2 sharing the LZ77 window between two messages", async () => {
    const c = client();
    c.feed("c1 07 f2 48 cd c9 c9 07 00 c1 05 f2 00 11 00 00");
    await until(c, 2);
    assert.deepEqual(texts(c), ["Hello", "Hello"]);
  });
  it("§7.2.3.3 a DEFLATE block with no compression", async () => {
    const c = client();
    c.feed("c1 0b 00 05 00 fa ff 48 65 6c 6c 6f 00");
    await until(c, 1);
    assert.deepEqual(texts(c), ["Hello"]);
  });
  it("§7.2.3.4 a DEFLATE block with BFINAL set", async () => {
    const c = client();
    c.feed("c1 08 f3 48 cd c9 c9 07 00 00");
    await until(c, 1);
    assert.deepEqual(texts(c), ["Hello"]);
  });
  it("an uncompressed message (RSV1 clear) between compressed ones keeps its place", async () => {
    const c = client();
    c.feed("c1 07 f2 48 cd c9 c9 07 00 81 02 68 69 89 00 c1 07 f2 48 cd c9 c9 07 00");
    await until(c, 4);
    assert.deepEqual(texts(c), ["Hello", "hi", "ping", "Hello"]);
  });
});

describe("compression on send (RFC 7692 §7.2.1)", () => {
  it("server compresses 'Hello' to the §7.2.3.1 bytes and strips the 00 00 ff ff tail", async () => {
    const s = server();
    s.conn.sendText("Hello");
    for (let i = 0; i < 100 && s.written().length === 0; i++)
      await new Promise((r) => setTimeout(r, 2));
    assert.equal(toHex(s.written()), "c1 07 f2 48 cd c9 c9 07 00");
  });
  it("a compressed frame is followed, in order, by frames sent after it", async () => {
    const s = server();
    s.conn.sendText("Hello");
    s.conn.sendText("raw", { compress: false });
    s.conn.ping();
    s.conn.close(1000);
    for (let i = 0; i < 100 && s.written().length < 17; i++)
      await new Promise((r) => setTimeout(r, 2));
    assert.equal(toHex(s.written()), "c1 07 f2 48 cd c9 c9 07 00 81 03 72 61 77 89 00 88 02 03 e8");
  });
  for (const noContext of [false, true]) {
    for (const bits of [9, 12, 15]) {
      it(`client → server round trip, no_context_takeover=${noContext}, window bits ${bits}`, async () => {
        const params = {
          serverNoContextTakeover: noContext,
          clientNoContextTakeover: noContext,
          serverMaxWindowBits: bits,
          clientMaxWindowBits: bits,
        };
        const c = client(params);
        const s = server(params);
        const msgs = ["Hello", "Hello", "x".repeat(5000), "κόσμε 😀", ""];
        for (const m of msgs) c.conn.sendText(m);
        c.conn.sendBinary(new Uint8Array(70000).fill(9), { fin: false });
        c.conn.sendBinary(new Uint8Array(10).fill(8));
        for (let i = 0; i < 200 && c.written().length === 0; i++)
          await new Promise((r) => setTimeout(r, 2));
        await new Promise((r) => setTimeout(r, 50));
        s.feed(c.written());
        await until(s, msgs.length + 1);
        assert.deepEqual(texts(s).slice(0, msgs.length), msgs);
        const last = s.events[msgs.length];
        assert.ok(last?.type === "message" && last.binary && last.bytes.length === 70010);
      });
    }
  }
});

describe("DeflateCodec.compress output, frame by frame", () => {
  const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);
  const compress = (codec: DeflateCodec, data: Uint8Array, fin: boolean) =>
    new Promise<Buffer>((resolve, reject) =>
      codec.compress(data, fin, (error, out) =>
        error !== null || out === null ? reject(error) : resolve(Buffer.from(out)),
      ),
    );
  const inflate = (parts: Buffer[]) =>
    inflateRawSync(Buffer.concat(parts), { finishFlush: constants.Z_SYNC_FLUSH });
  // Messages as [frames]; large incompressible and compressible frames make zlib produce its
  // output in several chunks, past its readable buffer's high-water mark, and empty ones make it
  // flush without input.
  const noise = randomBytes(200_000);
  const messages: Uint8Array[][] = [
    [Buffer.from("Hello")],
    [new Uint8Array(0)],
    [noise.subarray(0, 70_000), Buffer.alloc(10, 8)],
    [Buffer.alloc(300_000, 7), new Uint8Array(0), noise.subarray(70_000)],
    [new Uint8Array(0), new Uint8Array(0)],
    [Buffer.from("x".repeat(5000)), noise.subarray(0, 17), Buffer.alloc(100_000, 1)],
    [Buffer.from("Hello")],
  ];
  for (const noContext of [false, true]) {
    for (const bits of [9, 15]) {
      it(`each frame gets exactly its own output, no_context_takeover=${noContext}, window bits ${bits}`, async () => {
        const codec = new DeflateCodec({
          role: "client",
          serverNoContextTakeover: noContext,
          clientNoContextTakeover: noContext,
          serverMaxWindowBits: bits,
          clientMaxWindowBits: bits,
        });
        const stream: Buffer[] = [];
        const sent: Uint8Array[] = [];
        for (const frames of messages) {
          const message: Buffer[] = [];
          for (const [i, data] of frames.entries()) {
            const fin = i === frames.length - 1;
            const out = await compress(codec, data, fin);
            // A frame's output is complete: a non-final one ends with its sync flush.
            if (!fin) assert.ok(out.subarray(-4).equals(TAIL), `frame ${i} lacks its flush`);
            else assert.ok(out.length > 0 && !out.subarray(-4).equals(TAIL));
            message.push(out);
          }
          message.push(TAIL);
          const expected = Buffer.concat(frames);
          if (noContext) {
            assert.ok(inflate(message).equals(expected));
          } else {
            stream.push(...message);
            sent.push(expected);
            assert.ok(inflate(stream).equals(Buffer.concat(sent)));
          }
        }
        codec.close();
      });
    }
  }
  it("keeps a fixed set of listeners on its deflater", async () => {
    const codec = new DeflateCodec({ role: "server", ...PARAMS });
    await compress(codec, Buffer.from("warm up"), true);
    const deflater = (codec as unknown as { deflater: EventEmitter }).deflater;
    const count = () => deflater.eventNames().map((e) => deflater.listenerCount(e));
    const before = count();
    for (let i = 0; i < 50; i++) await compress(codec, noise.subarray(0, 1000 * i), i % 3 === 0);
    assert.deepEqual(count(), before);
    codec.close();
  });
  it("calls back with an error when closed during compression", async () => {
    const codec = new DeflateCodec({ role: "server", ...PARAMS });
    const pending = compress(codec, noise, true);
    codec.close();
    await assert.rejects(pending);
    await assert.rejects(compress(codec, Buffer.from("late"), true));
  });
});

describe("decompression limits", () => {
  it("a deflate bomb fails with 1009 and bounded memory", async () => {
    // 64 MiB of zeros deflates to ~64 KiB; the limit is 1 MiB.
    const bomb = deflateRawSync(Buffer.alloc(64 * 1024 * 1024));
    const frame = encodeFrame({
      opcode: Opcode.BINARY,
      payload: bomb.subarray(0, bomb.length),
      rsv1: true,
    });
    const c = client(PARAMS, { maxMessageBytes: 1024 * 1024 });
    const before = process.memoryUsage().arrayBuffers;
    c.feed(frame);
    await until(c, 1);
    const grown = process.memoryUsage().arrayBuffers - before;
    const e = c.events[0];
    assert.ok(e?.type === "error", `expected an error, got ${e?.type}`);
    assert.equal(e.code, "WS_ERR_MESSAGE_TOO_BIG");
    assert.equal(e.closeCode, 1009);
    assert.ok(grown < 32 * 1024 * 1024, `inflation kept ${grown} bytes`);
  });
  it("invalid compressed data fails with 1007", async () => {
    const c = client();
    c.feed("c1 03 ff ff ff");
    await until(c, 1);
    const e = c.events[0];
    assert.ok(e?.type === "error");
    assert.equal(e.closeCode, 1007);
  });
  it("RSV1 on a continuation frame is refused (RFC 7692 §6.1)", async () => {
    const c = client();
    c.feed(concat([hex("41 03 f2 48 cd"), hex("c0 04 c9 c9 07 00")]));
    await until(c, 1);
    const e = c.events[0];
    assert.ok(e?.type === "error" && e.code === "WS_ERR_INVALID_RSV");
  });
});
