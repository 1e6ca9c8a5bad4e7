/**
 * The realtime client against a scripted fake server (test/realtime/client/fake-server.ts), over
 * real WebSockets on loopback: our server, and the Node entry's default WebSocket (our client).
 * No timing thresholds: tests wait for events; delays are only made small through the options.
 */
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";
import {
  ClientErrorCode,
  type ConnectionState,
  RealtimeClient,
  type RealtimeClientOptions,
  RealtimeError,
} from "../../../src/realtime/client/node.js";
import { DisconnectCode, ErrorCode } from "../../../src/realtime/codes.js";
import {
  acceptConnect,
  type FakeConnection,
  FakeServer,
  nextEvent,
  record,
  sleep,
} from "./fake-server.js";

const FAST: RealtimeClientOptions = {
  random: () => 0.5,
  minReconnectDelayMs: 10,
  maxReconnectDelayMs: 40,
};
const T = { timeout: 10_000 };

let server: FakeServer;
const clients: RealtimeClient[] = [];

function newClient(options: RealtimeClientOptions = {}): RealtimeClient {
  const client = new RealtimeClient(server.url, { ...FAST, onlineEvents: null, ...options });
  clients.push(client);
  return client;
}

/** Connect and wait for the connected event; returns the server side. */
async function connected(client: RealtimeClient): Promise<FakeConnection> {
  const ready = nextEvent(client, "connected");
  client.connect();
  const conn = await server.nextConnection();
  await ready;
  return conn;
}

async function rejection(promise: Promise<unknown>): Promise<RealtimeError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof RealtimeError, `expected a RealtimeError, got ${String(error)}`);
    return error;
  }
  assert.fail("expected a rejection");
}

before(async () => {
  server = await FakeServer.start();
});

afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  server.reset();
});

after(async () => {
  await server.stop();
});

