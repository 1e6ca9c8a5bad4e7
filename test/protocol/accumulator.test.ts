import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { ByteAccumulator } from "../../src/protocol/accumulator.js";
import { concat } from "./helpers.js";

function counting(): { alloc: (n: number) => Uint8Array; sizes: number[] } {
  const sizes: number[] = [];
  return {
    sizes,
    alloc: (n) => {
      sizes.push(n);
      return new Uint8Array(n);
    },
  };
}

describe("ByteAccumulator", () => {
  it("joins any sequence of pieces exactly, and starts over after take()", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 9000 }), { maxLength: 20 }), (pieces) => {
        const acc = new ByteAccumulator((n) => new Uint8Array(n));
        for (const p of pieces) acc.append(p, 1 << 24);
        assert.equal(
          acc.length,
          pieces.reduce((n, p) => n + p.length, 0),
        );
        assert.deepEqual(acc.take(), concat(pieces));
        assert.equal(acc.length, 0);
        acc.append(new Uint8Array([7]), 10);
        assert.deepEqual(acc.take(), new Uint8Array([7]));
      }),
      { numRuns: 200 },
    );
  });

  it("a single large piece is returned as is (no copy)", () => {
    const { alloc, sizes } = counting();
    const acc = new ByteAccumulator(alloc);
    const big = new Uint8Array(100_000);
    acc.append(big, 1 << 24);
    assert.equal(acc.take(), big);
    assert.deepEqual(sizes, []);
  });

  it("large pieces are copied once, into a buffer of the exact size", () => {
    const { alloc, sizes } = counting();
    const acc = new ByteAccumulator(alloc);
    for (let i = 0; i < 16; i++) acc.append(new Uint8Array(65536).fill(i), 1 << 24);
    const out = acc.take();
    assert.equal(out.length, 16 * 65536);
    assert.deepEqual(sizes, [16 * 65536]);
  });

  it("10,000 one-byte pieces cost a few buffers, not one per piece", () => {
    const { alloc, sizes } = counting();
    const acc = new ByteAccumulator(alloc);
    for (let i = 0; i < 10_000; i++) acc.append(new Uint8Array([i & 0xff]), 1 << 24);
    assert.equal(acc.take().length, 10_000);
    assert.ok(sizes.length < 20, `${sizes.length} allocations`);
    assert.ok(sizes.reduce((a, b) => a + b, 0) < 4 * 10_000, "allocated bytes stay proportional");
  });

  it("never grows the small-piece buffer beyond the limit", () => {
    const { alloc, sizes } = counting();
    const acc = new ByteAccumulator(alloc);
    for (let i = 0; i < 100; i++) acc.append(new Uint8Array(10), 300);
    assert.ok(Math.max(...sizes) <= 300);
  });
});
