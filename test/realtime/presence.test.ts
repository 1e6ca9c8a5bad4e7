/**
 * Presence on the realtime server: join/leave events, member lists with client info, O(1)
 * counts, pagination, and abrupt disconnects (TCP cut, or a silent peer caught by the heartbeat).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startRelay } from "../support/tcp-proxy.js";
import { Peer, type Running, startRealtime, until } from "./helpers.js";

describe("realtime server: presence", () => {
  let s: Running;
  before(async () => {
    s = await startRealtime(
      {
        authenticate: ({ data }) => {
          const name = String((data as { name?: unknown } | undefined)?.name ?? "anon");
          return { user: name, info: { name }, grants: [] };
        },
        namespaces: { room: { presence: true }, quiet: { presence: true, joinLeave: false } },
      },
      { pingIntervalMs: 200, pongTimeoutMs: 200 },
    );
  });
  after(() => s.close());

  it("join and leave events carry the member's client info; the list and count follow", async () => {
    const a = await Peer.connect(s.url, { data: { name: "ann" } });
    await a.peer.request({ type: "subscribe", channel: "room:1" });
    const b = await Peer.connect(s.url, { data: { name: "ben" } });
    await b.peer.request({ type: "subscribe", channel: "room:1" });
    const join = await a.peer.push((m) => m.type === "join" && m.member.user === "ben");
    assert.deepEqual(join.member, {
      client: b.reply.result.client,
      user: "ben",
      info: { name: "ben" },
    });
    const list = await a.peer.request({ type: "presence", channel: "room:1" });
    assert.equal(list.result.count, 2);
    assert.deepEqual(list.result.members.map((m: { user: string }) => m.user).sort(), [
      "ann",
      "ben",
    ]);
    await b.peer.request({ type: "unsubscribe", channel: "room:1" });
    const leave = await a.peer.push((m) => m.type === "leave");
    assert.equal(leave.member.user, "ben");
    const after1 = await a.peer.request({ type: "presence", channel: "room:1", limit: 0 });
    assert.equal(after1.result.count, 1);
    assert.deepEqual(after1.result.members, []);
    a.peer.close();
    b.peer.close();
  });

  it("large member lists come in pages; every member is listed exactly once", async () => {
    const peers: Peer[] = [];
    for (let i = 0; i < 25; i++) {
      const { peer } = await Peer.connect(s.url, { data: { name: `m${i}` } });
      await peer.request({ type: "subscribe", channel: "quiet:big" });
      peers.push(peer);
    }
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await peers[0]!.request({
        type: "presence",
        channel: "quiet:big",
        limit: 10,
        ...(cursor === undefined ? {} : { cursor }),
      });
      assert.equal(page.result.count, 25);
      seen.push(...page.result.members.map((m: { user: string }) => m.user));
      cursor = page.result.cursor;
      pages++;
    } while (cursor !== undefined);
    assert.equal(pages, 3);
    assert.equal(new Set(seen).size, 25);
    assert.equal(seen.length, 25);
    assert.equal(
      peers[0]!.pushes.filter((m) => m.type === "join").length,
      0,
      "joinLeave off: no events",
    );
    const tooMany = await peers[0]!.request({
      type: "presence",
      channel: "quiet:big",
      limit: 5000,
    });
    assert.equal(tooMany.error.code, 106);
    for (const p of peers) p.close();
  });

  it("a cut TCP connection leaves presence", async () => {
    const a = await Peer.connect(s.url, { data: { name: "watcher" } });
    await a.peer.request({ type: "subscribe", channel: "room:cut" });
    const b = await Peer.connect(s.url, { data: { name: "gone" } });
    await b.peer.request({ type: "subscribe", channel: "room:cut" });
    b.peer.cut();
    const leave = await a.peer.push((m) => m.type === "leave");
    assert.equal(leave.member.user, "gone");
    a.peer.close();
  });

  it("a silent peer (no FIN, no pong) leaves presence within the heartbeat deadline", async () => {
    const relay = await startRelay(s.port);
    const port = relay.port;
    try {
      const a = await Peer.connect(s.url, { data: { name: "watcher2" } });
      await a.peer.request({ type: "subscribe", channel: "room:silent" });
      const b = await Peer.connect(`ws://127.0.0.1:${port}/realtime`, { data: { name: "ghost" } });
      await b.peer.request({ type: "subscribe", channel: "room:silent" });
      await a.peer.push((m) => m.type === "join" && m.member.user === "ghost");
      for (const c of relay.connections) c.silent = true;
      const leave = await a.peer.push((m) => m.type === "leave");
      assert.equal(leave.member.user, "ghost");
      await until(
        async () =>
          (await a.peer.request({ type: "presence", channel: "room:silent" })).result.count === 1,
      );
      a.peer.close();
      b.peer.cut();
    } finally {
      await relay.close();
    }
  });

  it("presence on a namespace without it: 108", async () => {
    const { peer } = await Peer.connect(s.url);
    await peer.request({ type: "subscribe", channel: "plain" });
    const r = await peer.request({ type: "presence", channel: "plain" });
    assert.equal(r.error.code, 108);
    peer.close();
  });
});
