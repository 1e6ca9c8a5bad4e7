/**
 * Several realtime nodes over one broker (memory brokers sharing a backend, as Redis will be
 * shared): publications, recovery and presence work across nodes, and a client may resume on
 * any node — the state recovery needs lives in the broker, not in the node.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { MemoryBackend, MemoryBroker } from "../../src/broker/index.js";
import {
  assertFanOut,
  assertRecovers,
  assertSharedPresence,
  namedUsersWithPresence,
  Peer,
  type Running,
  startNodes,
  startRealtime,
  stopNodes,
} from "./helpers.js";

describe("realtime: several nodes over one broker", () => {
  const backend = new MemoryBackend();
  const nodes: Running[] = [];
  before(async () => {
    nodes.push(...(await startNodes(3, () => new MemoryBroker({ backend }))));
  });
  after(() => stopNodes(nodes));

  it("a publication on one node reaches subscribers on every node, once, in order", async () => {
    const peers = await assertFanOut(nodes, "room:x");
    for (const { peer } of peers) peer.close();
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
    await assertRecovers(b.peer, "room:resume", last, ["two", "three"]);
    b.peer.close();
  });

  it("presence is the same from every node, and follows joins and leaves on any node", async () => {
    const { ann, bob, join } = await assertSharedPresence(nodes[0]!, nodes[1]!, "room:p");
    assert.equal(join.member.client, bob.reply.result.client);
    ann.peer.close();
  });

  it("a node that dies without a word: its clients leave (leave pushes) when their entries expire", async () => {
    const watcher = await startRealtime({
      ...namedUsersWithPresence,
      broker: new MemoryBroker({ backend }),
      presenceSweepMs: 50,
    });
    const doomed = await startRealtime({
      ...namedUsersWithPresence,
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
