import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { MessageCodec } from "../../src/protocol/codec.js";
import { ReadyState } from "../../src/protocol/connection.js";
import { ProtocolError, StateError } from "../../src/protocol/errors.js";
import { encodeFrame, Opcode } from "../../src/protocol/frame.js";
import { resolveLimits } from "../../src/protocol/limits.js";
import { concat, type Event, hex, type Recorder, record, toHex } from "./helpers.js";

const KEY = hex("37 fa 21 3d");
const fixedRandom = (out: Uint8Array): void => {
  for (let i = 0; i < out.length; i++) out[i] = KEY[i % 4] ?? 0;
};
/** A masked frame as a client would send it to our server. */
function cf(opcode: number, payload: Uint8Array | string, fin = true, rsv1 = false): Uint8Array {
  const p = typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
  return encodeFrame({ opcode, payload: p, fin, rsv1, mask: KEY });
}
function server(limits = {}) {
  return record({ role: "server", limits: resolveLimits(limits) });
}
function errorOf(events: Event[]): { code: string; closeCode: number } | undefined {
  const e = events.find((x) => x.type === "error");
  return e?.type === "error" ? { code: e.code, closeCode: e.closeCode } : undefined;
}
/** The close frame a server wrote: its status code. */
function closeCodeWritten(bytes: Uint8Array): number {
  assert.equal(bytes[0], 0x88, `expected a close frame, got ${toHex(bytes)}`);
  return ((bytes[2] ?? 0) << 8) | (bytes[3] ?? 0);
}
function expectFailure(bytes: Uint8Array, code: string, closeCode: number, limits = {}): void {
  const s = server(limits);
  s.feed(bytes);
  assert.deepEqual(errorOf(s.events), { code, closeCode });
  assert.equal(closeCodeWritten(s.written()), closeCode);
  assert.equal(s.conn.state, ReadyState.CLOSED);
}

describe("RFC 6455 §5.7 examples, received", () => {
  it("client receives a single-frame unmasked text message", () => {
    const c = record({ role: "client" });
    c.feed("81 05 48 65 6c 6c 6f");
    assert.deepEqual(
      c.events.map((e) => e.type === "message" && e.text),
      ["Hello"],
    );
  });

  it("server receives a single-frame masked text message", () => {
    const s = server();
    s.feed("81 85 37 fa 21 3d 7f 9f 4d 51 58");
    assert.equal(s.events[0]?.type === "message" && s.events[0].text, "Hello");
  });

  it("client receives a fragmented unmasked text message", () => {
    const c = record({ role: "client" });
    c.feed("01 03 48 65 6c");
    assert.equal(c.events.length, 0);
    c.feed("80 02 6c 6f");
    assert.equal(c.events[0]?.type === "message" && c.events[0].text, "Hello");
  });

  it("client answers an unmasked ping with the masked pong of the example", () => {
    const c = record({ role: "client", random: fixedRandom });
    c.feed("89 05 48 65 6c 6c 6f");
    assert.equal(c.events[0]?.type, "ping");
    assert.equal(toHex(c.written()), "8a 85 37 fa 21 3d 7f 9f 4d 51 58");
  });

  it("256-byte and 64 KiB binary messages (16- and 64-bit lengths)", () => {
    const c = record({ role: "client" });
    c.feed(concat([hex("82 7e 01 00"), new Uint8Array(256).fill(1)]));
    c.feed(concat([hex("82 7f 00 00 00 00 00 01 00 00"), new Uint8Array(65536).fill(2)]));
    const sizes = c.events.map((e) => (e.type === "message" ? [e.bytes.length, e.binary] : null));
    assert.deepEqual(sizes, [
      [256, true],
      [65536, true],
    ]);
  });

  it("the same stream fed one byte at a time gives the same events", () => {
    const stream = hex("01 03 48 65 6c 89 00 80 02 6c 6f 82 7e 00 7e".concat(" 00".repeat(126)));
    const whole = record({ role: "client" });
    whole.feed(stream);
    const bytewise = record({ role: "client" });
    for (const b of stream) bytewise.feed(new Uint8Array([b]));
    assert.deepEqual(bytewise.events, whole.events);
    assert.equal(whole.events.length, 3);
  });
});

