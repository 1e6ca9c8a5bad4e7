import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Backoff, backoffDelay } from "../../../src/realtime/client/backoff.js";

describe("full-jitter backoff", () => {
  it("delay(attempt) = random() * min(maxMs, minMs * 2 ** attempt)", () => {
    const half = (): number => 0.5;
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5, 60, 2000].map((a) => backoffDelay(a, 100, 1000, half)),
      [50, 100, 200, 400, 500, 500, 500, 500],
    );
    assert.equal(
      backoffDelay(3, 100, 1000, () => 0),
      0,
    );
    assert.equal(
      backoffDelay(3, 100, 1000, () => 0.999),
      799.2,
    );
  });

  it("counts attempts and starts over after reset()", () => {
    const b = new Backoff({ minMs: 10, maxMs: 1000, random: () => 1 });
    assert.deepEqual([b.next(), b.next(), b.next()], [10, 20, 40]);
    assert.equal(b.attempt, 3);
    b.reset();
    assert.equal(b.next(), 10);
  });

  it("rejects bad bounds", () => {
    assert.throws(() => new Backoff({ minMs: 100, maxMs: 10 }), RangeError);
    assert.throws(() => new Backoff({ minMs: -1, maxMs: 10 }), RangeError);
  });
});