describe("connection", () => {
  it(
    "sends connect with token, data and name; reports states and the connect result",
    T,
    async () => {
      const client = newClient({ token: "tok", data: { app: 1 }, name: "test" });
      const states = record(client, "state");
      assert.equal(client.state, "disconnected");
      assert.equal(client.transport, "websocket");
      const ready = nextEvent(client, "connected");
      client.connect();
      client.connect(); // idempotent
      assert.equal(client.state, "connecting");
      const conn = await server.nextConnection();
      const result = await ready;
      assert.equal(client.state, "connected");
      assert.equal(client.clientId, result.client);
      assert.equal(client.user, "alice");
      assert.deepEqual(conn.log[0], {
        type: "connect",
        id: (conn.log[0] as { id: number }).id,
        token: "tok",
        data: { app: 1 },
        name: "test",
      });
      assert.deepEqual(
        states.map((s) => [s.previous, s.state]),
        [
          ["disconnected", "connecting"],
          ["connecting", "connected"],
        ],
      );
      const disconnected = nextEvent(client, "disconnected");
      client.close();
      assert.equal(client.state, "closed");
      assert.deepEqual(await disconnected, {
        code: 1000,
        reason: "client closed",
        reconnect: false,
      });
      assert.equal((await conn.closed).code, 1000);
      assert.equal(server.connections.length, 1);
    },
  );

  it("reconnects with backoff after the server terminates the socket", T, async () => {
    let randomCalls = 0;
    const client = newClient({
      random: () => {
        randomCalls++;
        return 0.5;
      },
    });
    const conn1 = await connected(client);
    const states = record(client, "state");
    const disconnected = nextEvent(client, "disconnected");
    const reconnected = nextEvent(client, "connected");
    conn1.terminate();
    const d = await disconnected;
    assert.equal(d.reconnect, true);
    assert.equal(d.code, 1006);
    assert.equal(client.state, "disconnected");
    assert.equal(client.clientId, undefined);
    const conn2 = await server.nextConnection();
    await reconnected;
    assert.notEqual(conn2, conn1);
    assert.ok(randomCalls >= 1, "the reconnect delay was drawn from random()");
    assert.deepEqual(
      states.map((s) => s.state),
      ["disconnected", "connecting", "connected"] satisfies ConnectionState[],
    );
  });

  it("reconnects after a 4000-range close code and reports it", T, async () => {
    const client = newClient();
    const conn1 = await connected(client);
    const disconnected = nextEvent(client, "disconnected");
    conn1.send({ type: "disconnect", code: 4000, reason: "shutdown", reconnect: true });
    conn1.close(DisconnectCode.SHUTDOWN, "shutdown");
    assert.deepEqual(await disconnected, { code: 4000, reason: "shutdown", reconnect: true });
    await server.nextConnection();
    await nextEvent(client, "connected");
  });

  it("does not reconnect after close code 4501 (state closed)", T, async () => {
    const client = newClient();
    const conn = await connected(client);
    const disconnected = nextEvent(client, "disconnected");
    conn.send({ type: "disconnect", code: 4501, reason: "unauthorized", reconnect: false });
    conn.close(DisconnectCode.UNAUTHORIZED, "unauthorized");
    assert.deepEqual(await disconnected, { code: 4501, reason: "unauthorized", reconnect: false });
    assert.equal(client.state, "closed");
    const err = await rejection(client.publish("chat:a", 1));
    assert.equal(err.code, ClientErrorCode.CLOSED);
    await sleep(100); // well beyond maxReconnectDelayMs (40)
    assert.equal(server.connections.at(-1), conn);
    assert.equal(client.state, "closed");
  });

  it("goes to closed on a 4500-range close code without a disconnect push", T, async () => {
    const client = newClient();
    const conn = await connected(client);
    const disconnected = nextEvent(client, "disconnected");
    conn.close(DisconnectCode.FORCED, "bye");
    assert.deepEqual(await disconnected, { code: 4502, reason: "bye", reconnect: false });
    assert.equal(client.state, "closed");
  });

  it("connect() after close() connects again and re-subscribes", T, async () => {
    const client = newClient();
    const sub = client.channel("chat:z");
    sub.subscribe();
    const conn1 = await connected(client);
    const s1 = await conn1.next("subscribe");
    conn1.reply(s1.id, { offset: 1, epoch: "e", recoverable: true });
    await nextEvent(sub, "subscribed");
    client.close();
    assert.equal(sub.state, "subscribing");
    const err = await rejection(client.rpc("x"));
    assert.equal(err.code, ClientErrorCode.CLOSED);
    const conn2 = await connected(client);
    const s2 = await conn2.next("subscribe");
    assert.deepEqual(s2.since, { offset: 1, epoch: "e" });
  });

  it(
    "abandons an attempt whose connect reply does not come within connectTimeoutMs",
    T,
    async () => {
      let attempts = 0;
      server.onConnect = (command, conn) => {
        attempts++;
        return attempts === 1 ? undefined : acceptConnect(command, conn);
      };
      const client = newClient({ connectTimeoutMs: 100 });
      const disconnected = nextEvent(client, "disconnected");
      const ready = nextEvent(client, "connected");
      client.connect();
      const conn1 = await server.nextConnection();
      assert.deepEqual(await disconnected, {
        code: 3008,
        reason: "connect timeout",
        reconnect: true,
      });
      assert.equal((await conn1.closed).code, 3008);
      await server.nextConnection();
      await ready;
      assert.ok(attempts >= 2);
    },
  );

  it("goes to closed when the server refuses connect for good", T, async () => {
    server.onConnect = () => ({ error: { code: ErrorCode.BAD_REQUEST, message: "bad" } });
    const client = newClient();
    const error = nextEvent(client, "error");
    const disconnected = nextEvent(client, "disconnected");
    client.connect();
    await server.nextConnection();
    const e = await error;
    assert.ok(e instanceof RealtimeError);
    assert.equal(e.code, ErrorCode.BAD_REQUEST);
    assert.deepEqual(await disconnected, {
      code: ErrorCode.BAD_REQUEST,
      reason: "bad",
      reconnect: false,
    });
    assert.equal(client.state, "closed");
  });

  it("sends pings every `ping` ms while the replies come", T, async () => {
    server.onConnect = () => ({ result: { client: "c", user: "u", ping: 100 } });
    const client = newClient();
    const conn = await connected(client);
    for (let i = 0; i < 2; i++) {
      const ping = await conn.next("ping");
      assert.equal(typeof ping.id, "number");
    }
    assert.equal(client.state, "connected");
    assert.equal(server.connections.at(-1), conn);
  });

  it("treats a missing ping reply as a dead connection and reconnects", T, async () => {
    server.autoPong = false;
    let n = 0;
    server.onConnect = () => ({ result: { client: `c${++n}`, user: "u", ping: n === 1 ? 30 : 0 } });
    const client = newClient();
    const conn1 = await connected(client);
    const disconnected = nextEvent(client, "disconnected");
    const ping = await conn1.next("ping");
    assert.equal(ping.type, "ping");
    assert.deepEqual(await disconnected, { code: 3008, reason: "ping timeout", reconnect: true });
    assert.equal((await conn1.closed).code, 3008);
    await server.nextConnection();
    await nextEvent(client, "connected");
  });

  it("reconnects at once on an `online` event while disconnected", T, async () => {
    const online = new EventTarget();
    const client = newClient({
      onlineEvents: online,
      random: () => 0.99,
      minReconnectDelayMs: 60_000,
      maxReconnectDelayMs: 60_000,
    });
    const conn1 = await connected(client);
    const disconnected = nextEvent(client, "disconnected");
    conn1.terminate();
    await disconnected;
    assert.equal(client.state, "disconnected");
    const ready = nextEvent(client, "connected");
    online.dispatchEvent(new Event("online"));
    assert.equal(client.state, "connecting");
    await server.nextConnection(); // long before the 59.4 s backoff
    await ready;
  });

  it("throws a clear TypeError when there is no WebSocket", async () => {
    const { RealtimeClient: Universal } = await import("../../../src/realtime/client/index.js");
    const saved = Object.getOwnPropertyDescriptor(globalThis, "WebSocket");
    delete (globalThis as { WebSocket?: unknown }).WebSocket;
    try {
      assert.throws(() => new Universal("ws://127.0.0.1:1"), {
        name: "TypeError",
        message: /options\.WebSocket/,
      });
    } finally {
      if (saved !== undefined) Object.defineProperty(globalThis, "WebSocket", saved);
    }
  });
});