describe("frame rules, in the documented check order", () => {
  it("§5.2 RSV2/RSV3 set → 1002", () => {
    expectFailure(hex("a1 80 00 00 00 00"), "WS_ERR_INVALID_RSV", 1002);
    expectFailure(hex("91 80 00 00 00 00"), "WS_ERR_INVALID_RSV", 1002);
  });
  it("§5.2 / RFC 7692 §6: RSV1 without permessage-deflate → 1002", () => {
    expectFailure(hex("c1 80 00 00 00 00"), "WS_ERR_INVALID_RSV", 1002);
  });
  it("§5.2 reserved opcodes 3-7 and B-F → 1002", () => {
    for (const op of [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]) {
      expectFailure(new Uint8Array([0x80 | op, 0x80, 0, 0, 0, 0]), "WS_ERR_INVALID_OPCODE", 1002);
    }
  });
  it("§5.5 fragmented control frame → 1002", () => {
    expectFailure(cf(Opcode.PING, "", false), "WS_ERR_CONTROL_NOT_FIN", 1002);
  });
  it("§5.5 control payload of 126 bytes → 1002 (125 is fine)", () => {
    const s = server();
    s.feed(cf(Opcode.PING, new Uint8Array(125)));
    assert.equal(s.events[0]?.type, "ping");
    expectFailure(hex("89 fe 00 7e 00 00 00 00").slice(), "WS_ERR_CONTROL_TOO_LONG", 1002);
  });
  it("§5.5.1 close frame with a 1-byte payload → 1002", () => {
    expectFailure(cf(Opcode.CLOSE, new Uint8Array([3])), "WS_ERR_INVALID_CLOSE_PAYLOAD", 1002);
  });
  it("§5.4 continuation without a message in progress → 1002", () => {
    expectFailure(cf(Opcode.CONTINUATION, "x"), "WS_ERR_UNEXPECTED_CONTINUATION", 1002);
  });
  it("§5.4 a new data frame inside a fragmented message → 1002", () => {
    expectFailure(
      concat([cf(Opcode.TEXT, "a", false), cf(Opcode.TEXT, "b")]),
      "WS_ERR_EXPECTED_CONTINUATION",
      1002,
    );
  });
  it("§5.1 server: unmasked client frame → 1002", () => {
    expectFailure(hex("81 05 48 65 6c 6c 6f"), "WS_ERR_EXPECTED_MASK", 1002);
  });
  it("§5.1 client: masked server frame → 1002", () => {
    const c = record({ role: "client" });
    c.feed("81 85 37 fa 21 3d 7f 9f 4d 51 58");
    assert.deepEqual(errorOf(c.events), { code: "WS_ERR_UNEXPECTED_MASK", closeCode: 1002 });
  });
  it("§5.2 64-bit length with the most significant bit set → 1002", () => {
    expectFailure(hex("82 ff 80 00 00 00 00 00 00 00 00 00 00 00"), "WS_ERR_INVALID_LENGTH", 1002);
  });
  it("64-bit length above 2^53 - 1 → 1009 before any payload", () => {
    expectFailure(hex("82 ff 00 40 00 00 00 00 00 00 00 00 00 00"), "WS_ERR_MESSAGE_TOO_BIG", 1009);
  });
  it("§5.5 a control frame interleaved in a fragmented message is processed at once", () => {
    const s = server();
    s.feed(
      concat([cf(Opcode.TEXT, "He", false), cf(Opcode.PING, "p"), cf(Opcode.CONTINUATION, "llo")]),
    );
    assert.deepEqual(
      s.events.map((e) => e.type),
      ["ping", "message"],
    );
    assert.equal(s.events[1]?.type === "message" && s.events[1].text, "Hello");
  });
});

