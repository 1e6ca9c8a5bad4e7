/**
 * The realtime server over real WebSockets: the connect handshake, bad input and its codes,
 * publish/subscribe with acknowledgements and idempotency, recovery (exact or recovered:false,
 * never partial) and the subscribe seam under concurrent publishing.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { MemoryBackend, MemoryBroker } from "../../src/broker/index.js";
import {
  type Broker,
  type BrokerHandler,
  DisconnectCode,
  ErrorCode,
  RealtimeServer,
} from "../../src/realtime/index.js";
import { assertRecovers, Peer, type Running, startRealtime, until } from "./helpers.js";

/** Another node's broker over `backend`, with a handler that ignores what it is told. */
async function anotherNode(backend: MemoryBackend): Promise<MemoryBroker> {
  const other = new MemoryBroker({ backend });
  await other.start({ publication() {}, join() {}, leave() {}, resync() {}, control() {} });
  return other;
}

/** `other` publishes `data` on `channel` while `broker` is unsubscribed: the node misses it. */
async function missOne(
  broker: Broker,
  other: MemoryBroker,
  channel: string,
  data: string,
): Promise<void> {
  await broker.unsubscribe(channel);
  await other.publish(channel, { data, historySize: 100, historyTtlMs: 0, idempotencyTtlMs: 0 });
  await broker.subscribe(channel);
}

describe("realtime server: connect and bad input", () => {
  let s: Running;
  before(async () => {
    s = await startRealtime({ connectTimeoutMs: 300 });
  });
  after(() => s.close());

  it("connect replies with a client id, the user and the ping interval", async () => {
    const { peer, reply } = await Peer.connect(s.url);
    assert.equal(typeof reply.result.client, "string");
    assert.equal(reply.result.user, "");
    assert.equal(reply.result.ping, 25_000);
    const pong = await peer.request({ type: "ping" });
    assert.deepEqual(pong.result, {});
    peer.close();
  });

  it("the connect reply names the node when the server has one", async () => {
    const named = await startRealtime({ node: "eu-1" });
    try {
      const { peer, reply } = await Peer.connect(named.url);
      assert.equal(reply.result.node, "eu-1");
      peer.close();
    } finally {
      await named.close();
    }
    const { peer, reply } = await Peer.connect(s.url);
    assert.equal("node" in reply.result, false);
    peer.close();
  });

  it("a command before connect gets 101 and the connection closes with 4501", async () => {
    const peer = await Peer.open(s.url);
    const reply = await peer.request({ type: "subscribe", channel: "a" });
    assert.equal(reply.error.code, ErrorCode.UNAUTHORIZED);
    assert.equal((await peer.closed).code, DisconnectCode.UNAUTHORIZED);
  });

  it("a second connect gets 113", async () => {
    const { peer } = await Peer.connect(s.url);
    const again = await peer.request({ type: "connect" });
    assert.equal(again.error.code, ErrorCode.ALREADY_CONNECTED);
    peer.close();
  });

  it("no connect within connectTimeoutMs closes with 4004 after a disconnect push", async () => {
    const peer = await Peer.open(s.url);
    const closed = await peer.closed;
    assert.equal(closed.code, DisconnectCode.CONNECT_TIMEOUT);
    assert.deepEqual(peer.pushes[0], {
      type: "disconnect",
      code: 4004,
      reason: "connect timeout",
      reconnect: true,
    });
  });

  it("a WebSocket without the duplex.v1 subprotocol is closed with 4504", async () => {
    const peer = await Peer.open(s.url, null);
    assert.equal((await peer.closed).code, DisconnectCode.UNSUPPORTED_PROTOCOL);
  });

  it("text that is not JSON closes with 4500; a binary frame too", async () => {
    const { peer } = await Peer.connect(s.url);
    peer.send("{nope");
    assert.equal((await peer.closed).code, DisconnectCode.BAD_REQUEST);
    const { peer: p2 } = await Peer.connect(s.url);
    p2.ws.send(Buffer.from([1, 2, 3]));
    assert.equal((await p2.closed).code, DisconnectCode.BAD_REQUEST);
  });

  it("a message far above the publication limit is refused with 1009 before it is parsed", async () => {
    const { peer } = await Peer.connect(s.url);
    peer.send({ type: "publish", channel: "a", data: "x".repeat(200 * 1024) });
    assert.equal((await peer.closed).code, 1009);
  });

  it("a malformed command with an id gets an error reply and the connection stays", async () => {
    const { peer } = await Peer.connect(s.url);
    const r1 = await peer.request({ type: "subscribe", channel: "has space" });
    assert.equal(r1.error.code, ErrorCode.UNKNOWN_CHANNEL);
    const r2 = await peer.request({ type: "publish", channel: "a" });
    assert.equal(r2.error.code, ErrorCode.BAD_REQUEST);
    const r3 = await peer.request({ type: "teleport" });
    assert.equal(r3.error.code, ErrorCode.BAD_REQUEST);
    const r4 = await peer.request({ type: "subscribe", channel: "nons:x" });
    assert.equal(r4.error.code, ErrorCode.UNKNOWN_CHANNEL);
    const r5 = await peer.request({ type: "rpc", method: "nothing" });
    assert.equal(r5.error.code, ErrorCode.METHOD_NOT_FOUND);
    assert.deepEqual((await peer.request({ type: "ping" })).result, {});
    peer.close();
  });

  it("a failing command without an id comes back as an error push", async () => {
    const { peer } = await Peer.connect(s.url);
    peer.send({ type: "publish", channel: "lonely", data: 1 });
    const e = await peer.push((m) => m.type === "error");
    assert.equal(e.command, "publish");
    assert.equal(e.channel, "lonely");
    assert.equal(e.error.code, ErrorCode.PERMISSION_DENIED);
    peer.close();
  });
});