describe("tokens", () => {
  it("refreshes the token in-band before it expires", T, async () => {
    let calls = 0;
    server.onConnect = () => ({
      result: { client: "c", user: "u", ping: 0, expires: Date.now() + 200 },
    });
    const client = newClient({ getToken: async () => `t${++calls}` });
    const conn = await connected(client);
    assert.equal((conn.log[0] as { token?: string }).token, "t1");
    const refresh = await conn.next("refresh");
    assert.equal(refresh.token, "t2");
    conn.reply(refresh.id, { expires: Date.now() + 3_600_000 });
    assert.equal(calls, 2);
  });

  it("emits an error when getToken fails at refresh time", T, async () => {
    let calls = 0;
    server.onConnect = () => ({
      result: { client: "c", user: "u", ping: 0, expires: Date.now() + 100 },
    });
    const client = newClient({
      getToken: async () => {
        calls++;
        if (calls > 1) throw new Error("auth server down");
        return "t1";
      },
    });
    const error = nextEvent(client, "error");
    await connected(client);
    const e = await error;
    assert.match(e.message, /auth server down/);
    assert.equal(client.state, "connected");
  });

  it("gets a new token and retries at once after TOKEN_EXPIRED at connect", T, async () => {
    server.onConnect = (command) =>
      command.token === "old"
        ? { error: { code: ErrorCode.TOKEN_EXPIRED, message: "token expired" } }
        : { result: { client: "c", user: "u", ping: 0 } };
    let calls = 0;
    const client = newClient({
      token: "old",
      getToken: async () => {
        calls++;
        return "new";
      },
    });
    const states = record(client, "state");
    const ready = nextEvent(client, "connected");
    client.connect();
    const conn1 = await server.nextConnection();
    const conn2 = await server.nextConnection();
    await ready;
    assert.equal((conn1.log[0] as { token?: string }).token, "old");
    assert.equal((conn2.log[0] as { token?: string }).token, "new");
    assert.equal(calls, 1);
    assert.deepEqual(
      states.map((s) => s.state),
      ["connecting", "connected"],
    );
  });

  it("uses getToken for the reconnect after a 4003 disconnect", T, async () => {
    let calls = 0;
    const client = newClient({ getToken: async () => `t${++calls}` });
    const conn1 = await connected(client);
    conn1.send({ type: "disconnect", code: 4003, reason: "token expired", reconnect: true });
    conn1.close(DisconnectCode.TOKEN_EXPIRED, "token expired");
    const conn2 = await server.nextConnection();
    await nextEvent(client, "connected");
    assert.equal((conn2.log[0] as { token?: string }).token, "t2");
  });
});

