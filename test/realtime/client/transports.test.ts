/**
 * The client SDK on each transport against a real RealtimeServer: WebSocket, SSE and
 * long-polling forced one at a time (subscribe, publish and ack, recovery across cut
 * connections, presence, idempotent retries); one client served by two nodes through a
 * per-request round-robin proxy; the fallback when a proxy refuses upgrades, swallows them, or
 * buffers responses; the probe that moves the client back to WebSocket without losing or
 * doubling a publication; and the HTTP transports reopening a broken stream or poll with the
 * same session (a proxy's cuts, a node that dies or shuts down, a silent connection) — and
 * what they do not reopen, or not forever. No timing thresholds: waits poll until a deadline.
 */
import assert from "node:assert/strict";
import * as http from "node:http";
import { after, afterEach, before, describe, it } from "node:test";
import { SignJWT } from "jose";
import { MemoryBackend, MemoryBroker } from "../../../src/broker/index.js";
import {
  type ClientEvents,
  type PublicationEvent,
  RealtimeClient,
  type RealtimeClientOptions,
  type SubscribedEvent,
  type TransportEvent,
  type TransportKind,
} from "../../../src/realtime/client/node.js";
import { type HttpProxy, startHttpProxy } from "../../support/http-proxy.js";
import { type Relay, startRelay } from "../../support/tcp-proxy.js";
import { type Running, startRealtime, until } from "../helpers.js";

const FAST: RealtimeClientOptions = {
  random: () => 0.5,
  minReconnectDelayMs: 10,
  maxReconnectDelayMs: 50,
  onlineEvents: null,
};
const T = { timeout: 30_000 };

const clients: RealtimeClient[] = [];
function newClient(url: string, options: RealtimeClientOptions = {}): RealtimeClient {
  const client = new RealtimeClient(url, { ...FAST, ...options });
  clients.push(client);
  return client;
}

afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});

function connected(client: RealtimeClient): Promise<void> {
  return new Promise((resolve) => {
    const off = client.on("connected", () => {
      off();
      resolve();
    });
    client.connect();
  });
}

/** Every publication a subscription delivers, from now on. */
function collect<T>(client: RealtimeClient, channel: string): PublicationEvent<T>[] {
  const seen: PublicationEvent<T>[] = [];
  client.channel<T>(channel).on("publication", (p) => seen.push(p));
  return seen;
}

async function subscribed(client: RealtimeClient, channel: string): Promise<void> {
  const sub = client.channel(channel);
  const done = new Promise<void>((resolve) => {
    const off = sub.on("subscribed", () => {
      off();
      resolve();
    });
  });
  sub.subscribe();
  await done;
}

const range = (n: number, from = 0): number[] => Array.from({ length: n }, (_, i) => from + i);

