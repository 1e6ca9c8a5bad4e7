/**
 * MemoryBroker / MemoryBackend (src/broker/memory.ts): the Broker contract with several brokers
 * sharing one backend, then memory-specific tests driven by an injected clock, and a property test
 * of history against a naive model.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { MemoryBackend, type MemoryBackendOptions, MemoryBroker } from "../../src/broker/index.js";
import {
  type BrokerPublication,
  BrokerUnavailableError,
  type HistoryRequest,
} from "../../src/realtime/broker.js";
import { brokerContract, eventually, Recorder, request } from "./contract.js";

brokerContract("memory", async (nodes) => {
  const backend = new MemoryBackend({ sweepIntervalMs: 50 });
  const brokers = Array.from({ length: nodes }, () => new MemoryBroker({ backend }));
  return {
    brokers,
    async cleanup() {
      await Promise.all(brokers.map((b) => b.close()));
    },
    outage: {
      async stop() {
        backend.setAvailable(false);
      },
      async start() {
        backend.setAvailable(true);
      },
    },
  };
});

// ---- helpers ------------------------------------------------------------------------------------

class Clock {
  t = 1_700_000_000_000;
  readonly now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

function counterEpochs(): () => string {
  let n = 0;
  return () => `epoch-${++n}`;
}

/** A backend on a fake clock, with deterministic epochs and no background timer. */
function fakeBackend(clock: Clock, options: MemoryBackendOptions = {}): MemoryBackend {
  return new MemoryBackend({
    now: clock.now,
    newEpoch: counterEpochs(),
    sweepIntervalMs: 0,
    ...options,
  });
}

async function started(
  backend: MemoryBackend,
  count: number,
): Promise<{ brokers: MemoryBroker[]; recorders: Recorder[] }> {
  const brokers = Array.from({ length: count }, () => new MemoryBroker({ backend }));
  const recorders = brokers.map(() => new Recorder());
  await Promise.all(brokers.map((b, i) => b.start(recorders[i]!)));
  return { brokers, recorders };
}

function hist(over: Partial<HistoryRequest> = {}): HistoryRequest {
  return { limit: 1_000_000, historyTtlMs: 0, ...over };
}

const offsetsOf = (pubs: readonly BrokerPublication[]) => pubs.map((p) => p.offset);

function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = from; i <= to; i++) out.push(i);
  return out;
}

// ---- memory-specific ----------------------------------------------------------------------------

