/**
 * RedisBroker (src/broker/redis.ts) against a real redis-server started by the test
 * (test/support/redis.ts): the Broker contract, then Redis-specific behaviour — several nodes,
 * epochs after data loss, idempotency across nodes, presence of a dead node, outages (nothing
 * acknowledged is lost, nothing rejected is stored), resubscription and resync after a restart,
 * key prefixes and key expiry.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createClient } from "redis";
import { RedisBroker, type RedisBrokerOptions } from "../../src/broker/index.js";
import { decodeMessage } from "../../src/broker/redis.js";
import {
  type BrokerPublication,
  BrokerUnavailableError,
  type HistoryRequest,
} from "../../src/realtime/broker.js";
import { type RedisServer, startRedis } from "../support/redis.js";
import { brokerContract, eventually, Recorder, request, uniqueChannel } from "./contract.js";

const quiet = (): void => {};

/** Options every test broker uses: connection errors are expected during outages. */
function brokerOptions(server: RedisServer, over: RedisBrokerOptions = {}): RedisBrokerOptions {
  return { url: server.url, onConnectionError: quiet, reconnectMaxDelayMs: 200, ...over };
}

// The contract's outage hook stops redis-server and starts it again on the same port. The contract
// expects the data to survive that (offsets continue after the outage), so these servers persist
// to an append-only file; the restart-empty case is tested below.
brokerContract("redis", async (nodes) => {
  const server = await startRedis({ args: ["--appendonly", "yes"] });
  const brokers = Array.from({ length: nodes }, () => new RedisBroker(brokerOptions(server)));
  return {
    brokers,
    async cleanup() {
      await Promise.all(brokers.map((b) => b.close()));
      await server.close();
    },
    outage: {
      stop: () => server.stop(),
      start: () => server.start(),
    },
  };
});

// ---- helpers ------------------------------------------------------------------------------------

function hist(over: Partial<HistoryRequest> = {}): HistoryRequest {
  return { limit: 100_000, historyTtlMs: 0, ...over };
}

const offsetsOf = (pubs: readonly BrokerPublication[]) => pubs.map((p) => p.offset);

function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = from; i <= to; i++) out.push(i);
  return out;
}

interface Node {
  readonly broker: RedisBroker;
  readonly rec: Recorder;
}

async function startNodes(
  server: RedisServer,
  count: number,
  over: RedisBrokerOptions = {},
): Promise<Node[]> {
  const nodes = Array.from({ length: count }, () => ({
    broker: new RedisBroker(brokerOptions(server, over)),
    rec: new Recorder(),
  }));
  await Promise.all(nodes.map((n) => n.broker.start(n.rec)));
  return nodes;
}

/** Wait until every node has called resync() exactly `times` times (each is back after an outage). */
async function resynced(nodes: readonly Node[], times: number): Promise<void> {
  await eventually(
    () =>
      assert.deepEqual(
        nodes.map((n) => n.rec.resyncs),
        nodes.map(() => times),
      ),
    10_000,
    20,
  );
}

async function closeAll(nodes: readonly Node[]): Promise<void> {
  await Promise.all(nodes.map((n) => n.broker.close()));
}

/** A plain node-redis connection for looking at (and tampering with) the server. */
async function admin(server: RedisServer) {
  const client = createClient({ url: server.url });
  client.on("error", quiet);
  await client.connect();
  return client;
}

/** Publish until the broker has reconnected (rejections meanwhile are BrokerUnavailableError). */
async function publishWhenBack(node: Node, channel: string, data: string) {
  return eventually(
    async () => {
      try {
        return await node.broker.publish(channel, request(data));
      } catch (error) {
        assert.ok(error instanceof BrokerUnavailableError, `unexpected ${error}`);
        throw error;
      }
    },
    10_000,
    20,
  );
}

// ---- Redis-specific -----------------------------------------------------------------------------

