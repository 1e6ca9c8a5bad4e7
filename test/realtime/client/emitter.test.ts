import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Emitter } from "../../../src/realtime/client/emitter.js";

interface Events {
  n: number;
  s: string;
}

describe("Emitter", () => {
  it("calls listeners in order with the event's argument; on() returns a remover", () => {
    const e = new Emitter<Events>();
    const seen: string[] = [];
    const off = e.on("n", (n) => seen.push(`a${n}`));
    e.on("n", (n) => seen.push(`b${n}`));
    e.on("s", (s) => seen.push(s));
    e.emit("n", 1);
    off();
    e.emit("n", 2);
    e.emit("s", "x");
    assert.deepEqual(seen, ["a1", "b1", "b2", "x"]);
    assert.equal(e.listenerCount("n"), 1);
  });

  it("once() fires once and off() removes it before it fires", () => {
    const e = new Emitter<Events>();
    const seen: number[] = [];
    e.once("n", (n) => seen.push(n));
    const never = (n: number): void => {
      seen.push(n * 100);
    };
    e.once("n", never);
    e.off("n", never);
    e.emit("n", 1);
    e.emit("n", 2);
    assert.deepEqual(seen, [1]);
    assert.equal(e.listenerCount("n"), 0);
  });

  it("a listener added or removed during emit() does not change that emit", () => {
    const e = new Emitter<Events>();
    const seen: string[] = [];
    const b = (): void => {
      seen.push("b");
    };
    e.on("n", () => {
      seen.push("a");
      e.off("n", b);
      e.on("n", () => seen.push("c"));
    });
    e.on("n", b);
    e.emit("n", 0);
    assert.deepEqual(seen, ["a", "b"]);
  });

  it("a throwing listener does not stop the others; the error is reported", () => {
    const reported: unknown[] = [];
    const e = new Emitter<Events>((error) => reported.push(error));
    const seen: number[] = [];
    const boom = new Error("boom");
    e.on("n", () => {
      throw boom;
    });
    e.on("n", (n) => seen.push(n));
    e.emit("n", 7);
    assert.deepEqual(seen, [7]);
    assert.deepEqual(reported, [boom]);
  });

  it("by default re-throws a listener's error from a microtask, not from emit()", async () => {
    const e = new Emitter<Events>();
    const boom = new Error("boom");
    e.on("n", () => {
      throw boom;
    });
    const original = globalThis.queueMicrotask;
    const queued: (() => void)[] = [];
    globalThis.queueMicrotask = (fn) => queued.push(fn);
    try {
      e.emit("n", 1); // does not throw
    } finally {
      globalThis.queueMicrotask = original;
    }
    assert.equal(queued.length, 1);
    assert.throws(() => queued[0]?.(), boom);
  });
});
