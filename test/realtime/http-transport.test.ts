/**
 * The HTTP transports of the realtime server (SSE, long-polling, command POSTs), frame by frame:
 * connect and subscribe replies, live publications, acknowledgements and idempotency, exact
 * recovery or recovered:false, presence, authentication, limits, the Origin policy — and one
 * client served by two nodes over one shared broker, its requests alternating between them.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as http from "node:http";
import { after, before, describe, it } from "node:test";
import * as zlib from "node:zlib";
import { SignJWT } from "jose";
import { MemoryBackend, MemoryBroker } from "../../src/broker/index.js";
import { clientIdOf, DisconnectCode, ErrorCode } from "../../src/realtime/index.js";
import { type Msg, Peer, type Running, startRealtime, until } from "./helpers.js";
import { HttpPeer, postRaw } from "./http-peer.js";

const base = (s: Running): string => `http://127.0.0.1:${s.port}/realtime`;

describe("HTTP transports: SSE and /send", () => {
  let s: Running;
  before(async () => {
    s = await startRealtime({
      namespaces: { "": {}, room: { presence: true } },
      httpTransports: { keepaliveMs: 50 },
      node: "n1",
    });
  });
  after(() => s.close());

  it("an SSE stream: a first comment, the connect reply, subscribe replies, then live pubs", async () => {
    const peer = new HttpPeer(base(s), { name: "test" });
    const stream = peer.sse([{ id: 2, type: "subscribe", channel: "ssea" }]);
    const [connect, sub] = await stream.until(2);
    assert.equal(stream.status, 200);
    assert.match(stream.contentType, /^text\/event-stream/);
    assert.ok(stream.comments >= 1, "the first comment");
    assert.deepEqual(connect, {
      id: 1,
      result: {
        client: clientIdOf(peer.session),
        user: "",
        ping: 0,
        node: "n1",
        transport: "sse",
        keepalive: 50,
        maxPublishBytes: 65_536,
      },
    });
    assert.deepEqual(sub, { id: 2, result: { offset: 0, epoch: "", recoverable: true } });
    const acks = await peer.send(
      [
        { id: 3, type: "publish", channel: "ssea", data: { n: 1 }, key: "k1" },
        { id: 4, type: "publish", channel: "ssea", data: { n: 2 }, key: "k2" },
      ],
      ["ssea"],
    );
    assert.deepEqual(
      acks.map((a) => [a.id, a.result.offset]),
      [
        [3, 1],
        [4, 2],
      ],
    );
    const pubs = await stream.until(2, (m) => m.type === "pub");
    assert.deepEqual(
      pubs.map((p) => [p.offset, p.data.n, p.from.client]),
      [
        [1, 1, clientIdOf(peer.session)],
        [2, 2, clientIdOf(peer.session)],
      ],
    );
    stream.close();
  });

  it("keepalive comments flow while nothing is published", async () => {
    const peer = new HttpPeer(base(s));
    const stream = peer.sse([]);
    await stream.until(1);
    await until(() => stream.comments >= 3, 5000, "keepalive comments");
    stream.close();
  });

  it("a retried publish with the same key is acknowledged as a duplicate and delivered once", async () => {
    const peer = new HttpPeer(base(s));
    const stream = peer.sse([{ id: 2, type: "subscribe", channel: "idem" }]);
    await stream.until(2);
    const cmd = { id: 5, type: "publish", channel: "idem", data: "x", key: "same" };
    const [first] = await peer.send([cmd], ["idem"]);
    const [again] = await peer.send([cmd], ["idem"]);
    assert.equal(again!.result.offset, first!.result.offset);
    assert.equal(again!.result.duplicate, true);
    await peer.send([{ id: 6, type: "publish", channel: "idem", data: "y" }], ["idem"]);
    await stream.until(2, (m) => m.type === "pub");
    assert.deepEqual(
      stream.pubs("idem").map((p) => p.data),
      ["x", "y"],
    );
    stream.close();
  });

  it("the subscribers rule: a publish counts the channels the client says it holds, if it may subscribe", async () => {
    const peer = new HttpPeer(base(s));
    const [refused] = await peer.send([{ id: 2, type: "publish", channel: "rule", data: 1 }]);
    assert.equal(refused!.error.code, ErrorCode.PERMISSION_DENIED);
    const [ok] = await peer.send([{ id: 3, type: "publish", channel: "rule", data: 1 }], ["rule"]);
    assert.equal(ok!.result.offset, 1);
  });

  it("/send: history, presence, rpc, ping; subscribe and connect are refused; bad input ends it", async () => {
    s.rt.rpc("echo", ({ client, data }) => ({ client: client.client, data: data ?? null }));
    const peer = new HttpPeer(base(s));
    await s.rt.publish("hist", 1);
    await s.rt.publish("hist", 2);
    const frames = await peer.send(
      [
        { id: 2, type: "history", channel: "hist", limit: 10 },
        { id: 3, type: "rpc", method: "echo", data: [1] },
        { id: 4, type: "ping" },
        { id: 5, type: "subscribe", channel: "hist" },
        { id: 6, type: "connect" },
        { id: 7, type: "presence", channel: "hist" },
        { id: 8, type: "teleport" },
        { type: "publish", channel: "lonely", data: 1 },
        { type: 5 },
        { id: 9, type: "ping" },
      ],
      ["hist"],
    );
    assert.deepEqual(
      frames[0]!.result.publications.map((p: { data: number }) => p.data),
      [1, 2],
    );
    assert.deepEqual(frames[1]!.result.data, { client: clientIdOf(peer.session), data: [1] });
    assert.deepEqual(frames[2], { id: 4, result: {} });
    assert.equal(frames[3]!.error.code, ErrorCode.BAD_REQUEST);
    assert.equal(frames[4]!.error.code, ErrorCode.ALREADY_CONNECTED);
    assert.equal(frames[5]!.error.code, ErrorCode.NOT_AVAILABLE);
    assert.equal(frames[6]!.error.code, ErrorCode.BAD_REQUEST);
    assert.deepEqual(
      [frames[7]!.type, frames[7]!.command, frames[7]!.error.code],
      ["error", "publish", ErrorCode.PERMISSION_DENIED],
    );
    assert.deepEqual(
      [frames[8]!.type, frames[8]!.code, frames[8]!.reconnect],
      ["disconnect", DisconnectCode.BAD_REQUEST, false],
    );
    assert.equal(frames.length, 9, "nothing runs after a command that cannot be read");
  });

  it("presence: joined once, resumed streams do not announce again, /send unsubscribe leaves", async () => {
    const { peer: ws } = await Peer.connect(s.url);
    await ws.request({ type: "subscribe", channel: "room:p" });
    const http = new HttpPeer(base(s));
    const id = clientIdOf(http.session);
    const first = http.sse([{ id: 2, type: "subscribe", channel: "room:p" }]);
    await first.until(2);
    await ws.push((m) => m.type === "join" && m.member.client === id);
    // The client reopens its stream (e.g. to add a channel): the subscription is resumed.
    first.close();
    const second = http.sse(
      [
        {
          id: 2,
          type: "subscribe",
          channel: "room:p",
          since: { offset: 0, epoch: "" },
          resume: true,
        },
        { id: 3, type: "subscribe", channel: "room:q" },
      ],
      { resume: true },
    );
    const [q] = await second.until(1);
    assert.equal(q!.id, 3, "no connect reply and no trivial reply for the resumed channel");
    const list = await ws.request({ type: "presence", channel: "room:p" });
    assert.equal(list.result.count, 2);
    assert.ok(list.result.members.some((m: { client: string }) => m.client === id));
    const [bye] = await http.send([{ id: 4, type: "unsubscribe", channel: "room:p" }]);
    assert.deepEqual(bye, { id: 4, result: {} });
    await ws.push((m) => m.type === "leave" && m.member.client === id);
    assert.equal(
      ws.pushes.filter((m) => m.type === "join" && m.member.client === id).length,
      1,
      "one join",
    );
    second.close();
    ws.close();
  });

  it("a new stream of the same client on the same node ends the previous one", async () => {
    const peer = new HttpPeer(base(s));
    const one = peer.sse([{ id: 2, type: "subscribe", channel: "twice" }]);
    await one.until(2);
    const two = peer.sse([{ id: 2, type: "subscribe", channel: "twice" }], { resume: true });
    await one.done;
    await until(() => two.comments >= 1, 5000, "second stream");
    await s.rt.publish("twice", "hello");
    const [pub] = await two.until(1, (m) => m.type === "pub");
    assert.equal(pub!.data, "hello");
    // The other tests' streams were closed by their clients: only this one stays.
    await until(() => s.rt.httpTransport?.openStreams === 1, 5000, "one open stream");
    two.close();
  });
});

describe("HTTP transports: long-polling and recovery", () => {
  let s: Running;
  before(async () => {
    s = await startRealtime({
      namespaces: { "": {}, short: { historySize: 3 }, eph: { historySize: 0 } },
      httpTransports: { pollTimeoutMs: 100 },
    });
  });
  after(() => s.close());

  it("the first poll is answered at once; a poll with nothing new is held, then answered empty", async () => {
    const peer = new HttpPeer(base(s));
    const first = await peer.poll([{ id: 2, type: "subscribe", channel: "pa" }]);
    assert.deepEqual(
      first.map((m) => m.id),
      [1, 2],
    );
    assert.equal(first[0]!.result.transport, "polling");
    assert.equal(first[0]!.result.keepalive, 100);
    const since = { offset: first[1]!.result.offset, epoch: first[1]!.result.epoch };
    const empty = await peer.poll(
      [{ id: 2, type: "subscribe", channel: "pa", since, resume: true }],
      {
        resume: true,
      },
    );
    assert.deepEqual(empty, []);
  });

  it("a held poll is answered as soon as a publication arrives", async () => {
    const peer = new HttpPeer(base(s));
    const [, sub] = await peer.poll([{ id: 2, type: "subscribe", channel: "pb" }]);
    const since = { offset: sub!.result.offset, epoch: sub!.result.epoch };
    let answered = false;
    const held = peer
      .poll([{ id: 2, type: "subscribe", channel: "pb", since, resume: true }], { resume: true })
      .then((frames) => {
        answered = true;
        return frames;
      });
    // Publish until the held poll has it (its subscribe may still be on its way).
    await until(
      async () => {
        if (!answered) await s.rt.publish("pb", "news");
        return answered;
      },
      5000,
      "the held poll",
    );
    const frames = await held;
    const news = frames.flatMap((m) =>
      m.type === "pub" ? [m.data] : m.id === 2 ? m.result.publications.map((p: Msg) => p.data) : [],
    );
    assert.ok(news.length >= 1 && news.every((d) => d === "news"));
  });

  it("a resumed subscribe recovers exactly what was published between polls, or says recovered:false", async () => {
    const peer = new HttpPeer(base(s));
    const [, sub] = await peer.poll([{ id: 2, type: "subscribe", channel: "short:r" }]);
    const since = { offset: sub!.result.offset, epoch: sub!.result.epoch };
    await s.rt.publish("short:r", "a");
    await s.rt.publish("short:r", "b");
    const got = await peer.poll(
      [{ id: 2, type: "subscribe", channel: "short:r", since, resume: true }],
      { resume: true },
    );
    assert.equal(got.length, 1);
    assert.equal(got[0]!.result.recovered, true);
    assert.deepEqual(
      got[0]!.result.publications.map((p: { data: string }) => p.data),
      ["a", "b"],
    );
    const at = { offset: got[0]!.result.offset, epoch: got[0]!.result.epoch };
    for (const x of ["c", "d", "e", "f"]) await s.rt.publish("short:r", x);
    const lost = await peer.poll(
      [{ id: 2, type: "subscribe", channel: "short:r", since: at, resume: true }],
      { resume: true },
    );
    assert.equal(lost[0]!.result.recovered, false);
    assert.equal(lost[0]!.result.publications, undefined, "never part of a gap");
    assert.equal(lost[0]!.result.offset, 6);
  });

  it("a channel a poll leaves without subscribers stays subscribed for two poll timeouts", async () => {
    // The channels of the earlier tests' polls go first.
    await until(() => s.rt.channelCount === 0, 5000, "no channel");
    const peer = new HttpPeer(base(s));
    const frames = await peer.poll([{ id: 2, type: "subscribe", channel: "linger" }]);
    assert.equal(frames.length, 2);
    assert.equal(s.rt.channelCount, 1, "kept after the poll ended");
    await until(() => s.rt.channelCount === 0, 5000, "let go");
  });

  it("subscribe errors come back as error replies; the other subscribes are served", async () => {
    const peer = new HttpPeer(base(s));
    const frames = await peer.poll([
      { id: 2, type: "subscribe", channel: "nons:x" },
      { id: 3, type: "subscribe", channel: "bad name" },
      { id: 4, type: "subscribe", channel: "pok" },
      { id: 5, type: "subscribe", channel: "pok" },
    ]);
    assert.deepEqual(
      frames.map((m) => [m.id, m.error?.code ?? "ok"]),
      [
        [1, "ok"],
        [2, ErrorCode.UNKNOWN_CHANNEL],
        [3, ErrorCode.UNKNOWN_CHANNEL],
        [4, "ok"],
        [5, ErrorCode.ALREADY_SUBSCRIBED],
      ],
    );
  });
});

describe("HTTP transports: presence lifetime", () => {
  let s: Running;
  before(async () => {
    s = await startRealtime({
      namespaces: { room: { presence: true } },
      presenceTtlMs: 600,
      authenticate: ({ data }) => ({
        user: String((data as { name?: string } | undefined)?.name ?? "anon"),
        grants: [],
      }),
      httpTransports: { pollTimeoutMs: 50, presenceTtlMs: 600 },
    });
  });
  after(() => s.close());

  const count = async (peer: Peer, channel: string): Promise<number> =>
    (await peer.request({ type: "presence", channel, limit: 0 })).result.count;

  it("a polling client stays present while it polls, and leaves (a leave push) when it stops", async () => {
    const { peer: ws } = await Peer.connect(s.url, { data: { name: "watcher" } });
    await ws.request({ type: "subscribe", channel: "room:ttl" });
    const http = new HttpPeer(base(s), { data: { name: "poller" } });
    const [, sub] = await http.poll([{ id: 2, type: "subscribe", channel: "room:ttl" }]);
    const since = { offset: sub!.result.offset, epoch: sub!.result.epoch };
    assert.equal(await count(ws, "room:ttl"), 2);
    // Poll for more than the presence TTL: every poll refreshes the entry.
    const started = Date.now();
    while (Date.now() - started < 1500) {
      await http.poll([{ id: 2, type: "subscribe", channel: "room:ttl", since, resume: true }], {
        resume: true,
      });
      assert.equal(await count(ws, "room:ttl"), 2);
    }
    // It stops polling without a word: the entry expires, and the sweep announces the leave.
    await ws.push((m) => m.type === "leave" && m.member.user === "poller");
    assert.equal(await count(ws, "room:ttl"), 1);
    const joins = ws.pushes.filter((m) => m.type === "join" && m.member.user === "poller");
    assert.equal(joins.length, 1, "one join for all those polls");
    ws.close();
  });

  it("an SSE client whose stream ends stays present if it reopens in time, else it leaves", async () => {
    const { peer: ws } = await Peer.connect(s.url, { data: { name: "watcher" } });
    await ws.request({ type: "subscribe", channel: "room:sse" });
    const http = new HttpPeer(base(s), { data: { name: "streamer" } });
    const first = http.sse([{ id: 2, type: "subscribe", channel: "room:sse" }]);
    const [, sub] = await first.until(2);
    const since = { offset: sub!.result.offset, epoch: sub!.result.epoch };
    await ws.push((m) => m.type === "join" && m.member.user === "streamer");
    // Held past the TTL: the node holding the stream refreshes the entry.
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(await count(ws, "room:sse"), 2);
    first.close(); // cut (a proxy, a network change); reopened 200 ms later
    await new Promise((r) => setTimeout(r, 200));
    const again = [{ id: 2, type: "subscribe", channel: "room:sse", since, resume: true }];
    const second = http.sse(again, { resume: true });
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(await count(ws, "room:sse"), 2);
    second.close(); // gone for good
    await ws.push((m) => m.type === "leave" && m.member.user === "streamer");
    const news = ws.pushes.filter((m) => m.member?.user === "streamer").map((m) => m.type);
    assert.deepEqual(news, ["join", "leave"], "no leave and join for the reopened stream");
    ws.close();
  });

  it("a client the server disconnects leaves presence at once, with a leave push", async () => {
    const { peer: ws } = await Peer.connect(s.url, { data: { name: "watcher" } });
    await ws.request({ type: "subscribe", channel: "room:ban" });
    const http = new HttpPeer(base(s), { data: { name: "mallory" } });
    const stream = http.sse([{ id: 2, type: "subscribe", channel: "room:ban" }]);
    await stream.until(2);
    await ws.push((m) => m.type === "join" && m.member.user === "mallory");
    assert.equal(await s.rt.disconnectUser("mallory"), 1);
    const [bye] = await stream.until(1, (m) => m.type === "disconnect");
    assert.deepEqual(bye, {
      type: "disconnect",
      code: DisconnectCode.FORCED,
      reason: "disconnected",
      reconnect: false,
    });
    await stream.done;
    await ws.push((m) => m.type === "leave" && m.member.user === "mallory");
    assert.equal(await count(ws, "room:ban"), 1);
    ws.close();
  });
});

describe("HTTP transports: limits, authentication, Origin", () => {
  const secret = new TextEncoder().encode("0123456789abcdef0123456789abcdef");
  const token = (sub: string, exp: number | string = "1h"): Promise<string> =>
    new SignJWT({})
      .setProtectedHeader({ alg: "HS256" })
      .setSubject(sub)
      .setExpirationTime(exp)
      .sign(secret);
  let s: Running;
  before(async () => {
    s = await startRealtime(
      {
        jwt: { secret: "0123456789abcdef0123456789abcdef" },
        maxChannelsPerConnection: 2,
        httpTransports: { maxBodyBytes: 4096, maxCommandsPerRequest: 3 },
      },
      { allowedOrigins: ["https://app.example"] },
    );
  });
  after(() => s.close());

  it("a refused token: the connect error and a 4501 disconnect, on a stream and on /send", async () => {
    const peer = new HttpPeer(base(s), { token: "not.a.jwt" });
    const frames = await peer.poll([]);
    assert.equal(frames[0]!.error.code, ErrorCode.UNAUTHORIZED);
    assert.deepEqual(
      [frames[1]!.type, frames[1]!.code, frames[1]!.reconnect],
      ["disconnect", DisconnectCode.UNAUTHORIZED, false],
    );
    const sent = await peer.send([{ id: 2, type: "ping" }]);
    assert.equal(sent[0]!.error.code, ErrorCode.UNAUTHORIZED);
    assert.equal(sent[1]!.code, DisconnectCode.UNAUTHORIZED);
    assert.equal(sent.length, 2, "no command runs");
  });

  it("a valid token names the user; at its expiry the stream gets 4003", async () => {
    const exp = Math.floor(Date.now() / 1000) + 2;
    const peer = new HttpPeer(base(s), { token: await token("ann", exp) });
    const stream = peer.sse([]);
    const [connect] = await stream.until(1);
    assert.equal(connect!.result.user, "ann");
    assert.equal(connect!.result.expires, exp * 1000);
    const [bye] = await stream.until(1, (m) => m.type === "disconnect", 10_000);
    assert.equal(bye!.code, DisconnectCode.TOKEN_EXPIRED);
    await stream.done;
  });

  it("refresh on /send checks the new token is for the same user", async () => {
    const peer = new HttpPeer(base(s), { token: await token("ann") });
    const [ok] = await peer.send([{ id: 2, type: "refresh", token: await token("ann", "2h") }]);
    assert.equal(typeof ok!.result.expires, "number");
    const [no] = await peer.send([{ id: 3, type: "refresh", token: await token("bob") }]);
    assert.equal(no!.error.code, ErrorCode.PERMISSION_DENIED);
  });

  it("limits: body size (413), commands per request (413), channels per connection (106)", async () => {
    const peer = new HttpPeer(base(s), { token: await token("ann") });
    const big = await postRaw(`${base(s)}/send`, {
      session: peer.session,
      connect: peer.connect,
      commands: [{ type: "ping", pad: "x".repeat(5000) }],
    });
    assert.equal(big.status, 413);
    const many = await postRaw(`${base(s)}/send`, {
      session: peer.session,
      connect: peer.connect,
      commands: [{ type: "ping" }, { type: "ping" }, { type: "ping" }, { type: "ping" }],
    });
    assert.equal(many.status, 413);
    const frames = await peer.poll([
      { id: 2, type: "subscribe", channel: "l1" },
      { id: 3, type: "subscribe", channel: "l2" },
      { id: 4, type: "subscribe", channel: "l3" },
    ]);
    assert.deepEqual(
      frames.map((m) => m.error?.code ?? "ok"),
      ["ok", "ok", "ok", ErrorCode.LIMIT_EXCEEDED],
    );
  });

  it("bad requests: not JSON, no session, no connect, GET (400, 400, 400, 405)", async () => {
    assert.equal((await postRaw(`${base(s)}/poll`, "{nope")).status, 400);
    assert.equal((await postRaw(`${base(s)}/poll`, { connect: { type: "connect" } })).status, 400);
    assert.equal(
      (await postRaw(`${base(s)}/poll`, { session: "0123456789abcdef0123" })).status,
      400,
    );
    const get = await postRaw(`${base(s)}/sse`, null, {}, "GET");
    assert.equal(get.status, 405);
    assert.equal(get.headers.get("allow"), "POST, OPTIONS");
    // Paths next to ones that were not attached are not served.
    assert.equal((await postRaw(`http://127.0.0.1:${s.port}/other/poll`, {})).status, 404);
  });

  it("the Origin policy of the WebSocket path: 403 for others, CORS headers and preflight for allowed ones", async () => {
    const peer = new HttpPeer(base(s), { token: await token("ann") });
    const body = {
      session: peer.session,
      connect: peer.connect,
      commands: [{ id: 2, type: "ping" }],
    };
    const evil = await postRaw(`${base(s)}/send`, body, { origin: "https://evil.example" });
    assert.equal(evil.status, 403);
    const good = await postRaw(`${base(s)}/send`, body, { origin: "https://app.example" });
    assert.equal(good.status, 200);
    assert.equal(good.headers.get("access-control-allow-origin"), "https://app.example");
    assert.deepEqual(good.frames, [{ id: 2, result: {} }]);
    const pre = await postRaw(
      `${base(s)}/send`,
      null,
      { origin: "https://app.example", "access-control-request-method": "POST" },
      "OPTIONS",
    );
    assert.equal(pre.status, 204);
    assert.match(pre.headers.get("access-control-allow-methods") ?? "", /POST/);
  });
});

describe("HTTP transports: two nodes over one broker, requests alternating", () => {
  const backend = new MemoryBackend();
  const nodes: Running[] = [];
  before(async () => {
    for (const name of ["a", "b"]) {
      nodes.push(
        await startRealtime({
          broker: new MemoryBroker({ backend }),
          node: name,
          namespaces: { "": {}, room: { presence: true } },
          authenticate: ({ data }) => ({
            user: String((data as { name?: string } | undefined)?.name ?? "anon"),
            grants: [],
          }),
          httpTransports: { pollTimeoutMs: 200 },
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

  it("polls and commands of one client alternate between nodes: every publication once, in order", async () => {
    const bases = nodes.map(base);
    const peer = new HttpPeer(bases[0]!, { data: { name: "ann" } });
    const channel = "room:rr";
    const first = await peer.poll([{ id: 2, type: "subscribe", channel }], { base: bases[0]! });
    assert.equal(first[0]!.result.node, "a");
    let pos = {
      offset: first[1]!.result.offset as number,
      epoch: first[1]!.result.epoch as string,
    };
    const delivered: number[] = [];
    const acked: number[] = [];
    let request = 1;
    for (let round = 0; round < 12; round++) {
      // Publishes from this client (alternating nodes) and from the application on either node.
      const via = bases[request++ % 2]!;
      const [ack] = await peer.send(
        [{ id: 10 + round, type: "publish", channel, data: round * 2, key: `k${round}` }],
        [channel],
        via,
      );
      acked.push(ack!.result.offset);
      // A retry of the same publish through the other node is not published again.
      const [dup] = await peer.send(
        [{ id: 50 + round, type: "publish", channel, data: round * 2, key: `k${round}` }],
        [channel],
        bases[request % 2]!,
      );
      assert.equal(dup!.result.duplicate, true);
      await nodes[round % 2]!.rt.publish(channel, round * 2 + 1);
      const frames = await peer.poll(
        [{ id: 2, type: "subscribe", channel, since: pos, resume: true }],
        { resume: true, base: bases[request++ % 2]! },
      );
      for (const f of frames) {
        if (f.id === 2) assert.equal(f.result.recovered, true);
        const pubs: Msg[] =
          f.id === 2 ? (f.result.publications ?? []) : f.type === "pub" ? [f] : [];
        for (const p of pubs) {
          delivered.push(p.data);
          pos = { offset: p.offset, epoch: f.id === 2 ? f.result.epoch : p.epoch };
        }
      }
    }
    assert.deepEqual(
      delivered,
      Array.from({ length: 24 }, (_, i) => i),
    );
    assert.deepEqual(
      acked,
      Array.from({ length: 12 }, (_, i) => 2 * i + 1),
    );
  });

  it("an SSE stream on one node, commands and presence queries on the other", async () => {
    const [a, b] = nodes.map(base) as [string, string];
    const ann = new HttpPeer(a, { data: { name: "ann" } });
    const bob = new HttpPeer(b, { data: { name: "bob" } });
    const annStream = ann.sse([{ id: 2, type: "subscribe", channel: "room:x" }], { base: a });
    await annStream.until(2);
    const bobStream = bob.sse([{ id: 2, type: "subscribe", channel: "room:x" }], { base: b });
    await bobStream.until(2);
    await annStream.until(1, (m) => m.type === "join" && m.member.user === "bob");
    // Ann's commands go to node b, which does not hold her stream.
    const [presence] = await ann.send(
      [{ id: 3, type: "presence", channel: "room:x" }],
      ["room:x"],
      b,
    );
    assert.deepEqual(presence!.result.members.map((m: { user: string }) => m.user).sort(), [
      "ann",
      "bob",
    ]);
    await ann.send([{ id: 4, type: "publish", channel: "room:x", data: "hi" }], ["room:x"], b);
    const [pub] = await bobStream.until(1, (m) => m.type === "pub");
    assert.equal(pub!.from.user, "ann");
    // Bob leaves through node a, which never saw him.
    await bob.send([{ id: 5, type: "unsubscribe", channel: "room:x" }], [], a);
    const [leave] = await annStream.until(1, (m) => m.type === "leave");
    assert.equal(leave!.member.user, "bob");
    annStream.close();
    bobStream.close();
  });
});

describe("HTTP transports: a node that shuts down", () => {
  it("ends its streams without a disconnect, refuses new ones with 503; reopened elsewhere, the client stays present and loses nothing", async () => {
    const backend = new MemoryBackend();
    const options = {
      namespaces: { "": {}, room: { presence: true } },
      authenticate: ({ data }: { data?: unknown }) => ({
        user: String((data as { name?: string } | undefined)?.name ?? "anon"),
        grants: [],
      }),
    };
    const leaving = await startRealtime({
      ...options,
      broker: new MemoryBroker({ backend }),
      node: "leaving",
      drainMs: 600,
    });
    const staying = await startRealtime({
      ...options,
      broker: new MemoryBroker({ backend }),
      node: "staying",
    });
    try {
      const { peer: watcher } = await Peer.connect(staying.url, { data: { name: "watcher" } });
      await watcher.request({ type: "subscribe", channel: "room:d" });
      // Another WebSocket client on the leaving node, so the drain lasts (two batches).
      const { peer: other } = await Peer.connect(leaving.url, { data: { name: "other" } });
      await other.request({ type: "subscribe", channel: "room:d" });
      const ann = new HttpPeer(base(leaving), { data: { name: "ann" } });
      const first = ann.sse([{ id: 2, type: "subscribe", channel: "room:d" }]);
      const [connected] = await first.until(2);
      assert.equal(connected!.result.node, "leaving");
      await watcher.push((m) => m.type === "join" && m.member.user === "ann");
      await leaving.rt.publish("room:d", "before");
      await first.until(1, (m) => m.type === "pub");
      const closing = leaving.rt.close();
      await first.done;
      assert.deepEqual(
        first.frames.filter((m) => m.type === "disconnect"),
        [],
        "no disconnect: only this stream ends",
      );
      // While it drains, a new stream there is refused, so the client goes elsewhere.
      const refused = await postRaw(`${base(leaving)}/sse`, ann.openBody([], { resume: true }));
      assert.equal(refused.status, 503);
      await staying.rt.publish("room:d", "meanwhile");
      const position = first.pubs("room:d").at(-1)!;
      const since = { offset: position.offset, epoch: position.epoch };
      const second = ann.sse(
        [{ id: 2, type: "subscribe", channel: "room:d", since, resume: true }],
        { resume: true, base: base(staying) },
      );
      const [recovered] = await second.until(1, (m) => m.id === 2);
      assert.deepEqual(
        recovered!.result.publications.map((p: Msg) => p.data),
        ["meanwhile"],
      );
      await closing;
      const list = await watcher.request({ type: "presence", channel: "room:d" });
      assert.ok(list.result.members.some((m: { user: string }) => m.user === "ann"));
      const annNews = watcher.pushes.filter((m) => m.member?.user === "ann").map((m) => m.type);
      assert.deepEqual(annNews, ["join"], "still present: no leave, no second join");
      second.close();
      watcher.close();
    } finally {
      await leaving.close();
      await staying.close();
      await leaving.broker.close();
      await staying.broker.close();
    }
  });
});

describe("HTTP transports: compression", () => {
  /** POST `body` with node:http (no automatic decompression): status, headers, raw chunks. */
  function rawPost(
    url: string,
    body: Msg,
    headers: Record<string, string>,
  ): Promise<http.IncomingMessage> {
    return new Promise((resolve, reject) => {
      const req = http.request(url, { method: "POST", headers }, resolve);
      req.on("error", reject);
      req.end(JSON.stringify(body));
    });
  }
  const GZIP = { "accept-encoding": "gzip, deflate" };

  let on: Running;
  let off: Running;
  before(async () => {
    on = await startRealtime({ httpTransports: { compression: true, pollTimeoutMs: 5000 } });
    off = await startRealtime({ httpTransports: { pollTimeoutMs: 5000 } });
  });
  after(async () => {
    await on.close();
    await off.close();
  });

  it("SSE: gzipped for clients that accept it, each event flushed as it is written", async () => {
    const peer = new HttpPeer(base(on));
    const res = await rawPost(
      `${base(on)}/sse`,
      peer.openBody([{ id: 2, type: "subscribe", channel: "z" }], {}),
      GZIP,
    );
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers["content-encoding"], "gzip");
    assert.equal(res.headers.vary, "Accept-Encoding");
    const gunzip = zlib.createGunzip();
    res.pipe(gunzip);
    let text = "";
    gunzip.on("data", (chunk: Buffer) => {
      text += chunk.toString("utf8");
    });
    const frames = (): Msg[] =>
      text
        .split("\n")
        .filter((l) => l.startsWith("data: "))
        .map((l) => JSON.parse(l.slice(6)) as Msg);
    // The preamble, the connect reply and the subscribe reply arrive without more traffic.
    await until(() => frames().length === 2, 5000, "the replies, decompressed");
    assert.ok(text.startsWith(": duplex.v1\n\n"));
    for (let i = 0; i < 5; i++) {
      await on.rt.publish("z", { i, text: "a repetitive payload ".repeat(4) });
      await until(() => frames().length === 3 + i, 5000, `publication ${i}, flushed`);
    }
    assert.deepEqual(
      frames()
        .slice(2)
        .map((m) => m.data.i),
      [0, 1, 2, 3, 4],
    );
    res.destroy();
  });

  it("SSE: plain for clients that do not accept gzip, and when the option is off", async () => {
    for (const [server, headers] of [
      [on, {}],
      [off, GZIP],
    ] as const) {
      const peer = new HttpPeer(base(server));
      const res = await rawPost(`${base(server)}/sse`, peer.openBody([], {}), headers);
      assert.equal(res.headers["content-encoding"], undefined);
      const first = await new Promise<string>((resolve) =>
        res.once("data", (chunk: Buffer) => resolve(chunk.toString("utf8"))),
      );
      assert.ok(first.startsWith(": duplex.v1"), first);
      res.destroy();
    }
  });

  it("long-polling: answers of 512 bytes or more are gzipped, shorter ones are not", async () => {
    const peer = new HttpPeer(base(on));
    const small = await rawPost(`${base(on)}/poll`, peer.openBody([], {}), GZIP);
    assert.equal(small.headers["content-encoding"], undefined, "the connect reply alone is short");
    small.resume();
    for (let i = 0; i < 5; i++) await on.rt.publish("big", { i, pad: "x".repeat(200) });
    const res = await rawPost(
      `${base(on)}/poll`,
      peer.openBody(
        [{ id: 2, type: "subscribe", channel: "big", since: { offset: 0, epoch: "" } }],
        {
          resume: true,
        },
      ),
      GZIP,
    );
    assert.equal(res.headers["content-encoding"], "gzip");
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    assert.equal(Number(res.headers["content-length"]), raw.length);
    const lines = zlib.gunzipSync(raw).toString("utf8").trim().split("\n");
    const reply = JSON.parse(lines[0]!) as Msg;
    assert.deepEqual(
      reply.result.publications.map((p: Msg) => p.data.i),
      [0, 1, 2, 3, 4],
    );
    assert.ok(raw.length < 600, `${raw.length} bytes for ~1.3 KB of frames`);
  });
});

