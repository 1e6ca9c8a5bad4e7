import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { applyMask, copyMasked } from "../../src/protocol/mask.js";
import { hex, maskRef } from "./helpers.js";

describe("RFC 6455 §5.3 masking", () => {
  it("§5.7 example: 'Hello' masked with 37 fa 21 3d", () => {
    const data = new TextEncoder().encode("Hello");
    applyMask(data, hex("37 fa 21 3d"));
    assert.deepEqual(data, hex("7f 9f 4d 51 58"));
  });

  it("matches the byte-by-byte definition for any length, alignment, range and key offset", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.uint8Array({ minLength: 4, maxLength: 4 }),
        fc.nat(7),
        fc.nat(3),
        (payload, key, pad, keyOffset) => {
          // Place the payload at an arbitrary byte offset to exercise the alignment prologue.
          const backing = new Uint8Array(payload.length + pad);
          backing.set(payload, pad);
          const view = backing.subarray(pad);
          applyMask(view, key, 0, view.length, keyOffset);
          const rotated = new Uint8Array([0, 1, 2, 3].map((i) => key[(i + keyOffset) % 4] ?? 0));
          assert.deepEqual(view, maskRef(payload, rotated));
          assert.deepEqual(
            backing.subarray(0, pad),
            new Uint8Array(pad),
            "bytes before the range untouched",
          );
        },
      ),
    );
  });

  it("unmasking piece by piece with running offsets equals unmasking at once", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 200 }),
        fc.uint8Array({ minLength: 4, maxLength: 4 }),
        fc.nat(200),
        (p, key, cut) => {
          const at = Math.min(cut, p.length);
          const whole = p.slice();
          applyMask(whole, key);
          const parts = p.slice();
          applyMask(parts, key, 0, at, 0);
          applyMask(parts, key, at, parts.length, at);
          assert.deepEqual(parts, whole);
        },
      ),
    );
  });

  it("copyMasked leaves the source untouched", () => {
    const src = new Uint8Array(100).fill(7);
    const dst = new Uint8Array(102);
    copyMasked(src, dst, 2, hex("01 02 03 04"));
    assert.ok(src.every((b) => b === 7));
    assert.deepEqual(dst.subarray(2), maskRef(src, hex("01 02 03 04")));
  });
});
