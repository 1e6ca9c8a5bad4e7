/**
 * The duplex.v1 realtime client: one connection to the server — a WebSocket, or where none gets
 * through an SSE stream or long-polls with POSTs for commands (http-socket.ts) — with channels
 * multiplexed over it. Runs in browsers and on Node: this module and those it imports use only
 * web-platform globals (WebSocket, fetch, setTimeout, queueMicrotask, crypto.getRandomValues,
 * Date.now) and no Node-only import. On Node, import `./node.js`, whose RealtimeClient defaults to our own WebSocket.
 *
 * The connection and its state machine are in connection.ts. What survives a reconnect: the
 * desired subscriptions (re-sent with `since` = their position when the channel is
 * recoverable; subscription.ts), the publish outbox (unacknowledged publishes are re-sent with
 * the same idempotency key, oldest first; outbox.ts), and history/presence requests (re-sent
 * until their timeout; requests.ts). An rpc whose reply was lost is rejected (code
 * CONNECTION_LOST): it may or may not have run, and only the application can tell whether
 * repeating it is safe.
 *
 * Events are delivered synchronously from the WebSocket's message handler, in wire order. A
 * listener that throws does not disturb the client: the exception is re-thrown from a microtask
 * (see emitter.ts).
 */

import type { Command, DisconnectPush, ErrorPush, Json, PublishResult, Push } from "../wire.js";
import { Backoff, backoffDelay } from "./backoff.js";
import { noop } from "./calls.js";
import { Connection } from "./connection.js";
import { Emitter, type Listener } from "./emitter.js";
import { ClientErrorCode, isTemporary, RealtimeError } from "./errors.js";
import { type ResolvedOptions, resolveOptions } from "./options.js";
import { Outbox, type OutboxHost } from "./outbox.js";
import { Requests, type RequestsHost } from "./requests.js";
import { Subscription, type SubscriptionHooks, type SubscriptionHost } from "./subscription.js";
import type {
  ClientEvents,
  ConnectionState,
  PublishOptions,
  RealtimeClientOptions,
  TransportKind,
} from "./types.js";

export class RealtimeClient {
  readonly url: string;

  readonly #options: ResolvedOptions;
  readonly #events = new Emitter<ClientEvents>();
  readonly #connection: Connection;
  readonly #subs = new Map<string, { sub: Subscription<unknown>; hooks: SubscriptionHooks }>();
  readonly #outbox: Outbox;
  readonly #requests: Requests;
  readonly #host: SubscriptionHost;
  #registered: SubscriptionHooks | undefined;

