/**
 * HttpSocket (the client's HTTP transports) against a scripted fetch(): what it asks of the
 * platform, request by request.
 */
import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import { describe, it } from "node:test";
import { HttpSocket } from "../../../src/realtime/client/http-socket.js";
import type { FetchLike, FetchResponseLike } from "../../../src/realtime/client/types.js";

function answer(lines: string[]): FetchResponseLike {
  const text = lines.map((l) => `${l}\n`).join("");
  return { ok: true, status: 200, body: null, text: async () => text };
}

describe("HttpSocket: long-polling", () => {
  it("a long poll loop leaves no listener behind on any signal (fetch keeps the ones it adds)", async () => {
    const POLLS = 300;
    const signals: AbortSignal[] = [];
    let polls = 0;
    let done: () => void = () => undefined;
    const finished = new Promise<void>((r) => {
      done = r;
    });
    const fetch: FetchLike = async (url, init) => {
      // As undici does: a listener on the request's signal that is never removed.
      init.signal.addEventListener("abort", () => undefined);
      signals.push(init.signal);
      assert.ok(url.endsWith("/poll"));
      polls++;
      if (polls === POLLS) done();
      if (polls > POLLS) await new Promise(() => undefined); // hold the last one
      return answer(
        polls === 1 ? ['{"id":1,"result":{"client":"c","user":"","ping":0,"keepalive":0}}'] : [],
      );
    };
    const socket = new HttpSocket("http://127.0.0.1:1/realtime", "polling", { fetch });
    await new Promise<void>((resolve) => socket.addEventListener("open", () => resolve()));
    socket.send(JSON.stringify({ id: 1, type: "connect" }));
    await finished;
    const most = Math.max(...signals.map((s) => getEventListeners(s, "abort").length));
    assert.equal(new Set(signals).size, signals.length, "a signal per poll");
    assert.equal(most, 1, "only the fetch's own listener on each");
    socket.close();
  });
});
