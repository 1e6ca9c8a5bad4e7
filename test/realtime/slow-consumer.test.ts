/**
 * Slow consumers per namespace policy: `disconnect` (4001, the client recovers), `drop` (the
 * subscriber skips publications while behind) and `latest` (newest value per conflation key).
 * A subscriber that stops reading never holds back the others, and the server's memory for it
 * stays bounded. Latency is measured in the bench, not asserted here.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { DisconnectCode } from "../../src/realtime/index.js";
import { Peer, type Running, startRealtime, until } from "./helpers.js";

/** Stop reading the socket: the server's writes pile up in its buffers. */
function stall(peer: Peer): void {
  // biome-ignore lint/suspicious/noExplicitAny: ws keeps its socket in a private field.
  (peer.ws as any)._socket.pause();
}
function unstall(peer: Peer): void {
  // biome-ignore lint/suspicious/noExplicitAny: see stall()
  (peer.ws as any)._socket.resume();
}

const PAYLOAD = "x".repeat(16 * 1024);

/** Let the event loop run (sockets drain) between publications, as a live server would. */
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe("realtime server: slow consumers", () => {
  let s: Running;
  before(async () => {
    s = await startRealtime({
      maxPublishBytes: 100_000,
      namespaces: {
        disc: { maxQueueBytes: 64 * 1024, historySize: 1000 },
        drop: { slowConsumer: "drop", maxQueueBytes: 64 * 1024, historySize: 1000 },
        cur: { slowConsumer: "latest", maxQueueBytes: 64 * 1024, historySize: 0, publish: "all" },
      },
    });
  });
  after(() => s.close());

  it("disconnect: the stalled subscriber is closed with 4001 while the others get everything", async () => {
    const fast = await Peer.connect(s.url);
    const slow = await Peer.connect(s.url);
    await fast.peer.request({ type: "subscribe", channel: "disc:a" });
    await slow.peer.request({ type: "subscribe", channel: "disc:a" });
    stall(slow.peer);
    const N = 400; // 400 × 16 KiB = 6.4 MiB, far beyond what the socket buffers hold
    for (let i = 0; i < N; i++) {
      await s.rt.publish("disc:a", { i, pad: PAYLOAD });
      await tick();
    }
    const got = await fast.peer.pushesUntil(N, (m) => m.type === "pub");
    assert.deepEqual(
      got.map((m) => m.data.i),
      Array.from({ length: N }, (_, i) => i),
    );
    unstall(slow.peer);
    const closed = await slow.peer.closed;
    assert.equal(closed.code, DisconnectCode.SLOW);
    const push = slow.peer.pushes.find((m) => m.type === "disconnect");
    assert.equal(push?.reconnect, true);
    fast.peer.close();
  });

  it("drop: the stalled subscriber skips publications (offset gap visible), memory stays bounded", async () => {
    const fast = await Peer.connect(s.url);
    const slow = await Peer.connect(s.url);
    await fast.peer.request({ type: "subscribe", channel: "drop:a" });
    await slow.peer.request({ type: "subscribe", channel: "drop:a" });
    stall(slow.peer);
    const N = 400;
    let maxBuffered = 0;
    for (let i = 0; i < N; i++) {
      await s.rt.publish("drop:a", { i, pad: PAYLOAD });
      await tick();
      for (const session of s.rt.sessions)
        maxBuffered = Math.max(maxBuffered, session.bufferedAmount());
    }
    await fast.peer.pushesUntil(N, (m) => m.type === "pub");
    // Bounded: the queue limit plus one publication.
    assert.ok(maxBuffered <= 64 * 1024 + 20 * 1024, `buffered ${maxBuffered}`);
    unstall(slow.peer);
    await until(() => [...s.rt.sessions].every((x) => x.bufferedAmount() === 0), 5000, "drain");
    await s.rt.publish("drop:a", { i: N, pad: "" });
    await until(() => slow.peer.pubs("drop:a").some((m) => m.data.i === N), 5000, "last pub");
    const offsets = slow.peer.pubs("drop:a").map((m) => m.offset as number);
    assert.ok(offsets.length < N, "some were dropped");
    for (let i = 1; i < offsets.length; i++) assert.ok(offsets[i]! > offsets[i - 1]!, "in order");
    fast.peer.close();
    slow.peer.close();
  });

  it("latest: a stalled subscriber gets the newest value per key once it drains", async () => {
    const watcher = await Peer.connect(s.url);
    const slow = await Peer.connect(s.url);
    await watcher.peer.request({ type: "subscribe", channel: "cur:board" });
    await slow.peer.request({ type: "subscribe", channel: "cur:board" });
    stall(slow.peer);
    for (let i = 0; i < 300; i++) {
      for (const who of ["a", "b"]) {
        await s.rt.publish("cur:board", { who, i, pad: PAYLOAD }, { conflate: who });
      }
      await tick();
    }
    await watcher.peer.pushesUntil(600, (m) => m.type === "pub");
    unstall(slow.peer);
    await until(
      () =>
        ["a", "b"].every((who) =>
          slow.peer.pubs("cur:board").some((m) => m.data.who === who && m.data.i === 299),
        ),
      5000,
      "latest values",
    );
    const got = slow.peer.pubs("cur:board");
    assert.ok(got.length < 600, `conflated: ${got.length} of 600`);
    for (const who of ["a", "b"]) {
      const is = got.filter((m) => m.data.who === who).map((m) => m.data.i as number);
      for (let i = 1; i < is.length; i++) assert.ok(is[i]! > is[i - 1]!, "per-key order");
    }
    watcher.peer.close();
    slow.peer.close();
  });
});
