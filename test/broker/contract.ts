/**
 * The Broker contract (src/realtime/broker.ts): every Broker implementation runs this suite from
 * its own test file, e.g. `brokerContract("memory", makeCluster)`.
 *
 * `makeCluster(n)` returns n brokers that are NOT started yet (the suite starts each with a
 * recording handler), all attached to one fresh or shared backend, plus `cleanup()` that closes
 * them (close() must be idempotent: some tests close brokers themselves) and frees what the
 * cluster holds. When the backend can be taken down on purpose, `outage.stop()` makes it
 * unreachable and `outage.start()` brings it back.
 *
 * Written to be passed by a networked broker (Redis) too: real time with small TTLs, waits are
 * "poll until a deadline", every test uses its own cluster and channel names with a random suffix,
 * and "nothing was delivered" is checked with a barrier — after the event under test, the same
 * node publishes a marker on a barrier channel the observer subscribed to, and the observer must
 * have received the marker (so, with per-connection ordering, anything before it too).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import {
  type Broker,
  type BrokerHandler,
  type BrokerPublication,
  BrokerUnavailableError,
  type HistoryPage,
  type HistoryRequest,
  type PresencePage,
  type PublishRequest,
} from "../../src/realtime/broker.js";

export interface BrokerCluster {
  readonly brokers: Broker[];
  cleanup(): Promise<void>;
  readonly outage?: { stop(): Promise<void>; start(): Promise<void> };
}

export type MakeCluster = (nodes: number) => Promise<BrokerCluster>;

// ---- helpers ------------------------------------------------------------------------------------

interface Received {
  readonly channel: string;
  readonly epoch: string;
  readonly pub: BrokerPublication;
}

/** A BrokerHandler that records everything it is given. */
export class Recorder implements BrokerHandler {
  readonly publications: Received[] = [];
  readonly joins: { channel: string; member: string }[] = [];
  readonly leaves: { channel: string; member: string }[] = [];
  readonly controls: string[] = [];
  resyncs = 0;

  publication(channel: string, epoch: string, pub: BrokerPublication): void {
    this.publications.push({ channel, epoch, pub });
  }
  join(channel: string, member: string): void {
    this.joins.push({ channel, member });
  }
  leave(channel: string, member: string): void {
    this.leaves.push({ channel, member });
  }
  resync(): void {
    this.resyncs++;
  }
  control(message: string): void {
    this.controls.push(message);
  }

  on(channel: string): Received[] {
    return this.publications.filter((r) => r.channel === channel);
  }
  data(channel: string): string[] {
    return this.on(channel).map((r) => r.pub.data);
  }
}

/** A channel name no other test (or earlier run against a shared backend) uses. */
export function uniqueChannel(name: string): string {
  return `contract:${name}:${randomBytes(6).toString("hex")}`;
}

export function request(data: string, over: Partial<PublishRequest> = {}): PublishRequest {
  return { data, historySize: 1000, historyTtlMs: 0, idempotencyTtlMs: 120_000, ...over };
}

function historyRequest(over: Partial<HistoryRequest> = {}): HistoryRequest {
  return { limit: 10_000, historyTtlMs: 0, ...over };
}

/** Retry `check` (an assertion) until it passes or the deadline is reached. */
export async function eventually<T>(
  check: () => T | Promise<T>,
  timeoutMs = 3000,
  intervalMs = 10,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() >= deadline) throw error;
    }
    await sleep(intervalMs);
  }
}

function offsets(page: HistoryPage | readonly BrokerPublication[]): number[] {
  const pubs = "publications" in page ? page.publications : page;
  return pubs.map((p) => p.offset);
}

function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = from; i <= to; i++) out.push(i);
  return out;
}

function member(clientId: string, extra = ""): string {
  return JSON.stringify({ client: clientId, user: `user-${clientId}`, extra });
}

function clientOf(memberJson: string): string {
  return (JSON.parse(memberJson) as { client: string }).client;
}

async function allPresence(broker: Broker, channel: string, limit = 1000): Promise<PresencePage> {
  return broker.presence(channel, undefined, limit);
}

interface Started {
  readonly brokers: readonly Broker[];
  readonly recorders: readonly Recorder[];
  readonly outage: BrokerCluster["outage"];
  node(i: number): Broker;
  rec(i: number): Recorder;
  /**
   * After `publisher` did what is under test, publish a marker on a barrier channel the
   * `observers` subscribed to (see `barrierChannel`) and wait until each received it.
   */
  barrier(publisher: number, observers: readonly number[]): Promise<void>;
  readonly barrierChannel: string;
}