describe("subscriptions", () => {
  async function subscribed(
    conn: FakeConnection,
    result: Record<string, unknown> = { offset: 5, epoch: "e1", recoverable: true },
  ): Promise<void> {
    const cmd = await conn.next("subscribe");
    conn.reply(cmd.id, result);
  }

  it("returns the same object per channel name", () => {
    const client = newClient();
    assert.equal(client.channel("a"), client.channel("a"));
    assert.notEqual(client.channel("a"), client.channel("b"));
  });

  it(
    "re-subscribes with `since` after a reconnect and delivers recovered publications in order",
    T,
    async () => {
      const client = newClient();
      const sub = client.channel<string>("chat:a");
      const pubs = record(sub, "publication");
      const events = record(sub, "subscribed");
      sub.subscribe();
      assert.equal(sub.state, "subscribing");
      const conn1 = await connected(client);
      const first = await conn1.next("subscribe");
      assert.equal(first.since, undefined);
      conn1.reply(first.id, { offset: 5, epoch: "e1", recoverable: true });
      await nextEvent(sub, "subscribed");
      assert.equal(sub.state, "subscribed");
      conn1.pub("chat:a", 6, "e1");
      await nextEvent(sub, "publication");
      assert.deepEqual(sub.position, { offset: 6, epoch: "e1" });

      conn1.terminate();
      await nextEvent(sub, "state", (s) => s.state === "subscribing");
      const conn2 = await server.nextConnection();
      const again = await conn2.next("subscribe");
      assert.deepEqual(again.since, { offset: 6, epoch: "e1" });
      const last = nextEvent(sub, "publication", (p) => p.offset === 9);
      conn2.reply(again.id, {
        offset: 8,
        epoch: "e1",
        recoverable: true,
        recovered: true,
        publications: [
          { offset: 7, data: "m7" },
          { offset: 8, data: "m8" },
        ],
      });
      conn2.pub("chat:a", 9, "e1");
      await last;
      assert.deepEqual(
        pubs.map((p) => [p.offset, p.data, p.channel, p.epoch]),
        [
          [6, "m6", "chat:a", "e1"],
          [7, "m7", "chat:a", "e1"],
          [8, "m8", "chat:a", "e1"],
          [9, "m9", "chat:a", "e1"],
        ],
      );
      assert.deepEqual(events, [
        { recoverable: true, offset: 5, epoch: "e1", resubscribed: false },
        { recovered: true, recoverable: true, offset: 8, epoch: "e1", resubscribed: true },
      ]);
      assert.deepEqual(sub.position, { offset: 9, epoch: "e1" });
    },
  );

  it("surfaces recovered:false and restarts from the reply's position", T, async () => {
    const client = newClient();
    const sub = client.channel("chat:b");
    const pubs = record(sub, "publication");
    sub.subscribe();
    const conn1 = await connected(client);
    await subscribed(conn1);
    await nextEvent(sub, "subscribed");
    conn1.terminate();
    const conn2 = await server.nextConnection();
    const again = await conn2.next("subscribe");
    assert.deepEqual(again.since, { offset: 5, epoch: "e1" });
    const event = nextEvent(sub, "subscribed");
    conn2.reply(again.id, { offset: 20, epoch: "e2", recoverable: true, recovered: false });
    const e = await event;
    assert.equal(e.recovered, false);
    assert.equal(e.resubscribed, true);
    assert.deepEqual(sub.position, { offset: 20, epoch: "e2" });
    const next = nextEvent(sub, "publication");
    conn2.pub("chat:b", 21, "e2");
    assert.equal((await next).offset, 21);
    assert.deepEqual(
      pubs.map((p) => p.offset),
      [21],
    );
  });

  it("drops live publications at or below the last offset", T, async () => {
    const client = newClient();
    const sub = client.channel("chat:c");
    const pubs = record(sub, "publication");
    sub.subscribe();
    const conn = await connected(client);
    await subscribed(conn);
    await nextEvent(sub, "subscribed");
    const last = nextEvent(sub, "publication", (p) => p.offset === 7);
    conn.pub("chat:c", 6, "e1");
    conn.pub("chat:c", 6, "e1");
    conn.pub("chat:c", 5, "e1");
    conn.pub("chat:c", 7, "e1");
    await last;
    assert.deepEqual(
      pubs.map((p) => p.offset),
      [6, 7],
    );
  });

  it("delivers channels without history (offset 0, epoch '') unchecked", T, async () => {
    const client = newClient();
    const sub = client.channel("live");
    const pubs = record(sub, "publication");
    sub.subscribe();
    const conn = await connected(client);
    await subscribed(conn, { offset: 0, epoch: "", recoverable: false });
    await nextEvent(sub, "subscribed");
    const third = nextEvent(sub, "publication", (p) => p.data === "c");
    conn.pub("live", 0, "", "a");
    conn.pub("live", 0, "", "b");
    conn.pub("live", 0, "", "c");
    await third;
    assert.deepEqual(
      pubs.map((p) => p.data),
      ["a", "b", "c"],
    );
  });

  it(
    "on a gap, re-subscribes with `since` (unsubscribe, then subscribe) and never reorders",
    T,
    async () => {
      const client = newClient();
      const sub = client.channel("chat:d");
      const pubs = record(sub, "publication");
      sub.subscribe();
      const conn = await connected(client);
      await subscribed(conn);
      await nextEvent(sub, "subscribed");
      conn.pub("chat:d", 6, "e1");
      conn.pub("chat:d", 9, "e1"); // 7 and 8 are missing
      conn.pub("chat:d", 10, "e1"); // belongs to the old subscription: dropped
      const unsub = await conn.next("unsubscribe");
      const resub = await conn.next("subscribe");
      assert.equal(unsub.channel, "chat:d");
      assert.ok(conn.log.indexOf(unsub) < conn.log.indexOf(resub));
      assert.deepEqual(resub.since, { offset: 6, epoch: "e1" });
      assert.equal(sub.state, "subscribing");
      const event = nextEvent(sub, "subscribed");
      const last = nextEvent(sub, "publication", (p) => p.offset === 11);
      conn.reply(resub.id, {
        offset: 10,
        epoch: "e1",
        recoverable: true,
        recovered: true,
        publications: [7, 8, 9, 10].map((offset) => ({ offset, data: `m${offset}` })),
      });
      conn.pub("chat:d", 11, "e1");
      assert.equal((await event).resubscribed, true);
      await last;
      assert.deepEqual(
        pubs.map((p) => p.offset),
        [6, 7, 8, 9, 10, 11],
      );
    },
  );

  it("treats a new epoch in a live pub as a gap", T, async () => {
    const client = newClient();
    const sub = client.channel("chat:e");
    sub.subscribe();
    const conn = await connected(client);
    await subscribed(conn);
    await nextEvent(sub, "subscribed");
    conn.pub("chat:e", 6, "e2");
    await conn.next("unsubscribe");
    const resub = await conn.next("subscribe");
    assert.deepEqual(resub.since, { offset: 5, epoch: "e1" });
  });

  it("handles the unsubscribed push: resubscribe:true recovers, false ends", T, async () => {
    const client = newClient();
    const sub = client.channel("chat:f");
    sub.subscribe();
    const conn = await connected(client);
    await subscribed(conn);
    await nextEvent(sub, "subscribed");
    conn.send({
      type: "unsubscribed",
      channel: "chat:f",
      code: 4002,
      reason: "insufficient state",
      resubscribe: true,
    });
    const resub = await conn.next("subscribe");
    assert.deepEqual(resub.since, { offset: 5, epoch: "e1" });
    assert.equal(
      conn.log.some((c) => c.type === "unsubscribe"),
      false,
    );
    conn.reply(resub.id, { offset: 5, epoch: "e1", recoverable: true, recovered: true });
    await nextEvent(sub, "subscribed");

    const unsubscribed = nextEvent(sub, "unsubscribed");
    conn.send({
      type: "unsubscribed",
      channel: "chat:f",
      code: 103,
      reason: "permission revoked",
      resubscribe: false,
    });
    assert.deepEqual(await unsubscribed, { code: 103, reason: "permission revoked" });
    assert.equal(sub.state, "unsubscribed");
    assert.equal(sub.position, undefined);
  });

  it(
    "retries temporary subscribe errors; other errors end in error + unsubscribed",
    T,
    async () => {
      const client = newClient();
      const sub = client.channel("chat:g");
      sub.subscribe();
      const conn = await connected(client);
      const first = await conn.next("subscribe");
      conn.error(first.id, { code: ErrorCode.TOO_MANY_REQUESTS, message: "slow down" });
      const second = await conn.next("subscribe");
      conn.reply(second.id, { offset: 0, epoch: "x", recoverable: true });
      await nextEvent(sub, "subscribed");

      const denied = client.channel("secret");
      const error = nextEvent(denied, "error");
      const unsubscribed = nextEvent(denied, "unsubscribed");
      denied.subscribe();
      const cmd = await conn.next("subscribe");
      conn.error(cmd.id, { code: ErrorCode.PERMISSION_DENIED, message: "permission denied" });
      const e = await error;
      assert.ok(e instanceof RealtimeError);
      assert.equal(e.code, ErrorCode.PERMISSION_DENIED);
      assert.deepEqual(await unsubscribed, { code: 103, reason: "permission denied" });
      assert.equal(denied.state, "unsubscribed");
    },
  );

  it("unsubscribe() sends unsubscribe and emits unsubscribed with code 0", T, async () => {
    const client = newClient();
    const sub = client.channel("chat:h");
    sub.subscribe();
    const conn = await connected(client);
    await subscribed(conn);
    await nextEvent(sub, "subscribed");
    const unsubscribed = nextEvent(sub, "unsubscribed");
    sub.unsubscribe();
    assert.deepEqual(await unsubscribed, { code: 0, reason: "unsubscribe called" });
    assert.equal((await conn.next("unsubscribe")).channel, "chat:h");
    conn.pub("chat:h", 6, "e1"); // ignored
  });

  it("emits join and leave", T, async () => {
    const client = newClient();
    const sub = client.channel("room");
    sub.subscribe();
    const conn = await connected(client);
    await subscribed(conn);
    await nextEvent(sub, "subscribed");
    const join = nextEvent(sub, "join");
    const leave = nextEvent(sub, "leave");
    conn.send({ type: "join", channel: "room", member: { client: "x", user: "bob" } });
    conn.send({ type: "leave", channel: "room", member: { client: "x", user: "bob" } });
    assert.deepEqual(await join, { client: "x", user: "bob" });
    assert.deepEqual(await leave, { client: "x", user: "bob" });
  });
});