describe("message limits", () => {
  it("size is checked from the header, before the payload is buffered (1009)", () => {
    const s = server({ maxMessageBytes: 100 });
    // Only the header of a 1 MiB frame arrives: the failure must not wait for the payload.
    s.feed(hex("82 ff 00 00 00 00 00 10 00 00 37 fa 21 3d"));
    assert.deepEqual(errorOf(s.events), { code: "WS_ERR_MESSAGE_TOO_BIG", closeCode: 1009 });
  });
  it("size is cumulative across fragments (1009)", () => {
    const s = server({ maxMessageBytes: 100 });
    s.feed(concat([cf(Opcode.BINARY, new Uint8Array(60), false)]));
    assert.equal(s.events.length, 0);
    s.feed(cf(Opcode.CONTINUATION, new Uint8Array(41), false));
    assert.deepEqual(errorOf(s.events), { code: "WS_ERR_MESSAGE_TOO_BIG", closeCode: 1009 });
  });
  it("exactly maxMessageBytes is accepted", () => {
    const s = server({ maxMessageBytes: 100 });
    s.feed(
      concat([
        cf(Opcode.BINARY, new Uint8Array(60), false),
        cf(Opcode.CONTINUATION, new Uint8Array(40)),
      ]),
    );
    assert.equal(s.events[0]?.type === "message" && s.events[0].bytes.length, 100);
  });
  it("empty fragments count toward maxFragments (1008)", () => {
    const frames = [cf(Opcode.TEXT, "", false)];
    for (let i = 0; i < 8; i++) frames.push(cf(Opcode.CONTINUATION, "", false));
    expectFailure(concat(frames), "WS_ERR_TOO_MANY_FRAGMENTS", 1008, { maxFragments: 8 });
  });
});

describe("§8.1 UTF-8 of text messages (1007)", () => {
  it("invalid UTF-8 in a single frame → 1007", () => {
    expectFailure(
      cf(Opcode.TEXT, hex("ce ba e1 bd b9 cf 83 ed a0 80")),
      "WS_ERR_INVALID_UTF8",
      1007,
    );
  });
  it("fails fast: an impossible sequence in the first fragment fails before the rest arrives", () => {
    const s = server();
    s.feed(cf(Opcode.TEXT, hex("48 f4 90"), false));
    assert.deepEqual(errorOf(s.events), { code: "WS_ERR_INVALID_UTF8", closeCode: 1007 });
  });
  it("fails fast inside one frame whose payload arrives in pieces", () => {
    const s = server();
    const frame = cf(Opcode.TEXT, hex("41 42 c0 af 43 44 45 46"));
    s.feed(frame.subarray(0, 9)); // header (6) + "AB" + c0
    assert.deepEqual(errorOf(s.events), { code: "WS_ERR_INVALID_UTF8", closeCode: 1007 });
  });
  it("a code point split across fragments is valid", () => {
    const s = server();
    s.feed(concat([cf(Opcode.TEXT, hex("f0 9f"), false), cf(Opcode.CONTINUATION, hex("98 80"))]));
    assert.equal(s.events[0]?.type === "message" && s.events[0].text, "😀");
  });
  it("a message ending in the middle of a code point → 1007", () => {
    expectFailure(
      concat([cf(Opcode.TEXT, hex("f0 9f"), false), cf(Opcode.CONTINUATION, hex("98"))]),
      "WS_ERR_INVALID_UTF8",
      1007,
    );
  });
  it("binary messages are not checked", () => {
    const s = server();
    s.feed(cf(Opcode.BINARY, hex("ff fe c0")));
    assert.equal(s.events[0]?.type === "message" && s.events[0].binary, true);
  });
});

describe("§5.5.1 / §7 closing handshake", () => {
  it("a peer Close is answered with a Close echoing its code and reason; state CLOSED; clean", () => {
    const s = server();
    s.feed(cf(Opcode.CLOSE, hex("03 e8 62 79 65")));
    assert.deepEqual(s.events, [{ type: "close", code: 1000, reason: "bye" }]);
    assert.equal(toHex(s.written()), "88 05 03 e8 62 79 65");
    assert.equal(s.conn.state, ReadyState.CLOSED);
    assert.deepEqual(s.conn.closeStatus, { code: 1000, reason: "bye", wasClean: true });
  });
  it("an empty Close is reported as 1005 and answered with an empty Close", () => {
    const s = server();
    s.feed(cf(Opcode.CLOSE, ""));
    assert.deepEqual(s.events, [{ type: "close", code: 1005, reason: "" }]);
    assert.equal(toHex(s.written()), "88 00");
  });
  it("invalid close codes → 1002; invalid UTF-8 reason → 1007", () => {
    for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535]) {
      expectFailure(
        cf(Opcode.CLOSE, new Uint8Array([code >> 8, code & 0xff])),
        "WS_ERR_INVALID_CLOSE_CODE",
        1002,
      );
    }
    expectFailure(cf(Opcode.CLOSE, hex("03 e8 ff")), "WS_ERR_INVALID_UTF8", 1007);
  });
  it("local close: CLOSING, then the peer's Close completes the handshake", () => {
    const s = server();
    s.conn.close(4000, "done");
    assert.equal(s.conn.state, ReadyState.CLOSING);
    assert.equal(toHex(s.written()), `88 06 0f a0 ${toHex(new TextEncoder().encode("done"))}`);
    s.clearWritten();
    s.feed(cf(Opcode.CLOSE, hex("0f a0")));
    assert.equal(s.conn.state, ReadyState.CLOSED);
    assert.equal(s.written().length, 0, "no second Close frame");
    assert.equal(s.conn.closeStatus.wasClean, true);
  });
  it("data frames after our Close are still delivered; nothing is parsed after the peer's Close", () => {
    const s = server();
    s.conn.close(1000);
    s.feed(
      concat([cf(Opcode.TEXT, "late"), cf(Opcode.CLOSE, hex("03 e8")), cf(Opcode.TEXT, "ignored")]),
    );
    assert.deepEqual(
      s.events.map((e) => e.type),
      ["message", "close"],
    );
  });
  it("end of input without a Close frame is abnormal (1006)", () => {
    const s = server();
    s.conn.receiveEof();
    assert.equal(s.conn.state, ReadyState.CLOSED);
    assert.deepEqual(s.conn.closeStatus, { code: 1006, reason: "", wasClean: false });
  });
  it("after a failure nothing more is emitted, whatever arrives", () => {
    const s = server();
    s.feed(concat([hex("81 05 48 65 6c 6c 6f"), cf(Opcode.TEXT, "after")]));
    s.feed(cf(Opcode.TEXT, "more"));
    assert.equal(s.events.length, 1);
    assert.equal(s.events[0]?.type, "error");
  });
});