async function withCluster(
  makeCluster: MakeCluster,
  nodes: number,
  body: (cluster: Started) => Promise<void>,
): Promise<void> {
  const cluster = await makeCluster(nodes);
  try {
    assert.equal(cluster.brokers.length, nodes, "makeCluster returned the wrong number of brokers");
    const recorders = cluster.brokers.map(() => new Recorder());
    await Promise.all(cluster.brokers.map((b, i) => b.start(recorders[i]!)));
    const barrierChannel = uniqueChannel("barrier");
    let markers = 0;
    const started: Started = {
      brokers: cluster.brokers,
      recorders,
      outage: cluster.outage,
      barrierChannel,
      node: (i) => cluster.brokers[i]!,
      rec: (i) => recorders[i]!,
      async barrier(publisher, observers) {
        const marker = `marker-${++markers}`;
        await cluster.brokers[publisher]!.publish(
          barrierChannel,
          request(marker, { historySize: 0 }),
        );
        await eventually(() => {
          for (const i of observers) {
            assert.ok(recorders[i]!.data(barrierChannel).includes(marker), `node ${i} barrier`);
          }
        });
      },
    };
    await body(started);
  } finally {
    await cluster.cleanup();
  }
}

// ---- the suite ----------------------------------------------------------------------------------

export function brokerContract(name: string, makeCluster: MakeCluster): void {
  const cluster = (nodes: number, body: (cluster: Started) => Promise<void>) =>
    withCluster(makeCluster, nodes, body);

  describe(`Broker contract: ${name}`, () => {
    it("offsets start at 1 and grow by exactly 1; the epoch is stable and non-empty", () =>
      cluster(1, async (c) => {
        const ch = uniqueChannel("offsets");
        const outcomes = [];
        for (let i = 0; i < 5; i++) outcomes.push(await c.node(0).publish(ch, request(`p${i}`)));
        assert.deepEqual(
          outcomes.map((o) => o.offset),
          [1, 2, 3, 4, 5],
        );
        const epoch = outcomes[0]!.epoch;
        assert.notEqual(epoch, "");
        for (const o of outcomes) {
          assert.equal(o.epoch, epoch);
          assert.equal(o.duplicate, false);
        }
        const page = await c.node(0).history(ch, historyRequest());
        assert.equal(page.offset, 5);
        assert.equal(page.epoch, epoch);
        assert.deepEqual(offsets(page), [1, 2, 3, 4, 5]);
        assert.deepEqual(
          page.publications.map((p) => p.data),
          ["p0", "p1", "p2", "p3", "p4"],
        );
        for (const p of page.publications) assert.equal(typeof p.time, "number");
      }));

    it("publication fields (data, from, conflate) are kept verbatim, never parsed", () =>
      cluster(2, async (c) => {
        const ch = uniqueChannel("fields");
        await c.node(1).subscribe(ch);
        const data = '{"b":1,  "a":[2,3]}';
        const from = '{"client":"c1","user":"u1"}';
        await c.node(0).publish(ch, request(data, { from, conflate: "k1" }));
        await c.node(0).publish(ch, request("not json at all"));
        const page = await c.node(0).history(ch, historyRequest());
        const [first, second] = page.publications;
        assert.equal(first?.data, data);
        assert.equal(first?.from, from);
        assert.equal(first?.conflate, "k1");
        assert.equal(second?.data, "not json at all");
        assert.equal(second?.from, undefined);
        assert.equal(second?.conflate, undefined);
        await eventually(() => assert.equal(c.rec(1).on(ch).length, 2));
        const got = c.rec(1).on(ch)[0]!.pub;
        assert.equal(got.data, data);
        assert.equal(got.from, from);
        assert.equal(got.conflate, "k1");
      }));

    it("concurrent publishes from two nodes get distinct consecutive offsets, seen in order by every subscribed node", () =>
      cluster(3, async (c) => {
        const ch = uniqueChannel("concurrent");
        await Promise.all(c.brokers.map((b) => b.subscribe(ch)));
        const n = 20;
        const outcomes = await Promise.all(
          range(1, 2 * n).map((i) => c.node(i % 2).publish(ch, request(`d${i}`))),
        );
        const byOffset = new Map(outcomes.map((o, i) => [o.offset, `d${i + 1}`]));
        assert.deepEqual(
          [...byOffset.keys()].sort((a, b) => a - b),
          range(1, 2 * n),
        );
        const epoch = outcomes[0]!.epoch;
        for (const o of outcomes) assert.equal(o.epoch, epoch);
        for (let i = 0; i < 3; i++) {
          await eventually(() => assert.equal(c.rec(i).on(ch).length, 2 * n, `node ${i}`));
          const got = c.rec(i).on(ch);
          assert.deepEqual(
            got.map((r) => r.pub.offset),
            range(1, 2 * n),
            `node ${i} sees offset order`,
          );
          for (const r of got) {
            assert.equal(r.epoch, epoch);
            assert.equal(r.pub.data, byOffset.get(r.pub.offset));
          }
        }
      }));

    it("historySize 0: no stream (offset 0, epoch ''), nothing stored, still fanned out", () =>
      cluster(2, async (c) => {
        const ch = uniqueChannel("nohistory");
        await c.node(1).subscribe(ch);
        for (let i = 0; i < 3; i++) {
          const o = await c.node(0).publish(ch, request(`x${i}`, { historySize: 0 }));
          assert.deepEqual(o, { offset: 0, epoch: "", duplicate: false });
        }
        const page = await c.node(0).history(ch, historyRequest());
        assert.deepEqual(page, { publications: [], offset: 0, epoch: "" });
        await eventually(() => assert.deepEqual(c.rec(1).data(ch), ["x0", "x1", "x2"]));
        for (const r of c.rec(1).on(ch)) {
          assert.equal(r.pub.offset, 0);
          assert.equal(r.epoch, "");
        }
      }));

    it("history is bounded by count (the oldest are dropped, the top offset is kept)", () =>
      cluster(1, async (c) => {
        const ch = uniqueChannel("count");
        for (let i = 1; i <= 10; i++)
          await c.node(0).publish(ch, request(`c${i}`, { historySize: 4 }));
        const page = await c.node(0).history(ch, historyRequest());
        assert.equal(page.offset, 10);
        assert.deepEqual(offsets(page), [7, 8, 9, 10]);
        assert.deepEqual(
          page.publications.map((p) => p.data),
          ["c7", "c8", "c9", "c10"],
        );
        // A `since` older than the oldest kept returns from the oldest kept (the caller sees the gap).
        const since = await c.node(0).history(ch, historyRequest({ since: 2 }));
        assert.deepEqual(offsets(since), [7, 8, 9, 10]);
      }));

    it("history is bounded by age; the stream position survives an emptied history", () =>
      cluster(1, async (c) => {
        const ch = uniqueChannel("age");
        const ttl = 300;
        const b = c.node(0);
        const first = await b.publish(ch, request("old", { historyTtlMs: ttl }));
        let published = 1;
        // Keep publishing fresh entries until the first one has aged out.
        const page = await eventually(
          async () => {
            await b.publish(ch, request(`fresh${published}`, { historyTtlMs: ttl }));
            published++;
            const p = await b.history(ch, historyRequest({ historyTtlMs: ttl }));
            assert.notEqual(p.publications[0]?.offset, 1, "the oldest has not expired yet");
            return p;
          },
          5000,
          40,
        );
        assert.equal(page.offset, published);
        assert.ok(page.publications.length > 0);
        assert.ok(page.publications.length < published, "something was dropped by age");
        assert.deepEqual(offsets(page), range(published - page.publications.length + 1, published));
        // Stop publishing: everything ages out, but epoch and top offset stay.
        const empty = await eventually(
          async () => {
            const p = await b.history(ch, historyRequest({ historyTtlMs: ttl }));
            assert.equal(p.publications.length, 0);
            return p;
          },
          5000,
          40,
        );
        assert.equal(empty.offset, published);
        assert.equal(empty.epoch, first.epoch);
        const next = await b.publish(ch, request("after", { historyTtlMs: ttl }));
        assert.equal(next.offset, published + 1);
        assert.equal(next.epoch, first.epoch);
      }));

    it("history: since, limit, reverse, limit 0, unknown channel", () =>
      cluster(2, async (c) => {
        const ch = uniqueChannel("query");
        for (let i = 1; i <= 10; i++) await c.node(0).publish(ch, request(`q${i}`));
        const b = c.node(1);
        const h = (over: Partial<HistoryRequest>) => b.history(ch, historyRequest(over));
        assert.deepEqual(offsets(await h({ since: 3, limit: 4 })), [4, 5, 6, 7]);
        assert.deepEqual(offsets(await h({ since: 3 })), range(4, 10));
        assert.deepEqual(offsets(await h({ since: 0 })), range(1, 10));
        assert.deepEqual(offsets(await h({ since: 3, limit: 2, reverse: true })), [4, 5]);
        const atTop = await h({ since: 10 });
        assert.deepEqual(offsets(atTop), []);
        assert.equal(atTop.offset, 10);
        assert.deepEqual(offsets(await h({ limit: 3 })), [1, 2, 3]);
        assert.deepEqual(offsets(await h({ limit: 3, reverse: true })), [10, 9, 8]);
        assert.deepEqual(offsets(await h({ reverse: true })), range(1, 10).reverse());
        const position = await h({ limit: 0 });
        const top = await h({});
        assert.deepEqual(position, { publications: [], offset: 10, epoch: top.epoch });
        const pos2 = await h({ since: 2, limit: 0 });
        assert.deepEqual(pos2, { publications: [], offset: 10, epoch: top.epoch });
        const unknown = await b.history(uniqueChannel("never"), historyRequest());
        assert.deepEqual(unknown, { publications: [], offset: 0, epoch: "" });
      }));

    it("history is a consistent snapshot: its publications and top offset agree", () =>
      cluster(3, async (c) => {
        const ch = uniqueChannel("snapshot");
        let done = false;
        const writer = async (i: number) => {
          for (let k = 0; k < 40; k++) await c.node(i).publish(ch, request(`w${i}-${k}`));
        };
        const writers = Promise.all([writer(0), writer(1)]);
        const finish = () => {
          done = true;
        };
        writers.then(finish, finish);
        let epoch = "";
        let reads = 0;
        while (!done || reads < 5) {
          reads++;
          const all = await c.node(2).history(ch, historyRequest());
          assert.deepEqual(offsets(all), range(1, all.offset), "all publications up to the top");
          const newest = await c.node(2).history(ch, historyRequest({ limit: 1, reverse: true }));
          if (newest.offset > 0) assert.equal(newest.publications[0]?.offset, newest.offset);
          for (const p of [all, newest]) {
            if (p.offset === 0) continue;
            if (epoch === "") epoch = p.epoch;
            assert.equal(p.epoch, epoch);
          }
        }
        await writers;
        const final = await c.node(2).history(ch, historyRequest());
        assert.equal(final.offset, 80);
        assert.deepEqual(offsets(final), range(1, 80));
      }));

    it("idempotency: a repeated key returns the first outcome and publishes nothing", () =>
      cluster(3, async (c) => {
        const ch = uniqueChannel("idem");
        await c.node(2).subscribe(ch);
        const first = await c.node(0).publish(ch, request("first", { idempotencyKey: "k1" }));
        assert.equal(first.duplicate, false);
        assert.equal(first.offset, 1);
        // A retry through another node, even with other data, is a duplicate.
        const again = await c.node(1).publish(ch, request("second", { idempotencyKey: "k1" }));
        assert.deepEqual(again, { offset: first.offset, epoch: first.epoch, duplicate: true });
        const other = await c.node(0).publish(ch, request("other", { idempotencyKey: "k2" }));
        assert.deepEqual(other, { offset: 2, epoch: first.epoch, duplicate: false });
        await c.node(0).publish(ch, request("marker"));
        await eventually(() => assert.ok(c.rec(2).data(ch).includes("marker")));
        assert.deepEqual(c.rec(2).data(ch), ["first", "other", "marker"], "fanned out once");
        const page = await c.node(0).history(ch, historyRequest());
        assert.deepEqual(
          page.publications.map((p) => p.data),
          ["first", "other", "marker"],
        );
        // Keys are scoped per channel.
        const ch2 = uniqueChannel("idem2");
        const elsewhere = await c.node(1).publish(ch2, request("x", { idempotencyKey: "k1" }));
        assert.equal(elsewhere.duplicate, false);
        assert.equal(elsewhere.offset, 1);
        // Without history the first outcome is offset 0 / epoch "".
        const ch3 = uniqueChannel("idem3");
        const nh = request("y", { historySize: 0, idempotencyKey: "k" });
        assert.deepEqual(await c.node(0).publish(ch3, nh), {
          offset: 0,
          epoch: "",
          duplicate: false,
        });
        assert.deepEqual(await c.node(1).publish(ch3, nh), {
          offset: 0,
          epoch: "",
          duplicate: true,
        });
      }));

    it("idempotency: the key expires after its window", () =>
      cluster(2, async (c) => {
        const ch = uniqueChannel("idem-ttl");
        const req = request("once", { idempotencyKey: "k", idempotencyTtlMs: 300 });
        const first = await c.node(0).publish(ch, req);
        assert.equal((await c.node(1).publish(ch, req)).duplicate, true);
        // A duplicate publishes nothing, so retrying until it is accepted is side-effect free.
        const later = await eventually(
          async () => {
            const o = await c.node(1).publish(ch, req);
            assert.equal(o.duplicate, false);
            return o;
          },
          5000,
          25,
        );
        assert.equal(later.offset, first.offset + 1);
        const page = await c.node(0).history(ch, historyRequest());
        assert.deepEqual(offsets(page), [1, 2]);
      }));

    it("unsubscribe stops delivery; nodes not subscribed get nothing", () =>
      cluster(3, async (c) => {
        const ch = uniqueChannel("subs");
        await c.node(0).subscribe(ch);
        await c.node(1).subscribe(ch);
        await c.node(1).subscribe(c.barrierChannel);
        await c.node(2).subscribe(c.barrierChannel);
        await c.node(0).publish(ch, request("one"));
        await eventually(() => assert.deepEqual(c.rec(1).data(ch), ["one"]));
        await c.node(1).unsubscribe(ch);
        await c.node(0).publish(ch, request("two"));
        await c.barrier(0, [1, 2]);
        await eventually(() => assert.deepEqual(c.rec(0).data(ch), ["one", "two"]));
        assert.deepEqual(c.rec(1).data(ch), ["one"], "unsubscribed node got nothing more");
        assert.deepEqual(c.rec(2).data(ch), [], "node never subscribed got nothing");
        // Subscribing again resumes delivery.
        await c.node(1).subscribe(ch);
        await c.node(0).publish(ch, request("three"));
        await eventually(() => assert.deepEqual(c.rec(1).data(ch), ["one", "three"]));
      }));

    it("presence changes are announced once, to the subscribed nodes only: join on add, leave on remove", () =>
      cluster(3, async (c) => {
        const ch = uniqueChannel("joinleave");
        await c.node(0).subscribe(ch);
        await c.node(1).subscribe(ch);
        await c.node(2).subscribe(c.barrierChannel);
        const m = member("alice");
        assert.equal(await c.node(2).addPresence(ch, "alice", m, 60_000), true, "new member");
        // Refreshes (from any node, even with new member data) are not news.
        assert.equal(await c.node(1).addPresence(ch, "alice", m, 60_000), false, "a refresh");
        assert.equal(await c.node(2).addPresence(ch, "alice", m, 60_000), false, "a refresh");
        assert.equal(await c.node(2).removePresence(ch, "alice"), true, "was a member");
        assert.equal(await c.node(0).removePresence(ch, "alice"), false, "already gone");
        assert.equal(await c.node(0).removePresence(ch, "never-there"), false);
        for (const i of [0, 1]) {
          await eventually(() => {
            assert.deepEqual(c.rec(i).joins, [{ channel: ch, member: m }]);
            assert.deepEqual(c.rec(i).leaves, [{ channel: ch, member: m }]);
          });
          assert.equal(c.rec(i).on(ch).length, 0, "join/leave are not publications");
        }
        // Back again: a new join.
        assert.equal(await c.node(1).addPresence(ch, "alice", m, 60_000), true);
        await eventually(() => assert.equal(c.rec(0).joins.length, 2));
        await c.barrier(2, [2]);
        assert.deepEqual(c.rec(2).joins, []);
        assert.deepEqual(c.rec(2).leaves, []);
        assert.equal(c.rec(1).joins.length, 2);
        assert.equal(c.rec(1).leaves.length, 1);
      }));

    it("presence expiry: the leave of an expired entry is announced once, however many nodes sweep", () =>
      cluster(3, async (c) => {
        const ch = uniqueChannel("expiry");
        for (const i of [0, 1, 2]) await c.node(i).subscribe(ch);
        const ttl = 200;
        const gone = Array.from({ length: 20 }, (_, i) => `gone-${String(i).padStart(2, "0")}`);
        for (const id of gone) await c.node(0).addPresence(ch, id, member(id), ttl);
        await c.node(0).addPresence(ch, "stays", member("stays"), 60_000);
        assert.equal(await c.node(1).expirePresence(ch), 0, "nothing expired yet");
        await new Promise((r) => setTimeout(r, ttl + 50));
        // Every node sweeps at once (and a presence read prunes too): each leave comes once.
        const removed = await Promise.all([
          c.node(0).expirePresence(ch),
          c.node(1).expirePresence(ch),
          c.node(2).expirePresence(ch),
          c
            .node(1)
            .presence(ch, undefined, 100)
            .then(() => 0),
          c.node(2).expirePresence(ch),
        ]);
        const page = await allPresence(c.node(0), ch);
        const listed = removed.reduce((a, b) => a + b, 0);
        assert.ok(listed <= gone.length, `${listed} removals reported for ${gone.length} entries`);
        assert.deepEqual(page.members.map(clientOf), ["stays"]);
        for (const i of [0, 1, 2]) {
          await eventually(() => assert.equal(c.rec(i).leaves.length, gone.length));
          const left = c
            .rec(i)
            .leaves.map((e) => clientOf(e.member))
            .sort();
          assert.deepEqual(left, gone, `node ${i}: every expired member left exactly once`);
        }
        // Expired and re-added: announced as a join again (it had left).
        await c.node(2).addPresence(ch, "gone-00", member("gone-00"), ttl);
        await eventually(() =>
          assert.equal(c.rec(0).joins.filter((e) => clientOf(e.member) === "gone-00").length, 2),
        );
      }));

    it("presence expiry: adding to or reading a channel with expired entries announces their leaves", () =>
      cluster(2, async (c) => {
        const ch = uniqueChannel("lazy-expiry");
        await c.node(0).subscribe(ch);
        await c.node(1).addPresence(ch, "a", member("a"), 100);
        await new Promise((r) => setTimeout(r, 150));
        assert.equal(await c.node(1).addPresence(ch, "b", member("b"), 60_000), true);
        await eventually(() =>
          assert.deepEqual(c.rec(0).leaves, [{ channel: ch, member: member("a") }]),
        );
        await c.node(1).addPresence(ch, "c", member("c"), 100);
        await new Promise((r) => setTimeout(r, 150));
        assert.equal((await c.node(1).presence(ch, undefined, 10)).count, 1);
        await eventually(() => assert.equal(c.rec(0).leaves.length, 2));
        assert.equal(await c.node(1).expirePresence(ch), 0, "already announced");
        assert.equal(c.rec(0).leaves.length, 2);
      }));

    it("presence: add, refresh, remove, count, ordered by client id, shared by all nodes", () =>
      cluster(2, async (c) => {
        const ch = uniqueChannel("presence");
        for (const id of ["c", "a", "b"]) await c.node(0).addPresence(ch, id, member(id), 60_000);
        let page = await allPresence(c.node(1), ch);
        assert.equal(page.count, 3);
        assert.deepEqual(page.members.map(clientOf), ["a", "b", "c"]);
        assert.equal(page.cursor, undefined, "one page: no cursor");
        await c.node(1).addPresence(ch, "b", member("b", "refreshed"), 60_000);
        page = await allPresence(c.node(0), ch);
        assert.equal(page.count, 3);
        assert.deepEqual(page.members, [member("a"), member("b", "refreshed"), member("c")]);
        await c.node(1).removePresence(ch, "a");
        await c.node(1).removePresence(ch, "never-there");
        page = await allPresence(c.node(0), ch);
        assert.equal(page.count, 2);
        assert.deepEqual(page.members.map(clientOf), ["b", "c"]);
        assert.deepEqual(await c.node(0).presence(ch, undefined, 0), { members: [], count: 2 });
        assert.deepEqual(await allPresence(c.node(0), uniqueChannel("empty")), {
          members: [],
          count: 0,
        });
      }));

    it("presence: an entry not refreshed expires after its ttl", () =>
      cluster(2, async (c) => {
        const ch = uniqueChannel("presence-ttl");
        const ttl = 300;
        await c.node(0).addPresence(ch, "stays", member("stays"), 60_000);
        await c.node(0).addPresence(ch, "x", member("x"), ttl);
        await c.node(0).addPresence(ch, "y", member("y"), ttl);
        assert.equal((await allPresence(c.node(1), ch)).count, 3);
        // Refresh y (only) until x has expired.
        const page = await eventually(
          async () => {
            await c.node(1).addPresence(ch, "y", member("y"), ttl);
            const p = await allPresence(c.node(1), ch);
            assert.ok(!p.members.map(clientOf).includes("x"), "x has not expired yet");
            return p;
          },
          5000,
          40,
        );
        assert.deepEqual(page.members.map(clientOf), ["stays", "y"]);
        assert.equal(page.count, 2);
        // Stop refreshing: y expires too; count follows.
        await eventually(
          async () => {
            const p = await allPresence(c.node(0), ch);
            assert.deepEqual(p.members.map(clientOf), ["stays"]);
            assert.equal(p.count, 1);
            assert.equal((await c.node(0).presence(ch, undefined, 0)).count, 1);
          },
          5000,
          40,
        );
      }));

    it("presence pagination: every member present throughout is listed exactly once", () =>
      cluster(2, async (c) => {
        const ch = uniqueChannel("pages");
        const initial = range(0, 29).map((i) => `m${String(i).padStart(3, "0")}`);
        const present = new Set<string>();
        const everPresent = new Set<string>();
        const removed = new Set<string>();
        const removedBeforeListed = new Set<string>();
        const add = async (id: string) => {
          await c.node(0).addPresence(ch, id, member(id), 60_000);
          present.add(id);
          everPresent.add(id);
        };
        const remove = async (id: string) => {
          await c.node(0).removePresence(ch, id);
          present.delete(id);
          removed.add(id);
        };
        for (const id of [...initial].reverse()) await add(id);
        const listed: string[] = [];
        let cursor: string | undefined;
        for (let pageNo = 0; ; pageNo++) {
          assert.ok(pageNo < 50, "pagination does not end");
          const page = await c.node(1).presence(ch, cursor, 7);
          assert.equal(page.count, present.size, `count on page ${pageNo}`);
          assert.ok(page.members.length <= 7);
          const ids = page.members.map(clientOf);
          assert.deepEqual(ids, [...ids].sort(), "a page is ordered by client id");
          listed.push(...ids);
          if (page.cursor === undefined) break;
          assert.equal(page.members.length, 7, "only the last page may be short");
          cursor = page.cursor;
          // Churn between pages: joins before and after the cursor, leaves of listed and unlisted.
          await add(`a-join-${pageNo}`);
          await add(`z-join-${pageNo}`);
          await add(`${ids[ids.length - 1]}-join`);
          const unlisted = initial.filter((id) => !listed.includes(id) && present.has(id));
          const last = unlisted[unlisted.length - 1];
          if (last !== undefined) {
            await remove(last);
            removedBeforeListed.add(last);
          }
          const first = listed.find((id) => present.has(id));
          if (first !== undefined) await remove(first);
        }
        assert.equal(new Set(listed).size, listed.length, `no member listed twice: ${listed}`);
        for (const id of listed) assert.ok(everPresent.has(id), `${id} was never present`);
        // Present from the start (or joined after the cursor) and never removed: listed once.
        // Joins before the cursor ("a-join-*") may not be listed; members removed before their
        // page was read must not be.
        for (const id of everPresent) {
          if (removed.has(id) || id.startsWith("a-join")) continue;
          assert.ok(listed.includes(id), `${id} stayed present but was not listed`);
        }
        for (const id of removedBeforeListed) {
          assert.ok(!listed.includes(id), `${id} was listed after it left`);
        }
        assert.ok(removedBeforeListed.size > 0 && removed.size > removedBeforeListed.size);
        const final = await allPresence(c.node(0), ch);
        assert.equal(final.count, present.size);
        assert.deepEqual(final.members.map(clientOf), [...present].sort());
      }));

    it("removeHistory forgets the stream: the next publication starts a new epoch", () =>
      cluster(2, async (c) => {
        const ch = uniqueChannel("remove");
        await c.node(0).publish(ch, request("a"));
        const first = await c.node(0).publish(ch, request("b"));
        assert.equal(first.offset, 2);
        await c.node(1).removeHistory(ch);
        const page = await c.node(0).history(ch, historyRequest());
        assert.deepEqual(page.publications, []);
        assert.equal(page.offset, 0);
        const next = await c.node(0).publish(ch, request("c"));
        assert.equal(next.offset, 1);
        assert.notEqual(next.epoch, first.epoch);
        assert.notEqual(next.epoch, "");
        const after = await c.node(1).history(ch, historyRequest());
        assert.deepEqual(
          after.publications.map((p) => p.data),
          ["c"],
        );
        assert.equal(after.epoch, next.epoch);
        await c.node(1).removeHistory(uniqueChannel("unknown")); // no error
      }));

    it("control messages reach every started node once, the sender included, in the order each node sent them", () =>
      cluster(3, async (c) => {
        // No node subscribes to anything but the barrier channel: control messages need nothing.
        for (const i of [0, 1, 2]) await c.node(i).subscribe(c.barrierChannel);
        const tricky = `{"text":"a|b\\n{x}","emoji":"\u00e9\u{1F600}"}`;
        const fromA = Array.from({ length: 20 }, (_, k) => JSON.stringify({ from: "a", k }));
        const fromB = Array.from({ length: 20 }, (_, k) => JSON.stringify({ from: "b", k }));
        // Two senders at once, each one message after the other (the order to keep is per sender).
        await Promise.all([
          (async () => {
            for (const m of fromA) await c.node(0).publishControl(m);
          })(),
          (async () => {
            for (const m of fromB) await c.node(2).publishControl(m);
            await c.node(2).publishControl(tricky);
          })(),
        ]);
        // Whatever a sender published before its marker arrives before the marker.
        await c.barrier(0, [0, 1, 2]);
        await c.barrier(2, [0, 1, 2]);
        for (const i of [0, 1, 2]) {
          const got = c.rec(i).controls;
          assert.equal(got.length, fromA.length + fromB.length + 1, `node ${i}: each once`);
          assert.deepEqual(
            got.filter((m) => m.includes('"from":"a"')),
            fromA,
            `node ${i}: node 0's messages in order`,
          );
          assert.deepEqual(
            got.filter((m) => m.includes('"from":"b"')),
            fromB,
            `node ${i}: node 2's messages in order`,
          );
          assert.equal(got.filter((m) => m === tricky).length, 1, `node ${i}: kept verbatim`);
        }
        // A closed node gets nothing more; the others still do.
        await c.node(1).close();
        const before = c.rec(1).controls.length;
        await c.node(0).publishControl('"after close"');
        await c.barrier(0, [0, 2]);
        for (const i of [0, 2]) assert.equal(c.rec(i).controls.at(-1), '"after close"');
        assert.equal(c.rec(1).controls.length, before);
      }));

    it("start() twice rejects; after close() every method rejects with BrokerUnavailableError", () =>
      cluster(2, async (c) => {
        await assert.rejects(c.node(0).start(new Recorder()));
        const b = c.node(1);
        await b.close();
        await b.close(); // idempotent
        const ch = uniqueChannel("closed");
        const calls: (() => Promise<unknown>)[] = [
          () => b.subscribe(ch),
          () => b.unsubscribe(ch),
          () => b.publish(ch, request("x")),
          () => b.history(ch, historyRequest()),
          () => b.addPresence(ch, "c", member("c"), 1000),
          () => b.removePresence(ch, "c"),
          () => b.presence(ch, undefined, 10),
          () => b.expirePresence(ch),
          () => b.removeHistory(ch),
          () => b.publishControl('{"closed":true}'),
        ];
        for (const call of calls) await assert.rejects(call(), BrokerUnavailableError);
        // The other node is unaffected.
        assert.equal((await c.node(0).publish(ch, request("y"))).offset, 1);
      }));

    it("outage: a publish rejects, is not stored nor delivered, and offsets continue without a hole", (t) =>
      cluster(2, async (c) => {
        const outage = c.outage;
        if (outage === undefined) {
          t.skip("no outage hook for this broker");
          return;
        }
        const ch = uniqueChannel("outage");
        await c.node(1).subscribe(ch);
        await c.node(0).publish(ch, request("before-1"));
        await c.node(0).publish(ch, request("before-2"));
        const resyncs = c.recorders.map((r) => r.resyncs);
        await outage.stop();
        await assert.rejects(c.node(0).publish(ch, request("lost")), BrokerUnavailableError);
        await assert.rejects(c.node(1).publish(ch, request("lost-too")), BrokerUnavailableError);
        await assert.rejects(c.node(0).publishControl('"lost"'), BrokerUnavailableError);
        await outage.start();
        // Nodes of a networked broker reconnect independently: resync() is each node's signal
        // that it is back (subscriptions restored). Only then is node 1 sure to receive "after".
        await eventually(
          () => {
            for (const [i, r] of c.recorders.entries()) assert.ok(r.resyncs > resyncs[i]!);
          },
          10_000,
          20,
        );
        const after = await eventually(() => c.node(0).publish(ch, request("after")), 10_000, 50);
        assert.equal(after.offset, 3);
        const page = await c.node(1).history(ch, historyRequest());
        assert.deepEqual(
          page.publications.map((p) => p.data),
          ["before-1", "before-2", "after"],
        );
        assert.deepEqual(offsets(page), [1, 2, 3]);
        await eventually(() => assert.ok(c.rec(1).data(ch).includes("after")));
        assert.ok(!c.rec(1).data(ch).includes("lost"));
        assert.ok(!c.rec(1).data(ch).includes("lost-too"));
        // Control messages flow again (the nodes listen to them after reconnecting too), and the
        // one rejected during the outage was never delivered.
        await c.node(0).publishControl('"after"');
        for (const i of [0, 1]) {
          await eventually(() => assert.deepEqual(c.rec(i).controls, ['"after"'], `node ${i}`));
        }
      }));

    it("outage: resync() is called on every node when the backend is back", (t) =>
      cluster(2, async (c) => {
        const outage = c.outage;
        if (outage === undefined) {
          t.skip("no outage hook for this broker");
          return;
        }
        const before = c.recorders.map((r) => r.resyncs);
        await outage.stop();
        await outage.start();
        await eventually(
          () => {
            for (const [i, r] of c.recorders.entries()) {
              assert.ok(r.resyncs > before[i]!, `node ${i} resync`);
            }
          },
          10_000,
          20,
        );
      }));
  });
}
