/**
 * Three `duplex serve` nodes over one Redis behind nginx (round-robin, no stickiness): clients
 * land on every node, see each other's publications in the same order, and share presence —
 * members, counts, joins and leaves — whatever node they are on.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ClientInfo } from "../../src/realtime/index.js";
import { clusterSuite, type NodeClient, nodeClient, until } from "./helpers.js";

const CLIENTS = 9;
const PER_CLIENT = 10;

describe("cluster: 3 nodes + Redis + nginx", () => {
  const clients: NodeClient[] = [];
  const suite = clusterSuite({ nodes: 3 }, () => {
    for (const c of clients) c.client.close();
  });

  it("/healthz through nginx is answered by each node in turn", async () => {
    const names = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const r = await fetch(`${suite.cluster.url}/healthz`);
      assert.equal(r.status, 200);
      names.add(((await r.json()) as { node: string }).node);
    }
    assert.deepEqual([...names].sort(), ["n1", "n2", "n3"]);
  });

  it("clients through nginx are spread over the three nodes (the connect reply names the node)", async () => {
    for (let i = 0; i < CLIENTS; i++) {
      const nc = nodeClient(suite.cluster.realtimeUrl, `u${i}`);
      clients.push(nc);
      nc.client.connect();
      // One at a time, so nginx's round-robin order is the order of the clients.
      await until(() => nc.node !== undefined, 10_000, `client ${i} connected`);
    }
    const perNode = new Map<string, number>();
    for (const c of clients) perNode.set(c.node!, (perNode.get(c.node!) ?? 0) + 1);
    assert.deepEqual(Object.fromEntries([...perNode].sort()), { n1: 3, n2: 3, n3: 3 });
  });

  it("every client receives every client's messages, in one order, each publisher's in its order", async () => {
    const channel = "chat:everyone";
    const got = new Map<string, Array<{ offset: number; data: { from: string; i: number } }>>();
    for (const c of clients) {
      const log: Array<{ offset: number; data: { from: string; i: number } }> = [];
      got.set(c.name, log);
      const sub = c.client.channel<{ from: string; i: number }>(channel);
      sub.on("publication", (p) => log.push({ offset: p.offset, data: p.data }));
      sub.subscribe();
    }
    await until(
      () => clients.every((c) => c.client.channel(channel).state === "subscribed"),
      10_000,
      "subscribed",
    );
    // All clients publish at once; each waits for its own acks in turn.
    await Promise.all(
      clients.map(async (c) => {
        for (let i = 0; i < PER_CLIENT; i++) {
          await c.client.publish(channel, { from: c.name, i });
        }
      }),
    );
    const total = CLIENTS * PER_CLIENT;
    await until(
      () => [...got.values()].every((log) => log.length >= total),
      10_000,
      "every publication everywhere",
    );
    const reference = got.get(clients[0]!.name)!;
    assert.deepEqual(
      reference.map((e) => e.offset),
      Array.from({ length: total }, (_, i) => i + 1),
    );
    for (const [name, log] of got) {
      assert.equal(log.length, total, name);
      assert.deepEqual(log, reference, `${name} saw the same sequence as ${clients[0]!.name}`);
    }
    for (const c of clients) {
      const mine = reference.filter((e) => e.data.from === c.name).map((e) => e.data.i);
      assert.deepEqual(
        mine,
        Array.from({ length: PER_CLIENT }, (_, i) => i),
        c.name,
      );
    }
  });

  it("presence is one list across nodes: members, count, join and leave", async () => {
    const channel = "chat:presence";
    const joins = new Map<string, string[]>();
    const leaves = new Map<string, string[]>();
    for (const c of clients) {
      const sub = c.client.channel(channel);
      joins.set(c.name, []);
      leaves.set(c.name, []);
      sub.on("join", (m: ClientInfo) => joins.get(c.name)!.push(m.user));
      sub.on("leave", (m: ClientInfo) => leaves.get(c.name)!.push(m.user));
      sub.subscribe();
    }
    await until(
      () => clients.every((c) => c.client.channel(channel).state === "subscribed"),
      10_000,
      "subscribed",
    );
    const everyone = clients.map((c) => c.name).sort();
    // Asked through a client of each node, presence is the same list of all nine.
    for (const node of ["n1", "n2", "n3"]) {
      const asker = clients.find((c) => c.node === node)!;
      await until(
        async () =>
          (await asker.client.channel(channel).presence({ limit: 100 })).count === CLIENTS,
        10_000,
        `presence count via ${node}`,
      );
      const page = await asker.client.channel(channel).presence({ limit: 100 });
      assert.deepEqual(page.members.map((m) => m.user).sort(), everyone, `members via ${node}`);
    }
    // A newcomer (on whatever node nginx picks) joins: everyone is told, the count is ten.
    const late = nodeClient(suite.cluster.realtimeUrl, "late");
    late.client.channel(channel).subscribe();
    late.client.connect();
    await until(
      () => [...joins.values()].every((j) => j.includes("late")),
      10_000,
      "join of late everywhere",
    );
    const count = await clients[0]!.client.channel(channel).presence({ limit: 0 });
    assert.equal(count.count, CLIENTS + 1);
    assert.deepEqual(count.members, []);
    // It leaves: everyone is told, on every node, and the count is back to nine.
    late.client.close();
    await until(
      () => [...leaves.values()].every((l) => l.includes("late")),
      10_000,
      "leave of late everywhere",
    );
    for (const node of ["n1", "n2", "n3"]) {
      const asker = clients.find((c) => c.node === node)!;
      const page = await asker.client.channel(channel).presence({ limit: 100 });
      assert.equal(page.count, CLIENTS, `count via ${node}`);
      assert.deepEqual(page.members.map((m) => m.user).sort(), everyone);
    }
  });
});