describe("local actions and states", () => {
  it("CONNECTING: sending or feeding before open() is a StateError", () => {
    const s = record({ role: "server" }, null, false);
    assert.equal(s.conn.state, ReadyState.CONNECTING);
    assert.throws(
      () => s.conn.sendText("x"),
      (e: unknown) => e instanceof StateError && e.code === "WS_ERR_NOT_OPEN",
    );
    assert.throws(() => s.conn.receiveData(new Uint8Array(1)), StateError);
    s.conn.open();
    assert.throws(() => s.conn.open(), StateError);
  });
  it("sending after close() is a StateError; close() twice is a no-op", () => {
    const s = server();
    s.conn.close();
    s.conn.close(1000);
    assert.equal(toHex(s.written()), "88 00");
    assert.throws(
      () => s.conn.sendText("x"),
      (e: unknown) => e instanceof StateError && e.code === "WS_ERR_NOT_OPEN",
    );
    assert.throws(() => s.conn.ping(), StateError);
  });
  it("invalid local close codes and long reasons are refused before anything is written", () => {
    const s = server();
    assert.throws(() => s.conn.close(1005), StateError);
    assert.throws(() => s.conn.close(1000, "x".repeat(124)), StateError);
    assert.equal(s.written().length, 0);
    assert.equal(s.conn.state, ReadyState.OPEN);
  });
  it("control payloads over 125 bytes are refused", () => {
    const s = server();
    assert.throws(
      () => s.conn.ping(new Uint8Array(126)),
      (e: unknown) => e instanceof StateError && e.code === "WS_ERR_CONTROL_PAYLOAD_TOO_LONG",
    );
  });
  it("fragmented sends: first frame has the opcode, then continuations (§5.4)", () => {
    const s = server();
    s.conn.sendText("ab", { fin: false });
    s.conn.sendText("cd", { fin: false });
    s.conn.sendText("e");
    assert.equal(toHex(s.written()), "01 02 61 62 00 02 63 64 80 01 65");
  });
  it("client frames are masked with fresh keys from the injected source", () => {
    let calls = 0;
    const c = record({
      role: "client",
      random: (out) => {
        calls++;
        fixedRandom(out);
      },
    });
    c.conn.sendText("Hello");
    assert.equal(toHex(c.written()), "81 85 37 fa 21 3d 7f 9f 4d 51 58");
    assert.equal(calls, 1);
  });
  it("a server's own send is never masked and a sendFrame broadcast frame is written as is", () => {
    const s = server();
    const frame = encodeFrame({ opcode: Opcode.TEXT, payload: new TextEncoder().encode("hi") });
    s.conn.sendFrame(frame);
    assert.equal(toHex(s.written()), "81 02 68 69");
  });
  it("local fail() writes one Close with the code and stops input", () => {
    const s = server();
    s.conn.fail(1008, "policy");
    assert.equal(closeCodeWritten(s.written()), 1008);
    s.feed(cf(Opcode.TEXT, "x"));
    assert.equal(s.events.length, 0);
    assert.deepEqual(s.conn.closeStatus, { code: 1008, reason: "policy", wasClean: false });
  });
  it("errors are ProtocolError instances with code and closeCode", () => {
    const s = server();
    s.feed("81 05 48 65 6c 6c 6f");
    const e = s.events[0];
    assert.ok(
      e?.type === "error" && e.error instanceof ProtocolError && e.error.closeCode === 1002,
    );
  });
});