describe("realtime server: publish, subscribe, acks, idempotency", () => {
  let s: Running;
  before(async () => {
    s = await startRealtime({ maxChannelsPerConnection: 3, maxPublishBytes: 1000 });
  });
  after(() => s.close());

  it("a publication reaches every subscriber once, with offset, epoch and publisher", async () => {
    const a = await Peer.connect(s.url);
    const b = await Peer.connect(s.url);
    const sa = await a.peer.request({ type: "subscribe", channel: "room" });
    await b.peer.request({ type: "subscribe", channel: "room" });
    assert.equal(sa.result.recoverable, true);
    const ack = await a.peer.request({ type: "publish", channel: "room", data: { text: "hi" } });
    assert.equal(ack.result.offset, sa.result.offset + 1);
    assert.equal(sa.result.epoch, "", "no stream before the first publication");
    for (const p of [a.peer, b.peer]) {
      const pub = await p.push((m) => m.type === "pub");
      assert.deepEqual(pub.data, { text: "hi" });
      assert.equal(pub.offset, ack.result.offset);
      assert.equal(pub.epoch, ack.result.epoch);
      assert.equal(pub.from.client, a.reply.result.client);
    }
    a.peer.close();
    b.peer.close();
  });

  it("a retried publish with the same key is acknowledged with the first offset and not delivered twice", async () => {
    const { peer } = await Peer.connect(s.url);
    await peer.request({ type: "subscribe", channel: "idem" });
    const first = await peer.request({ type: "publish", channel: "idem", data: 1, key: "k-1" });
    const again = await peer.request({ type: "publish", channel: "idem", data: 1, key: "k-1" });
    assert.equal(again.result.offset, first.result.offset);
    assert.equal(again.result.duplicate, true);
    const other = await peer.request({ type: "publish", channel: "idem", data: 2, key: "k-2" });
    assert.equal(other.result.offset, first.result.offset + 1);
    await peer.pushesUntil(2, (m) => m.type === "pub");
    assert.deepEqual(
      peer.pubs("idem").map((m) => m.data),
      [1, 2],
    );
    peer.close();
  });

  it("publishes of one connection are acknowledged and delivered in order", async () => {
    const { peer } = await Peer.connect(s.url);
    await peer.request({ type: "subscribe", channel: "order" });
    const acks = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        peer.request({ type: "publish", channel: "order", data: i }),
      ),
    );
    const offsets = acks.map((a) => a.result.offset as number);
    assert.deepEqual(
      offsets,
      offsets.map((_, i) => offsets[0]! + i),
    );
    const pubs = await peer.pushesUntil(50, (m) => m.type === "pub" && m.channel === "order");
    assert.deepEqual(
      pubs.map((p) => p.data),
      Array.from({ length: 50 }, (_, i) => i),
    );
    peer.close();
  });

  it("limits: channels per connection (106), publication size (106), double subscribe (105)", async () => {
    const { peer } = await Peer.connect(s.url);
    for (const c of ["l1", "l2", "l3"]) await peer.request({ type: "subscribe", channel: c });
    const fourth = await peer.request({ type: "subscribe", channel: "l4" });
    assert.equal(fourth.error.code, ErrorCode.LIMIT_EXCEEDED);
    const twice = await peer.request({ type: "subscribe", channel: "l1" });
    assert.equal(twice.error.code, ErrorCode.ALREADY_SUBSCRIBED);
    const big = await peer.request({ type: "publish", channel: "l1", data: "x".repeat(2000) });
    assert.equal(big.error.code, ErrorCode.LIMIT_EXCEEDED);
    await peer.request({ type: "unsubscribe", channel: "l1" });
    const now = await peer.request({ type: "subscribe", channel: "l4" });
    assert.ok(now.result);
    peer.close();
  });

  it("after unsubscribe nothing more is delivered", async () => {
    const { peer } = await Peer.connect(s.url);
    await peer.request({ type: "subscribe", channel: "un" });
    await peer.request({ type: "unsubscribe", channel: "un" });
    await s.rt.publish("un", "late");
    await peer.request({ type: "ping" });
    assert.equal(peer.pubs("un").length, 0);
    peer.close();
  });

  it("rpc calls a registered handler with the caller's identity", async () => {
    s.rt.rpc("whoami", ({ client, data }) => ({ client: client.client, echo: data ?? null }));
    const { peer, reply } = await Peer.connect(s.url);
    const r = await peer.request({ type: "rpc", method: "whoami", data: [1] });
    assert.deepEqual(r.result.data, { client: reply.result.client, echo: [1] });
    peer.close();
  });
});

