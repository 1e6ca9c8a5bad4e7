/**
 * Helpers for realtime server tests: a RealtimeServer on an ephemeral loopback port, and a raw
 * duplex.v1 peer (the `ws` library speaking JSON by hand) that shows exactly what the server
 * sent — replies by id, pushes in arrival order, the close code.
 */
import assert from "node:assert/strict";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import WebSocket from "ws";
import { MemoryBroker } from "../../src/broker/index.js";
import type { Broker } from "../../src/realtime/broker.js";
import {
  RealtimeServer,
  type RealtimeServerOptions,
  type WebSocketOptions,
} from "../../src/realtime/index.js";

export interface Running {
  readonly rt: RealtimeServer;
  readonly broker: Broker;
  readonly http: http.Server;
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

export async function startRealtime(
  options: Partial<RealtimeServerOptions> = {},
  wsOptions: WebSocketOptions = {},
): Promise<Running> {
  const broker = options.broker ?? new MemoryBroker();
  const rt = new RealtimeServer({ ...options, broker });
  await rt.start();
  const server = http.createServer((req, res) => {
    if (!rt.handleHttp(req, res)) {
      res.writeHead(404);
      res.end();
    }
  });
  rt.attach(server, "/realtime", wsOptions);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    rt,
    broker,
    http: server,
    port,
    url: `ws://127.0.0.1:${port}/realtime`,
    async close() {
      await rt.close(1000);
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      if (options.broker === undefined) await broker.close();
    },
  };
}

// biome-ignore lint/suspicious/noExplicitAny: test peers read arbitrary JSON.
export type Msg = Record<string, any>;

/** A raw duplex.v1 client. */
export class Peer {
  readonly pushes: Msg[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private nextId = 1;
  private readonly waiting = new Map<number, (m: Msg) => void>();
  private readonly watchers: Array<{ pred: (m: Msg) => boolean; resolve: (m: Msg) => void }> = [];

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) => {
      ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() }));
    });
    ws.on("message", (data: Buffer) => {
      const m = JSON.parse(data.toString()) as Msg;
      if (typeof m.id === "number") {
        const r = this.waiting.get(m.id);
        this.waiting.delete(m.id);
        r?.(m);
        return;
      }
      this.pushes.push(m);
      for (let i = 0; i < this.watchers.length; i++) {
        const w = this.watchers[i]!;
        if (w.pred(m)) {
          this.watchers.splice(i--, 1);
          w.resolve(m);
        }
      }
    });
  }

  static async open(
    url: string,
    protocol: string | null = "duplex.v1",
    options: WebSocket.ClientOptions = {},
  ): Promise<Peer> {
    const ws =
      protocol === null ? new WebSocket(url, options) : new WebSocket(url, protocol, options);
    ws.on("error", () => undefined);
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    return new Peer(ws);
  }

  /** Open and send `connect`; returns the peer and the connect reply. */
  static async connect(url: string, connect: Msg = {}): Promise<{ peer: Peer; reply: Msg }> {
    const peer = await Peer.open(url);
    const reply = await peer.request({ type: "connect", ...connect });
    return { peer, reply };
  }

  /** Send a command with a fresh id and wait for its reply. */
  request(command: Msg): Promise<Msg> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.ws.send(JSON.stringify({ ...command, id }));
    });
  }

  /** Send a command (or any text) without waiting. */
  send(command: Msg | string): void {
    this.ws.send(typeof command === "string" ? command : JSON.stringify(command));
  }

  /** The first push (already received or coming) that matches. */
  push(pred: (m: Msg) => boolean = () => true): Promise<Msg> {
    const seen = this.pushes.find(pred);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve) => this.watchers.push({ pred, resolve }));
  }

  /** Wait until `n` pushes matching `pred` have arrived; returns them. */
  async pushesUntil(n: number, pred: (m: Msg) => boolean): Promise<Msg[]> {
    for (;;) {
      const got = this.pushes.filter(pred);
      if (got.length >= n) return got;
      await new Promise<void>((resolve) =>
        this.watchers.push({
          pred,
          resolve: () => resolve(),
        }),
      );
    }
  }

  pubs(channel: string): Msg[] {
    return this.pushes.filter((m) => m.type === "pub" && m.channel === channel);
  }

  close(): void {
    this.ws.close();
  }

  /** Cut the TCP connection without a closing handshake. */
  cut(): void {
    this.ws.terminate();
  }
}