  constructor(url: string, options: RealtimeClientOptions = {}) {
    const resolved = resolveOptions(url, options);
    this.url = url;
    this.#options = resolved;
    this.#connection = new Connection(url, resolved, this.#events, {
      reestablish: () => this.#reestablish(),
      lost: () => {
        for (const { hooks } of this.#subs.values()) hooks.disconnected();
      },
      fail: (error) => {
        this.#outbox.failAll(error);
        this.#requests.failAll(error);
      },
      push: (push) => this.#onPush(push),
    });
    const link = this.#link();
    this.#outbox = new Outbox(link, resolved.outboxSize);
    this.#requests = new Requests(link, resolved.requestTimeoutMs);
    this.#host = this.#subscriptionHost();
  }

  get state(): ConnectionState {
    return this.#connection.state;
  }

  /**
   * The transport of the connection, or of the attempt in progress; when disconnected, the one
   * the next attempt will use. The "transport" event tells when it changes.
   */
  get transport(): TransportKind {
    return this.#connection.transport;
  }

  /** The server's id for this connection, while connected. */
  get clientId(): string | undefined {
    return this.#connection.clientId;
  }

  /** The user the server authenticated, while connected. */
  get user(): string | undefined {
    return this.#connection.user;
  }

  on<K extends keyof ClientEvents>(event: K, listener: Listener<ClientEvents[K]>): () => void {
    return this.#events.on(event, listener);
  }

  once<K extends keyof ClientEvents>(event: K, listener: Listener<ClientEvents[K]>): () => void {
    return this.#events.once(event, listener);
  }

  off<K extends keyof ClientEvents>(event: K, listener: Listener<ClientEvents[K]>): void {
    this.#events.off(event, listener);
  }

  /** Start connecting (and reconnecting); does nothing while connecting, connected or waiting to reconnect. */
  connect(): void {
    this.#connection.connect();
  }

  /**
   * Disconnect and stay disconnected (state "closed") until connect(). Pending publishes and
   * requests are rejected (code CLOSED); subscriptions stay desired and are re-sent on connect().
   */
  close(): void {
    this.#connection.close();
  }

  /** The subscription object of a channel (always the same one for the same name). */
  channel<T = Json>(name: string): Subscription<T> {
    let entry = this.#subs.get(name);
    if (entry === undefined) {
      const sub = new Subscription<unknown>(this.#host, name);
      const hooks = this.#registered;
      this.#registered = undefined;
      if (hooks === undefined) throw new Error("unreachable: the subscription did not register");
      entry = { sub, hooks };
      this.#subs.set(name, entry);
    }
    return entry.sub as unknown as Subscription<T>;
  }

  /**
   * Publish (no subscription needed). Queued in the outbox until acknowledged: sent while
   * connected, re-sent with the same idempotency key after a reconnect or a temporary error.
   */
  publish<T = Json>(
    channel: string,
    data: T,
    options: PublishOptions = {},
  ): Promise<PublishResult> {
    if (this.#connection.state === "closed") {
      return Promise.reject(new RealtimeError(ClientErrorCode.CLOSED, "the client is closed"));
    }
    return this.#outbox.add(channel, data, options);
  }

  /**
   * Call a server RPC handler; resolves with its `data`. Not re-sent after a lost connection
   * (rejected with code CONNECTION_LOST instead): it may have run.
   */
  async rpc<R = Json>(method: string, data?: Json): Promise<R> {
    const r = await this.#request(
      { type: "rpc", method, ...(data === undefined ? {} : { data }) },
      false,
    );
    return r.data as R;
  }

  // ---- internals ----------------------------------------------------------------------------

  /** What the outbox and the request table need. */
  #link(): OutboxHost & RequestsHost {
    const connection = this.#connection;
    const { minMs, maxMs, random } = this.#options.backoff;
    return {
      get connected() {
        return connection.state === "connected";
      },
      get maxPublishBytes() {
        return connection.maxPublishBytes;
      },
      call: (command, onReply, onLost) => connection.call(command, onReply, onLost),
      retryDelay: (attempt) => backoffDelay(attempt, minMs, maxMs, random),
      forget: (id) => connection.forget(id),
    };
  }

  #subscriptionHost(): SubscriptionHost {
    const connection = this.#connection;
    return {
      get connected() {
        return connection.state === "connected";
      },
      call: (command, onReply) => connection.call(command, onReply, noop) !== undefined,
      newBackoff: () => new Backoff(this.#options.backoff),
      publish: (channel, data, options) => this.publish(channel, data, options),
      request: (command) => this.#request(command, true),
      register: (hooks) => {
        this.#registered = hooks;
      },
    };
  }

  #request(command: Command, resend: boolean): Promise<Record<string, unknown>> {
    if (this.#connection.state === "closed") {
      return Promise.reject(new RealtimeError(ClientErrorCode.CLOSED, "the client is closed"));
    }
    return this.#requests.add(command, resend);
  }

  /** Connected (again): subscriptions, then the outbox oldest first, then the requests waiting. */
  #reestablish(): void {
    for (const { hooks } of this.#subs.values()) hooks.connected();
    this.#outbox.resend();
    this.#requests.resend();
  }

  #onPush(push: Exclude<Push, DisconnectPush>): void {
    if (push.type === "error") this.#onErrorPush(push);
    else this.#subs.get(push.channel)?.hooks.push(push);
  }

  /** An error about a command without a reply: the subscription's if it names one, else ours. */
  #onErrorPush(push: ErrorPush): void {
    const e = push.error;
    const where = push.channel === undefined ? "" : ` on ${push.channel}`;
    const error = new RealtimeError(
      e.code,
      `${push.command}${where}: ${e.message}`,
      isTemporary(e),
    );
    const sub = push.channel === undefined ? undefined : this.#subs.get(push.channel);
    if (sub !== undefined) sub.hooks.error(error);
    else this.#events.emit("error", error);
  }
}
