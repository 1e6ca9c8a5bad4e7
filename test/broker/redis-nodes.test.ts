/**
 * Realtime nodes (RealtimeServer + hub) over RedisBrokers sharing one real redis-server: what the
 * Redis broker is for, end to end. Publications, recovery on another node and presence across
 * nodes, then Redis restarts: with persistence clients recover exactly; without, they learn
 * `recovered: false` and a new epoch instead of missing publications silently.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RedisBroker } from "../../src/broker/index.js";
import { DisconnectCode } from "../../src/realtime/index.js";
import {
  assertFanOut,
  assertRecovers,
  assertSharedPresence,
  type Msg,
  Peer,
  type Running,
  startNodes,
  stopNodes,
  until,
} from "../realtime/helpers.js";
import { type RedisServer, type RedisServerOptions, startRedis } from "../support/redis.js";

/**
 * A redis-server (started with `options`) and `count` nodes over it (their RedisBrokers retry at
 * most 200 ms apart), for `body`; all stopped afterwards, whatever happens.
 */
async function withNodes(
  count: number,
  options: RedisServerOptions,
  body: (nodes: Running[], server: RedisServer) => Promise<void>,
): Promise<void> {
  const server = await startRedis(options);
  try {
    const nodes = await startNodes(
      count,
      () =>
        new RedisBroker({
          url: server.url,
          onConnectionError: () => {},
          reconnectMaxDelayMs: 200,
        }),
    );
    try {
      await body(nodes, server);
    } finally {
      await stopNodes(nodes);
    }
  } finally {
    await server.close();
  }
}

/** Publish through the hub of `node` until Redis accepts it (the broker reconnects by itself). */
async function publishWhenBack(node: Running, channel: string, data: string): Promise<void> {
  await until(
    async () => {
      try {
        await node.rt.publish(channel, data);
        return true;
      } catch {
        return false;
      }
    },
    10_000,
    `a publish on ${channel} after Redis is back`,
  );
}

/** Resubscribe from the last position seen (what the SDK does after `resubscribe: true`). */
async function resubscribe(peer: Peer, channel: string): Promise<Msg> {
  const last = peer.pubs(channel).at(-1)!;
  return peer.request({
    type: "subscribe",
    channel,
    since: { offset: last.offset, epoch: last.epoch },
  });
}

describe("realtime nodes over Redis", () => {
  it("publications reach every node in order; a client resumes on another node; presence is shared", () =>
    withNodes(3, {}, async (nodes) => {
      const peers = await assertFanOut(nodes, "room:x");
      // Resume on another node.
      const a = peers[0]!.peer;
      a.cut();
      await nodes[1]!.rt.publish("room:x", "missed-1");
      await nodes[2]!.rt.publish("room:x", "missed-2");
      const b = await Peer.connect(nodes[2]!.url);
      await assertRecovers(b.peer, "room:x", a.pubs("room:x").at(-1)!, ["missed-1", "missed-2"]);
      // Presence across nodes.
      const { ann } = await assertSharedPresence(nodes[0]!, nodes[1]!, "room:p");
      for (const p of [...peers.slice(1), b, ann]) p.peer.close();
    }));

  it("disconnectUser on one node reaches the user's connections on the others", () =>
    withNodes(3, {}, async (nodes) => {
      const mallory = await Peer.connect(nodes[1]!.url, { data: { name: "mallory" } });
      const again = await Peer.connect(nodes[2]!.url, { data: { name: "mallory" } });
      const ann = await Peer.connect(nodes[1]!.url, { data: { name: "ann" } });
      // Node 0 holds none of mallory's connections: the control message does the work.
      assert.equal(await nodes[0]!.rt.disconnectUser("mallory"), 0);
      for (const { peer } of [mallory, again]) {
        const bye = await peer.push((m) => m.type === "disconnect");
        assert.deepEqual([bye.code, bye.reconnect], [DisconnectCode.FORCED, false]);
        assert.equal((await peer.closed).code, DisconnectCode.FORCED);
      }
      const pong = await ann.peer.request({ type: "ping" });
      assert.deepEqual(pong.result, {}, "ann is still connected");
      assert.equal(ann.peer.pushes.filter((m) => m.type === "disconnect").length, 0);
      ann.peer.close();
    }));

  it("Redis restarts with its data: subscribers that missed nothing stay, and get what comes next once", () =>
    withNodes(2, { args: ["--appendonly", "yes"] }, async (nodes, server) => {
      const { peer } = await Peer.connect(nodes[1]!.url);
      await peer.request({ type: "subscribe", channel: "room:r" });
      await nodes[0]!.rt.publish("room:r", "before");
      await peer.push((m) => m.type === "pub" && m.data === "before");
      await server.stop();
      await server.start();
      // The nodes resync when Redis is back: one history read per channel finds nothing missed.
      await publishWhenBack(nodes[0]!, "room:r", "after");
      const pubs = await peer.pushesUntil(2, (m) => m.type === "pub" && m.channel === "room:r");
      assert.deepEqual(
        pubs.map((m) => [m.offset, m.data]),
        [
          [1, "before"],
          [2, "after"],
        ],
      );
      await publishWhenBack(nodes[1]!, "room:r", "last");
      await peer.pushesUntil(3, (m) => m.type === "pub" && m.channel === "room:r");
      assert.equal(peer.pubs("room:r").length, 3, "each once");
      assert.equal(peer.pushes.filter((m) => m.type === "unsubscribed").length, 0);
      peer.close();
    }));

  it("Redis restarts empty: recovery fails honestly (recovered: false, new epoch)", () =>
    withNodes(2, {}, async (nodes, server) => {
      const { peer } = await Peer.connect(nodes[1]!.url);
      const first = await peer.request({ type: "subscribe", channel: "room:e" });
      await nodes[0]!.rt.publish("room:e", "one");
      await nodes[0]!.rt.publish("room:e", "two");
      await peer.pushesUntil(2, (m) => m.type === "pub");
      const epoch = peer.pubs("room:e")[0]!.epoch;
      assert.equal(first.result.recoverable, true);
      await server.kill();
      await server.start();
      await peer.push((m) => m.type === "unsubscribed" && m.channel === "room:e");
      await publishWhenBack(nodes[0]!, "room:e", "three");
      const r = await resubscribe(peer, "room:e");
      assert.equal(r.result.recovered, false);
      assert.deepEqual(r.result.publications ?? [], [], "no partial recovery");
      assert.notEqual(r.result.epoch, epoch);
      assert.equal(r.result.offset, 1);
      await nodes[0]!.rt.publish("room:e", "four");
      const live = await peer.push((m) => m.type === "pub" && m.data === "four");
      assert.equal(live.offset, 2);
      assert.equal(live.epoch, r.result.epoch);
      peer.close();
    }));
});