describe("realtime server: history and recovery", () => {
  let s: Running;
  before(async () => {
    s = await startRealtime({
      namespaces: { small: { historySize: 5 }, none: { historySize: 0 } },
    });
  });
  after(() => s.close());

  it("history returns the newest publications with the stream position", async () => {
    for (let i = 1; i <= 8; i++) await s.rt.publish("small:h", i);
    const { peer } = await Peer.connect(s.url);
    await peer.request({ type: "subscribe", channel: "small:h" });
    const h = await peer.request({ type: "history", channel: "small:h", limit: 10 });
    assert.deepEqual(
      h.result.publications.map((p: { data: number }) => p.data),
      [4, 5, 6, 7, 8],
    );
    assert.equal(h.result.offset, 8);
    const rev = await peer.request({
      type: "history",
      channel: "small:h",
      limit: 2,
      reverse: true,
    });
    assert.deepEqual(
      rev.result.publications.map((p: { data: number }) => p.data),
      [8, 7],
    );
    const none = await peer.request({ type: "subscribe", channel: "none:x" });
    assert.equal(none.result.recoverable, false);
    const na = await peer.request({ type: "history", channel: "none:x" });
    assert.equal(na.error.code, ErrorCode.NOT_AVAILABLE);
    peer.close();
  });

  it("a reconnect with the last position gets exactly the missed publications", async () => {
    const ch = "recover-1";
    const first = await Peer.connect(s.url);
    await first.peer.request({ type: "subscribe", channel: ch });
    for (let i = 0; i < 3; i++) await s.rt.publish(ch, `a${i}`);
    const seen = await first.peer.pushesUntil(3, (m) => m.type === "pub");
    const last = seen.at(-1)!;
    first.peer.cut();
    for (let i = 0; i < 4; i++) await s.rt.publish(ch, `b${i}`);
    const again = await Peer.connect(s.url);
    const r = await assertRecovers(again.peer, ch, last, ["b0", "b1", "b2", "b3"]);
    assert.equal(r.result.offset, last.offset + 4);
    await s.rt.publish(ch, "live");
    const live = await again.peer.push((m) => m.type === "pub");
    assert.equal(live.offset, last.offset + 5);
    assert.equal(again.peer.pubs(ch).length, 1);
    again.peer.close();
  });

  it("a gap beyond history gives recovered:false and no publications (never partial)", async () => {
    const ch = "small:gap";
    const p = await Peer.connect(s.url);
    const sub = await p.peer.request({ type: "subscribe", channel: ch });
    p.peer.cut();
    for (let i = 0; i < 6; i++) await s.rt.publish(ch, i); // history keeps 5: one is gone
    const again = await Peer.connect(s.url);
    const r = await again.peer.request({
      type: "subscribe",
      channel: ch,
      since: { offset: sub.result.offset, epoch: sub.result.epoch },
    });
    assert.equal(r.result.recovered, false);
    assert.equal(r.result.publications, undefined);
    assert.equal(r.result.offset, sub.result.offset + 6);
    // Position 0 of epoch "" (subscribed before the stream existed) recovers from offset 1…
    const fresh = await again.peer.request({
      type: "subscribe",
      channel: "small:fresh",
      since: { offset: 0, epoch: "" },
    });
    assert.equal(fresh.result.recovered, true);
    await again.peer.request({ type: "unsubscribe", channel: "small:fresh" });
    await s.rt.publish("small:fresh", "one");
    const fromStart = await again.peer.request({
      type: "subscribe",
      channel: "small:fresh",
      since: { offset: 0, epoch: "" },
    });
    assert.equal(fromStart.result.recovered, true);
    assert.deepEqual(
      fromStart.result.publications.map((p: { data: string }) => p.data),
      ["one"],
    );
    // …but not once offset 1 has left history.
    const lost = await again.peer.request({
      type: "subscribe",
      channel: ch,
      since: { offset: 0, epoch: "" },
    });
    assert.equal(lost.error.code, ErrorCode.ALREADY_SUBSCRIBED);
    await again.peer.request({ type: "unsubscribe", channel: ch });
    const lost2 = await again.peer.request({
      type: "subscribe",
      channel: ch,
      since: { offset: 0, epoch: "" },
    });
    assert.equal(lost2.result.recovered, false);
    again.peer.close();
  });

  it("a position from another epoch gives recovered:false", async () => {
    const ch = "epoch";
    await s.rt.publish(ch, 1);
    const { peer } = await Peer.connect(s.url);
    const r = await peer.request({
      type: "subscribe",
      channel: ch,
      since: { offset: 1, epoch: "other" },
    });
    assert.equal(r.result.recovered, false);
    peer.close();
  });

  it("the subscribe seam: publications racing a recovering subscribe arrive exactly once, in order", async () => {
    for (let round = 0; round < 20; round++) {
      const ch = `seam-${round}`;
      const first = await s.rt.publish(ch, -1);
      const { peer } = await Peer.connect(s.url);
      let n = 0;
      let stop = false;
      const publisher = (async () => {
        while (!stop) {
          await s.rt.publish(ch, n++);
          if (n % 3 === 0) await new Promise((r) => setImmediate(r));
        }
      })();
      await new Promise((r) => setImmediate(r));
      const r = await peer.request({
        type: "subscribe",
        channel: ch,
        since: { offset: first.offset, epoch: first.epoch },
      });
      assert.equal(r.result.recovered, true);
      await new Promise((r) => setTimeout(r, 5));
      stop = true;
      await publisher;
      const recovered = r.result.publications.length as number;
      await until(() => recovered + peer.pubs(ch).length >= n, 5000, "all publications");
      const all = [
        ...r.result.publications.map((p: { offset: number }) => p.offset),
        ...peer.pubs(ch).map((m) => m.offset),
      ];
      assert.deepEqual(
        all,
        Array.from({ length: n }, (_, i) => first.offset + 1 + i),
        `round ${round}`,
      );
      peer.close();
    }
  });
});

