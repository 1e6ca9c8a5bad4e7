/**
 * Realtime nodes (RealtimeServer + hub) over RedisBrokers sharing one real redis-server: what the
 * Redis broker is for, end to end. Publications, recovery on another node and presence across
 * nodes, then Redis restarts: with persistence clients recover exactly; without, they learn
 * `recovered: false` and a new epoch instead of missing publications silently.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RedisBroker } from "../../src/broker/index.js";
import { type Msg, Peer, type Running, startRealtime, until } from "../realtime/helpers.js";
import { type RedisServer, startRedis } from "../support/redis.js";

async function startNodes(server: RedisServer, count: number): Promise<Running[]> {
  const nodes: Running[] = [];
  for (let i = 0; i < count; i++) {
    nodes.push(
      await startRealtime({
        broker: new RedisBroker({
          url: server.url,
          onConnectionError: () => {},
          reconnectMaxDelayMs: 200,
        }),
        authenticate: ({ data }) => ({
          user: String((data as { name?: string } | undefined)?.name ?? "anon"),
          grants: [],
        }),
        namespaces: { room: { presence: true } },
      }),
    );
  }
  return nodes;
}

async function stopNodes(nodes: readonly Running[]): Promise<void> {
  for (const n of nodes) {
    await n.close();
    await n.broker.close();
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
  it("publications reach every node in order; a client resumes on another node; presence is shared", async () => {
    const server = await startRedis();
    const nodes = await startNodes(server, 3);
    try {
      const peers = await Promise.all(nodes.map((n) => Peer.connect(n.url)));
      for (const { peer } of peers) await peer.request({ type: "subscribe", channel: "room:x" });
      for (let i = 0; i < 30; i++) {
        await peers[i % 3]!.peer.request({ type: "publish", channel: "room:x", data: i });
      }
      for (const { peer } of peers) {
        const got = await peer.pushesUntil(30, (m) => m.type === "pub");
        assert.deepEqual(
          got.map((m) => m.data),
          Array.from({ length: 30 }, (_, i) => i),
        );
        assert.deepEqual(
          got.map((m) => m.offset),
          Array.from({ length: 30 }, (_, i) => i + 1),
        );
      }
      // Resume on another node.
      const a = peers[0]!.peer;
      a.cut();
      await nodes[1]!.rt.publish("room:x", "missed-1");
      await nodes[2]!.rt.publish("room:x", "missed-2");
      const b = await Peer.connect(nodes[2]!.url);
      const last = a.pubs("room:x").at(-1)!;
      const r = await b.peer.request({
        type: "subscribe",
        channel: "room:x",
        since: { offset: last.offset, epoch: last.epoch },
      });
      assert.equal(r.result.recovered, true);
      assert.deepEqual(
        r.result.publications.map((p: Msg) => p.data),
        ["missed-1", "missed-2"],
      );
      // Presence across nodes.
      const ann = await Peer.connect(nodes[0]!.url, { data: { name: "ann" } });
      const bob = await Peer.connect(nodes[1]!.url, { data: { name: "bob" } });
      await ann.peer.request({ type: "subscribe", channel: "room:p" });
      await bob.peer.request({ type: "subscribe", channel: "room:p" });
      await ann.peer.push((m) => m.type === "join" && m.member.user === "bob");
      const viaAnn = await ann.peer.request({ type: "presence", channel: "room:p" });
      const viaBob = await bob.peer.request({ type: "presence", channel: "room:p" });
      assert.equal(viaAnn.result.count, 2);
      assert.deepEqual(viaAnn.result.members, viaBob.result.members);
      bob.peer.cut();
      const leave = await ann.peer.push((m) => m.type === "leave");
      assert.equal(leave.member.user, "bob");
      for (const p of [...peers.slice(1), b, ann]) p.peer.close();
    } finally {
      await stopNodes(nodes);
      await server.close();
    }
  });

  it("Redis restarts with its data: subscribers are asked to resubscribe and recover exactly", async () => {
    const server = await startRedis({ args: ["--appendonly", "yes"] });
    const nodes = await startNodes(server, 2);
    try {
      const { peer } = await Peer.connect(nodes[1]!.url);
      await peer.request({ type: "subscribe", channel: "room:r" });
      await nodes[0]!.rt.publish("room:r", "before");
      await peer.push((m) => m.type === "pub" && m.data === "before");
      await server.stop();
      await server.start();
      const told = await peer.push((m) => m.type === "unsubscribed" && m.channel === "room:r");
      assert.equal(told.resubscribe, true);
      await publishWhenBack(nodes[0]!, "room:r", "after");
      const r = await resubscribe(peer, "room:r");
      assert.equal(r.result.recovered, true);
      // "after" arrives in the reply or live, exactly once either way.
      const recovered = r.result.publications.map((p: Msg) => p.data);
      await until(
        () => recovered.includes("after") || peer.pubs("room:r").some((m) => m.data === "after"),
        5000,
        "after",
      );
      const all = [...peer.pubs("room:r").map((m) => m.data), ...recovered];
      assert.deepEqual(all.sort(), ["after", "before"]);
      peer.close();
    } finally {
      await stopNodes(nodes);
      await server.close();
    }
  });

  it("Redis restarts empty: recovery fails honestly (recovered: false, new epoch)", async () => {
    const server = await startRedis();
    const nodes = await startNodes(server, 2);
    try {
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
    } finally {
      await stopNodes(nodes);
      await server.close();
    }
  });
});