describe("publish", () => {
  it("resolves with the ack; the key is 16 random bytes in hex unless given", T, async () => {
    const client = newClient();
    const conn = await connected(client);
    const p1 = client.publish("chat:a", { text: "hi" }, { conflate: "typing" });
    const c1 = await conn.next("publish");
    assert.match(c1.key ?? "", /^[0-9a-f]{32}$/);
    assert.equal(c1.conflate, "typing");
    assert.deepEqual(c1.data, { text: "hi" });
    conn.reply(c1.id, { offset: 3, epoch: "e" });
    assert.deepEqual(await p1, { offset: 3, epoch: "e" });

    const p2 = client.channel("chat:a").publish({ text: "again" }, { key: "my-key" });
    const c2 = await conn.next("publish");
    assert.equal(c2.key, "my-key");
    conn.reply(c2.id, { offset: 3, epoch: "e", duplicate: true });
    assert.deepEqual(await p2, { offset: 3, epoch: "e", duplicate: true });
  });

  it("queues publishes made before connect()", T, async () => {
    const client = newClient();
    const p = client.publish("chat:a", "early");
    const conn = await connected(client);
    const cmd = await conn.next("publish");
    assert.equal(cmd.data, "early");
    conn.reply(cmd.id, { offset: 1, epoch: "e" });
    assert.equal((await p).offset, 1);
  });

  it(
    "re-sends an unacknowledged publish with the same key after a reconnect, before newer ones",
    T,
    async () => {
      const client = newClient();
      const conn1 = await connected(client);
      const p1 = client.publish("chat:a", 1);
      const sent = await conn1.next("publish");
      const disconnected = nextEvent(client, "disconnected");
      conn1.terminate();
      await disconnected;
      const p2 = client.publish("chat:a", 2);
      const conn2 = await server.nextConnection();
      const a = await conn2.next("publish");
      const b = await conn2.next("publish");
      assert.equal(a.key, sent.key);
      assert.equal(a.data, 1);
      assert.equal(b.data, 2);
      assert.ok(conn2.log.indexOf(a) < conn2.log.indexOf(b));
      conn2.reply(a.id, { offset: 1, epoch: "e", duplicate: true });
      conn2.reply(b.id, { offset: 2, epoch: "e" });
      assert.deepEqual(await p1, { offset: 1, epoch: "e", duplicate: true });
      assert.deepEqual(await p2, { offset: 2, epoch: "e" });
    },
  );

  it("rejects with code 106 when the outbox is full", T, async () => {
    const client = newClient({ outboxSize: 2 });
    const p1 = client.publish("chat:a", 1);
    const p2 = client.publish("chat:a", 2);
    const full = await rejection(client.publish("chat:a", 3));
    assert.equal(full.code, ErrorCode.LIMIT_EXCEEDED);
    assert.equal(full.code, 106);
    const rejected = [rejection(p1), rejection(p2)];
    client.close();
    for (const e of await Promise.all(rejected)) assert.equal(e.code, ClientErrorCode.CLOSED);
  });

  it(
    "retries a temporary publish error with the same key; rejects other errors with their code",
    T,
    async () => {
      const client = newClient();
      const conn = await connected(client);
      const p = client.publish("chat:a", "x");
      const first = await conn.next("publish");
      conn.error(first.id, {
        code: ErrorCode.UNAVAILABLE,
        message: "broker down",
        temporary: true,
      });
      const retry = await conn.next("publish");
      assert.equal(retry.key, first.key);
      assert.notEqual(retry.id, first.id);
      conn.reply(retry.id, { offset: 4, epoch: "e" });
      assert.equal((await p).offset, 4);

      const denied = client.publish("secret", "x");
      const cmd = await conn.next("publish");
      conn.error(cmd.id, { code: ErrorCode.PERMISSION_DENIED, message: "permission denied" });
      const e = await rejection(denied);
      assert.equal(e.code, ErrorCode.PERMISSION_DENIED);
      assert.equal(e.temporary, false);
    },
  );

  it("close() rejects publishes in flight and queued", T, async () => {
    const client = newClient();
    const conn = await connected(client);
    const inFlight = client.publish("chat:a", 1);
    await conn.next("publish");
    const rpc = client.rpc("slow");
    await conn.next("rpc");
    const rejected = [rejection(inFlight), rejection(rpc)];
    client.close();
    const [e, r] = await Promise.all(rejected);
    assert.equal(e?.code, ClientErrorCode.CLOSED);
    assert.match(e?.message ?? "", /closed/);
    assert.equal(r?.code, ClientErrorCode.CLOSED);
    assert.equal(client.state, "closed");
  });
});