/** Everything the client emits as `event`, from now on. */
function record<K extends keyof ClientEvents>(client: RealtimeClient, event: K): ClientEvents[K][] {
  const seen: ClientEvents[K][] = [];
  client.on(event, (e) => seen.push(e));
  return seen;
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

const serverOptions = {
  namespaces: { "": {}, room: { presence: true } },
  authenticate: ({ data }: { data: unknown }) => ({
    user: String((data as { name?: string } | undefined)?.name ?? "anon"),
    grants: [],
  }),
  httpTransports: { keepaliveMs: 300, pollTimeoutMs: 300 },
};

/**
 * A server with `serverOptions` behind an HTTP proxy made with `proxyOptions`, started before the
 * suite's tests and closed after them: the tests read `s` and `proxy`.
 */
function serverBehindProxy(proxyOptions: Parameters<typeof startHttpProxy>[1] = {}): {
  readonly s: Running;
  readonly proxy: HttpProxy;
} {
  const env = {} as { s: Running; proxy: HttpProxy };
  before(async () => {
    env.s = await startRealtime(serverOptions);
    env.proxy = await startHttpProxy([env.s.port], proxyOptions);
  });
  after(async () => {
    await env.proxy.close();
    await env.s.close();
  });
  return env;
}

for (const kind of ["websocket", "sse", "polling"] as const) {
  describe(`client on ${kind} only`, () => {
    let s: Running;
    before(async () => {
      s = await startRealtime(serverOptions);
    });
    after(() => s.close());

    it(
      "connects, subscribes, publishes with acks; every publication once, in order",
      T,
      async () => {
        const client = newClient(s.url, { transports: [kind], data: { name: "ann" } });
        const transports: TransportEvent[] = [];
        client.on("transport", (e) => transports.push(e));
        await connected(client);
        assert.equal(client.transport, kind);
        assert.deepEqual(transports, [{ transport: kind, previous: undefined }]);
        const got = collect<{ i: number }>(client, "news");
        await subscribed(client, "news");
        const acks = await Promise.all(range(5).map((i) => client.publish("news", { i })));
        assert.deepEqual(
          acks.map((a) => a.offset),
          range(5, acks[0]!.offset),
        );
        await s.rt.publish("news", { i: 5 });
        await until(() => got.length >= 6, 5000, "publications");
        assert.deepEqual(
          got.map((p) => p.data.i),
          range(6),
        );
        assert.equal(got[0]!.from?.user, "ann");
        assert.equal(got[0]!.from?.client, client.clientId);
      },
    );

    it("history, presence and rpc", T, async () => {
      s.rt.rpc("whoami", ({ client }) => ({ user: client.user }));
      const client = newClient(s.url, { transports: [kind], data: { name: "bea" } });
      await connected(client);
      await subscribed(client, "room:h");
      await client.channel("room:h").publish("one");
      const history = await client.channel("room:h").history({ limit: 10 });
      assert.deepEqual(
        history.publications.map((p) => p.data),
        ["one"],
      );
      const presence = await client.channel("room:h").presence();
      assert.deepEqual(
        presence.members.map((m) => m.user),
        ["bea"],
      );
      assert.deepEqual(await client.rpc("whoami"), { user: "bea" });
    });

    it(
      "recovers across cut connections: every publication once, in order, every ack once",
      T,
      async () => {
        const relay = await startRelay(s.port);
        try {
          const url = `ws://127.0.0.1:${relay.port}/realtime`;
          const client = newClient(url, { transports: [kind], data: { name: "cy" } });
          await connected(client);
          const got = collect<number>(client, "cut");
          await subscribed(client, "cut");
          const N = 60;
          const acked: number[] = [];
          for (let i = 0; i < N; i++) {
            if (i % 15 === 7) relay.cutAll();
            // Half from the client (acked, retried with its key after a cut), half from the server.
            if (i % 2 === 0) acked.push((await client.publish("cut", i)).offset);
            else await s.rt.publish("cut", i);
          }
          await until(() => got.length >= N, 15_000, "all publications");
          assert.deepEqual(
            got.map((p) => p.data),
            range(N),
          );
          assert.equal(new Set(acked).size, acked.length, "one offset per publish");
          assert.deepEqual(
            got.map((p) => p.offset),
            range(N, got[0]!.offset),
          );
        } finally {
          await relay.close();
        }
      },
    );

    it(
      "a disconnect by the server reaches the client with its code; it leaves presence",
      T,
      async () => {
        const watcher = newClient(s.url, { transports: ["websocket"], data: { name: "watcher" } });
        await connected(watcher);
        await subscribed(watcher, "room:ban");
        const client = newClient(s.url, { transports: [kind], data: { name: "ivy" } });
        await connected(client);
        await subscribed(client, "room:ban");
        const leaves: string[] = [];
        watcher.channel("room:ban").on("leave", (m) => leaves.push(m.user));
        const bye = new Promise<{ code: number; reconnect: boolean }>((resolve) => {
          client.once("disconnected", resolve);
        });
        assert.equal(await s.rt.disconnectUser("ivy"), 1);
        const e = await bye;
        assert.deepEqual([e.code, e.reconnect], [4502, false]);
        assert.equal(client.state, "closed");
        await until(() => leaves.includes("ivy"), 5000, "leave");
      },
    );

    it("presence: others see the client join, and leave when it closes", T, async () => {
      const watcher = newClient(s.url, { transports: ["websocket"], data: { name: "watcher" } });
      await connected(watcher);
      await subscribed(watcher, "room:p");
      const joins: string[] = [];
      const leaves: string[] = [];
      watcher.channel("room:p").on("join", (m) => joins.push(m.user));
      watcher.channel("room:p").on("leave", (m) => leaves.push(m.user));
      const client = newClient(s.url, { transports: [kind], data: { name: "dee" } });
      await connected(client);
      await subscribed(client, "room:p");
      await until(() => joins.includes("dee"), 5000, "join");
      const page = await watcher.channel("room:p").presence();
      assert.deepEqual(page.members.map((m) => m.user).sort(), ["dee", "watcher"]);
      client.close();
      await until(() => leaves.includes("dee"), 5000, "leave");
      assert.equal((await watcher.channel("room:p").presence({ limit: 0 })).count, 1);
    });
  });
}

describe("one client, two nodes behind a per-request round-robin proxy", () => {
  const backend = new MemoryBackend();
  const nodes: Running[] = [];
  let proxy: HttpProxy;
  before(async () => {
    for (const node of ["a", "b"]) {
      nodes.push(
        await startRealtime({
          ...serverOptions,
          node,
          broker: new MemoryBroker({ backend }),
        }),
      );
    }
    proxy = await startHttpProxy(
      nodes.map((n) => n.port),
      { upgrades: "refuse" },
    );
  });
  after(async () => {
    await proxy.close();
    for (const n of nodes) {
      await n.close();
      await n.broker.close();
    }
  });

  for (const kind of ["sse", "polling"] as const) {
    it(
      `${kind}: streams, polls and commands land on both nodes; nothing lost or doubled`,
      T,
      async () => {
        const before = [...proxy.requests];
        const client = newClient(`ws://127.0.0.1:${proxy.port}/realtime`, {
          transports: [kind],
          data: { name: "eve" },
        });
        await connected(client);
        const channel = `room:rr-${kind}`;
        const got = collect<number>(client, channel);
        await subscribed(client, channel);
        // A second subscription reopens the stream (with the positions) on whichever node.
        const other = collect<number>(client, `${channel}-2`);
        await subscribed(client, `${channel}-2`);
        const N = 40;
        for (let i = 0; i < N; i++) {
          if (i % 2 === 0) await client.publish(channel, i);
          else await nodes[i % 4 === 1 ? 0 : 1]!.rt.publish(channel, i);
          if (i % 10 === 0) await nodes[1]!.rt.publish(`${channel}-2`, i);
        }
        await until(() => got.length >= N && other.length >= 4, 10_000, "publications");
        assert.deepEqual(
          got.map((p) => p.data),
          range(N),
        );
        assert.deepEqual(
          other.map((p) => p.data),
          [0, 10, 20, 30],
        );
        const presence = await client.channel(channel).presence();
        assert.deepEqual(
          presence.members.map((m) => m.client),
          [client.clientId],
        );
        assert.ok(proxy.requests[0]! > before[0]! && proxy.requests[1]! > before[1]!, "both nodes");
      },
    );
  }
});

describe("fallback when WebSockets do not get through", () => {
  const env = serverBehindProxy();

  const url = (): string => `ws://127.0.0.1:${env.proxy.port}/realtime`;

  async function works(client: RealtimeClient, channel: string): Promise<void> {
    const got = collect<string>(client, channel);
    await subscribed(client, channel);
    await client.publish(channel, "from the client");
    await env.s.rt.publish(channel, "from the server");
    await until(() => got.length >= 2, 5000, "publications");
    assert.deepEqual(
      got.map((p) => p.data),
      ["from the client", "from the server"],
    );
  }

  it(
    "a proxy that refuses the upgrade: SSE, at once, without a disconnected event",
    T,
    async () => {
      env.proxy.upgrades = "refuse";
      env.proxy.buffering = false;
      const client = newClient(url(), { probeIntervalMs: 0 });
      const states: string[] = [];
      client.on("state", (e) => states.push(e.state));
      await connected(client);
      assert.equal(client.transport, "sse");
      assert.deepEqual(states, ["connecting", "connected"]);
      await works(client, "fb-refuse");
    },
  );

  it(
    "a proxy that accepts the upgrade but passes no frame: SSE after the connect timeout",
    T,
    async () => {
      env.proxy.upgrades = "swallow";
      env.proxy.buffering = false;
      const client = newClient(url(), { connectTimeoutMs: 500, probeIntervalMs: 0 });
      await connected(client);
      assert.equal(client.transport, "sse");
      await works(client, "fb-swallow");
    },
  );

  it("a proxy that buffers responses: SSE never arrives, long-polling works", T, async () => {
    env.proxy.upgrades = "refuse";
    env.proxy.buffering = true;
    const client = newClient(url(), { connectTimeoutMs: 500, probeIntervalMs: 0 });
    const transports: TransportKind[] = [];
    client.on("transport", (e) => transports.push(e.transport));
    await connected(client);
    assert.equal(client.transport, "polling");
    assert.deepEqual(transports, ["polling"]);
    await works(client, "fb-buffer");
  });

  it(
    "a transport that worked is retried with backoff before the client falls back",
    T,
    async () => {
      env.proxy.upgrades = "pass";
      env.proxy.buffering = false;
      const client = newClient(url(), { probeIntervalMs: 0 });
      await connected(client);
      assert.equal(client.transport, "websocket");
      const got = collect<number>(client, "fb-proven");
      await subscribed(client, "fb-proven");
      const log: string[] = [];
      client.on("disconnected", () => log.push("disconnected"));
      client.on("transport", (e) => log.push(e.transport));
      // From now on the proxy refuses upgrades; the open WebSocket is cut.
      env.proxy.upgrades = "refuse";
      env.proxy.cutAll();
      await until(() => log.includes("sse"), 10_000, "the fallback");
      // The cut, then three refused attempts on the WebSocket, each reported; then SSE.
      assert.deepEqual(log, [
        "disconnected",
        "disconnected",
        "disconnected",
        "disconnected",
        "sse",
      ]);
      await env.s.rt.publish("fb-proven", 1);
      await until(() => got.length === 1, 5000, "delivered over SSE");
    },
  );

  it(
    "nothing gets through: one disconnected event per round, reporting the WebSocket's failure",
    T,
    async () => {
      const dead = await startRealtime(serverOptions);
      const deadUrl = dead.url;
      await dead.close();
      const client = newClient(deadUrl, { probeIntervalMs: 0 });
      const events: Array<{ code: number; reconnect: boolean }> = [];
      client.on("disconnected", (e) => events.push({ code: e.code, reconnect: e.reconnect }));
      client.connect();
      await until(() => events.length >= 2, 10_000, "two rounds");
      assert.ok(events.every((e) => e.code === 1006 && e.reconnect));
      assert.equal(client.transport, "websocket", "each round starts from the first transport");
    },
  );
});

describe("HTTP transports: a server that is not duplex.v1", () => {
  it(
    "a page instead of frames (a captive portal): one request per attempt, no busy loop",
    T,
    async () => {
      const paths: string[] = [];
      const portal = http.createServer((req, res) => {
        paths.push(req.url ?? "");
        req.resume();
        res.writeHead(200, { "content-type": "text/html" });
        res.end("<!doctype html><title>Sign in to the Wi-Fi</title>\n<p>Please sign in</p>\n");
      });
      await new Promise<void>((r) => portal.listen(0, "127.0.0.1", r));
      try {
        const { port } = portal.address() as { port: number };
        for (const kind of ["sse", "polling"] as const) {
          paths.length = 0;
          const client = newClient(`ws://127.0.0.1:${port}/realtime`, {
            transports: [kind],
            connectTimeoutMs: 1000,
          });
          let disconnects = 0;
          let attempts = 0;
          client.on("disconnected", () => disconnects++);
          client.on("state", (e) => {
            if (e.state === "connecting") attempts++;
          });
          client.connect();
          await until(() => disconnects >= 3, 10_000, "three attempts");
          client.close();
          // One request per attempt (the last one's may still be on its way).
          assert.ok(
            paths.length >= disconnects && paths.length <= attempts,
            `${kind}: ${paths.length} requests for ${attempts} attempts`,
          );
        }
      } finally {
        portal.closeAllConnections();
        await new Promise<void>((r) => portal.close(() => r()));
      }
    },
  );
});

describe("probing back to WebSocket", () => {
  const env = serverBehindProxy();

  for (const start of ["sse", "polling"] as const) {
    it(
      `from ${start}: moves to WebSocket once it passes; no publication lost or doubled`,
      T,
      async () => {
        env.proxy.upgrades = "refuse";
        env.proxy.buffering = start === "polling";
        const client = newClient(`ws://127.0.0.1:${env.proxy.port}/realtime`, {
          connectTimeoutMs: 500,
          probeIntervalMs: 100,
          data: { name: "fay" },
        });
        const transports: TransportEvent[] = [];
        client.on("transport", (e) => transports.push(e));
        await connected(client);
        assert.equal(client.transport, start);
        const channel = `probe-${start}`;
        const got = collect<number>(client, channel);
        await subscribed(client, channel);
        const acks: Array<Promise<{ offset: number }>> = [];
        let i = 0;
        const step = async (): Promise<void> => {
          // The client and the server publish in turn; the client's publishes are not awaited
          // one by one, so some are in flight when the connection moves.
          if (i % 2 === 0) acks.push(client.publish(channel, i));
          else await env.s.rt.publish(channel, i);
          i++;
          await new Promise((r) => setImmediate(r));
        };
        for (let k = 0; k < 20; k++) await step();
        env.proxy.buffering = false;
        env.proxy.upgrades = "pass";
        while ((client.transport as TransportKind) !== "websocket") await step();
        for (let k = 0; k < 20; k++) await step();
        const offsets = (await Promise.all(acks)).map((a) => a.offset);
        await until(() => got.length >= i, 10_000, "every publication");
        // Each value exactly once, at consecutive offsets (the client's publishes were not
        // awaited one by one, so they may interleave with the server's in another order).
        assert.deepEqual(
          got.map((p) => p.data).sort((a, b) => a - b),
          range(i),
        );
        assert.deepEqual(
          got.map((p) => p.offset),
          range(i, got[0]!.offset),
        );
        assert.equal(new Set(offsets).size, offsets.length);
        assert.deepEqual(
          transports.map((t) => [t.previous, t.transport]),
          [
            [undefined, start],
            [start, "websocket"],
          ],
        );
        assert.equal(client.state, "connected");
        // The HTTP connection left the channel: only the WebSocket one is present.
        await client.publish(channel, "last");
        await until(() => got.length === i + 1, 5000, "the last publication");
      },
    );
  }

  it(
    "from polling, while WebSocket stays blocked: moves up to SSE once streams pass",
    T,
    async () => {
      env.proxy.upgrades = "refuse";
      env.proxy.buffering = true;
      const client = newClient(`ws://127.0.0.1:${env.proxy.port}/realtime`, {
        connectTimeoutMs: 500,
        probeIntervalMs: 100,
        data: { name: "gus" },
      });
      const transports: TransportEvent[] = [];
      client.on("transport", (e) => transports.push(e));
      try {
        await connected(client);
        assert.equal(client.transport, "polling");
        const channel = "probe-up-to-sse";
        const got = collect<number>(client, channel);
        await subscribed(client, channel);
        await env.s.rt.publish(channel, 0);
        // Streams pass now, WebSockets still do not: the WebSocket probe fails, the SSE one wins.
        env.proxy.buffering = false;
        let n = 1;
        while ((client.transport as TransportKind) !== "sse") {
          await env.s.rt.publish(channel, n++);
          await new Promise((r) => setTimeout(r, 20));
        }
        for (let k = 0; k < 5; k++) await env.s.rt.publish(channel, n++);
        await until(() => got.length >= n, 10_000, "every publication");
        assert.deepEqual(
          got.map((p) => p.data),
          range(n),
        );
        assert.deepEqual(
          transports.map((t) => [t.previous, t.transport]),
          [
            [undefined, "polling"],
            ["polling", "sse"],
          ],
        );
        assert.equal(client.state, "connected");
      } finally {
        client.close();
      }
    },
  );
});

describe("HTTP transports: reopening with positions, silent connections", () => {
  let s: Running;
  before(async () => {
    s = await startRealtime({
      ...serverOptions,
      namespaces: { "": {}, short: { historySize: 3 } },
      httpTransports: { keepaliveMs: 200, pollTimeoutMs: 200 },
    });
  });
  after(() => s.close());

  /** A client on `kind` only, connected through a relay whose connections the test can silence. */
  async function throughRelay(
    kind: TransportKind,
  ): Promise<{ relay: Relay; client: RealtimeClient }> {
    const relay = await startRelay(s.port);
    try {
      const client = newClient(`ws://127.0.0.1:${relay.port}/realtime`, { transports: [kind] });
      await connected(client);
      return { relay, client };
    } catch (error) {
      await relay.close();
      throw error;
    }
  }

  for (const kind of ["sse", "polling"] as const) {
    it(
      `${kind}: a reopen that cannot recover tells the subscription recovered:false`,
      T,
      async () => {
        const { relay, client } = await throughRelay(kind);
        try {
          const channel = `short:${kind}`;
          const got = collect<number>(client, channel);
          const events: SubscribedEvent[] = [];
          client.channel(channel).on("subscribed", (e) => events.push(e));
          await subscribed(client, channel);
          await s.rt.publish(channel, 0);
          await until(() => got.length === 1, 5000, "the first publication");
          // The way to the client goes quiet (nothing is closed) while 5 more are published:
          // more than the channel's history of 3.
          for (const c of relay.connections) c.silent = true;
          for (let i = 1; i <= 5; i++) await s.rt.publish(channel, i);
          // A new subscription reopens the stream (or the poll) with the old position.
          await subscribed(client, "other");
          await until(() => events.length === 2, 5000, "the resubscribe");
          assert.deepEqual(events[1], {
            recovered: false,
            recoverable: true,
            offset: 6,
            epoch: got[0]!.epoch,
            resubscribed: true,
          });
          assert.deepEqual(
            got.map((p) => p.data),
            [0],
            "no part of the gap",
          );
          await s.rt.publish(channel, 6);
          await until(() => got.length === 2, 5000, "live again");
          assert.equal(got[1]!.data, 6);
        } finally {
          await relay.close();
        }
      },
    );

    it(
      `${kind}: a connection that goes silent is let go after the keepalive and reopened: no reconnect, nothing lost`,
      T,
      async () => {
        const { relay, client } = await throughRelay(kind);
        try {
          const id = client.clientId;
          const channel = `silent-${kind}`;
          const got = collect<number>(client, channel);
          await subscribed(client, channel);
          const states = record(client, "state");
          for (const c of relay.connections) c.silent = true;
          await s.rt.publish(channel, 1);
          // The silent request is aborted and reopened, on a new connection (or first on an idle
          // one of fetch's pool, silent too: then the second reopen gets a new one).
          await until(() => got.length === 1, 10_000, "recovered after the reopen");
          await s.rt.publish(channel, 2);
          await until(() => got.length === 2, 5000, "live again");
          assert.deepEqual(
            got.map((p) => p.data),
            [1, 2],
          );
          assert.deepEqual(states, [], "no state change");
          assert.equal(client.clientId, id, "the same connection");
        } finally {
          await relay.close();
        }
      },
    );
  }
});

describe("HTTP transports: token refresh", () => {
  const secret = "0123456789abcdef0123456789abcdef";
  const sign = (exp: number): Promise<string> =>
    new SignJWT({})
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("gus")
      .setExpirationTime(exp)
      .sign(new TextEncoder().encode(secret));
  let s: Running;
  before(async () => {
    s = await startRealtime({ jwt: { secret }, httpTransports: { keepaliveMs: 300 } });
  });
  after(() => s.close());

  for (const kind of ["sse", "polling"] as const) {
    it(
      `${kind}: the token is refreshed in band and the stream carries the new one past the old expiry`,
      T,
      async () => {
        const firstExp = Math.floor(Date.now() / 1000) + 2;
        let calls = 0;
        const client = newClient(s.url, {
          transports: [kind],
          getToken: () => sign(++calls === 1 ? firstExp : firstExp + 600),
        });
        const disconnects: number[] = [];
        client.on("disconnected", (e) => disconnects.push(e.code));
        await connected(client);
        assert.equal(client.user, "gus");
        const got = collect<number>(client, `tok-${kind}`);
        await subscribed(client, `tok-${kind}`);
        await until(() => calls >= 2, 5000, "the refresh");
        await until(() => Date.now() > firstExp * 1000 + 500, 5000, "the first token's expiry");
        await s.rt.publish(`tok-${kind}`, 1);
        await until(() => got.length === 1, 5000, "delivered");
        assert.deepEqual(disconnects, [], "never disconnected");
      },
    );
  }
});

describe("HTTP transports: a stream or poll cut by a proxy is reopened, the connection goes on", () => {
  const env = serverBehindProxy({ upgrades: "refuse" });

  for (const kind of ["sse", "polling"] as const) {
    it(
      `${kind}: same client id, no state change, no leave or join; every publication once, in order`,
      T,
      async () => {
        const observer = newClient(env.s.url, { transports: ["websocket"], data: { name: "obs" } });
        await connected(observer);
        const room = `room:cut-${kind}`;
        const feed = `cut-feed-${kind}`;
        await subscribed(observer, room);
        const joins: string[] = [];
        const leaves: string[] = [];
        observer.channel(room).on("join", (m) => joins.push(m.client));
        observer.channel(room).on("leave", (m) => leaves.push(m.client));

        const client = newClient(`ws://127.0.0.1:${env.proxy.port}/realtime`, {
          transports: [kind],
          data: { name: "hal" },
        });
        await connected(client);
        const id = client.clientId!;
        const states = record(client, "state");
        const inRoom = collect<number>(client, room);
        const inFeed = collect<number>(client, feed);
        await subscribed(client, room);
        await subscribed(client, feed);
        await until(() => joins.includes(id), 5000, "the join");

        // Publications alternate between the channels; the proxy cuts every connection (the
        // stream or the held poll, mid-delivery) four times, each once the client caught up.
        const N = 48;
        const received = (): number => inRoom.length + inFeed.length;
        for (let i = 0; i < N; i++) {
          if (i % 12 === 4) await until(() => received() === i, 5000, `caught up at ${i}`);
          await env.s.rt.publish(i % 2 === 0 ? room : feed, i);
          if (i % 12 === 4) env.proxy.cutAll();
          await tick();
        }
        await until(() => received() === N, 10_000, "every publication");
        assert.deepEqual(
          inRoom.map((p) => p.data),
          range(N).filter((i) => i % 2 === 0),
        );
        assert.deepEqual(
          inFeed.map((p) => p.data),
          range(N).filter((i) => i % 2 === 1),
        );
        for (const got of [inRoom, inFeed]) {
          assert.deepEqual(
            got.map((p) => p.offset),
            range(N / 2, got[0]!.offset),
          );
        }
        assert.deepEqual(states, [], "never left the connected state");
        assert.equal(client.clientId, id);
        assert.deepEqual(
          joins.filter((c) => c === id),
          [id],
          "one join",
        );
        assert.deepEqual(leaves, [], "no leave");
        const page = await observer.channel(room).presence();
        assert.ok(
          page.members.some((m) => m.client === id),
          "still present",
        );
      },
    );
  }
});

describe("HTTP transports: one node of two goes away, the other one takes the stream", () => {
  /** Two nodes over one broker behind a per-request round-robin proxy. */
  async function twoNodes(): Promise<{
    nodes: Running[];
    proxy: HttpProxy;
    close(): Promise<void>;
  }> {
    const backend = new MemoryBackend();
    const nodes: Running[] = [];
    for (const node of ["a", "b"]) {
      nodes.push(
        await startRealtime({ ...serverOptions, node, broker: new MemoryBroker({ backend }) }),
      );
    }
    const proxy = await startHttpProxy(
      nodes.map((n) => n.port),
      { upgrades: "refuse" },
    );
    return {
      nodes,
      proxy,
      async close() {
        await proxy.close();
        for (const n of nodes) {
          await n.close();
          await n.broker.close();
        }
      },
    };
  }

  /** A node dies: its connections are cut, new ones refused (the proxy answers 502). */
  function dies(node: Running): Promise<void> {
    node.http.closeAllConnections();
    return new Promise((resolve) => node.http.close(() => resolve()));
  }

  for (const kind of ["sse", "polling"] as const) {
    for (const [how, stop] of [
      ["dies", dies],
      ["shuts down", (node: Running) => node.close()],
    ] as const) {
      it(
        `${kind}: the node holding the ${kind === "sse" ? "stream" : "poll"} ${how}: reopened on the other one, same client id, nothing lost`,
        T,
        async () => {
          const { nodes, proxy, close } = await twoNodes();
          try {
            const client = newClient(`ws://127.0.0.1:${proxy.port}/realtime`, {
              transports: [kind],
              data: { name: "ida" },
            });
            await connected(client);
            const id = client.clientId;
            const states = record(client, "state");
            const channel = `room:node-${kind}`;
            const got = collect<number>(client, channel);
            await subscribed(client, channel);
            await nodes[0]!.rt.publish(channel, 0);
            await until(() => got.length === 1, 5000, "the first publication");
            // Whichever node holds the stream (or the held poll) now goes away.
            const holding = (): number =>
              nodes.findIndex((n) => (n.rt.httpTransport?.openStreams ?? 0) > 0);
            await until(() => holding() >= 0, 5000, "a node holding the client");
            const victim = nodes[holding()]!;
            const survivor = nodes.find((n) => n !== victim)!;
            const stopped = stop(victim);
            for (let i = 1; i <= 5; i++) await survivor.rt.publish(channel, i);
            await stopped;
            for (let i = 6; i <= 10; i++) await survivor.rt.publish(channel, i);
            await until(() => got.length === 11, 10_000, "every publication");
            assert.deepEqual(
              got.map((p) => p.data),
              range(11),
            );
            assert.deepEqual(states, [], "no state change");
            assert.equal(client.clientId, id, "the same connection");
            await until(
              () => (survivor.rt.httpTransport?.openStreams ?? 0) > 0,
              5000,
              "served by the other node",
            );
          } finally {
            await close();
          }
        },
      );
    }
  }
});

describe("HTTP transports: what is reopened, how often, and what is not", () => {
  /**
   * A scripted HTTP server: streams and polls are counted; the first one gets the connect reply
   * when `connect` (an SSE stream then ends: a broken stream), every other one `answer` — an
   * HTTP status, or a page that is not duplex.v1 (a captive portal).
   */
  async function scripted(
    connect: boolean,
    answer: number | "page",
  ): Promise<{ url: string; opens: () => number; close(): Promise<void> }> {
    let opens = 0;
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const path = req.url ?? "";
        if (path.endsWith("/send")) {
          res.writeHead(200, { "content-type": "application/x-ndjson" });
          res.end();
          return;
        }
        const sse = path.endsWith("/sse");
        if (opens++ === 0 && connect) {
          const body = JSON.parse(Buffer.concat(chunks).toString()) as { connect: { id: number } };
          const reply = JSON.stringify({
            id: body.connect.id,
            result: {
              client: "scripted",
              user: "u",
              ping: 0,
              transport: sse ? "sse" : "polling",
              keepalive: 60_000,
            },
          });
          if (sse) {
            res.writeHead(200, { "content-type": "text/event-stream" });
            res.end(`: duplex.v1\n\ndata: ${reply}\n\n`);
          } else {
            res.writeHead(200, { "content-type": "application/x-ndjson" });
            res.end(`${reply}\n`);
          }
          return;
        }
        if (answer === "page") {
          res.writeHead(200, { "content-type": "text/html" });
          res.end("<!doctype html><title>Sign in to the Wi-Fi</title>\n<p>Please sign in</p>\n");
          return;
        }
        res.writeHead(answer, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: `HTTP ${answer}` }));
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const { port } = server.address() as { port: number };
    return {
      url: `ws://127.0.0.1:${port}/realtime`,
      opens: () => opens,
      async close() {
        server.closeAllConnections();
        await new Promise<void>((r) => server.close(() => r()));
      },
    };
  }

  /** Streams and polls sent until the first `disconnected` event, and its code. */
  async function untilDisconnected(
    url: string,
    kind: "sse" | "polling",
    opens: () => number,
  ): Promise<{ opens: number; code: number; connected: boolean }> {
    const client = newClient(url, { transports: [kind] });
    let wasConnected = false;
    client.on("connected", () => {
      wasConnected = true;
    });
    const bye = new Promise<{ opens: number; code: number; connected: boolean }>((resolve) => {
      client.once("disconnected", (e) =>
        resolve({ opens: opens(), code: e.code, connected: wasConnected }),
      );
    });
    client.connect();
    const result = await bye;
    client.close();
    return result;
  }

  for (const kind of ["sse", "polling"] as const) {
    // The request that fails first after the connect reply: the SSE stream that carried it
    // ends; the poll after the one that carried it gets the answer.
    const firstFailure = kind === "sse" ? 1 : 2;

    const cases: ReadonlyArray<{
      readonly name: string;
      readonly connect: boolean;
      readonly answer: number | "page";
      readonly expected: { opens: number; code: number; connected: boolean };
    }> = [
      {
        name: "before the connect reply, a 503 fails the attempt at once (no reopen)",
        connect: false,
        answer: 503,
        expected: { opens: 1, code: 1006, connected: false },
      },
      {
        name: "after the connect reply, 503s: two reopens, then the socket fails",
        connect: true,
        answer: 503,
        expected: { opens: firstFailure + 2, code: 1006, connected: true },
      },
      {
        name: "after the connect reply, a 403 fails the socket (no reopen for it)",
        connect: true,
        answer: 403,
        // SSE: the stream that ended was reopened once, and that reopen got the 403.
        expected: { opens: 2, code: 1006, connected: true },
      },
      {
        name: "after the connect reply, a page that is not duplex.v1: no busy loop",
        connect: true,
        answer: "page",
        // SSE: a 200 that does not start as duplex.v1 is no answer: two reopens, as for 503s.
        // Polling: not duplex.v1 fails the socket at once.
        expected: { opens: kind === "sse" ? 3 : 2, code: 1006, connected: true },
      },
    ];
    for (const { name, connect, answer, expected } of cases) {
      it(`${kind}: ${name}`, T, async () => {
        const server = await scripted(connect, answer);
        try {
          const r = await untilDisconnected(server.url, kind, server.opens);
          assert.deepEqual(r, expected);
        } finally {
          await server.close();
        }
      });
    }
  }
});