describe("MemoryBroker", () => {
  it("the ring buffer wraps: 10_000 publishes with historySize 100 keep exactly the last 100", async () => {
    const clock = new Clock();
    const b = new MemoryBroker({ now: clock.now, sweepIntervalMs: 0 });
    await b.start(new Recorder());
    for (let i = 1; i <= 10_000; i++) {
      await b.publish("ring", request(`r${i}`, { historySize: 100 }));
    }
    const page = await b.history("ring", hist());
    assert.equal(page.offset, 10_000);
    assert.deepEqual(offsetsOf(page.publications), range(9901, 10_000));
    assert.deepEqual(
      page.publications.map((p) => p.data),
      range(9901, 10_000).map((i) => `r${i}`),
    );
    const rev = await b.history("ring", hist({ reverse: true, limit: 3 }));
    assert.deepEqual(offsetsOf(rev.publications), [10_000, 9999, 9998]);
    const since = await b.history("ring", hist({ since: 9950, limit: 2 }));
    assert.deepEqual(offsetsOf(since.publications), [9951, 9952]);
    assert.equal(b.backend.stats().publications, 100);
    await b.close();
  });

  it("a changed historySize shrinks or grows the kept window", async () => {
    const b = new MemoryBroker({ newEpoch: counterEpochs(), sweepIntervalMs: 0 });
    await b.start(new Recorder());
    const pub = (n: number, size: number) =>
      b.publish("c", request(`x${n}`, { historySize: size }));
    for (let i = 1; i <= 10; i++) await pub(i, 10);
    await pub(11, 3);
    assert.deepEqual(offsetsOf((await b.history("c", hist())).publications), [9, 10, 11]);
    for (let i = 12; i <= 20; i++) await pub(i, 6);
    assert.deepEqual(offsetsOf((await b.history("c", hist())).publications), range(15, 20));
    await b.close();
  });

  it("history age limit uses the injected clock; the stream meta outlives its history", async () => {
    const clock = new Clock();
    const backend = fakeBackend(clock);
    const {
      brokers: [b],
    } = await started(backend, 1);
    const ttl = { historyTtlMs: 1000 };
    await b!.publish("age", request("a", ttl));
    clock.advance(600);
    await b!.publish("age", request("b", ttl));
    clock.advance(400); // a is now exactly 1000 ms old: expired
    let page = await b!.history("age", hist(ttl));
    assert.deepEqual(
      page.publications.map((p) => p.data),
      ["b"],
    );
    clock.advance(600);
    page = await b!.history("age", hist(ttl));
    assert.deepEqual(page, { publications: [], offset: 2, epoch: "epoch-1" });
    assert.equal(backend.stats().publications, 0);
    assert.deepEqual(await b!.publish("age", request("c", ttl)), {
      offset: 3,
      epoch: "epoch-1",
      duplicate: false,
    });
    await b!.close();
  });

  it("a stream idle longer than streamTtlMs is forgotten: the next publish starts a new epoch", async () => {
    const clock = new Clock();
    const backend = fakeBackend(clock, { streamTtlMs: 1000 });
    const {
      brokers: [b],
    } = await started(backend, 1);
    assert.equal((await b!.publish("s", request("1"))).epoch, "epoch-1");
    clock.advance(999);
    assert.deepEqual(await b!.publish("s", request("2")), {
      offset: 2,
      epoch: "epoch-1",
      duplicate: false,
    });
    clock.advance(999); // idle time counts from the last publish
    assert.equal((await b!.history("s", hist())).offset, 2);
    clock.advance(1);
    assert.deepEqual(await b!.history("s", hist()), { publications: [], offset: 0, epoch: "" });
    assert.deepEqual(await b!.publish("s", request("3")), {
      offset: 1,
      epoch: "epoch-2",
      duplicate: false,
    });
    // The sweep forgets idle streams without any read.
    await b!.publish("t", request("x"));
    assert.equal(backend.stats().streams, 2);
    clock.advance(1000);
    backend.sweep();
    assert.equal(backend.stats().streams, 0);
    await b!.close();
  });

  it("removeHistory forgets the stream at once", async () => {
    const clock = new Clock();
    const backend = fakeBackend(clock);
    const {
      brokers: [b],
    } = await started(backend, 1);
    await b!.publish("r", request("1"));
    await b!.removeHistory("r");
    assert.deepEqual(backend.stats().streams, 0);
    assert.equal((await b!.publish("r", request("2"))).epoch, "epoch-2");
    await b!.close();
  });

  it("the idempotency store stays within maxIdempotencyKeys, evicting the oldest first", async () => {
    const clock = new Clock();
    const backend = fakeBackend(clock, { maxIdempotencyKeys: 50 });
    const {
      brokers: [b],
    } = await started(backend, 1);
    for (let i = 0; i < 500; i++) {
      await b!.publish(`ch${i % 7}`, request(`d${i}`, { idempotencyKey: `k${i}` }));
      assert.ok(backend.stats().idempotencyKeys <= 50);
    }
    assert.equal(backend.stats().idempotencyKeys, 50);
    // The newest 50 keys are still duplicates; older ones were evicted.
    const newest = await b!.publish(`ch${499 % 7}`, request("again", { idempotencyKey: "k499" }));
    assert.equal(newest.duplicate, true);
    const evicted = await b!.publish("ch0", request("again", { idempotencyKey: "k0" }));
    assert.equal(evicted.duplicate, false);
    assert.ok(backend.stats().idempotencyKeys <= 50);
    await b!.close();
  });

  it("idempotency entries expire by their own ttl, mixed ttls included", async () => {
    const clock = new Clock();
    const backend = fakeBackend(clock);
    const {
      brokers: [b],
    } = await started(backend, 1);
    const long = request("long", { idempotencyKey: "long", idempotencyTtlMs: 10_000 });
    const short = request("short", { idempotencyKey: "short", idempotencyTtlMs: 100 });
    await b!.publish("c", long);
    clock.advance(10);
    await b!.publish("c", short);
    assert.equal(backend.stats().idempotencyKeys, 2);
    clock.advance(100); // short expired (inserted after long, expires before it)
    assert.equal((await b!.publish("c", long)).duplicate, true);
    backend.sweep();
    assert.equal(backend.stats().idempotencyKeys, 1, "the sweep removed the expired later entry");
    const again = await b!.publish("c", short);
    assert.deepEqual(again, { offset: 3, epoch: "epoch-1", duplicate: false });
    clock.advance(10_000);
    backend.sweep();
    assert.equal(backend.stats().idempotencyKeys, 0);
    // A key is never a duplicate once its window passed, even before any sweep.
    await b!.publish("c", short);
    clock.advance(100);
    assert.equal((await b!.publish("c", short)).duplicate, false);
    await b!.close();
  });

  it("publishing with no subscriber and no history leaves nothing behind", async () => {
    const clock = new Clock();
    const backend = fakeBackend(clock);
    const {
      brokers: [b],
    } = await started(backend, 1);
    for (let i = 0; i < 100; i++) await b!.publish(`x${i}`, request("d", { historySize: 0 }));
    assert.deepEqual(backend.stats(), {
      streams: 0,
      publications: 0,
      idempotencyKeys: 0,
      presenceMembers: 0,
      subscribedChannels: 0,
      brokers: 1,
      sweeping: false,
    });
    await b!.subscribe("x1");
    await b!.unsubscribe("x1");
    assert.equal(backend.stats().subscribedChannels, 0);
    await b!.close();
  });

  it("presence: expired entries are never counted, and the sweep frees them", async () => {
    const clock = new Clock();
    const backend = fakeBackend(clock);
    const {
      brokers: [b],
    } = await started(backend, 1);
    await b!.addPresence("p", "a", "A", 100);
    await b!.addPresence("p", "b", "B", 1000);
    await b!.addPresence("q", "c", "C", 100);
    clock.advance(50);
    await b!.addPresence("p", "a", "A2", 100); // refresh: now expires at +150
    clock.advance(60);
    assert.deepEqual(await b!.presence("p", undefined, 10), { members: ["A2", "B"], count: 2 });
    assert.equal(backend.stats().presenceMembers, 2, "c expired (swept lazily)");
    clock.advance(40);
    assert.deepEqual(await b!.presence("p", undefined, 0), { members: [], count: 1 });
    clock.advance(1000);
    backend.sweep();
    assert.equal(backend.stats().presenceMembers, 0);
    assert.deepEqual(await b!.presence("p", undefined, 10), { members: [], count: 0 });
    await b!.close();
  });

  it("presence: the background sweep runs on a real timer and frees expired entries", async () => {
    const backend = new MemoryBackend({ sweepIntervalMs: 10 });
    const {
      brokers: [b],
    } = await started(backend, 1);
    await b!.addPresence("p", "a", "A", 20);
    assert.equal(backend.stats().presenceMembers, 1);
    await eventually(() => assert.equal(backend.stats().presenceMembers, 0), 2000);
    await b!.close();
    assert.equal(backend.stats().sweeping, false);
  });

  it("presence pages: cursor is the last id, the next page starts strictly after it", async () => {
    const b = new MemoryBroker({ sweepIntervalMs: 0 });
    await b.start(new Recorder());
    for (const id of ["d", "b", "a", "c", "e"]) await b.addPresence("p", id, id.toUpperCase(), 1e6);
    const p1 = await b.presence("p", undefined, 2);
    assert.deepEqual(p1, { members: ["A", "B"], count: 5, cursor: "b" });
    await b.removePresence("p", "b"); // the cursor's own member leaves
    await b.addPresence("p", "bb", "BB", 1e6);
    const p2 = await b.presence("p", p1.cursor, 2);
    assert.deepEqual(p2, { members: ["BB", "C"], count: 5, cursor: "c" });
    const p3 = await b.presence("p", p2.cursor, 2);
    assert.deepEqual(p3, { members: ["D", "E"], count: 5 });
    assert.deepEqual(await b.presence("p", "e", 2), { members: [], count: 5 });
    await b.close();
  });

  it("delivery is synchronous: subscribers have the publication when publish() resolves", async () => {
    const backend = new MemoryBackend({ sweepIntervalMs: 0 });
    const { brokers, recorders } = await started(backend, 2);
    await brokers[1]!.subscribe("s");
    const pending = brokers[0]!.publish("s", request("now"));
    assert.deepEqual(recorders[1]!.data("s"), ["now"], "delivered inside the publish call");
    await pending;
    await Promise.all(brokers.map((b) => b.close()));
  });

  it("a publish made from inside a handler does not overtake the one being delivered", async () => {
    const backend = new MemoryBackend({ sweepIntervalMs: 0 });
    const a = new MemoryBroker({ backend });
    const b = new MemoryBroker({ backend });
    const seenByB: number[] = [];
    await a.start({
      publication: (channel, _epoch, pub) => {
        if (pub.offset === 1) void a.publish(channel, request("echo"));
      },
      join() {},
      leave() {},
      resync() {},
      control() {},
    });
    await b.start({
      publication: (_c, _e, pub) => seenByB.push(pub.offset),
      join() {},
      leave() {},
      resync() {},
      control() {},
    });
    await a.subscribe("r"); // a subscribes first, so it is called before b
    await b.subscribe("r");
    await a.publish("r", request("first"));
    assert.deepEqual(seenByB, [1, 2]);
    await a.close();
    await b.close();
  });

  it("control messages are delivered synchronously; one sent from a handler waits for the current delivery", async () => {
    const backend = new MemoryBackend({ sweepIntervalMs: 0 });
    const a = new MemoryBroker({ backend });
    const b = new MemoryBroker({ backend });
    const seenByB: string[] = [];
    await a.start({
      publication() {},
      join() {},
      leave() {},
      resync() {},
      control: (message) => {
        if (message === "first") void a.publishControl("echo");
      },
    });
    await b.start({
      publication() {},
      join() {},
      leave() {},
      resync() {},
      control: (message) => seenByB.push(message),
    });
    const pending = a.publishControl("first"); // a attached first, so it is called before b
    assert.deepEqual(seenByB, ["first", "echo"], "delivered inside the call, in order");
    await pending;
    backend.setAvailable(false);
    await assert.rejects(b.publishControl("lost"), BrokerUnavailableError);
    backend.setAvailable(true);
    assert.deepEqual(seenByB, ["first", "echo"]);
    await a.close();
    await b.publishControl("alone");
    assert.deepEqual(seenByB, ["first", "echo", "alone"]);
    await b.close();
  });

  it("a throwing handler does not stop delivery to the other brokers", async () => {
    const errors: unknown[] = [];
    const backend = new MemoryBackend({
      sweepIntervalMs: 0,
      onHandlerError: (e) => errors.push(e),
    });
    const good1 = new Recorder();
    const good2 = new Recorder();
    const brokers = [new MemoryBroker({ backend }), new MemoryBroker({ backend })];
    brokers.push(new MemoryBroker({ backend }));
    await brokers[0]!.start(good1);
    await brokers[1]!.start({
      publication() {
        throw new Error("boom");
      },
      join() {
        throw new Error("boom join");
      },
      leave() {},
      resync() {
        throw new Error("boom resync");
      },
      control() {
        throw new Error("boom control");
      },
    });
    await brokers[2]!.start(good2);
    for (const b of brokers) await b.subscribe("t");
    const outcome = await brokers[1]!.publish("t", request("x"));
    assert.equal(outcome.offset, 1);
    await brokers[0]!.addPresence("t", "c", "m", 60_000); // announces a join
    assert.deepEqual(good1.data("t"), ["x"]);
    assert.deepEqual(good2.data("t"), ["x"]);
    assert.equal(good2.joins.length, 1);
    await brokers[1]!.publishControl("{}");
    assert.deepEqual(good1.controls, ["{}"]);
    assert.deepEqual(good2.controls, ["{}"]);
    backend.setAvailable(false);
    backend.setAvailable(true);
    assert.equal(good1.resyncs, 1);
    assert.equal(good2.resyncs, 1);
    assert.deepEqual(
      errors.map((e) => (e as Error).message),
      ["boom", "boom join", "boom control", "boom resync"],
    );
    await Promise.all(brokers.map((b) => b.close()));
  });

  it("an outage has no side effects; resync only on a real restore", async () => {
    const clock = new Clock();
    const backend = fakeBackend(clock);
    const { brokers, recorders } = await started(backend, 2);
    await brokers[1]!.subscribe("o");
    await brokers[0]!.publish("o", request("1", { idempotencyKey: "k" }));
    const before = backend.stats();
    backend.setAvailable(false);
    assert.equal(backend.available, false);
    await assert.rejects(brokers[0]!.publish("o", request("2")), BrokerUnavailableError);
    await assert.rejects(brokers[0]!.publish("o", request("1", { idempotencyKey: "k" })), {
      name: "BrokerUnavailableError",
    });
    await assert.rejects(brokers[0]!.addPresence("o", "c", "C", 1000), BrokerUnavailableError);
    await assert.rejects(brokers[0]!.subscribe("other"), BrokerUnavailableError);
    await assert.rejects(brokers[1]!.history("o", hist()), BrokerUnavailableError);
    await assert.rejects(
      new MemoryBroker({ backend }).start(new Recorder()),
      BrokerUnavailableError,
    );
    assert.deepEqual(backend.stats(), before);
    assert.deepEqual(recorders[1]!.data("o"), ["1"]);
    backend.setAvailable(false); // no change: no resync
    backend.setAvailable(true);
    backend.setAvailable(true); // already available: no second resync
    assert.deepEqual(
      recorders.map((r) => r.resyncs),
      [1, 1],
    );
    assert.deepEqual(await brokers[0]!.publish("o", request("3")), {
      offset: 2,
      epoch: "epoch-1",
      duplicate: false,
    });
    // A broker closed during an outage closes fine.
    backend.setAvailable(false);
    await Promise.all(brokers.map((b) => b.close()));
    assert.equal(backend.stats().brokers, 0);
  });

  it("start() is required first and allowed once; close() rejects later calls and clears the timer", async () => {
    const backend = new MemoryBackend({ sweepIntervalMs: 5 });
    const b = new MemoryBroker({ backend });
    await assert.rejects(b.publish("c", request("x")), /start\(\) first/);
    assert.equal(backend.stats().sweeping, false, "no timer before a broker starts");
    await b.start(new Recorder());
    assert.equal(backend.stats().sweeping, true);
    await assert.rejects(b.start(new Recorder()), /already called/);
    const other = new MemoryBroker({ backend });
    await other.start(new Recorder());
    await b.close();
    assert.equal(backend.stats().sweeping, true, "still one broker attached");
    await assert.rejects(b.history("c", hist()), BrokerUnavailableError);
    await assert.rejects(b.start(new Recorder()), BrokerUnavailableError);
    await other.close();
    assert.equal(backend.stats().sweeping, false, "the last close clears the interval");
    await other.close();
    // A private backend is cleaned up by its only broker.
    const solo = new MemoryBroker();
    await solo.start(new Recorder());
    assert.equal(solo.backend.stats().sweeping, true);
    await solo.close();
    assert.equal(solo.backend.stats().sweeping, false);
  });

  it("the sweep interval is unref'd and really cleared by the last close()", async () => {
    type Interval = ReturnType<typeof setInterval>;
    const created: Interval[] = [];
    const cleared = new Set<unknown>();
    const realSet = globalThis.setInterval;
    const realClear = globalThis.clearInterval;
    globalThis.setInterval = ((callback: () => void, ms?: number) => {
      const handle = realSet(callback, ms);
      created.push(handle);
      return handle;
    }) as unknown as typeof setInterval;
    globalThis.clearInterval = ((handle: Interval | undefined) => {
      cleared.add(handle);
      realClear(handle);
    }) as typeof clearInterval;
    try {
      const backend = new MemoryBackend({ sweepIntervalMs: 5 });
      const { brokers } = await started(backend, 3);
      assert.equal(created.length, 1, "one interval per backend");
      assert.equal(created[0]!.hasRef(), false, "the interval does not keep the process alive");
      await brokers[0]!.close();
      await brokers[1]!.close();
      assert.equal(cleared.size, 0);
      await brokers[2]!.close();
      assert.deepEqual([...cleared], created);
      // Starting again on the same backend creates a fresh interval, cleared again on close.
      const again = new MemoryBroker({ backend });
      await again.start(new Recorder());
      await again.close();
      assert.equal(created.length, 2);
      assert.deepEqual([...cleared], created);
    } finally {
      globalThis.setInterval = realSet;
      globalThis.clearInterval = realClear;
    }
  });

  it("rejects backend options together with a shared backend, and invalid options", () => {
    const backend = new MemoryBackend();
    assert.throws(
      () => new MemoryBroker({ backend, now: Date.now } as unknown as { backend: MemoryBackend }),
      TypeError,
    );
    assert.throws(() => new MemoryBackend({ streamTtlMs: 0 }), RangeError);
    assert.throws(() => new MemoryBackend({ maxIdempotencyKeys: -1 }), RangeError);
  });

  it("default epochs are 16 hex digits from the injected random source", async () => {
    let calls = 0;
    const b = new MemoryBroker({
      random: (bytes) => {
        calls++;
        bytes.fill(0xab);
      },
      sweepIntervalMs: 0,
    });
    await b.start(new Recorder());
    assert.equal((await b.publish("e", request("x"))).epoch, "abababababababab");
    assert.equal(calls, 1);
    const real = new MemoryBroker({ sweepIntervalMs: 0 });
    await real.start(new Recorder());
    assert.match((await real.publish("e", request("x"))).epoch, /^[0-9a-f]{16}$/);
    await b.close();
    await real.close();
  });
});