describe("bytes held behind the compressor", () => {
  it("bufferedBytes counts payloads waiting in or behind the codec until they are written", () => {
    const pending: (() => void)[] = [];
    const codec = {
      compress: (
        data: Uint8Array,
        _fin: boolean,
        cb: (e: Error | null, r: Uint8Array | null) => void,
      ) => pending.push(() => cb(null, data)),
      decompress: () => {},
      close: () => {},
    };
    const s = record({ role: "server" }, codec);
    s.conn.sendText("a".repeat(100));
    s.conn.sendText("b".repeat(50));
    s.conn.sendText("c".repeat(10), { compress: false });
    s.conn.sendFrame(encodeFrame({ opcode: Opcode.TEXT, payload: new Uint8Array(7) }));
    assert.equal(s.conn.bufferedBytes, 100 + 50 + 10 + 9);
    assert.equal(s.written().length, 0);
    pending.shift()?.();
    assert.equal(s.conn.bufferedBytes, 50 + 10 + 9);
    pending.shift()?.();
    assert.equal(s.conn.bufferedBytes, 0, "the uncompressed frames behind it were written too");
    assert.equal(s.written().length, 2 + 100 + 2 + 50 + 2 + 10 + 9);
  });
});

/** A codec that calls back only when told to; its "compression" is the identity. */
function manualCodec(): { codec: MessageCodec; pending: (() => void)[]; next(): void } {
  const pending: (() => void)[] = [];
  const codec: MessageCodec = {
    compress: (data, _fin, cb) => {
      const copy = data.slice();
      pending.push(() => cb(null, copy));
    },
    decompress: (data, _fin, _max, cb) => {
      const copy = data.slice();
      pending.push(() => cb(null, copy));
    },
    close: () => {},
  };
  return {
    codec,
    pending,
    next: () => {
      const callback = pending.shift();
      assert.ok(callback !== undefined, "no codec call pending");
      callback();
    },
  };
}

const kinds = (events: Event[]) =>
  events.map((e) => (e.type === "message" ? `message ${e.text}` : e.type));