describe("realtime server: gaps and broker resync", () => {
  it("a subscriber whose stream skips an offset is told to resubscribe", async () => {
    const backend = new MemoryBackend();
    const broker = new MemoryBroker({ backend });
    const s = await startRealtime({ broker });
    try {
      const { peer } = await Peer.connect(s.url);
      const sub = await peer.request({ type: "subscribe", channel: "g" });
      // Another node publishes while this node is not subscribed: this node misses offset +1.
      const other = await anotherNode(backend);
      await missOne(broker, other, "g", "1");
      await s.rt.publish("g", 2);
      const push = await peer.push((m) => m.type === "unsubscribed");
      assert.equal(push.channel, "g");
      assert.equal(push.resubscribe, true);
      assert.equal(push.code, DisconnectCode.INSUFFICIENT_STATE);
      assert.equal(peer.pubs("g").length, 0);
      await assertRecovers(peer, "g", sub.result, [1, 2]);
      peer.close();
      await other.close();
    } finally {
      await s.close();
      await broker.close();
    }
  });

  it("a broker outage: publishes fail with 112 (temporary, not acknowledged); then the node fills what it missed from history, or has the subscriber resubscribe", async () => {
    const backend = new MemoryBackend();
    const broker = new MemoryBroker({ backend });
    const s = await startRealtime({
      broker,
      namespaces: { "": { publish: "all" }, short: { historySize: 2, publish: "all" } },
    });
    const other = await anotherNode(backend);
    const publishOther = (channel: string, data: string) =>
      other.publish(channel, {
        data: JSON.stringify(data),
        historySize: channel.startsWith("short:") ? 2 : 100,
        historyTtlMs: 0,
        idempotencyTtlMs: 0,
      });
    try {
      const { peer } = await Peer.connect(s.url);
      for (const channel of ["o", "quiet", "short:s"]) {
        await peer.request({ type: "subscribe", channel });
        await s.rt.publish(channel, "first");
      }
      await peer.pushesUntil(3, (m) => m.type === "pub");
      backend.setAvailable(false);
      const r = await peer.request({ type: "publish", channel: "o", data: 1 });
      assert.equal(r.error.code, ErrorCode.UNAVAILABLE);
      assert.equal(r.error.temporary, true);
      // The node misses publications (its broker subscription was lost): two on "o", three on
      // "short:s" (which keeps two), none on "quiet".
      backend.setAvailable(true);
      await broker.unsubscribe("o");
      await broker.unsubscribe("short:s");
      for (const data of ["a", "b"]) await publishOther("o", data);
      for (const data of ["x", "y", "z"]) await publishOther("short:s", data);
      await broker.subscribe("o");
      await broker.subscribe("short:s");
      backend.setAvailable(false);
      backend.setAvailable(true); // resync
      const filled = await peer.pushesUntil(3, (m) => m.type === "pub" && m.channel === "o");
      assert.deepEqual(
        filled.map((p) => [p.offset, p.data]),
        [
          [1, "first"],
          [2, "a"],
          [3, "b"],
        ],
      );
      const told = await peer.push((m) => m.type === "unsubscribed");
      assert.equal(told.channel, "short:s", "only the channel whose history lost the gap");
      assert.equal(told.resubscribe, true);
      await s.rt.publish("quiet", "second");
      await s.rt.publish("o", "c");
      await peer.pushesUntil(2, (m) => m.type === "pub" && m.channel === "quiet");
      await peer.pushesUntil(4, (m) => m.type === "pub" && m.channel === "o");
      assert.equal(peer.pushes.filter((m) => m.type === "unsubscribed").length, 1);
      peer.close();
      await other.close();
    } finally {
      await s.close();
      await broker.close();
    }
  });
});