describe("requests", () => {
  it("rpc resolves with the reply's data and rejects with the error's code", T, async () => {
    const client = newClient();
    const conn = await connected(client);
    const ok = client.rpc<{ sum: number }>("add", [1, 2]);
    const c1 = await conn.next("rpc");
    assert.equal(c1.method, "add");
    assert.deepEqual(c1.data, [1, 2]);
    conn.reply(c1.id, { data: { sum: 3 } });
    assert.deepEqual(await ok, { sum: 3 });

    const missing = client.rpc("nope");
    const c2 = await conn.next("rpc");
    conn.error(c2.id, { code: ErrorCode.METHOD_NOT_FOUND, message: "method not found" });
    assert.equal((await rejection(missing)).code, ErrorCode.METHOD_NOT_FOUND);
  });

  it("rejects with TIMEOUT when no reply comes within requestTimeoutMs", T, async () => {
    const client = newClient({ requestTimeoutMs: 50 });
    const conn = await connected(client);
    const timedOut = rejection(client.rpc("slow")); // handled now: it may time out before next()
    await conn.next("rpc");
    const e = await timedOut;
    assert.equal(e.code, ClientErrorCode.TIMEOUT);
    assert.equal(e.temporary, true);
  });

  it("times out requests queued while not connected", T, async () => {
    const client = newClient({ requestTimeoutMs: 30 });
    const e = await rejection(client.channel("chat:a").history());
    assert.equal(e.code, ClientErrorCode.TIMEOUT);
  });

  it("history and presence are sent once connected and re-sent after a reconnect", T, async () => {
    const client = newClient();
    const sub = client.channel<string>("chat:a");
    const history = sub.history({ since: { offset: 1, epoch: "e" }, limit: 10 });
    const conn1 = await connected(client);
    const h1 = await conn1.next("history");
    assert.deepEqual(h1.since, { offset: 1, epoch: "e" });
    assert.equal(h1.limit, 10);
    conn1.terminate();
    const conn2 = await server.nextConnection();
    const h2 = await conn2.next("history");
    conn2.reply(h2.id, { publications: [{ offset: 2, data: "two" }], offset: 2, epoch: "e" });
    assert.deepEqual(await history, {
      publications: [{ offset: 2, data: "two" }],
      offset: 2,
      epoch: "e",
    });

    const presence = sub.presence({ limit: 0 });
    const p = await conn2.next("presence");
    assert.equal(p.limit, 0);
    conn2.reply(p.id, { count: 2, members: [] });
    assert.deepEqual(await presence, { count: 2, members: [] });
  });

  it("rejects an rpc whose connection is lost before the reply", T, async () => {
    const client = newClient();
    const conn = await connected(client);
    const p = client.rpc("charge");
    await conn.next("rpc");
    conn.terminate();
    const e = await rejection(p);
    assert.equal(e.code, ClientErrorCode.CONNECTION_LOST);
  });
});
