import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { HandshakeError } from "../../src/protocol/errors.js";
import { isToken, parseSubprotocols } from "../../src/protocol/subprotocol-header.js";

function assertRejected(value: string, pattern?: RegExp): void {
  assert.throws(
    () => parseSubprotocols(value),
    (e: unknown) =>
      e instanceof HandshakeError &&
      e.code === "WS_ERR_HANDSHAKE_SUBPROTOCOL" &&
      e.httpStatus === 400 &&
      (pattern === undefined || pattern.test(e.message)),
    JSON.stringify(value.slice(0, 60)),
  );
}

const TCHARS = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const token = fc.string({ unit: fc.constantFrom(...TCHARS), minLength: 1, maxLength: 12 });
const ows = fc.string({ unit: fc.constantFrom(" ", "\t"), maxLength: 3 });

describe("parseSubprotocols (RFC 6455 §4.1 / §11.3.4: 1#token)", () => {
  it("parses a single token", () => {
    assert.deepEqual(parseSubprotocols("chat"), ["chat"]);
  });

  it("parses a list with optional whitespace around commas (RFC 7230 §7)", () => {
    assert.deepEqual(parseSubprotocols(" chat ,\tsuperchat,v2.json  "), [
      "chat",
      "superchat",
      "v2.json",
    ]);
  });

  it("accepts several header lines joined with ', ' (RFC 7230 §3.2.2)", () => {
    assert.deepEqual(parseSubprotocols(["a, b", "c"].join(", ")), ["a", "b", "c"]);
  });

  it("keeps every tchar (RFC 7230 §3.2.6)", () => {
    assert.deepEqual(parseSubprotocols(TCHARS), [TCHARS]);
  });

  it("rejects empty elements, naming the index (RFC 6455 §4.1: non-empty strings)", () => {
    assertRejected("", /index 0/);
    assertRejected("   ", /index 0/);
    assertRejected(",chat", /index 0/);
    assertRejected("chat,", /index 1/);
    assertRejected("a,,b", /index 1/);
    assertRejected("a, ,b", /index 1/);
  });

  it("rejects duplicates, naming the index (RFC 6455 §4.1: unique strings)", () => {
    assertRejected("chat, chat", /duplicate.*index 1/);
    assertRejected("a, b, c, b", /index 3/);
  });

  it("compares case-sensitively, so Chat and chat are distinct", () => {
    assert.deepEqual(parseSubprotocols("Chat, chat"), ["Chat", "chat"]);
  });

  it("rejects separators, spaces inside tokens, controls and non-ASCII", () => {
    for (const bad of [
      "a b",
      "a;b",
      '"chat"',
      "chat/1",
      "a=b",
      "(x)",
      "a\u0000",
      "a\r\nX: y",
      "caf\u00e9",
      "a\u{1F600}",
      "a, b c",
    ]) {
      assertRejected(bad);
    }
  });

  it("error message names the position of an invalid character", () => {
    assertRejected("a, b;", /position 4/);
  });

  it("64 KiB of whitespace is rejected, and a token padded by 64 KiB of OWS parses (linear)", () => {
    const blanks = " \t".repeat(32 * 1024);
    assertRejected(blanks, /empty element at index 0/);
    assert.deepEqual(parseSubprotocols(`a${blanks},${blanks}b${blanks}`), ["a", "b"]);
    assertRejected(`${blanks},`, /index 0/);
  });

  it("64 KiB header of many short elements parses (duplicate check is a Set)", () => {
    const names = Array.from({ length: 8000 }, (_, i) => `p${i}`);
    assert.deepEqual(parseSubprotocols(names.join(", ")), names);
  });

  it("property: join(', ') of unique tokens with random OWS round-trips", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(token, { minLength: 1, maxLength: 10 }),
        ows,
        ows,
        (names, a, b) => {
          assert.deepEqual(parseSubprotocols(names.join(`${a},${b}`)), names);
        },
      ),
    );
  });

  it("property: arbitrary strings either parse to tokens or throw HandshakeError", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string(), fc.string({ unit: fc.constantFrom(...'a, \t;"') })),
        (s) => {
          try {
            const out = parseSubprotocols(s);
            assert.ok(out.length > 0 && out.every(isToken));
            assert.equal(new Set(out).size, out.length);
          } catch (e) {
            assert.ok(e instanceof HandshakeError, String(e));
            assert.equal(e.code, "WS_ERR_HANDSHAKE_SUBPROTOCOL");
            assert.equal(e.httpStatus, 400);
          }
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe("isToken (RFC 7230 §3.2.6)", () => {
  it("accepts tchars only and rejects the empty string", () => {
    assert.equal(isToken("permessage-deflate"), true);
    assert.equal(isToken(""), false);
    assert.equal(isToken("a b"), false);
    assert.equal(isToken("a,b"), false);
    assert.equal(isToken("\u00ff"), false);
  });
});
