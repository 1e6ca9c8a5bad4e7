import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  CloseCode,
  decodeClosePayload,
  encodeClosePayload,
  isValidWireCloseCode,
  MAX_CLOSE_REASON_BYTES,
} from "../../src/protocol/close-codes.js";
import { ProtocolError, StateError, type StateErrorCode } from "../../src/protocol/errors.js";

/** The wire-valid codes below 3000, written out (RFC 6455 §7.4.1 + the IANA registry). */
const VALID_BELOW_3000 = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014];

function stateError(code: StateErrorCode) {
  return (e: unknown) => e instanceof StateError && e.code === code;
}

function closeFrameBody(code: number, reason: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(2 + reason.length);
  out[0] = code >>> 8;
  out[1] = code & 0xff;
  out.set(reason, 2);
  return out;
}

function decoded(payload: Uint8Array): { code: number; reason: string } {
  const r = decodeClosePayload(payload);
  if (r instanceof ProtocolError) assert.fail(`unexpected ${r.code}: ${r.message}`);
  return r;
}

function failure(payload: Uint8Array): ProtocolError {
  const r = decodeClosePayload(payload);
  if (!(r instanceof ProtocolError)) assert.fail(`expected a ProtocolError, got ${r.code}`);
  return r;
}

describe("isValidWireCloseCode", () => {
  it("classifies every code 0..5000", () => {
    const expected = new Set(VALID_BELOW_3000);
    for (let code = 3000; code <= 4999; code++) expected.add(code);
    let valid = 0;
    for (let code = 0; code <= 5000; code++) {
      const got = isValidWireCloseCode(code);
      assert.equal(got, expected.has(code), `code ${code}`);
      if (got) valid++;
    }
    assert.equal(valid, 12 + 2000);
    assert.equal(
      5001 - valid,
      1000 + 3 + 1 + 1984 + 1,
      "invalid: <1000, 1004-1006, 1015, 1016-2999, 5000",
    );
  });

  it("names the reserved and boundary codes", () => {
    for (const code of [999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535]) {
      assert.equal(isValidWireCloseCode(code), false, `${code}`);
    }
    for (const code of [1000, 1003, 1007, 1012, 1013, 1014, 3000, 4999]) {
      assert.equal(isValidWireCloseCode(code), true, `${code}`);
    }
  });

  it("rejects non-integers", () => {
    for (const code of [-1, 1000.5, Number.NaN, Number.POSITIVE_INFINITY, 3000.0001]) {
      assert.equal(isValidWireCloseCode(code), false, `${code}`);
    }
  });
});

describe("CloseCode", () => {
  it("has the registry's numbers", () => {
    assert.deepEqual(
      { ...CloseCode },
      {
        NORMAL: 1000,
        GOING_AWAY: 1001,
        PROTOCOL_ERROR: 1002,
        UNSUPPORTED_DATA: 1003,
        NO_STATUS: 1005,
        ABNORMAL: 1006,
        INVALID_PAYLOAD: 1007,
        POLICY_VIOLATION: 1008,
        MESSAGE_TOO_BIG: 1009,
        MANDATORY_EXTENSION: 1010,
        INTERNAL_ERROR: 1011,
        SERVICE_RESTART: 1012,
        TRY_AGAIN_LATER: 1013,
        BAD_GATEWAY: 1014,
        TLS_HANDSHAKE: 1015,
      },
    );
    assert.ok(Object.isFrozen(CloseCode));
  });

  it("only the three local-only codes are invalid on the wire", () => {
    const notOnWire = Object.entries(CloseCode)
      .filter(([, code]) => !isValidWireCloseCode(code))
      .map(([name]) => name);
    assert.deepEqual(notOnWire, ["NO_STATUS", "ABNORMAL", "TLS_HANDSHAKE"]);
  });
});