describe("realtime server: a resync during a subscribe", () => {
  it("a subscriber whose subscribe reply was being computed during a broker resync is told to resubscribe", {
    timeout: 10_000,
  }, async () => {
    // A broker whose history replies can be held back, and whose handler the test can call.
    const backend = new MemoryBackend();
    const inner = new MemoryBroker({ backend });
    let handler: BrokerHandler | undefined;
    let hold: Promise<void> | undefined;
    let reading: (() => void) | undefined;
    const broker: Broker = {
      start: (h) => {
        handler = h;
        return inner.start(h);
      },
      subscribe: (c) => inner.subscribe(c),
      unsubscribe: (c) => inner.unsubscribe(c),
      publish: (c, r) => inner.publish(c, r),
      history: async (c, r) => {
        const page = await inner.history(c, r);
        reading?.();
        if (hold !== undefined) await hold;
        return page;
      },
      addPresence: (c, id, m, t) => inner.addPresence(c, id, m, t),
      removePresence: (c, id) => inner.removePresence(c, id),
      presence: (c, cursor, limit) => inner.presence(c, cursor, limit),
      expirePresence: (c) => inner.expirePresence(c),
      removeHistory: (c) => inner.removeHistory(c),
      publishControl: (m) => inner.publishControl(m),
      close: () => inner.close(),
    };
    const s = await startRealtime({ broker });
    const other = await anotherNode(backend);
    try {
      const first = await Peer.connect(s.url);
      await first.peer.request({ type: "subscribe", channel: "r" });
      await s.rt.publish("r", 1);
      // A second subscriber's subscribe has read history (top: 1) but not replied yet…
      let release: () => void = () => undefined;
      hold = new Promise<void>((r) => {
        release = r;
      });
      const read = new Promise<void>((r) => {
        reading = r;
      });
      const late = await Peer.connect(s.url);
      const replied = late.peer.request({ type: "subscribe", channel: "r" });
      await read;
      // …when this node misses a publication (its subscription was lost) and the broker,
      // connected again, asks for a resync.
      await missOne(inner, other, "r", "2");
      handler!.resync();
      hold = undefined;
      release();
      const reply = await replied;
      assert.equal(
        reply.result.offset,
        1,
        "the reply's position was read before the missed publication",
      );
      // Nothing else is published: without being told, the late subscriber would never see 2.
      const push = await late.peer.push((m) => m.type === "unsubscribed" && m.channel === "r");
      assert.equal(push.resubscribe, true);
      assert.equal(push.code, DisconnectCode.INSUFFICIENT_STATE);
      await assertRecovers(late.peer, "r", reply.result, [2]);
      // The first subscriber was live: the node filled its gap from history, in order.
      const pubs = await first.peer.pushesUntil(2, (m) => m.type === "pub" && m.channel === "r");
      assert.deepEqual(
        pubs.map((p) => [p.offset, p.data]),
        [
          [1, 1],
          [2, 2],
        ],
      );
      assert.equal(first.peer.pushes.filter((m) => m.type === "unsubscribed").length, 0);
      first.peer.close();
      late.peer.close();
    } finally {
      await s.close();
      await other.close();
      await inner.close();
    }
  });
});