describe("a publication larger than the server takes", () => {
  let s: Running;
  const MAX = 1000;
  before(async () => {
    s = await startRealtime({
      ...serverOptions,
      namespaces: { "": { publish: "all" } },
      maxPublishBytes: MAX,
    });
  });
  after(() => s.close());

  for (const kind of ["websocket", "sse", "polling"] as const) {
    it(
      `${kind}: refused by the client with 106, before and after the connect reply; the connection stays`,
      T,
      async () => {
        const client = newClient(s.url, { transports: [kind] });
        const states = record(client, "state");
        const ch = `big-${kind}`;
        // Made before the connect reply: queued, then refused instead of sent.
        const early = client.publish(ch, "x".repeat(MAX));
        await connected(client);
        await assert.rejects(early, (e: Error & { code?: number }) => e.code === 106);
        // Exactly the limit (the JSON text of the string: its quotes count, and é is 2 bytes).
        const fits = "é".repeat((MAX - 2) / 2);
        assert.equal((await client.publish(ch, fits)).offset, 1);
        const refused = client.publish(ch, `${fits}.`);
        await assert.rejects(refused, /1001 bytes, the server takes at most 1000/);
        // A publication far over the WebSocket message limit never reaches the wire either.
        await assert.rejects(client.publish(ch, "y".repeat(1 << 20)), /the server takes at most/);
        assert.equal((await client.publish(ch, "small")).offset, 2);
        assert.deepEqual(
          states.map((e) => e.state),
          ["connecting", "connected"],
          "no reconnect",
        );
      },
    );
  }
});

describe("HTTP transports with compression (gzip)", () => {
  let s: Running;
  before(async () => {
    s = await startRealtime({
      ...serverOptions,
      httpTransports: { ...serverOptions.httpTransports, compression: true },
    });
  });
  after(() => s.close());

  for (const kind of ["sse", "polling"] as const) {
    it(
      `${kind}: the client reads gzipped streams and polls — every publication once, in order`,
      T,
      async () => {
        const client = newClient(s.url, { transports: [kind] });
        await connected(client);
        const channel = `gz-${kind}`;
        const got = collect<{ i: number; pad: string }>(client, channel);
        await subscribed(client, channel);
        for (let i = 0; i < 30; i++) {
          // Small and large publications: polls of several hundred bytes and more get gzipped.
          await s.rt.publish(channel, { i, pad: "p".repeat(i % 3 === 0 ? 2000 : 10) });
        }
        await until(() => got.length >= 30, 10_000, "every publication");
        assert.deepEqual(
          got.map((p) => p.data.i),
          range(30),
        );
        assert.equal(got[0]!.data.pad.length, 2000);
        assert.equal((await client.publish(channel, { i: 30, pad: "" })).offset, 31);
        assert.equal(client.transport, kind);
      },
    );
  }
});