describe("HTTP transports: a stream that is not read", () => {
  for (const compression of [false, true]) {
    it(`SSE${compression ? " (gzip)" : ""}: the slow-consumer policy ends it, bytes queued in the deflate stream counted; the others go on`, async () => {
      const s = await startRealtime({
        namespaces: { feed: { slowConsumer: "disconnect", maxQueueBytes: 256 * 1024 } },
        httpTransports: { compression },
      });
      try {
        const { peer: healthy } = await Peer.connect(s.url);
        await healthy.request({ type: "subscribe", channel: "feed:x" });
        const peer = new HttpPeer(base(s));
        const body = JSON.stringify(
          peer.openBody([{ id: 2, type: "subscribe", channel: "feed:x" }], {}),
        );
        const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
          const req = http.request(
            `${base(s)}/sse`,
            { method: "POST", headers: { "accept-encoding": "gzip" } },
            resolve,
          );
          req.on("error", reject);
          req.end(body);
        });
        assert.equal(res.headers["content-encoding"], compression ? "gzip" : undefined);
        res.pause(); // and never read again: the kernel buffers fill, then the server's
        await until(() => s.rt.httpTransport!.openStreams === 1, 5000, "the stream subscribed");
        // Incompressible publications, far more than loopback's buffers hold, each one read
        // by the healthy subscriber before the next.
        let sent = 0;
        while (s.rt.httpTransport!.openStreams === 1 && sent < 2000) {
          await s.rt.publish("feed:x", randomBytes(12 * 1024).toString("base64"));
          sent++;
          await healthy.pushesUntil(sent, (m) => m.type === "pub");
        }
        assert.equal(s.rt.httpTransport!.openStreams, 0, `still open after ${sent} publications`);
        assert.equal(healthy.pushes.filter((m) => m.type === "disconnect").length, 0);
        res.destroy();
        healthy.close();
      } finally {
        await s.close();
      }
    });
  }
});
