/**
 * The HTTP transports in a cluster: three `duplex serve` nodes over one Redis behind nginx
 * (deploy/nginx/duplex.conf: round-robin, no stickiness). SDK clients on SSE or long-polling —
 * every request of theirs may land on another node — and clients on WebSocket exchange
 * publications: each once, in one order, with presence the same from every node; then a node is
 * killed (SIGKILL) under the HTTP clients, and every acknowledged publication still reaches every
 * subscriber exactly once, in order.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RealtimeClient, type TransportKind } from "../../src/realtime/client/node.js";
import { clusterSuite, until } from "./helpers.js";

interface Member {
  readonly client: RealtimeClient;
  readonly name: string;
  readonly nodes: Set<string>;
  readonly got: Array<{ offset: number; epoch: string; data: unknown }>;
  readonly recovered: Array<boolean | undefined>;
  /** Client ids of its connections, in order (one while it never reconnects). */
  readonly ids: string[];
  /** Times it lost its connection ("disconnected" events). */
  lost: number;
}

describe("cluster: HTTP transports through nginx over 3 nodes and Redis", () => {
  const members: Member[] = [];
  const suite = clusterSuite({ nodes: 3 }, () => {
    for (const m of members) m.client.close();
  });

  function member(name: string, transport: TransportKind, channel: string): Member {
    const client = new RealtimeClient(suite.cluster.realtimeUrl, {
      transports: [transport],
      data: { name },
      connectTimeoutMs: 5000,
      requestTimeoutMs: 30_000,
      minReconnectDelayMs: 50,
      maxReconnectDelayMs: 500,
      onlineEvents: null,
    });
    const m: Member = { client, name, nodes: new Set(), got: [], recovered: [], ids: [], lost: 0 };
    client.on("connected", (r) => {
      if (r.node !== undefined) m.nodes.add(r.node);
      m.ids.push(r.client);
    });
    client.on("disconnected", () => {
      m.lost++;
    });
    client.on("error", () => undefined);
    const sub = client.channel(channel);
    sub.on("publication", (p) => m.got.push({ offset: p.offset, epoch: p.epoch, data: p.data }));
    sub.on("subscribed", (e) => m.recovered.push(e.recovered));
    sub.subscribe();
    client.connect();
    members.push(m);
    return m;
  }

  for (const kind of ["sse", "polling"] as const) {
    it(`${kind} and WebSocket clients: every publication once, one order; presence from every node`, async () => {
      const channel = `chat:http-${kind}`;
      const group = [
        ...["a", "b", "c"].map((n) => member(`${kind}-${n}`, kind, channel)),
        ...["d", "e", "f"].map((n) => member(`ws-${kind}-${n}`, "websocket", channel)),
      ];
      await until(
        () => group.every((m) => m.client.channel(channel).state === "subscribed"),
        15_000,
        "subscribed",
      );
      await Promise.all(
        group.map(async (m) => {
          for (let i = 0; i < 5; i++) await m.client.publish(channel, { from: m.name, i });
        }),
      );
      const total = group.length * 5;
      await until(() => group.every((m) => m.got.length >= total), 15_000, "every publication");
      const reference = group[0]!.got;
      assert.deepEqual(
        reference.map((p) => p.offset),
        Array.from({ length: total }, (_, i) => reference[0]!.offset + i),
      );
      for (const m of group) {
        assert.equal(m.got.length, total, `${m.name}: each publication once`);
        assert.deepEqual(m.got, reference, `${m.name}: the same order and content`);
        assert.equal(m.client.transport, m.name.startsWith("ws") ? "websocket" : kind);
      }
      // The HTTP clients' connections were made on different nodes.
      const nodes = new Set(
        group.filter((m) => !m.name.startsWith("ws")).flatMap((m) => [...m.nodes]),
      );
      assert.ok(nodes.size >= 2, `HTTP clients connected through ${[...nodes].join(", ")}`);
      // Presence: the six, asked through whichever node gets the request.
      for (const m of group.slice(0, 3)) {
        const page = await m.client.channel(channel).presence();
        assert.deepEqual(page.members.map((x) => x.user).sort(), group.map((x) => x.name).sort());
      }
    });
  }

  it("a node killed under SSE and polling clients: every acknowledged publication reaches every subscriber once, in order", async () => {
    const channel = "rooms:http-kill";
    const subscribers = [
      ...["s1", "s2", "s3"].map((n) => member(`sse-${n}`, "sse", channel)),
      ...["p1", "p2", "p3"].map((n) => member(`poll-${n}`, "polling", channel)),
    ];
    await until(
      () => subscribers.every((m) => m.client.channel(channel).state === "subscribed"),
      15_000,
      "subscribed",
    );
    const publisher = member("publisher", "polling", "rooms:http-kill-publisher");
    await until(() => publisher.client.state === "connected", 15_000, "publisher connected");
    const acked: number[] = [];
    const N = 60;
    for (let i = 0; i < N; i++) {
      if (i === 20) await suite.cluster.kill(1, "SIGKILL");
      acked.push((await publisher.client.publish(channel, i)).offset);
    }
    await until(() => subscribers.every((m) => m.got.length >= N), 30_000, "every publication");
    for (const m of subscribers) {
      assert.deepEqual(
        m.got.map((p) => p.data),
        Array.from({ length: N }, (_, i) => i),
        `${m.name}: each once, in order`,
      );
      assert.deepEqual(
        m.got.map((p) => p.offset),
        acked,
        `${m.name}: at the acknowledged offsets`,
      );
      assert.ok(!m.recovered.includes(false), `${m.name}: Redis keeps the history`);
      // A stream or poll cut with its node is reopened through nginx on another one: the
      // connection goes on (same client id, still present), nothing is reconnected.
      assert.equal(m.lost, 0, `${m.name}: never disconnected`);
      assert.equal(m.ids.length, 1, `${m.name}: one client id`);
    }
  });
});