// ---- property: history against a naive model ----------------------------------------------------

type Op =
  | { readonly kind: "publish"; readonly size: number }
  | { readonly kind: "advance"; readonly ms: number }
  | {
      readonly kind: "history";
      readonly since?: number;
      readonly limit: number;
      readonly reverse: boolean;
    }
  | { readonly kind: "remove" };

function opArb(maxOffset: number): fc.Arbitrary<Op> {
  return fc.oneof(
    {
      weight: 6,
      arbitrary: fc.record({ kind: fc.constant("publish" as const), size: fc.constant(-1) }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant("publish" as const),
        size: fc.integer({ min: 0, max: 12 }),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant("advance" as const),
        ms: fc.oneof(fc.nat(400), fc.constantFrom(500, 1000)),
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record(
        {
          kind: fc.constant("history" as const),
          since: fc.integer({ min: -2, max: maxOffset }),
          limit: fc.integer({ min: 0, max: 15 }),
          reverse: fc.boolean(),
        },
        { requiredKeys: ["kind", "limit", "reverse"] },
      ),
    },
    { weight: 1, arbitrary: fc.constant({ kind: "remove" as const }) },
  );
}

interface ModelPub {
  readonly offset: number;
  readonly data: string;
  readonly time: number;
}

describe("MemoryBroker history (property)", () => {
  it("agrees with a naive model over random publish/history/clock sequences", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 20 }),
        fc.constantFrom(0, 0, 500, 1000),
        fc.array(opArb(60), { maxLength: 120 }),
        async (historySize, historyTtlMs, ops) => {
          const clock = new Clock();
          const b = new MemoryBroker({
            now: clock.now,
            newEpoch: counterEpochs(),
            sweepIntervalMs: 0,
          });
          await b.start(new Recorder());
          // The model: every stream publication ever, the kept window, and the stream identity.
          let kept: ModelPub[] = [];
          let top = 0;
          let epoch = "";
          let epochs = 0;
          let n = 0;
          const alive = (p: ModelPub) => historyTtlMs === 0 || p.time + historyTtlMs > clock.t;
          for (const op of ops) {
            if (op.kind === "advance") {
              clock.advance(op.ms);
            } else if (op.kind === "remove") {
              await b.removeHistory("ch");
              kept = [];
              top = 0;
              epoch = "";
            } else if (op.kind === "publish") {
              const size = op.size < 0 ? historySize : op.size;
              const data = `d${n++}`;
              const outcome = await b.publish(
                "ch",
                request(data, { historySize: size, historyTtlMs }),
              );
              if (size === 0) {
                assert.deepEqual(outcome, { offset: 0, epoch: "", duplicate: false });
                continue;
              }
              if (epoch === "") epoch = `epoch-${++epochs}`;
              top++;
              kept = kept.filter(alive);
              kept.push({ offset: top, data, time: clock.t });
              kept = kept.slice(-size);
              assert.deepEqual(outcome, { offset: top, epoch, duplicate: false });
            } else {
              const req: HistoryRequest =
                op.since === undefined
                  ? { limit: op.limit, reverse: op.reverse, historyTtlMs }
                  : { since: op.since, limit: op.limit, reverse: op.reverse, historyTtlMs };
              const page = await b.history("ch", req);
              const live = kept.filter(alive);
              let expected: ModelPub[];
              if (op.since !== undefined) {
                const since = op.since;
                expected = live.filter((p) => p.offset > since).slice(0, op.limit);
              } else if (op.reverse) {
                expected = [...live].reverse().slice(0, op.limit);
              } else {
                expected = live.slice(0, op.limit);
              }
              assert.equal(page.offset, top);
              assert.equal(page.epoch, epoch);
              assert.deepEqual(
                page.publications.map((p) => ({ offset: p.offset, data: p.data, time: p.time })),
                expected,
              );
            }
          }
          await b.close();
        },
      ),
      { numRuns: 500 },
    );
  });
});
