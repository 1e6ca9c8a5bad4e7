/**
 * Typed channels: `client.channel<T>()` types what is published and what is delivered. The
 * type-level checks run in `npm run typecheck` (each `@ts-expect-error` must be an error, or the
 * type check fails); the runtime part only makes the file a test.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { RealtimeClient, Subscription } from "../../../src/realtime/client/index.js";

interface Cursor {
  readonly x: number;
  readonly y: number;
}

/** Never called: its body only has to type-check. */
export function typeChecks(client: RealtimeClient): void {
  const cursors: Subscription<Cursor> = client.channel<Cursor>("cursors:board");
  void cursors.publish({ x: 1, y: 2 });
  // @ts-expect-error — a string is not a Cursor
  void cursors.publish("x");
  // @ts-expect-error — a Cursor needs y
  void cursors.publish({ x: 1 });
  cursors.on("publication", (p) => {
    const x: number = p.data.x;
    const offset: number = p.offset;
    // @ts-expect-error — no such field on Cursor
    void p.data.z;
    void x;
    void offset;
  });
  void cursors.history().then((page) => {
    const first: Cursor | undefined = page.publications[0]?.data;
    void first;
  });
  // @ts-expect-error — not an event of a subscription
  cursors.on("nothing", () => undefined);
}

describe("typed channels", () => {
  it("the type checks above compile (see npm run typecheck)", () => {
    assert.equal(typeof typeChecks, "function");
  });
});