describe("encodeClosePayload", () => {
  it("no code: an empty body", () => {
    assert.deepEqual(encodeClosePayload(), new Uint8Array(0));
    assert.deepEqual(encodeClosePayload(undefined, ""), new Uint8Array(0));
  });

  it("a reason without a code is refused", () => {
    assert.throws(
      () => encodeClosePayload(undefined, "bye"),
      stateError("WS_ERR_INVALID_ARGUMENT"),
    );
  });

  it("code only: two big-endian bytes", () => {
    assert.deepEqual(encodeClosePayload(1000), Uint8Array.of(0x03, 0xe8));
    assert.deepEqual(encodeClosePayload(4999, ""), Uint8Array.of(0x13, 0x87));
  });

  it("code and reason", () => {
    assert.deepEqual(
      encodeClosePayload(1001, "bye é"),
      Uint8Array.of(0x03, 0xe9, 0x62, 0x79, 0x65, 0x20, 0xc3, 0xa9),
    );
  });

  it("accepts every wire-valid code and refuses every other in 0..5000", () => {
    for (let code = 0; code <= 5000; code++) {
      if (isValidWireCloseCode(code)) {
        assert.equal(encodeClosePayload(code).length, 2);
      } else {
        assert.throws(
          () => encodeClosePayload(code),
          stateError("WS_ERR_INVALID_CLOSE_CODE_LOCAL"),
          `${code}`,
        );
      }
    }
    for (const code of [-1, 1000.5, Number.NaN, 65536, 1e9]) {
      assert.throws(
        () => encodeClosePayload(code),
        stateError("WS_ERR_INVALID_CLOSE_CODE_LOCAL"),
        `${code}`,
      );
    }
  });

  it("rejects reasons over 123 bytes, counting UTF-8 bytes, not characters", () => {
    const fits = [
      "a".repeat(123),
      `${"é".repeat(61)}a`, // 2-byte characters
      "€".repeat(41), // 3-byte characters
      `${"😀".repeat(30)}abc`, // 4-byte characters
      `${"😀".repeat(29)}€€a`, // mixed: 116 + 6 + 1
    ];
    const tooLong = [
      "a".repeat(124),
      "é".repeat(62),
      `${"€".repeat(41)}a`,
      "😀".repeat(31),
      `${"😀".repeat(30)}éé`, // mixed: 120 + 4
      `${"😀".repeat(30)}€a`, // mixed: 120 + 3 + 1
    ];
    for (const reason of fits) {
      assert.equal(new TextEncoder().encode(reason).length, 123);
      const body = encodeClosePayload(1000, reason);
      assert.equal(body.length, 125);
      assert.equal(decoded(body).reason, reason);
    }
    for (const reason of tooLong) {
      assert.equal(new TextEncoder().encode(reason).length, 124);
      assert.throws(
        () => encodeClosePayload(1000, reason),
        stateError("WS_ERR_CLOSE_REASON_TOO_LONG"),
      );
    }
    assert.equal(MAX_CLOSE_REASON_BYTES, 123);
  });

  it("rejects lone surrogates instead of replacing them", () => {
    for (const reason of ["\ud800", "a\udc00b", "end\ud83d", "\ude00\ud83d", "😀\ud800"]) {
      assert.throws(
        () => encodeClosePayload(1000, reason),
        stateError("WS_ERR_INVALID_ARGUMENT"),
        JSON.stringify(reason),
      );
    }
    assert.deepEqual(decoded(encodeClosePayload(1000, "\ud83d\ude00")).reason, "😀");
  });

  it("rejects a non-string reason", () => {
    const encodeLoose = encodeClosePayload as (code?: unknown, reason?: unknown) => Uint8Array;
    assert.throws(() => encodeLoose(1000, 42), stateError("WS_ERR_INVALID_ARGUMENT"));
    assert.throws(() => encodeLoose("1000"), stateError("WS_ERR_INVALID_CLOSE_CODE_LOCAL"));
    assert.throws(() => encodeLoose(null), stateError("WS_ERR_INVALID_CLOSE_CODE_LOCAL"));
  });
});