/** Poll until `check` is true (no fixed sleeps); fails after `ms`. */
export async function until(
  check: () => boolean | Promise<boolean>,
  ms = 5000,
  what = "condition",
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Node options of the multi-node tests: the user is the `name` of the connect data ("anon"
 * without one), and channels of the `room:` namespace have presence.
 */
export const namedUsersWithPresence = {
  authenticate: ({ data }: { data?: unknown }) => ({
    user: String((data as { name?: string } | undefined)?.name ?? "anon"),
    grants: [],
  }),
  namespaces: { room: { presence: true } },
} satisfies Partial<RealtimeServerOptions>;

/**
 * `count` nodes, started one after the other, each over its own broker from `broker()` (brokers
 * sharing one backend or one Redis), with `namedUsersWithPresence` and `options`. On a failure the
 * nodes started so far are stopped.
 */
export async function startNodes(
  count: number,
  broker: () => Broker,
  options: Partial<RealtimeServerOptions> = {},
): Promise<Running[]> {
  const nodes: Running[] = [];
  try {
    for (let i = 0; i < count; i++) {
      nodes.push(await startRealtime({ ...namedUsersWithPresence, ...options, broker: broker() }));
    }
  } catch (error) {
    await stopNodes(nodes);
    throw error;
  }
  return nodes;
}

/** Close each node, then its broker. */
export async function stopNodes(nodes: readonly Running[]): Promise<void> {
  for (const n of nodes) {
    await n.close();
    await n.broker.close();
  }
}

/**
 * A peer on each node, subscribed to `channel`; 30 publications sent through the peers in turn
 * reach every peer once, in order (data 0…29 at offsets 1…30). Returns the peers, still open.
 */
export async function assertFanOut(
  nodes: readonly Running[],
  channel: string,
): Promise<Array<{ peer: Peer; reply: Msg }>> {
  const peers = await Promise.all(nodes.map((n) => Peer.connect(n.url)));
  for (const { peer } of peers) await peer.request({ type: "subscribe", channel });
  for (let i = 0; i < 30; i++) {
    const from = peers[i % peers.length]!.peer;
    await from.request({ type: "publish", channel, data: i });
  }
  for (const { peer } of peers) {
    const got = await peer.pushesUntil(30, (m) => m.type === "pub");
    assert.deepEqual(
      got.map((m) => m.data),
      Array.from({ length: 30 }, (_, i) => i),
    );
    assert.deepEqual(
      got.map((m) => m.offset),
      Array.from({ length: 30 }, (_, i) => i + 1),
    );
  }
  return peers;
}

/**
 * ann on node `a` and bob on node `b`, in the presence channel `channel`: ann sees bob join, both
 * nodes list the same two members, and when bob's connection is cut ann sees him leave. Returns
 * ann (still open), bob and the join ann saw.
 */
export async function assertSharedPresence(
  a: Running,
  b: Running,
  channel: string,
): Promise<{ ann: { peer: Peer; reply: Msg }; bob: { peer: Peer; reply: Msg }; join: Msg }> {
  const ann = await Peer.connect(a.url, { data: { name: "ann" } });
  const bob = await Peer.connect(b.url, { data: { name: "bob" } });
  await ann.peer.request({ type: "subscribe", channel });
  await bob.peer.request({ type: "subscribe", channel });
  const join = await ann.peer.push((m) => m.type === "join" && m.member.user === "bob");
  const viaAnn = await ann.peer.request({ type: "presence", channel });
  const viaBob = await bob.peer.request({ type: "presence", channel });
  assert.equal(viaAnn.result.count, 2);
  assert.deepEqual(viaAnn.result.members, viaBob.result.members);
  bob.peer.cut();
  const leave = await ann.peer.push((m) => m.type === "leave");
  assert.equal(leave.member.user, "bob");
  return { ann, bob, join };
}

/**
 * Subscribe `peer` to `channel` from `since` (its offset and epoch): recovered, with exactly the
 * publications `data`. Returns the subscribe reply.
 */
export async function assertRecovers(
  peer: Peer,
  channel: string,
  since: Msg,
  data: readonly unknown[],
): Promise<Msg> {
  const r = await peer.request({
    type: "subscribe",
    channel,
    since: { offset: since.offset, epoch: since.epoch },
  });
  assert.equal(r.result.recovered, true);
  assert.deepEqual(
    r.result.publications.map((p: Msg) => p.data),
    data,
  );
  return r;
}
