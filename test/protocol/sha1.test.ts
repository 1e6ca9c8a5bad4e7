import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import fc from "fast-check";
import { base64Decode, base64Encode, sha1 } from "../../src/protocol/sha1.js";

const text = (s: string) => new TextEncoder().encode(s);
const B64_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";
/** Strings over the Base64 alphabet plus "=", so the decoder's edge cases get exercised. */
const base64ish = fc.string({ unit: fc.constantFrom(...B64_CHARS), maxLength: 12 });
const hexOf = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

describe("sha1 (FIPS 180-4, used by RFC 6455 §4.2.2)", () => {
  it('FIPS 180 example "abc"', () => {
    assert.equal(hexOf(sha1(text("abc"))), "a9993e364706816aba3e25717850c26c9cd0d89d");
  });

  it("empty message", () => {
    assert.equal(hexOf(sha1(new Uint8Array(0))), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  });

  it("FIPS 180 two-block example (448 bits)", () => {
    const msg = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    assert.equal(hexOf(sha1(text(msg))), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  });

  it('FIPS 180 long message: one million "a"', () => {
    const msg = new Uint8Array(1_000_000).fill(0x61);
    assert.equal(hexOf(sha1(msg)), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
  });

  it("padding boundaries 0..130 bytes match node:crypto", () => {
    for (let n = 0; n <= 130; n++) {
      const msg = Uint8Array.from({ length: n }, (_, i) => (i * 31 + n) & 0xff);
      assert.equal(hexOf(sha1(msg)), createHash("sha1").update(msg).digest("hex"), `length ${n}`);
    }
  });

  it("property: equals node:crypto createHash('sha1') for arbitrary bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), (bytes) => {
        assert.equal(hexOf(sha1(bytes)), createHash("sha1").update(bytes).digest("hex"));
      }),
      { numRuns: 300 },
    );
  });
});

describe("base64 (RFC 4648 §4)", () => {
  it("RFC 4648 §10 test vectors encode and decode", () => {
    const vectors: [string, string][] = [
      ["", ""],
      ["f", "Zg=="],
      ["fo", "Zm8="],
      ["foo", "Zm9v"],
      ["foob", "Zm9vYg=="],
      ["fooba", "Zm9vYmE="],
      ["foobar", "Zm9vYmFy"],
    ];
    for (const [plain, encoded] of vectors) {
      assert.equal(base64Encode(text(plain)), encoded);
      assert.deepEqual(base64Decode(encoded), text(plain));
    }
  });

  it("uses the standard alphabet (+ and /)", () => {
    assert.equal(base64Encode(Uint8Array.of(0xfb, 0xff, 0xbf)), "+/+/");
    assert.deepEqual(base64Decode("+/+/"), Uint8Array.of(0xfb, 0xff, 0xbf));
  });

  it("strict decoding rejects bad length, characters, padding and non-zero pad bits", () => {
    for (const bad of [
      "Zg", // missing padding
      "Zg=", // wrong length
      "Zg===", // too much padding
      "====",
      "Z===",
      "Zm9v\n",
      " Zm9v",
      "Zm-v", // URL-safe alphabet
      "Zm_v",
      "Zm9vYg=a",
      "Zg==Zm9v", // padding in the middle
      "Zm=v",
      "Zh==", // non-canonical: low bits set before "=="
      "Zm9=", // non-canonical: low bits set before "="
      "Zm9vé===",
      "dGhlIHNhbXBsZSBub25jZR==",
    ]) {
      assert.equal(base64Decode(bad), null, JSON.stringify(bad));
    }
  });

  it("property: decode(encode(x)) = x and encode matches Buffer", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const encoded = base64Encode(bytes);
        assert.equal(encoded, Buffer.from(bytes).toString("base64"));
        assert.deepEqual(base64Decode(encoded), bytes);
      }),
    );
  });

  it("property: decode accepts exactly the canonical encodings Buffer produces", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 24 }), base64ish), (s) => {
        const decoded = base64Decode(s);
        if (decoded !== null) assert.equal(Buffer.from(decoded).toString("base64"), s);
      }),
      { numRuns: 2000 },
    );
  });
});
