/**
 * disconnectUser reaches every node: three RealtimeServers over one MemoryBackend (as nodes share
 * Redis). A user's WebSocket and HTTP connections on any node are disconnected with the code, the
 * other users stay connected, presence announces the leaves; the control messages the hubs send
 * each other are checked, malformed ones ignored; the HTTP API `POST /api/disconnect`.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { MemoryBackend, MemoryBroker } from "../../src/broker/index.js";
import { BrokerUnavailableError, DisconnectCode, ErrorCode } from "../../src/realtime/index.js";
import { type Msg, Peer, type Running, startNodes, stopNodes, until } from "./helpers.js";
import { HttpPeer } from "./http-peer.js";

const base = (s: Running): string => `http://127.0.0.1:${s.port}/realtime`;

const disconnectOf = (m: Msg): boolean => m.type === "disconnect";

/** POST to the HTTP API of `s` (key k3y unless other headers are given). */
async function api(
  s: Running,
  body: unknown,
  headers: Record<string, string> = { authorization: "apikey k3y" },
  method = "POST",
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${s.port}/api/disconnect`, {
    method,
    headers: { "content-type": "application/json", ...headers },
    ...(method === "POST" ? { body: typeof body === "string" ? body : JSON.stringify(body) } : {}),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe("disconnectUser: every node of a cluster", () => {
  const errors: unknown[] = [];
  const backend = new MemoryBackend({ onHandlerError: (e) => errors.push(e) });
  const nodes: Running[] = [];
  before(async () => {
    nodes.push(
      ...(await startNodes(3, () => new MemoryBroker({ backend }), {
        apiKey: "k3y",
        httpTransports: { pollTimeoutMs: 200 },
      })),
    );
  });
  after(async () => {
    await stopNodes(nodes);
    assert.deepEqual(errors, [], "no broker handler threw");
  });

  /** ann on every node, subscribed to `channel`. */
  async function anns(channel: string): Promise<Peer[]> {
    const peers: Peer[] = [];
    for (const n of nodes) {
      const { peer } = await Peer.connect(n.url, { data: { name: "ann" } });
      await peer.request({ type: "subscribe", channel });
      peers.push(peer);
    }
    return peers;
  }

  /** A WebSocket connection of `name` on node `i`, subscribed to `channel`. */
  async function ws(i: number, name: string, channel: string): Promise<Peer> {
    const { peer } = await Peer.connect(nodes[i]!.url, { data: { name } });
    const r = await peer.request({ type: "subscribe", channel });
    assert.ok(r.result !== undefined, JSON.stringify(r));
    return peer;
  }

  it("reaches the user's WebSocket and SSE connections on every node; others stay, and see the leaves", async () => {
    const channel = "room:ban";
    const watchers = await anns(channel);
    const m0 = await ws(0, "mallory", channel);
    const m2 = await ws(2, "mallory", channel);
    const sse = new HttpPeer(base(nodes[1]!), { data: { name: "mallory" } });
    const stream = sse.sse([{ id: 2, type: "subscribe", channel }]);
    await stream.until(2);
    for (const w of watchers) {
      await w.pushesUntil(3, (m) => m.type === "join" && m.member.user === "mallory");
    }

    // Node 1 holds only the SSE stream: its count is 1, the others act on the control message.
    assert.equal(await nodes[1]!.rt.disconnectUser("mallory"), 1);

    const expected = {
      type: "disconnect",
      code: DisconnectCode.FORCED,
      reason: "disconnected",
      reconnect: false,
    };
    for (const peer of [m0, m2]) {
      assert.deepEqual(await peer.push(disconnectOf), expected);
      assert.equal((await peer.closed).code, DisconnectCode.FORCED);
    }
    const [bye] = await stream.until(1, disconnectOf);
    assert.deepEqual(bye, expected);
    await stream.done;

    // Every ann connection sees the three leaves, and none of ann's was touched.
    for (const w of watchers) {
      const leaves = await w.pushesUntil(
        3,
        (m) => m.type === "leave" && m.channel === channel && m.member.user === "mallory",
      );
      assert.equal(new Set(leaves.map((m) => m.member.client)).size, 3, "one per connection");
      assert.equal(w.pushes.filter(disconnectOf).length, 0);
    }
    await nodes[2]!.rt.publish(channel, "still here");
    for (const w of watchers) {
      const [pub] = await w.pushesUntil(1, (m) => m.type === "pub" && m.channel === channel);
      assert.equal(pub!.data, "still here");
    }
    const presence = await watchers[0]!.request({ type: "presence", channel });
    assert.deepEqual(
      presence.result.members.map((m: Msg) => m.user),
      ["ann", "ann", "ann"],
    );
    assert.equal(
      nodes.map((n) => n.rt.sessions.size).reduce((a, b) => a + b),
      3,
      "ann only",
    );
    for (const w of watchers) w.close();
  });

  it("uses the given code everywhere (4000: reconnect); a polling client between two polls is told on its next poll", async () => {
    const channel = "room:code";
    const peer = await ws(2, "bob", channel);
    const poller = new HttpPeer(base(nodes[1]!), { data: { name: "bob" } });
    const first = await poller.poll([{ id: 2, type: "subscribe", channel }]);
    assert.deepEqual(
      first.slice(0, 2).map((m) => m.id),
      [1, 2],
      "connect and subscribe replies",
    );
    // Nobody of bob's on node 0.
    assert.equal(await nodes[0]!.rt.disconnectUser("bob", DisconnectCode.SHUTDOWN), 0);
    const push = await peer.push(disconnectOf);
    assert.deepEqual([push.code, push.reconnect], [DisconnectCode.SHUTDOWN, true]);
    assert.equal((await peer.closed).code, DisconnectCode.SHUTDOWN);
    const next = await poller.poll([{ id: 2, type: "subscribe", channel, resume: true }], {
      resume: true,
    });
    assert.deepEqual(next, [
      {
        type: "disconnect",
        code: DisconnectCode.SHUTDOWN,
        reason: "server shutdown",
        reconnect: true,
      },
    ]);
  });

  it("refuses a code outside 4000–4999 (RangeError), disconnecting nobody", async () => {
    const peer = await ws(0, "carol", "room:range");
    for (const code of [1000, 3999, 5000, 4502.5, Number.NaN]) {
      await assert.rejects(nodes[1]!.rt.disconnectUser("carol", code), RangeError, String(code));
      await assert.rejects(nodes[0]!.rt.disconnectUser("carol", code), RangeError, String(code));
    }
    const pong = await peer.request({ type: "ping" });
    assert.deepEqual(pong.result, {});
    assert.equal(peer.pushes.filter(disconnectOf).length, 0);
    peer.close();
  });

  it("the broker down: the local connections go, the promise rejects, the other nodes keep theirs", async () => {
    const channel = "room:outage";
    const here = await ws(0, "dave", channel);
    const there = await ws(2, "dave", channel);
    backend.setAvailable(false);
    try {
      await assert.rejects(nodes[0]!.rt.disconnectUser("dave"), BrokerUnavailableError);
    } finally {
      backend.setAvailable(true);
    }
    assert.equal((await here.push(disconnectOf)).code, DisconnectCode.FORCED);
    const pong = await there.request({ type: "ping" });
    assert.deepEqual(pong.result, {}, "node 2 was not told");
    assert.equal(there.pushes.filter(disconnectOf).length, 0);
    // Calling again once the broker is back reaches it (nothing left here).
    assert.equal(await nodes[0]!.rt.disconnectUser("dave"), 0);
    assert.equal((await there.push(disconnectOf)).code, DisconnectCode.FORCED);
  });

  it("control messages: malformed ones and unknown types are ignored, a hub ignores its own", async () => {
    const channel = "room:control";
    const peers = [await ws(0, "erin", channel), await ws(1, "erin", channel)];
    const other = new MemoryBroker({ backend }); // a node that is not a hub
    await other.start({
      publication() {},
      join() {},
      leave() {},
      resync() {},
      control() {},
    });
    try {
      for (const text of [
        "not json",
        "null",
        "[]",
        '"disconnect"',
        "{}",
        '{"type":"ban","user":"erin","code":4502}',
        '{"type":"disconnect","code":4502}',
        '{"type":"disconnect","user":["erin"],"code":4502}',
        '{"type":"disconnect","user":"erin"}',
        '{"type":"disconnect","user":"erin","code":1000}',
        '{"type":"disconnect","user":"erin","code":"4502"}',
      ]) {
        await other.publishControl(text);
      }
      for (const peer of peers) {
        const pong = await peer.request({ type: "ping" });
        assert.deepEqual(pong.result, {}, "still connected");
      }
      // Node 0's own message (by its origin) is not acted on by node 0, only by the others.
      await other.publishControl(
        JSON.stringify({
          type: "disconnect",
          user: "erin",
          code: DisconnectCode.FORCED,
          origin: nodes[0]!.rt.instanceId,
        }),
      );
      assert.equal((await peers[1]!.push(disconnectOf)).code, DisconnectCode.FORCED);
      const pong = await peers[0]!.request({ type: "ping" });
      assert.deepEqual(pong.result, {});
      assert.equal(peers[0]!.pushes.filter(disconnectOf).length, 0);
      peers[0]!.close();
    } finally {
      await other.close();
    }
  });

  it("each hub has its own instance id", () => {
    const ids = new Set(nodes.map((n) => n.rt.instanceId));
    assert.equal(ids.size, 3);
  });

  describe("HTTP API: POST /api/disconnect", () => {
    it("disconnects on every node and answers this node's count", async () => {
      const channel = "room:api";
      const franks = [
        await ws(0, "frank", channel),
        await ws(0, "frank", channel),
        await ws(2, "frank", channel),
      ];
      const r = await api(nodes[0]!, { user: "frank" });
      assert.deepEqual(r, { status: 200, json: { disconnected: 2 } });
      for (const peer of franks) {
        const push = await peer.push(disconnectOf);
        assert.deepEqual([push.code, push.reconnect], [DisconnectCode.FORCED, false]);
      }
      const peer = await ws(1, "grace", channel);
      const custom = await api(nodes[2]!, { user: "grace", code: 4001 }, { "x-api-key": "k3y" });
      assert.deepEqual(custom, { status: 200, json: { disconnected: 0 } });
      const push = await peer.push(disconnectOf);
      assert.deepEqual([push.code, push.reconnect], [4001, true]);
    });

    it("refuses a wrong key (401), a bad body or code (400), another method (405)", async () => {
      const peer = await ws(1, "heidi", "room:api-bad");
      const s = nodes[1]!;
      assert.equal((await api(s, { user: "heidi" }, {})).status, 401);
      assert.equal((await api(s, { user: "heidi" }, { authorization: "apikey nope" })).status, 401);
      for (const body of ["{not json", [1], null, "3", {}, { user: 5 }, { name: "heidi" }]) {
        const r = await api(s, body);
        assert.equal(r.status, 400, JSON.stringify(body));
        assert.equal(typeof r.json.error, "string");
      }
      for (const code of [1000, 4999.5, 5000, "4502", null]) {
        const r = await api(s, { user: "heidi", code });
        assert.equal(r.status, 400, JSON.stringify(code));
        assert.match(String(r.json.error), /code/);
      }
      const get = await api(s, null, undefined, "GET");
      assert.equal(get.status, 405);
      assert.equal(get.json.error, "use POST");
      const pong = await peer.request({ type: "ping" });
      assert.deepEqual(pong.result, {}, "none of those disconnected anybody");
      assert.equal(peer.pushes.filter(disconnectOf).length, 0);
      peer.close();
    });

    it("503 with code 112 when the broker is unavailable (the local connections are gone anyway)", async () => {
      const peer = await ws(2, "ivan", "room:api-503");
      backend.setAvailable(false);
      let r: Awaited<ReturnType<typeof api>>;
      try {
        r = await api(nodes[2]!, { user: "ivan" });
      } finally {
        backend.setAvailable(true);
      }
      assert.equal(r.status, 503);
      assert.equal(r.json.code, ErrorCode.UNAVAILABLE);
      assert.equal(typeof r.json.error, "string");
      assert.equal((await peer.push(disconnectOf)).code, DisconnectCode.FORCED);
    });
  });

  it("leaves no session behind", async () => {
    await until(
      () => nodes.every((n) => n.rt.sessions.size === 0),
      5000,
      "every connection closed",
    );
  });
});