describe("RedisBroker on one volatile redis-server", () => {
  let server: RedisServer;
  before(async () => {
    server = await startRedis();
  });
  after(async () => {
    await server.close();
  });

  it("two nodes publishing at once: both see every publication in offset order", async () => {
    const nodes = await startNodes(server, 2);
    try {
      const ch = uniqueChannel("two-nodes");
      await Promise.all(nodes.map((n) => n.broker.subscribe(ch)));
      const n = 100;
      const outcomes = await Promise.all(
        range(1, n).map((i) => nodes[i % 2]!.broker.publish(ch, request(`m${i}`))),
      );
      assert.deepEqual(
        outcomes.map((o) => o.offset).sort((a, b) => a - b),
        range(1, n),
      );
      const page = await nodes[0]!.broker.history(ch, hist());
      for (const node of nodes) {
        await eventually(() => assert.equal(node.rec.on(ch).length, n));
        const got = node.rec.on(ch);
        assert.deepEqual(
          got.map((r) => r.pub.offset),
          range(1, n),
        );
        assert.deepEqual(
          got.map((r) => r.pub),
          page.publications,
          "live deliveries equal history",
        );
        for (const r of got) assert.equal(r.epoch, page.epoch);
      }
    } finally {
      await closeAll(nodes);
    }
  });

  it("text is kept byte for byte: separators, quotes, non-ASCII, empty strings", async () => {
    const [a, b] = await startNodes(server, 2);
    try {
      const ch = uniqueChannel("text");
      await b!.broker.subscribe(ch);
      const weird = [
        { data: 'p|x|1|2|-1|-1|{"a":"|"}', from: "|||", conflate: "é|ü" },
        { data: "😀 ∑ 中文 \u0000 \n\r\t", from: "", conflate: "" },
        { data: "", from: '{"client":"c|1"}' },
        { data: "-1|" },
      ];
      for (const w of weird) await a!.broker.publish(ch, request(w.data, w));
      const page = await b!.broker.history(ch, hist());
      await eventually(() => assert.equal(b!.rec.on(ch).length, weird.length));
      for (const [i, w] of weird.entries()) {
        for (const pub of [page.publications[i]!, b!.rec.on(ch)[i]!.pub]) {
          assert.equal(pub.data, w.data);
          assert.equal(pub.from, w.from);
          assert.equal(pub.conflate, w.conflate);
        }
      }
    } finally {
      await closeAll([a!, b!]);
    }
  });

  it("FLUSHALL loses history: the next publication starts a new epoch at offset 1", async () => {
    const [a, b] = await startNodes(server, 2);
    const redis = await admin(server);
    try {
      const ch = uniqueChannel("flush");
      await b!.broker.subscribe(ch);
      await a!.broker.publish(ch, request("one"));
      const before = await a!.broker.publish(ch, request("two"));
      await redis.flushAll();
      assert.deepEqual(await b!.broker.history(ch, hist()), {
        publications: [],
        offset: 0,
        epoch: "",
      });
      const next = await a!.broker.publish(ch, request("three"));
      assert.equal(next.offset, 1);
      assert.notEqual(next.epoch, before.epoch);
      assert.notEqual(next.epoch, "");
      await eventually(() => assert.equal(b!.rec.on(ch).length, 3));
      const last = b!.rec.on(ch)[2]!;
      assert.equal(last.epoch, next.epoch, "subscribers see the new epoch with the publication");
      assert.equal(last.pub.offset, 1);
      assert.equal(b!.rec.resyncs, 0, "no connection was lost");
    } finally {
      await redis.close();
      await closeAll([a!, b!]);
    }
  });

  it("idempotency window shared by all nodes: concurrent retries publish once", async () => {
    const nodes = await startNodes(server, 3);
    try {
      const ch = uniqueChannel("idem-race");
      await nodes[2]!.broker.subscribe(ch);
      const req = request("once", { idempotencyKey: "retry-1" });
      const outcomes = await Promise.all(
        range(0, 29).map((i) => nodes[i % 3]!.broker.publish(ch, req)),
      );
      const fresh = outcomes.filter((o) => !o.duplicate);
      assert.equal(fresh.length, 1, "exactly one publish took effect");
      for (const o of outcomes) {
        assert.equal(o.offset, fresh[0]!.offset);
        assert.equal(o.epoch, fresh[0]!.epoch);
      }
      const page = await nodes[1]!.broker.history(ch, hist());
      assert.deepEqual(
        page.publications.map((p) => p.data),
        ["once"],
      );
      await nodes[0]!.broker.publish(ch, request("marker"));
      await eventually(() => assert.deepEqual(nodes[2]!.rec.data(ch), ["once", "marker"]));
    } finally {
      await closeAll(nodes);
    }
  });

  it("presence of a node that died without leaving disappears after its ttl, with leaves", async () => {
    const [a, b] = await startNodes(server, 2);
    const redis = await admin(server);
    try {
      const ch = uniqueChannel("dead-node");
      await b!.broker.subscribe(ch);
      await b!.broker.addPresence(ch, "b1", '{"client":"b1"}', 60_000);
      await a!.broker.addPresence(ch, "a1", '{"client":"a1"}', 300);
      await a!.broker.addPresence(ch, "a2", '{"client":"a2"}', 300);
      assert.equal((await b!.broker.presence(ch, undefined, 10)).count, 3);
      await a!.broker.close(); // the node is gone; nobody removes its members
      const page = await eventually(
        async () => {
          const p = await b!.broker.presence(ch, undefined, 10);
          assert.equal(p.count, 1);
          return p;
        },
        5000,
        25,
      );
      assert.deepEqual(page, { members: ['{"client":"b1"}'], count: 1 });
      await eventually(() =>
        assert.deepEqual(b!.rec.leaves.map((e) => e.member).sort(), [
          '{"client":"a1"}',
          '{"client":"a2"}',
        ]),
      );
      // The expired members were pruned from every presence key, not just hidden.
      const keys = await redis.keys(`duplex:{${ch}}:*`);
      assert.deepEqual(keys.sort(), [`duplex:{${ch}}:d`, `duplex:{${ch}}:n`, `duplex:{${ch}}:p`]);
      assert.deepEqual(await redis.hKeys(`duplex:{${ch}}:d`), ["b1"]);
      // The keys expire a while after their last member (so its leave can still be told)...
      await b!.broker.addPresence(ch, "b1", '{"client":"b1"}', 200);
      for (const key of keys) {
        const ttl = await redis.pTTL(key);
        assert.ok(ttl > 200 && ttl <= 200 + 10 * 60 * 1000, `${key}: PTTL ${ttl}`);
      }
      // ...and vanish as soon as the last expired member is swept.
      await new Promise((r) => setTimeout(r, 250));
      assert.equal(await b!.broker.expirePresence(ch), 1);
      assert.deepEqual(await redis.keys(`duplex:{${ch}}:*`), []);
      await eventually(() => assert.equal(b!.rec.leaves.length, 3));
    } finally {
      await redis.close();
      await closeAll([a!, b!]);
    }
  });

  it("every key gets a TTL, so idle channels vanish; an expired stream starts a new epoch", async () => {
    const [a] = await startNodes(server, 1, { streamTtlMs: 400 });
    const redis = await admin(server);
    try {
      const ch = uniqueChannel("ttl");
      const first = await a!.broker.publish(ch, request("x", { idempotencyKey: "k" }));
      await a!.broker.addPresence(ch, "c", "{}", 60_000);
      await a!.broker.publish(uniqueChannel("ttl-nohistory"), request("y", { historySize: 0 }));
      const keys = await redis.keys("duplex:*");
      assert.ok(keys.length >= 6, `keys: ${keys}`);
      for (const key of keys) {
        const ttl = await redis.pTTL(key);
        assert.ok(ttl > 0, `${key} has no TTL (${ttl})`);
      }
      // Without publications the stream (meta + history) expires: a new epoch begins.
      const next = await eventually(
        async () => {
          const page = await a!.broker.history(ch, hist());
          assert.equal(page.offset, 0);
          return a!.broker.publish(ch, request("z"));
        },
        5000,
        25,
      );
      assert.equal(next.offset, 1);
      assert.notEqual(next.epoch, first.epoch);
    } finally {
      await redis.close();
      await closeAll([a!]);
    }
  });

  it("an age-limited history key expires with its newest entry; the position stays", async () => {
    const [a] = await startNodes(server, 1);
    const redis = await admin(server);
    try {
      const ch = uniqueChannel("age-key");
      const first = await a!.broker.publish(ch, request("x", { historyTtlMs: 300 }));
      const historyTtl = await redis.pTTL(`duplex:{${ch}}:h`);
      assert.ok(historyTtl > 0 && historyTtl <= 300, `history key TTL ${historyTtl}`);
      assert.ok((await redis.pTTL(`duplex:{${ch}}:m`)) > 300);
      await eventually(
        async () => assert.equal(await redis.exists(`duplex:{${ch}}:h`), 0),
        5000,
        25,
      );
      assert.deepEqual(await a!.broker.history(ch, hist({ historyTtlMs: 300 })), {
        publications: [],
        offset: 1,
        epoch: first.epoch,
      });
      const next = await a!.broker.publish(ch, request("y", { historyTtlMs: 300 }));
      assert.deepEqual(next, { offset: 2, epoch: first.epoch, duplicate: false });
    } finally {
      await redis.close();
      await closeAll([a!]);
    }
  });

  it("a lost subscriber connection alone: resubscribed, resync(), nothing else disturbed", async () => {
    const nodes = await startNodes(server, 2);
    const [a, b] = nodes as [Node, Node];
    const redis = await admin(server);
    try {
      const ch = uniqueChannel("sub-killed");
      await b.broker.subscribe(ch);
      await a.broker.subscribe(uniqueChannel("other"));
      await a.broker.publish(ch, request("one"));
      await eventually(() => assert.deepEqual(b.rec.data(ch), ["one"]));
      // Only pub/sub connections: both brokers' subscribers, not their command connections.
      const killed = await redis.sendCommand(["CLIENT", "KILL", "TYPE", "pubsub"]);
      assert.equal(killed, 2);
      await resynced(nodes, 1);
      await a.broker.publish(ch, request("two"));
      await eventually(() => assert.deepEqual(b.rec.data(ch), ["one", "two"]));
      // The control channel was resubscribed (and kept by the reconciliation) on both.
      await b.broker.publishControl('"ctl"');
      await eventually(() => {
        for (const n of nodes) assert.deepEqual(n.rec.controls, ['"ctl"']);
      });
      assert.deepEqual(
        nodes.map((n) => n.rec.resyncs),
        [1, 1],
      );
    } finally {
      await redis.close();
      await closeAll(nodes);
    }
  });

  it("historySize 0 creates no stream keys", async () => {
    const [a] = await startNodes(server, 1);
    const redis = await admin(server);
    try {
      const ch = uniqueChannel("nostream");
      await a!.broker.publish(ch, request("x", { historySize: 0 }));
      await a!.broker.publish(ch, request("y", { historySize: 0, idempotencyKey: "k" }));
      assert.deepEqual(await redis.keys(`duplex:{${ch}}:*`), [`duplex:{${ch}}:i:k`]);
    } finally {
      await redis.close();
      await closeAll([a!]);
    }
  });

  it("key prefixes isolate applications sharing one Redis", async () => {
    const [a] = await startNodes(server, 1, { keyPrefix: "app-a:" });
    const [b] = await startNodes(server, 1, { keyPrefix: "app-b:" });
    const redis = await admin(server);
    try {
      const ch = uniqueChannel("shared-name");
      await a!.broker.subscribe(ch);
      await b!.broker.subscribe(ch);
      await a!.broker.publish(ch, request("a1", { idempotencyKey: "k" }));
      await a!.broker.publish(ch, request("a2"));
      const fromB = await b!.broker.publish(ch, request("b1", { idempotencyKey: "k" }));
      assert.deepEqual(
        { offset: fromB.offset, duplicate: fromB.duplicate },
        { offset: 1, duplicate: false },
      );
      await a!.broker.addPresence(ch, "x", "{}", 60_000);
      assert.equal((await b!.broker.presence(ch, undefined, 10)).count, 0);
      assert.deepEqual(
        (await b!.broker.history(ch, hist())).publications.map((p) => p.data),
        ["b1"],
      );
      await eventually(() => {
        assert.deepEqual(a!.rec.data(ch), ["a1", "a2"]);
        assert.deepEqual(b!.rec.data(ch), ["b1"]);
      });
      for (const key of await redis.keys(`*${ch}*`)) {
        assert.match(key, /^app-[ab]:\{/);
      }
      // Control messages too: a's is done before b's is sent, so b would have it first.
      await a!.broker.publishControl('"for a"');
      await b!.broker.publishControl('"for b"');
      await eventually(() => assert.deepEqual(b!.rec.controls, ['"for b"']));
      await eventually(() => assert.deepEqual(a!.rec.controls, ['"for a"']));
      assert.throws(() => new RedisBroker({ keyPrefix: "bad{" }), TypeError);
    } finally {
      await redis.close();
      await closeAll([a!, b!]);
    }
  });

  it("channel names with braces and percent signs stay distinct and keep one hash tag", async () => {
    const [a] = await startNodes(server, 1);
    const redis = await admin(server);
    try {
      const base = uniqueChannel("tags");
      const names = [`${base}{x}`, `${base}%7Bx%7D`, `${base}}:m`, `${base}`];
      for (const [i, name] of names.entries()) {
        for (let k = 0; k <= i; k++) await a!.broker.publish(name, request(`${name}#${k}`));
      }
      for (const [i, name] of names.entries()) {
        const page = await a!.broker.history(name, hist());
        assert.equal(page.offset, i + 1, name);
        assert.ok(page.publications.every((p) => p.data.startsWith(`${name}#`)));
      }
      const keys = await redis.keys(`duplex:*${base.slice("contract:".length)}*`);
      for (const key of keys) {
        // The hash tag is the text between the first { and the first } after it.
        const open = key.indexOf("{");
        const close = key.indexOf("}", open);
        assert.ok(close > open + 1, key);
        assert.equal(key.slice(open + 1, close).includes("{"), false, key);
      }
    } finally {
      await redis.close();
      await closeAll([a!]);
    }
  });

  it("start() rejects with BrokerUnavailableError when Redis is not there; close() still works", async () => {
    const down = await startRedis();
    const url = down.url;
    await down.close();
    const b = new RedisBroker({ url, onConnectionError: quiet });
    await assert.rejects(b.start(new Recorder()), BrokerUnavailableError);
    await b.close();
    await b.close();
    await assert.rejects(b.publish("c", request("x")), BrokerUnavailableError);
  });

  it("decodeMessage ignores foreign messages", () => {
    for (const text of ["", "x", "c", "cx", "p", "p|", "p|e|1|2|-1", "q|x", "p|e|1|2|9|-1|short"]) {
      assert.equal(decodeMessage(Buffer.from(text)), undefined, text);
    }
    assert.deepEqual(decodeMessage(Buffer.from("j|{}")), { kind: "join", member: "{}" });
    assert.deepEqual(decodeMessage(Buffer.from("l|{}")), { kind: "leave", member: "{}" });
    assert.deepEqual(decodeMessage(Buffer.from('c|{"type":"x","a":"|é"}')), {
      kind: "control",
      message: '{"type":"x","a":"|é"}',
    });
    assert.deepEqual(decodeMessage(Buffer.from("c|")), { kind: "control", message: "" });
    assert.deepEqual(decodeMessage(Buffer.from("p|ep|3|10|-1|1|kdata|x")), {
      kind: "publication",
      epoch: "ep",
      pub: { offset: 3, time: 10, conflate: "k", data: "data|x" },
    });
  });
});

describe("RedisBroker outages (each test restarts its own redis-server)", () => {
  it("Redis restarted empty: resubscribe, resync(), and a new epoch instead of a silent gap", async () => {
    const server = await startRedis();
    const nodes = await startNodes(server, 2);
    const [a, b] = nodes as [Node, Node];
    try {
      const ch = uniqueChannel("restart-empty");
      await b.broker.subscribe(ch);
      await a.broker.publish(ch, request("before-1"));
      const before = await a.broker.publish(ch, request("before-2"));
      await eventually(() => assert.equal(b.rec.on(ch).length, 2));
      assert.deepEqual(
        nodes.map((n) => n.rec.resyncs),
        [0, 0],
      );
      await server.kill();
      await server.start();
      await resynced(nodes, 1);
      // What the hub does on resync: look at the position. The stream is gone.
      assert.deepEqual(await b.broker.history(ch, hist()), {
        publications: [],
        offset: 0,
        epoch: "",
      });
      const after = await publishWhenBack(a, ch, "after");
      assert.equal(after.offset, 1);
      assert.notEqual(after.epoch, before.epoch);
      // b is subscribed again (node-redis re-subscribed before reporting ready).
      await eventually(() => assert.deepEqual(b.rec.data(ch), ["before-1", "before-2", "after"]));
      assert.equal(b.rec.on(ch)[2]!.epoch, after.epoch);
      const redis = await admin(server);
      try {
        assert.deepEqual(await redis.pubSubNumSub(`duplex:{${ch}}`), { [`duplex:{${ch}}`]: 1 });
      } finally {
        await redis.close();
      }
    } finally {
      await closeAll(nodes);
      await server.close();
    }
  });

  it("during an outage every operation rejects at once (nothing is queued); none took effect", async () => {
    const server = await startRedis({ args: ["--appendonly", "yes"] });
    // A long command timeout: a rejection below cannot come from a timer.
    const nodes = await startNodes(server, 2, { commandTimeoutMs: 600_000 });
    const [a, b] = nodes as [Node, Node];
    try {
      const ch = uniqueChannel("outage-ops");
      await b.broker.subscribe(ch);
      await a.broker.publish(ch, request("before", { idempotencyKey: "k1" }));
      await a.broker.addPresence(ch, "p1", '{"client":"p1"}', 60_000);
      await server.stop();
      const calls: [string, () => Promise<unknown>][] = [
        ["publish", () => a.broker.publish(ch, request("lost", { idempotencyKey: "k2" }))],
        ["publish dup", () => a.broker.publish(ch, request("before", { idempotencyKey: "k1" }))],
        ["history", () => b.broker.history(ch, hist())],
        ["addPresence", () => a.broker.addPresence(ch, "p2", "{}", 60_000)],
        ["removePresence", () => a.broker.removePresence(ch, "p1")],
        ["presence", () => a.broker.presence(ch, undefined, 10)],
        ["expirePresence", () => a.broker.expirePresence(ch)],
        ["removeHistory", () => a.broker.removeHistory(ch)],
        ["subscribe", () => a.broker.subscribe(uniqueChannel("other"))],
        ["publishControl", () => a.broker.publishControl('"lost"')],
      ];
      for (const [name, call] of calls) {
        await assert.rejects(call(), BrokerUnavailableError, name);
      }
      await server.start();
      await resynced(nodes, 1);
      const page = await b.broker.history(ch, hist());
      assert.deepEqual(
        page.publications.map((p) => p.data),
        ["before"],
      );
      const presence = await b.broker.presence(ch, undefined, 10);
      assert.deepEqual(presence.members, ['{"client":"p1"}']);
      // k2 was never recorded: publishing with it now is not a duplicate.
      const again = await a.broker.publish(ch, request("now", { idempotencyKey: "k2" }));
      assert.deepEqual(
        { offset: again.offset, duplicate: again.duplicate },
        { offset: 2, duplicate: false },
      );
      await eventually(() => assert.deepEqual(b.rec.data(ch), ["before", "now"]));
      // Only the join announced before the outage: p2 was never added.
      assert.deepEqual(
        b.rec.joins.map((e) => e.member),
        ['{"client":"p1"}'],
      );
      assert.deepEqual(b.rec.controls, [], "the control message was never sent");
    } finally {
      await closeAll(nodes);
      await server.close();
    }
  });

  it("a crash under load: every resolved publish is stored, every rejection is BrokerUnavailableError", async () => {
    // appendfsync always: Redis writes the AOF before it replies, so a SIGKILL loses nothing that
    // was acknowledged. Whatever the broker resolved must therefore be in history afterwards.
    const server = await startRedis({ args: ["--appendonly", "yes", "--appendfsync", "always"] });
    const nodes = await startNodes(server, 2);
    const [a, b] = nodes as [Node, Node];
    try {
      const ch = uniqueChannel("crash");
      const resolved = new Map<string, number>();
      const rejected: unknown[] = [];
      let killed = false;
      let crash: Promise<void> = Promise.resolve();
      const writer = async (node: Node, name: string) => {
        for (let i = 0; i < 400; i++) {
          const data = `${name}-${i}`;
          try {
            const o = await node.broker.publish(ch, request(data, { idempotencyKey: data }));
            resolved.set(data, o.offset);
          } catch (error) {
            rejected.push(error);
            if (killed) break;
          }
          if (!killed && resolved.size >= 100) {
            killed = true;
            crash = server.kill();
          }
        }
      };
      await Promise.all([writer(a, "a"), writer(b, "b")]);
      assert.ok(killed);
      await crash;
      assert.ok(rejected.length > 0, "some publish failed during the crash");
      for (const e of rejected) assert.ok(e instanceof BrokerUnavailableError, String(e));
      await server.start();
      await resynced(nodes, 1);
      const page = await b.broker.history(ch, hist());
      const stored = new Map(page.publications.map((p) => [p.data, p.offset]));
      for (const [data, offset] of resolved) {
        assert.equal(stored.get(data), offset, `${data} was acknowledged but is not in history`);
      }
      assert.deepEqual(offsetsOf(page.publications), range(1, page.offset), "no hole in offsets");
      // Retrying everything with the same keys publishes only what was missing.
      for (const name of ["a", "b"]) {
        for (let i = 0; i < 400; i++) {
          const data = `${name}-${i}`;
          const o = await a.broker.publish(ch, request(data, { idempotencyKey: data }));
          assert.equal(o.duplicate, stored.has(data), data);
        }
      }
      const final = await b.broker.history(ch, hist());
      assert.equal(final.publications.length, 800);
      assert.equal(new Set(final.publications.map((p) => p.data)).size, 800);
    } finally {
      await closeAll(nodes);
      await server.close();
    }
  });

  it("Redis stops answering: operations reject after the command timeout; retries with the key are safe", async () => {
    const server = await startRedis();
    const nodes = await startNodes(server, 1, { commandTimeoutMs: 300 });
    const [a] = nodes as [Node];
    try {
      const ch = uniqueChannel("frozen");
      await a.broker.publish(ch, request("first")); // Redis has the script now: EVALSHA will run
      server.pause(); // the connection stays open; the command is sent and never answered
      const req = request("maybe", { idempotencyKey: "k" });
      await assert.rejects(a.broker.publish(ch, req), BrokerUnavailableError);
      await assert.rejects(a.broker.history(ch, hist()), BrokerUnavailableError);
      server.resume();
      // The publish was sent, so Redis ran it when it woke up: the outcome was unknown to the
      // caller, and a retry with the same key says so instead of publishing twice.
      const retry = await eventually(() => a.broker.publish(ch, req), 5000, 20);
      assert.deepEqual(
        { offset: retry.offset, duplicate: retry.duplicate },
        { offset: 2, duplicate: true },
      );
      const page = await a.broker.history(ch, hist());
      assert.deepEqual(
        page.publications.map((p) => p.data),
        ["first", "maybe"],
      );
      assert.equal(a.rec.resyncs, 0, "the connections were never lost");
    } finally {
      server.resume();
      await closeAll(nodes);
      await server.close();
    }
  });

  it("a channel unsubscribed while Redis is away is not subscribed again", async () => {
    const server = await startRedis();
    const nodes = await startNodes(server, 2);
    const [a, b] = nodes as [Node, Node];
    try {
      const gone = uniqueChannel("gone");
      const kept = uniqueChannel("kept");
      await b.broker.subscribe(gone);
      await b.broker.subscribe(kept);
      await server.stop();
      await b.broker.unsubscribe(gone); // takes effect locally: there is no connection to tell
      await server.start();
      await resynced(nodes, 1);
      const redis = await admin(server);
      try {
        await eventually(async () =>
          assert.deepEqual(
            await redis.pubSubNumSub([`duplex:{${gone}}`, `duplex:{${kept}}`, "duplex:control"]),
            {
              [`duplex:{${gone}}`]: 0,
              [`duplex:{${kept}}`]: 1,
              "duplex:control": 2, // every node keeps listening to control messages
            },
          ),
        );
      } finally {
        await redis.close();
      }
      await a.broker.publish(gone, request("not for b"));
      await a.broker.publish(kept, request("for b"));
      await eventually(() => assert.deepEqual(b.rec.data(kept), ["for b"]));
      assert.deepEqual(b.rec.data(gone), []);
    } finally {
      await closeAll(nodes);
      await server.close();
    }
  });

  it("close() during an outage returns, and the connections are gone", async () => {
    const server = await startRedis();
    const nodes = await startNodes(server, 2);
    const redis = await admin(server);
    const clients = async () => (await redis.clientList()).length;
    assert.equal(await clients(), 5, "2 connections per broker + this one");
    await nodes[0]!.broker.close();
    await eventually(async () => assert.equal(await clients(), 3));
    await redis.close();
    await server.stop();
    await nodes[1]!.broker.close();
    await server.close();
  });
});
