/**
 * A protocol-level fake duplex.v1 server for the realtime client tests: a real WebSocketServer
 * (our own) that records every command and lets each test script the replies and pushes.
 *
 * By default it answers `connect` (FakeServer.onConnect) and `ping` (autoPong) by itself;
 * every command, answered or not, is also queued on its connection for `next(type)`.
 */
import type { AddressInfo } from "node:net";
import type {
  ClientEvents,
  RealtimeClient,
  Subscription,
  SubscriptionEvents,
} from "../../../src/realtime/client/index.js";
import {
  type Command,
  type CommandType,
  type ConnectCommand,
  parseCommand,
  SUBPROTOCOL,
  type WireError,
} from "../../../src/realtime/wire.js";
import { type WebSocketConnection, WebSocketServer } from "../../../src/server/index.js";

/** What to do with a `connect`: reply with a result or an error, or nothing (undefined). */
export type ConnectHandler = (
  command: ConnectCommand,
  conn: FakeConnection,
) => { result: Record<string, unknown> } | { error: WireError } | undefined;

type Waiter<T> = { match: (item: T) => boolean; resolve: (item: T) => void };

/** Items that arrive over time, taken in order by predicate. */
class Inbox<T> {
  readonly #items: T[] = [];
  readonly #waiters: Waiter<T>[] = [];

  put(item: T): void {
    const i = this.#waiters.findIndex((w) => w.match(item));
    if (i >= 0) {
      const [w] = this.#waiters.splice(i, 1);
      w?.resolve(item);
      return;
    }
    this.#items.push(item);
  }

  take(match: (item: T) => boolean = () => true): Promise<T> {
    const i = this.#items.findIndex(match);
    if (i >= 0) {
      const [item] = this.#items.splice(i, 1);
      return Promise.resolve(item as T);
    }
    return new Promise((resolve) => this.#waiters.push({ match, resolve }));
  }
}

export class FakeConnection {
  /** Every command received, in order. */
  readonly log: Command[] = [];
  /** Resolves when the WebSocket is closed, with the close code and reason seen by the server. */
  readonly closed: Promise<{ code: number; reason: string }>;
  /** Answer `ping` commands. */
  autoPong: boolean;
  readonly #ws: WebSocketConnection;
  readonly #commands = new Inbox<Command>();

  constructor(
    ws: WebSocketConnection,
    readonly index: number,
    server: FakeServer,
  ) {
    this.#ws = ws;
    this.autoPong = server.autoPong;
    this.closed = new Promise((resolve) => {
      ws.on("close", (code: number, reason: string) => resolve({ code, reason }));
    });
    ws.on("message", (data: Buffer) => {
      const command = parseCommand(data.toString("utf8"));
      this.log.push(command);
      if (command.type === "connect" && command.id !== undefined) {
        const answer = server.onConnect(command, this);
        if (answer !== undefined && "result" in answer) this.reply(command.id, answer.result);
        else if (answer !== undefined) this.error(command.id, answer.error);
      } else if (command.type === "ping" && this.autoPong && command.id !== undefined) {
        this.reply(command.id, {});
      }
      this.#commands.put(command);
    });
  }

  /** The next command received (of this type, if given) that no earlier next() took. */
  next<K extends CommandType>(type: K): Promise<Extract<Command, { type: K }> & { id: number }>;
  next(): Promise<Command>;
  next(type?: CommandType): Promise<Command> {
    return this.#commands.take((c) => type === undefined || c.type === type);
  }

  send(message: object): void {
    this.#ws.send(JSON.stringify(message));
  }

  reply(id: number, result: Record<string, unknown>): void {
    this.send({ id, result });
  }

  error(id: number, error: WireError): void {
    this.send({ id, error });
  }

  pub(channel: string, offset: number, epoch: string, data: unknown = `m${offset}`): void {
    this.send({ type: "pub", channel, offset, epoch, data });
  }

  close(code?: number, reason?: string): void {
    this.#ws.close(code, reason);
  }

  terminate(): void {
    this.#ws.terminate();
  }
}

let clientCounter = 0;

/** Accept a connect: a new client id, user "alice", no keepalive (ping 0), no expiry. */
export const acceptConnect: ConnectHandler = () => ({
  result: { client: `client-${++clientCounter}`, user: "alice", ping: 0 },
});

export class FakeServer {
  readonly url: string;
  readonly connections: FakeConnection[] = [];
  /** Default for new connections' autoPong. */
  autoPong = true;
  /** Answers `connect`; the default (acceptConnect) accepts with ping 0 and no expiry. */
  onConnect: ConnectHandler = acceptConnect;
  readonly #server: WebSocketServer;
  readonly #incoming = new Inbox<FakeConnection>();

  private constructor(server: WebSocketServer) {
    this.#server = server;
    const { port } = server.address() as AddressInfo;
    this.url = `ws://127.0.0.1:${port}`;
    server.on("connection", (ws: WebSocketConnection) => {
      const conn = new FakeConnection(ws, this.connections.length, this);
      this.connections.push(conn);
      this.#incoming.put(conn);
    });
  }

  static async start(): Promise<FakeServer> {
    const server = await new Promise<WebSocketServer>((resolve) => {
      const s: WebSocketServer = new WebSocketServer(
        {
          port: 0,
          handleProtocols: (offered) => (offered.includes(SUBPROTOCOL) ? SUBPROTOCOL : undefined),
        },
        () => resolve(s),
      );
    });
    return new FakeServer(server);
  }

  /** Back to the defaults: autoPong, acceptConnect. */
  reset(): void {
    this.autoPong = true;
    this.onConnect = acceptConnect;
  }

  /** The next connection that no earlier nextConnection() returned. */
  nextConnection(): Promise<FakeConnection> {
    return this.#incoming.take();
  }

  async stop(): Promise<void> {
    for (const ws of this.#server.clients) ws.terminate();
    await this.#server.close(100);
  }
}

/** The event map of a RealtimeClient or a Subscription. */
type EventsOf<T> = T extends RealtimeClient
  ? ClientEvents
  : T extends Subscription<infer D>
    ? SubscriptionEvents<D>
    : never;

type Loose = { on(event: string, listener: (arg: unknown) => void): () => void };

/** The next `event` (matching `match`, if given) emitted by a client or a subscription. */
export function nextEvent<T extends object, K extends keyof EventsOf<T> & string>(
  target: T,
  event: K,
  match: (arg: EventsOf<T>[K]) => boolean = () => true,
): Promise<EventsOf<T>[K]> {
  return new Promise((resolve) => {
    const off = (target as unknown as Loose).on(event, (arg) => {
      if (!match(arg as EventsOf<T>[K])) return;
      off();
      resolve(arg as EventsOf<T>[K]);
    });
  });
}

/** Everything a client or a subscription emits as `event`, from now on. */
export function record<T extends object, K extends keyof EventsOf<T> & string>(
  target: T,
  event: K,
): EventsOf<T>[K][] {
  const seen: EventsOf<T>[K][] = [];
  (target as unknown as Loose).on(event, (arg) => seen.push(arg as EventsOf<T>[K]));
  return seen;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