describe("an asynchronous codec: end of input and the closing handshake keep their order", () => {
  it("receiveEof while frames wait behind a decompression: they are processed in order, the EOF after", () => {
    const m = manualCodec();
    const c = record({ role: "client" }, m.codec);
    c.conn.close(1000); // we close right after sending, as `duplex connect` does at end of input
    c.feed(concat([hex("c1 01 61"), hex("c1 01 62"), hex("88 02 03 e8")]));
    c.conn.receiveEof(); // the server ended TCP after its Close
    assert.equal(c.conn.state, ReadyState.CLOSING, "frames are still waiting for the codec");
    assert.equal(c.closedCount(), 0);
    m.next();
    assert.deepEqual(kinds(c.events), ["message a"]);
    m.next();
    assert.deepEqual(kinds(c.events), ["message a", "message b", "close"]);
    assert.equal(c.conn.state, ReadyState.CLOSED);
    assert.deepEqual(c.conn.closeStatus, { code: 1000, reason: "", wasClean: true });
    assert.equal(c.closedCount(), 1);
  });

  it("receiveEof without a Close: the waiting frames are delivered, then CLOSED with 1006", () => {
    const m = manualCodec();
    const c = record({ role: "client" }, m.codec);
    c.feed(concat([hex("c1 01 61"), hex("81 01 62"), hex("81 05 48 65")])); // the last is cut
    c.conn.receiveEof();
    c.feed("6c 6c 6f"); // nothing is read after the end of input
    assert.equal(c.conn.state, ReadyState.OPEN);
    m.next();
    assert.deepEqual(kinds(c.events), ["message a", "message b"]);
    assert.equal(c.conn.state, ReadyState.CLOSED);
    assert.deepEqual(c.conn.closeStatus, { code: 1006, reason: "", wasClean: false });
    assert.equal(c.closedCount(), 1);
  });

  it("the Close reply waits for the messages in the compressor: written last, CLOSED only then", () => {
    const m = manualCodec();
    const s = record({ role: "server" }, m.codec);
    s.feed(cf(Opcode.TEXT, "a"));
    s.conn.sendText("echo a"); // compressed: waits for the codec
    s.conn.sendText("plain", { compress: false }); // queued behind it
    s.feed(cf(Opcode.CLOSE, hex("03 e8")));
    assert.equal(s.conn.state, ReadyState.CLOSING);
    assert.deepEqual(kinds(s.events), ["message a"], "onCloseFrame waits for the reply");
    assert.equal(s.written().length, 0);
    assert.equal(s.closedCount(), 0);
    m.next();
    const text = (t: string) => toHex(new TextEncoder().encode(t));
    assert.equal(
      toHex(s.written()),
      `c1 06 ${text("echo a")} 81 05 ${text("plain")} 88 02 03 e8`,
      "the replies, then the Close",
    );
    assert.equal(s.conn.state, ReadyState.CLOSED);
    assert.deepEqual(kinds(s.events), ["message a", "close"]);
    assert.deepEqual(s.conn.closeStatus, { code: 1000, reason: "", wasClean: true });
    assert.equal(s.closedCount(), 1);
  });

  it("the peer's Close arriving while our Close waits behind the compressor: CLOSED once ours is written", () => {
    const m = manualCodec();
    const s = record({ role: "server" }, m.codec);
    s.conn.sendText("bye");
    s.conn.close(1000);
    s.feed(cf(Opcode.CLOSE, hex("03 e8")));
    s.conn.receiveEof();
    assert.equal(s.conn.state, ReadyState.CLOSING);
    assert.equal(s.events.length, 0);
    m.next();
    assert.equal(toHex(s.written()), "c1 03 62 79 65 88 02 03 e8");
    assert.deepEqual(kinds(s.events), ["close"]);
    assert.deepEqual(s.conn.closeStatus, { code: 1000, reason: "", wasClean: true });
    assert.equal(s.closedCount(), 1);
  });

  it("abort() stops at once: queued input and output are dropped, nothing is written later", () => {
    const m = manualCodec();
    const s = record({ role: "server" }, m.codec);
    s.conn.sendText("never");
    s.conn.close(1000);
    s.conn.abort();
    assert.equal(s.conn.state, ReadyState.CLOSED);
    assert.equal(s.conn.bufferedBytes, 0);
    m.next();
    assert.equal(s.written().length, 0);
    assert.deepEqual(s.conn.closeStatus, { code: 1006, reason: "", wasClean: false });
    assert.equal(s.closedCount(), 1);
  });

  it("a decompression that fails later: 1007, CLOSED, and reading is no longer held back", () => {
    let callback: ((error: Error | null, out: Uint8Array | null) => void) | undefined;
    const codec: MessageCodec = {
      compress: () => {},
      decompress: (_data, _fin, _max, cb) => {
        callback = cb;
      },
      close: () => {},
    };
    const c = record({ role: "client" }, codec);
    c.feed(concat([hex("c1 01 61"), hex("81 01 62")]));
    assert.equal(c.conn.isReceivePaused, true);
    callback?.(new Error("invalid stored block lengths"), null);
    assert.deepEqual(kinds(c.events), ["error"]);
    assert.equal(c.conn.state, ReadyState.CLOSED);
    assert.equal(c.conn.isReceivePaused, false, "the I/O layer may read on to the end of input");
    assert.equal(c.closedCount(), 1);
  });

  it("onClosed is called once whichever way the connection ends", () => {
    const ways: [string, (r: Recorder) => void][] = [
      ["fail()", (r) => r.conn.fail(1008)],
      ["protocol error", (r) => r.feed("81 05 48 65 6c 6c 6f")],
      ["end of input", (r) => r.conn.receiveEof()],
      ["abort()", (r) => r.conn.abort()],
      ["Close exchange", (r) => r.feed(cf(Opcode.CLOSE, ""))],
    ];
    for (const [name, end] of ways) {
      const s = server();
      end(s);
      end(s);
      s.conn.receiveEof();
      s.conn.abort();
      assert.equal(s.conn.state, ReadyState.CLOSED, name);
      assert.equal(s.closedCount(), 1, name);
    }
  });
});
