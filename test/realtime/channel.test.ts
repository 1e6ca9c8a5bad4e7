/**
 * ChannelState, deterministic: a publication is serialised and framed once for all subscribers,
 * the subscribe seam de-duplicates by offset, a skipped offset or a new epoch makes the
 * subscriber resubscribe, and each slow-consumer policy. Plus namespace option validation.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { BrokerPublication } from "../../src/realtime/broker.js";
import { ChannelState, Membership, type Subscriber } from "../../src/realtime/channel.js";
import { Namespaces, resolveNamespace } from "../../src/realtime/namespaces.js";

class FakeSubscriber implements Subscriber {
  readonly frames: Uint8Array[] = [];
  readonly texts: string[] = [];
  buffered = 0;
  lost: string[] = [];
  slow = 0;
  private drain: (() => void) | undefined;
  constructor(readonly id: string) {}
  bufferedAmount(): number {
    return this.buffered;
  }
  writePub(frame: Uint8Array, text: string): "sent" {
    this.frames.push(frame);
    this.texts.push(text);
    return "sent";
  }
  lostPosition(channel: string): void {
    this.lost.push(channel);
  }
  tooSlow(): void {
    this.slow++;
  }
  onDrainOnce(callback: () => void): void {
    this.drain = callback;
  }
  drained(): void {
    this.buffered = 0;
    const d = this.drain;
    this.drain = undefined;
    d?.();
  }
  offsets(): number[] {
    return this.texts.map((t) => (JSON.parse(t) as { offset: number }).offset);
  }
}

let framings = 0;
const frameOf = (text: string): Uint8Array => {
  framings++;
  return new TextEncoder().encode(text);
};

function pub(offset: number, data = offset, conflate?: string): BrokerPublication {
  return {
    offset,
    data: JSON.stringify(data),
    time: 1,
    ...(conflate === undefined ? {} : { conflate }),
  };
}

function channel(ns = resolveNamespace("t", {})): ChannelState {
  return new ChannelState("t:x", ns, frameOf);
}

function join(state: ChannelState, sub: FakeSubscriber, offset: number, epoch: string): Membership {
  const m = new Membership(sub);
  state.members.set(sub.id, m);
  state.goLive(m, offset, epoch);
  return m;
}

describe("ChannelState", () => {
  it("frames a publication once and writes the same bytes to every subscriber", () => {
    const state = channel();
    const subs = Array.from({ length: 100 }, (_, i) => new FakeSubscriber(`s${i}`));
    for (const s of subs) join(state, s, 0, "e");
    framings = 0;
    state.deliver("e", pub(1));
    assert.equal(framings, 1);
    const first = subs[0]!.frames[0];
    for (const s of subs) assert.equal(s.frames[0], first, "same frame object");
    assert.deepEqual(JSON.parse(subs[0]!.texts[0]!), {
      type: "pub",
      channel: "t:x",
      epoch: "e",
      offset: 1,
      data: 1,
      time: 1,
    });
  });

  it("the seam: publications buffered during subscribe are written after, without those the reply covered", () => {
    const state = channel();
    const sub = new FakeSubscriber("a");
    const m = new Membership(sub);
    state.members.set("a", m);
    for (const o of [5, 6, 7]) state.deliver("e", pub(o));
    assert.equal(sub.texts.length, 0, "nothing written before the reply");
    state.goLive(m, 6, "e"); // the reply covered up to 6
    assert.deepEqual(sub.offsets(), [7]);
    state.deliver("e", pub(7)); // a late duplicate
    state.deliver("e", pub(8));
    assert.deepEqual(sub.offsets(), [7, 8]);
  });

  it("a skipped offset or another epoch makes the subscriber resubscribe, and it is removed", () => {
    const state = channel();
    const gap = new FakeSubscriber("gap");
    const epoch = new FakeSubscriber("epoch");
    join(state, gap, 3, "e");
    join(state, epoch, 3, "e");
    state.deliver("e", pub(5));
    assert.deepEqual(gap.lost, ["t:x"]);
    assert.equal(state.members.has("gap"), false);
    state.deliver("other", pub(4));
    assert.deepEqual(epoch.lost, ["t:x"]);
    assert.equal(gap.texts.length + epoch.texts.length, 0);
  });

  it('position 0 of epoch "" accepts offset 1 of any epoch (the stream starts)', () => {
    const state = channel();
    const sub = new FakeSubscriber("a");
    join(state, sub, 0, "");
    state.deliver("new-epoch", pub(1));
    state.deliver("new-epoch", pub(2));
    assert.deepEqual(sub.offsets(), [1, 2]);
    const late = new FakeSubscriber("b");
    join(state, late, 0, "");
    state.deliver("new-epoch", pub(3));
    assert.deepEqual(late.lost, ["t:x"], "offset 3 does not start a stream");
  });

  it("ephemeral publications (offset 0) are written without position checks", () => {
    const state = channel(resolveNamespace("t", { historySize: 0 }));
    const sub = new FakeSubscriber("a");
    join(state, sub, 0, "");
    state.deliver("", pub(0, 1));
    state.deliver("", pub(0, 2));
    assert.equal(sub.texts.length, 2);
  });

  it("policy disconnect: a subscriber over maxQueueBytes is removed and told it is too slow", () => {
    const state = channel(resolveNamespace("t", { maxQueueBytes: 100 }));
    const slow = new FakeSubscriber("slow");
    const fast = new FakeSubscriber("fast");
    join(state, slow, 0, "e");
    join(state, fast, 0, "e");
    slow.buffered = 101;
    state.deliver("e", pub(1));
    assert.equal(slow.slow, 1);
    assert.equal(state.members.has("slow"), false);
    assert.deepEqual(fast.offsets(), [1]);
  });

  it("policy drop: skipped while over the limit, the position moves on, delivery resumes", () => {
    const state = channel(resolveNamespace("t", { maxQueueBytes: 100, slowConsumer: "drop" }));
    const sub = new FakeSubscriber("a");
    join(state, sub, 0, "e");
    sub.buffered = 500;
    state.deliver("e", pub(1));
    state.deliver("e", pub(2));
    sub.buffered = 0;
    state.deliver("e", pub(3));
    assert.deepEqual(sub.offsets(), [3]);
    assert.deepEqual(sub.lost, [], "the server does not treat its own drop as a gap");
  });

  it("policy latest: while slow, only the newest per conflation key, written in key order on drain", () => {
    const ns = resolveNamespace("t", {
      maxQueueBytes: 100,
      slowConsumer: "latest",
      historySize: 0,
    });
    const state = channel(ns);
    const sub = new FakeSubscriber("a");
    join(state, sub, 0, "");
    sub.buffered = 500;
    for (let i = 0; i < 10; i++) {
      state.deliver("", pub(0, i, "k1"));
      state.deliver("", pub(0, 100 + i, "k2"));
    }
    assert.equal(sub.texts.length, 0);
    sub.drained();
    assert.deepEqual(
      sub.texts.map((t) => (JSON.parse(t) as { data: number }).data),
      [9, 109],
    );
    state.deliver("", pub(0, 200, "k1"));
    assert.equal(sub.texts.length, 3, "live again after the drain");
  });
});

describe("namespaces", () => {
  it("resolves defaults and finds a channel's namespace", () => {
    const n = new Namespaces({ chat: { presence: true } });
    assert.equal(n.of("chat:a")?.presence, true);
    assert.equal(n.of("chat:a")?.joinLeave, true);
    assert.equal(n.of("plain")?.name, "");
    assert.equal(n.of("plain")?.historySize, 100);
    assert.equal(n.of("other:a"), undefined);
  });

  it("rejects invalid options with a RangeError naming them", () => {
    assert.throws(() => resolveNamespace("c", { historySize: -1 }), /c\.historySize/);
    assert.throws(() => resolveNamespace("c", { maxQueueBytes: 1.5 }), /c\.maxQueueBytes/);
    assert.throws(() => resolveNamespace("c", { slowConsumer: "latest" }), /historySize 0/);
    assert.throws(
      () => resolveNamespace("c", { slowConsumer: "nope" as "drop" }),
      /unknown slowConsumer/,
    );
    assert.throws(() => new Namespaces({ "bad name": {} }), /invalid namespace name/);
  });
});
