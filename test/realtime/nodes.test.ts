/**
 * Several realtime nodes over one broker (memory brokers sharing a backend, as Redis will be
 * shared): publications, recovery and presence work across nodes, and a client may resume on
 * any node — the state recovery needs lives in the broker, not in the node.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { MemoryBackend, MemoryBroker } from "../../src/broker/index.js";
import { Peer, type Running, startRealtime } from "./helpers.js";

describe("realtime: several nodes over one broker", () => {
  const backend = new MemoryBackend();
  const nodes: Running[] = [];
  before(async () => {
    for (let i = 0; i < 3; i++) {
      nodes.push(
        await startRealtime({
          broker: new MemoryBroker({ backend }),
          authenticate: ({ data }) => ({
            user: String((data as { name?: string } | undefined)?.name ?? "anon"),
            grants: [],
          }),
          namespaces: { room: { presence: true } },
        }),
      );
    }
  });
  after(async () => {
    for (const n of nodes) {
      await n.close();
      await n.broker.close();
    }
  });

  it("a publication on one node reaches subscribers on every node, once, in order", async () => {
    const peers = await Promise.all(nodes.map((n) => Peer.connect(n.url)));
    for (const { peer } of peers) await peer.request({ type: "subscribe", channel: "room:x" });
    for (let i = 0; i < 30; i++) {
      const from = peers[i % 3]!.peer;
      await from.request({ type: "publish", channel: "room:x", data: i });
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
      peer.close();
    }
  });

  it("a client resumes on another node and recovers exactly what it missed", async () => {
    const a = await Peer.connect(nodes[0]!.url);
    await a.peer.request({ type: "subscribe", channel: "room:resume" });
    await nodes[1]!.rt.publish("room:resume", "one");
    const last = await a.peer.push((m) => m.type === "pub");
    a.peer.cut();
    await nodes[2]!.rt.publish("room:resume", "two");
    await nodes[0]!.rt.publish("room:resume", "three");
    const b = await Peer.connect(nodes[2]!.url);
    const r = await b.peer.request({
      type: "subscribe",
      channel: "room:resume",
      since: { offset: last.offset, epoch: last.epoch },
    });
    assert.equal(r.result.recovered, true);
    assert.deepEqual(
      r.result.publications.map((p: { data: string }) => p.data),
      ["two", "three"],
    );
    b.peer.close();
  });

  it("presence is the same from every node, and follows joins and leaves on any node", async () => {
    const ann = await Peer.connect(nodes[0]!.url, { data: { name: "ann" } });
    const bob = await Peer.connect(nodes[1]!.url, { data: { name: "bob" } });
    await ann.peer.request({ type: "subscribe", channel: "room:p" });
    await bob.peer.request({ type: "subscribe", channel: "room:p" });
    const join = await ann.peer.push((m) => m.type === "join" && m.member.user === "bob");
    assert.equal(join.member.client, bob.reply.result.client);
    const viaAnn = await ann.peer.request({ type: "presence", channel: "room:p" });
    const viaBob = await bob.peer.request({ type: "presence", channel: "room:p" });
    assert.equal(viaAnn.result.count, 2);
    assert.deepEqual(viaAnn.result.members, viaBob.result.members);
    bob.peer.cut();
    const leave = await ann.peer.push((m) => m.type === "leave");
    assert.equal(leave.member.user, "bob");
    ann.peer.close();
  });

  it("a node that dies without a word: its clients leave (leave pushes) when their entries expire", async () => {
    const options = {
      authenticate: ({ data }: { data?: unknown }) => ({
        user: String((data as { name?: string } | undefined)?.name ?? "anon"),
        grants: [],
      }),
      namespaces: { room: { presence: true } },
    };
    const watcher = await startRealtime({
      ...options,
      broker: new MemoryBroker({ backend }),
      presenceSweepMs: 50,
    });
    const doomed = await startRealtime({
      ...options,
      broker: new MemoryBroker({ backend }),
      presenceTtlMs: 300,
    });
    try {
      const ann = await Peer.connect(watcher.url, { data: { name: "ann" } });
      await ann.peer.request({ type: "subscribe", channel: "room:dies" });
      const bob = await Peer.connect(doomed.url, { data: { name: "bob" } });
      await bob.peer.request({ type: "subscribe", channel: "room:dies" });
      await ann.peer.push((m) => m.type === "join" && m.member.user === "bob");
      // Still present past its TTL while its node refreshes it.
      await new Promise((r) => setTimeout(r, 600));
      assert.equal(ann.peer.pushes.filter((m) => m.type === "leave").length, 0);
      // The node stops (no timers, no broker) but says nothing, as after kill -9.
      doomed.rt.stop();
      await doomed.broker.close();
      const leave = await ann.peer.push((m) => m.type === "leave");
      assert.equal(leave.member.client, bob.reply.result.client);
      const list = await ann.peer.request({ type: "presence", channel: "room:dies" });
      assert.equal(list.result.count, 1);
      ann.peer.close();
      bob.peer.cut();
    } finally {
      await doomed.close();
      await watcher.close();
      await watcher.broker.close();
    }
  });
});