describe("realtime server: shutdown", () => {
  it("close() tells every client to reconnect elsewhere (4000, reconnect: true)", async () => {
    const s = await startRealtime();
    const peers = await Promise.all([1, 2, 3].map(() => Peer.connect(s.url)));
    await s.close();
    for (const { peer } of peers) {
      assert.equal((await peer.closed).code, DisconnectCode.SHUTDOWN);
      assert.deepEqual(peer.pushes.at(-1), {
        type: "disconnect",
        code: DisconnectCode.SHUTDOWN,
        reason: "server shutdown",
        reconnect: true,
      });
    }
  });

  it("drainMs spreads the disconnects: the others are still served meanwhile; newcomers are sent away", async () => {
    const s = await startRealtime({ drainMs: 2000 });
    const first = await Peer.connect(s.url);
    const second = await Peer.connect(s.url);
    const closing = s.close();
    // One of them is told at once, the other one only half-way through the window.
    const gone = await Promise.race([
      first.peer.closed.then(() => second),
      second.peer.closed.then(() => first),
    ]);
    const pong = await gone.peer.request({ type: "ping" });
    assert.deepEqual(pong.result, {});
    const late = await Peer.open(s.url);
    assert.equal((await late.closed).code, DisconnectCode.SHUTDOWN);
    assert.equal((await gone.peer.closed).code, DisconnectCode.SHUTDOWN);
    await closing;
  });

  it("drainMs must be a number >= 0", () => {
    assert.throws(
      () => new RealtimeServer({ broker: new MemoryBroker(), drainMs: -1 }),
      RangeError,
    );
  });
});