describe("decodeClosePayload", () => {
  it("empty body: 1005 and no reason", () => {
    assert.deepEqual(decodeClosePayload(new Uint8Array(0)), { code: 1005, reason: "" });
  });

  it("1-byte body: WS_ERR_INVALID_CLOSE_PAYLOAD, close with 1002", () => {
    for (const b of [0x00, 0x03, 0xe8, 0xff]) {
      const e = failure(Uint8Array.of(b));
      assert.equal(e.code, "WS_ERR_INVALID_CLOSE_PAYLOAD");
      assert.equal(e.closeCode, 1002);
    }
  });

  it("classifies every 16-bit code like isValidWireCloseCode", () => {
    for (let code = 0; code <= 0xffff; code++) {
      const r = decodeClosePayload(closeFrameBody(code));
      if (isValidWireCloseCode(code)) {
        assert.deepEqual(r, { code, reason: "" });
      } else {
        assert.ok(r instanceof ProtocolError, `${code}`);
        assert.equal(r.code, "WS_ERR_INVALID_CLOSE_CODE");
        assert.equal(r.closeCode, 1002);
      }
    }
  });

  it("the invalid code wins over an invalid reason", () => {
    assert.equal(
      failure(closeFrameBody(1005, Uint8Array.of(0xff))).code,
      "WS_ERR_INVALID_CLOSE_CODE",
    );
  });

  it("reason not UTF-8: WS_ERR_INVALID_UTF8, close with 1007", () => {
    const bad = [
      [0xff],
      [0x80],
      [0xc0, 0xaf], // overlong "/"
      [0xed, 0xa0, 0x80], // surrogate
      [0xf4, 0x90, 0x80, 0x80], // above U+10FFFF
      [0x6f, 0x6b, 0xce], // truncated at the end
      [0xce, 0xba, 0xe1, 0xbd], // truncated κό
    ];
    for (const bytes of bad) {
      const e = failure(closeFrameBody(1000, Uint8Array.from(bytes)));
      assert.equal(e.code, "WS_ERR_INVALID_UTF8", bytes.join(" "));
      assert.equal(e.closeCode, 1007);
    }
  });

  it("returns rather than throws", () => {
    assert.doesNotThrow(() => decodeClosePayload(Uint8Array.of(1)));
    assert.doesNotThrow(() => decodeClosePayload(closeFrameBody(1000, Uint8Array.of(0xff))));
  });

  it("keeps a leading U+FEFF in the reason", () => {
    assert.deepEqual(decoded(closeFrameBody(1000, Uint8Array.of(0xef, 0xbb, 0xbf, 0x41))), {
      code: 1000,
      reason: "\ufeffA",
    });
  });

  it("reads a subarray with a non-zero byteOffset", () => {
    const frame = Uint8Array.of(0x88, 0x05, 0x0b, 0xb8, 0x68, 0x69, 0x21, 0xff);
    assert.deepEqual(decoded(frame.subarray(2, 7)), { code: 3000, reason: "hi!" });
  });

  it("accepts a 125-byte body (123-byte reason)", () => {
    const reason = `${"ω".repeat(61)}!`; // 122 + 1
    assert.deepEqual(decoded(closeFrameBody(4000, new TextEncoder().encode(reason))), {
      code: 4000,
      reason,
    });
  });
});

describe("close payload round trip", () => {
  it("encode → decode for fixed examples", () => {
    const examples: [number, string][] = [
      [1000, ""],
      [1001, "going away"],
      [1011, "κόσμε"],
      [1014, "上游网关错误"],
      [3000, "😀 ok"],
      [4999, "\ufeffkept BOM"],
      [1007, "\u0000nul inside\u0000"],
    ];
    for (const [code, reason] of examples) {
      assert.deepEqual(decoded(encodeClosePayload(code, reason)), { code, reason });
    }
  });

  it("encode → decode for any valid code and any well-formed reason that fits", () => {
    const validCode = fc.oneof(
      fc.constantFrom(...VALID_BELOW_3000),
      fc.integer({ min: 3000, max: 4999 }),
    );
    const reason = fc
      .string({ unit: "binary", maxLength: 40 })
      .filter((s) => new TextEncoder().encode(s).length <= MAX_CLOSE_REASON_BYTES);
    fc.assert(
      fc.property(validCode, reason, (code, r) => {
        const body = encodeClosePayload(code, r);
        assert.equal(body.length, 2 + new TextEncoder().encode(r).length);
        assert.deepEqual(decodeClosePayload(body), { code, reason: r });
      }),
      { numRuns: 2000 },
    );
  });

  it("encode never accepts a reason that does not fit, and never throws otherwise", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 80 }), (r) => {
        const fits = new TextEncoder().encode(r).length <= MAX_CLOSE_REASON_BYTES;
        try {
          encodeClosePayload(1000, r);
          return fits;
        } catch (e) {
          return !fits && e instanceof StateError && e.code === "WS_ERR_CLOSE_REASON_TOO_LONG";
        }
      }),
      { numRuns: 1000 },
    );
  });
});
