/**
 * Helpers for realtime server tests: a RealtimeServer on an ephemeral loopback port, and a raw
 * duplex.v1 peer (the `ws` library speaking JSON by hand) that shows exactly what the server
 * sent — replies by id, pushes in arrival order, the close code.
 */
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
