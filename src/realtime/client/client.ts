/**
 * The duplex.v1 realtime client: one WebSocket to the server, channels multiplexed over it.
 * Runs in browsers and on Node: it uses only web-platform globals (WebSocket, setTimeout,
 * queueMicrotask, crypto.getRandomValues, Date.now) and no Node-only import. On Node, import
 * `./node.js`, whose RealtimeClient defaults to our own WebSocket.
 *
 * Connection state machine:
 *
 *            connect()                connect reply ok
 *   disconnected ───────► connecting ─────────────────► connected
 *        ▲    ▲               │  ▲                          │
 *        │    └── failure ────┘  └── backoff timer ──┐      │ socket closed / ping timeout
 *        │      (reconnect)                          │      ▼
 *        └───────────────────────────────────────── disconnected (reconnect: true)
 *   close(), or a close code 4500–4999, or a refused connect that cannot get better → closed
 *   (terminal until connect()).
 *
 * What survives a reconnect: the desired subscriptions (re-sent with `since` = their position
 * when the channel is recoverable), the publish outbox (unacknowledged publishes are re-sent
 * with the same idempotency key, oldest first), and history/presence requests (re-sent until
 * their timeout). An rpc whose reply was lost is rejected (code CONNECTION_LOST): it may or may
 * not have run, and only the application can tell whether repeating it is safe.
 *
 * Events are delivered synchronously from the WebSocket's message handler, in wire order. A
 * listener that throws does not disturb the client: the exception is re-thrown from a microtask
 * (see emitter.ts).
 */

import { DisconnectCode, ErrorCode, shouldReconnect, TEMPORARY_ERRORS } from "../codes.js";
import {
  type ClientInfo,
  type Command,
  type ConnectCommand,
  type ConnectResult,
  type DisconnectPush,
  encodeCommand,
  type HistoryCommand,
  type Json,
  type PresenceCommand,
  type PresenceResult,
  type Publication,
  type PublishCommand,
  type PublishResult,
  type PubPush,
  parseServerMessage,
  type Reply,
  type StreamPosition,
  SUBPROTOCOL,
  type SubscribeCommand,
  type UnsubscribedPush,
  type WireError,
} from "../wire.js";
import { Backoff, backoffDelay } from "./backoff.js";
import { Emitter, type Listener } from "./emitter.js";

// ---------------------------------------------------------------------------------------------
// Public types

/** What the client needs of a WebSocket: the browser's, undici's, or duplex/client's. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: string, listener: (event: Event) => void): void;
}

export type WebSocketConstructor = new (
  url: string,
  protocols?: string | string[],
) => WebSocketLike;

/** Where the browser's `online` event comes from (window, or any EventTarget in tests). */
export interface OnlineEventSource {
  addEventListener(type: "online", listener: () => void): void;
  removeEventListener(type: "online", listener: () => void): void;
}

export interface RealtimeClientOptions {
  /** WebSocket constructor. @default globalThis.WebSocket (a TypeError when there is none) */
  readonly WebSocket?: WebSocketConstructor;
  /** Token sent with `connect`. */
  readonly token?: string;
  /**
   * Gets a (new) token: when there is no token, after the server refused one at connect
   * (TOKEN_EXPIRED / UNAUTHORIZED: one new token, then the connect is retried at once), after a
   * 4003 disconnect, and ahead of the connect reply's `expires` for an in-band `refresh`.
   */
  readonly getToken?: () => Promise<string>;
  /** Application data sent with `connect`. */
  readonly data?: Json;
  /** Client name sent with `connect` (e.g. "web", "ios"). */
  readonly name?: string;
  /** @default 200 */
  readonly minReconnectDelayMs?: number;
  /** @default 10_000 */
  readonly maxReconnectDelayMs?: number;
  /** Socket open + connect reply must take less than this, or the attempt is abandoned. @default 10_000 */
  readonly connectTimeoutMs?: number;
  /** history / presence / rpc must be answered within this, queueing included. @default 10_000 */
  readonly requestTimeoutMs?: number;
  /** Publishes not yet acknowledged, at most; beyond, publish() rejects with code 106. @default 1000 */
  readonly outboxSize?: number;
  /** Random numbers in [0, 1) for backoff jitter. @default Math.random */
  readonly random?: () => number;
  /**
   * Source of `online` events; on one while disconnected the client reconnects at once. null
   * turns this off. @default globalThis when it has addEventListener (browsers), else null
   */
  readonly onlineEvents?: OnlineEventSource | null;
}

export type ConnectionState = "disconnected" | "connecting" | "connected" | "closed";
export type SubscriptionState = "unsubscribed" | "subscribing" | "subscribed";

export interface StateEvent<S extends string> {
  readonly state: S;
  readonly previous: S;
}

export interface DisconnectedEvent {
  /**
   * The WebSocket close code (or the `disconnect` push's code); 1000 after close(); 3008 after a
   * connect or ping timeout; 3000 when getToken() failed; 1006 when no WebSocket could be
   * created; or the reply error code (100–199) when the server refused the `connect` command.
   */
  readonly code: number;
  readonly reason: string;
  /** True: the client reconnects by itself (state "disconnected"); false: state "closed". */
  readonly reconnect: boolean;
}

export interface ClientEvents {
  state: StateEvent<ConnectionState>;
  connected: ConnectResult;
  disconnected: DisconnectedEvent;
  error: Error;
}

/** A publication as delivered to a subscription. */
export type PublicationEvent<T = Json> = Publication<T> & {
  readonly channel: string;
  readonly epoch: string;
};

export interface SubscribedEvent {
  /**
   * Present when the subscribe asked for recovery (`since`). true: the publications missed
   * were delivered (as "publication" events, right after this event). false: they could not
   * be; reload the channel's state (the position restarts at `offset`/`epoch`).
   */
  readonly recovered?: boolean;
  readonly recoverable: boolean;
  readonly offset: number;
  readonly epoch: string;
  /** True when this subscription was already subscribed before (reconnect, gap, server request). */
  readonly resubscribed: boolean;
}

export interface UnsubscribedEvent {
  /** 0 after unsubscribe(); else the server's code (unsubscribed push or subscribe error). */
  readonly code: number;
  readonly reason: string;
}

export interface SubscriptionEvents<T = Json> {
  state: StateEvent<SubscriptionState>;
  publication: PublicationEvent<T>;
  subscribed: SubscribedEvent;
  unsubscribed: UnsubscribedEvent;
  join: ClientInfo;
  leave: ClientInfo;
  error: Error;
}

export interface PublishOptions {
  /** Idempotency key. @default 16 random bytes, hex */
  readonly key?: string;
  /** Conflation key (for "latest" channels). */
  readonly conflate?: string;
}

export interface HistoryOptions {
  readonly since?: StreamPosition;
  readonly limit?: number;
  readonly reverse?: boolean;
}

export interface HistoryResult<T = Json> {
  readonly publications: Publication<T>[];
  readonly offset: number;
  readonly epoch: string;
}

export interface PresenceOptions {
  readonly cursor?: string;
  /** Members per page; 0 returns only the count. */
  readonly limit?: number;
}

/** Codes of errors raised by the client itself (the server's are 100–199). */
export const ClientErrorCode = {
  /** No reply within requestTimeoutMs. Temporary. */
  TIMEOUT: 1,
  /** The connection was lost before the reply (rpc only; other commands are re-sent). Temporary. */
  CONNECTION_LOST: 2,
  /** close() was called, or the server closed the connection for good. */
  CLOSED: 3,
  /** The server sent something that is not duplex.v1. */
  PROTOCOL: 4,
} as const;
export type ClientErrorCode = (typeof ClientErrorCode)[keyof typeof ClientErrorCode];

/** Errors the client rejects promises with and emits: the server's code or a ClientErrorCode. */
export class RealtimeError extends Error {
  readonly code: number;
  /** Whether trying again later may succeed. */
  readonly temporary: boolean;

  constructor(code: number, message: string, temporary: boolean = TEMPORARY_ERRORS.has(code)) {
    super(message);
    this.name = "RealtimeError";
    this.code = code;
    this.temporary = temporary;
  }
}

// ---------------------------------------------------------------------------------------------
// Internals

type Timer = ReturnType<typeof setTimeout>;

const OPEN = 1;
/** IANA-registered WebSocket close codes the client uses for its own decisions. */
const CLOSE_NORMAL = 1000;
const CLOSE_ABNORMAL = 1006;
const CLOSE_UNAUTHORIZED = 3000;
const CLOSE_TIMEOUT = 3008;
/** setTimeout's largest delay (larger ones fire at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;

const noop = (): void => {};

/** Handlers of a command waiting for its reply on the current socket. */
interface Pending {
  onReply(reply: Reply): void;
  /** The socket went away before the reply. */
  onLost(): void;
}

interface OutboxEntry {
  readonly command: PublishCommand;
  readonly resolve: (result: PublishResult) => void;
  readonly reject: (error: Error) => void;
  /** Id of the copy in flight on the current socket. */
  sentId: number | undefined;
  /** Waiting to be retried after a temporary error. */
  retryTimer: Timer | undefined;
  attempts: number;
}

interface RequestEntry {
  readonly command: Command;
  /** Re-send after a reconnect (history, presence) or reject (rpc). */
  readonly resend: boolean;
  readonly resolve: (result: Record<string, unknown>) => void;
  readonly reject: (error: Error) => void;
  sentId: number | undefined;
  timer: Timer | undefined;
}

/** What a Subscription needs from its client. */
interface SubscriptionHost {
  readonly connected: boolean;
  /** Send a command with an id now; false when there is no open socket. */
  call(command: Command, onReply: (reply: Reply) => void): boolean;
  newBackoff(): Backoff;
  publish(channel: string, data: unknown, options: PublishOptions): Promise<PublishResult>;
  request(command: Command): Promise<Record<string, unknown>>;
  /** Called by the Subscription constructor (from client.channel()) with its hooks. */
  register(hooks: SubscriptionHooks): void;
}

/** What the client tells a Subscription. */
interface SubscriptionHooks {
  connected(): void;
  disconnected(): void;
  push(push: PubPush | UnsubscribedPush | { type: "join" | "leave"; member: ClientInfo }): void;
  error(error: Error): void;
}

function isTemporary(error: WireError): boolean {
  return error.temporary === true || TEMPORARY_ERRORS.has(error.code);
}

function isReplyError(reply: Reply): reply is { readonly id: number; readonly error: WireError } {
  return "error" in reply;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/** 16 random bytes as 32 hex digits. */
export function randomKey(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  let hex = "";
  for (const b of bytes) hex += b.toString(16).padStart(2, "0");
  return hex;
}

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !(value > 0) || !Number.isFinite(value)) {
    throw new RangeError(`RealtimeClient: ${name} must be a positive number, got ${value}`);
  }
  return value;
}

function toPublishResult(r: Record<string, unknown>): PublishResult {
  const offset = typeof r.offset === "number" ? r.offset : 0;
  const epoch = typeof r.epoch === "string" ? r.epoch : "";
  return r.duplicate === true ? { offset, epoch, duplicate: true } : { offset, epoch };
}

function publicationEvent<T>(
  channel: string,
  epoch: string,
  p: { offset: number; data: unknown; from?: ClientInfo; time?: number },
): PublicationEvent<T> {
  return {
    channel,
    epoch,
    offset: p.offset,
    data: p.data as T,
    ...(p.from === undefined ? {} : { from: p.from }),
    ...(p.time === undefined ? {} : { time: p.time }),
  };
}

// ---------------------------------------------------------------------------------------------
// Subscription

/**
 * One channel of a client (get it with client.channel(name); there is one per name). It keeps
 * its desired state across reconnects: subscribe() once, and the client re-subscribes (and
 * recovers) after every reconnect until unsubscribe().
 */
export class Subscription<T = Json> {
  readonly channel: string;
  readonly #host: SubscriptionHost;
  readonly #events = new Emitter<SubscriptionEvents<T>>();
  readonly #backoff: Backoff;
  #state: SubscriptionState = "unsubscribed";
  /** subscribe() was called and neither unsubscribe() nor a final server refusal since. */
  #desired = false;
  /** Offset and epoch of the last publication delivered (or of the subscribe reply). */
  #position: StreamPosition | undefined;
  #recoverable = false;
  /** Subscribed at least once since subscribe(): the next "subscribed" is a resubscribe. */
  #established = false;
  /** Bumped whenever a subscribe in flight must be forgotten. */
  #gen = 0;
  #inflight = false;
  #retryTimer: Timer | undefined;

  /** Not for applications: use client.channel(name). */
  constructor(host: SubscriptionHost, channel: string) {
    this.channel = channel;
    this.#host = host;
    this.#backoff = host.newBackoff();
    host.register({
      connected: () => {
        if (this.#desired) this.#sendSubscribe();
      },
      disconnected: () => this.#onDisconnected(),
      push: (push) => this.#onPush(push),
      error: (error) => this.#events.emit("error", error),
    });
  }

  get state(): SubscriptionState {
    return this.#state;
  }

  /** Position of the last publication delivered; undefined before the first subscribe reply. */
  get position(): StreamPosition | undefined {
    return this.#position;
  }

  on<K extends keyof SubscriptionEvents<T>>(
    event: K,
    listener: Listener<SubscriptionEvents<T>[K]>,
  ): () => void {
    return this.#events.on(event, listener);
  }

  once<K extends keyof SubscriptionEvents<T>>(
    event: K,
    listener: Listener<SubscriptionEvents<T>[K]>,
  ): () => void {
    return this.#events.once(event, listener);
  }

  off<K extends keyof SubscriptionEvents<T>>(
    event: K,
    listener: Listener<SubscriptionEvents<T>[K]>,
  ): void {
    this.#events.off(event, listener);
  }

  /** Subscribe now if connected, else as soon as the client is; idempotent. */
  subscribe(): void {
    if (this.#desired) return;
    this.#desired = true;
    this.#established = false;
    this.#backoff.reset();
    this.#sendSubscribe();
    this.#setState("subscribing");
  }

  /** Stop receiving; emits "unsubscribed" with code 0. The position is forgotten. */
  unsubscribe(): void {
    if (!this.#desired) return;
    const onServer = this.#inflight || this.#state === "subscribed";
    this.#forget();
    if (onServer && this.#host.connected) {
      this.#host.call({ type: "unsubscribe", channel: this.channel }, noop);
    }
    this.#setState("unsubscribed");
    this.#events.emit("unsubscribed", { code: 0, reason: "unsubscribe called" });
  }

  publish(data: T, options: PublishOptions = {}): Promise<PublishResult> {
    return this.#host.publish(this.channel, data, options);
  }

  /** The channel's history (server limits apply); re-sent after a reconnect until the timeout. */
  async history(options: HistoryOptions = {}): Promise<HistoryResult<T>> {
    const command: HistoryCommand = {
      type: "history",
      channel: this.channel,
      ...(options.since === undefined ? {} : { since: options.since }),
      ...(options.limit === undefined ? {} : { limit: options.limit }),
      ...(options.reverse === undefined ? {} : { reverse: options.reverse }),
    };
    const r = await this.#host.request(command);
    return {
      publications: Array.isArray(r.publications) ? (r.publications as Publication<T>[]) : [],
      offset: typeof r.offset === "number" ? r.offset : 0,
      epoch: typeof r.epoch === "string" ? r.epoch : "",
    };
  }

  /** One page of the channel's presence; pass the result's cursor back for the next one. */
  async presence(options: PresenceOptions = {}): Promise<PresenceResult> {
    const command: PresenceCommand = {
      type: "presence",
      channel: this.channel,
      ...(options.cursor === undefined ? {} : { cursor: options.cursor }),
      ...(options.limit === undefined ? {} : { limit: options.limit }),
    };
    const r = await this.#host.request(command);
    return {
      count: typeof r.count === "number" ? r.count : 0,
      members: Array.isArray(r.members) ? (r.members as ClientInfo[]) : [],
      ...(typeof r.cursor === "string" ? { cursor: r.cursor } : {}),
    };
  }

  // ---- internals ----------------------------------------------------------------------------

  #setState(state: SubscriptionState): void {
    const previous = this.#state;
    if (previous === state) return;
    this.#state = state;
    this.#events.emit("state", { state, previous });
  }

  /** Drop the desire and everything that goes with it (no events). */
  #forget(): void {
    this.#desired = false;
    this.#established = false;
    this.#position = undefined;
    this.#recoverable = false;
    this.#stopInflight();
  }

  #stopInflight(): void {
    this.#gen++;
    this.#inflight = false;
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
  }

  #onDisconnected(): void {
    this.#stopInflight();
    if (this.#desired) this.#setState("subscribing");
  }

  #sendSubscribe(): void {
    if (!this.#host.connected) return;
    const gen = ++this.#gen;
    const since = this.#recoverable ? this.#position : undefined;
    const command: SubscribeCommand =
      since === undefined
        ? { type: "subscribe", channel: this.channel }
        : { type: "subscribe", channel: this.channel, since };
    this.#inflight = this.#host.call(command, (reply) => {
      if (gen === this.#gen) this.#onSubscribeReply(reply, since);
    });
  }

  /** Subscribe again, recovering from the position (after a gap or the server's request). */
  #resubscribe(sendUnsubscribe: boolean): void {
    this.#stopInflight();
    if (sendUnsubscribe && this.#host.connected) {
      this.#host.call({ type: "unsubscribe", channel: this.channel }, noop);
    }
    this.#sendSubscribe();
    this.#setState("subscribing");
  }

  #onSubscribeReply(reply: Reply, since: StreamPosition | undefined): void {
    this.#inflight = false;
    if (isReplyError(reply)) {
      const e = reply.error;
      if (isTemporary(e)) {
        const gen = this.#gen;
        this.#retryTimer = setTimeout(() => {
          this.#retryTimer = undefined;
          if (gen === this.#gen && this.#desired) this.#sendSubscribe();
        }, this.#backoff.next());
        return;
      }
      this.#forget();
      this.#setState("unsubscribed");
      this.#events.emit(
        "error",
        new RealtimeError(e.code, `subscribe to ${this.channel} failed: ${e.message}`, false),
      );
      this.#events.emit("unsubscribed", { code: e.code, reason: e.message });
      return;
    }
    const r = reply.result;
    const offset = typeof r.offset === "number" ? r.offset : 0;
    const epoch = typeof r.epoch === "string" ? r.epoch : "";
    const final: StreamPosition = { offset, epoch };
    const recovered = since === undefined ? undefined : r.recovered === true;
    const publications =
      recovered === true && Array.isArray(r.publications)
        ? (r.publications as Publication<unknown>[])
        : [];
    this.#backoff.reset();
    const resubscribed = this.#established;
    this.#established = true;
    this.#recoverable = r.recoverable === true;
    this.#position = recovered === true ? since : final;
    const gen = this.#gen;
    this.#setState("subscribed");
    if (gen !== this.#gen) return;
    this.#events.emit("subscribed", {
      ...(recovered === undefined ? {} : { recovered }),
      recoverable: this.#recoverable,
      offset,
      epoch,
      resubscribed,
    });
    for (const p of publications) {
      if (gen !== this.#gen) return;
      const at = this.#position;
      if (at !== undefined && at.epoch === epoch && p.offset <= at.offset) continue;
      this.#position = { offset: p.offset, epoch };
      this.#events.emit("publication", publicationEvent<T>(this.channel, epoch, p));
    }
    if (gen === this.#gen) this.#position = final;
  }

  #onPush(push: Parameters<SubscriptionHooks["push"]>[0]): void {
    switch (push.type) {
      case "pub":
        this.#onPub(push);
        return;
      case "join":
      case "leave":
        if (this.#state === "subscribed") this.#events.emit(push.type, push.member);
        return;
      case "unsubscribed":
        if (!this.#desired) return;
        if (push.resubscribe) {
          // A subscribe of ours in flight already re-establishes the subscription.
          if (!this.#inflight) this.#resubscribe(false);
          return;
        }
        if (this.#inflight && this.#host.connected) {
          // The subscribe in flight may still succeed on the server: undo it.
          this.#host.call({ type: "unsubscribe", channel: this.channel }, noop);
        }
        this.#forget();
        this.#setState("unsubscribed");
        this.#events.emit("unsubscribed", { code: push.code, reason: push.reason ?? "" });
        return;
    }
  }

  #onPub(push: PubPush): void {
    // Before the subscribe reply (or after unsubscribe) pubs belong to a stream we are not in:
    // the reply's position (and recovery) accounts for them.
    if (!this.#desired || this.#state !== "subscribed") return;
    if (push.offset === 0 && push.epoch === "") {
      // A channel without history: no positions to check.
      this.#events.emit("publication", publicationEvent<T>(this.channel, "", push));
      return;
    }
    const at = this.#position;
    if (at !== undefined) {
      const sameEpoch = push.epoch === at.epoch;
      if (sameEpoch && push.offset <= at.offset) return; // a duplicate
      // Offset 0 of epoch "": the stream did not exist at subscribe time; offset 1 starts it.
      const starts = at.epoch === "" && at.offset === 0 && push.offset === 1;
      const next = starts || (sameEpoch && push.offset === at.offset + 1);
      if (!next && this.#recoverable) {
        // A gap, or a new epoch: never deliver out of order; get the missing part first.
        this.#resubscribe(true);
        return;
      }
    }
    this.#position = { offset: push.offset, epoch: push.epoch };
    this.#events.emit("publication", publicationEvent<T>(this.channel, push.epoch, push));
  }
}

// ---------------------------------------------------------------------------------------------
// RealtimeClient

export class RealtimeClient {
  readonly url: string;
  /** The transport in use (only "websocket" for now). */
  readonly transport: string = "websocket";

  readonly #WebSocket: WebSocketConstructor;
  readonly #getToken: (() => Promise<string>) | undefined;
  readonly #data: Json | undefined;
  readonly #name: string | undefined;
  readonly #minDelay: number;
  readonly #maxDelay: number;
  readonly #random: () => number;
  readonly #connectTimeoutMs: number;
  readonly #requestTimeoutMs: number;
  readonly #outboxSize: number;
  readonly #online: OnlineEventSource | null;
  readonly #events = new Emitter<ClientEvents>();
  readonly #backoff: Backoff;
  readonly #subs = new Map<string, { sub: Subscription<unknown>; hooks: SubscriptionHooks }>();
  readonly #outbox = new Set<OutboxEntry>();
  readonly #requests = new Set<RequestEntry>();
  readonly #host: SubscriptionHost;

  #state: ConnectionState = "disconnected";
  #clientId: string | undefined;
  #user: string | undefined;
  #ws: WebSocketLike | null = null;
  /** Connection generation: bumped whenever the current attempt or connection is let go. */
  #conn = 0;
  #nextId = 1;
  #pending = new Map<number, Pending>();
  #disconnectPush: DisconnectPush | undefined;
  #token: string | undefined;
  /** The token was refused or expired: ask getToken() before the next connect. */
  #tokenStale = false;
  #reconnectTimer: Timer | undefined;
  #connectTimer: Timer | undefined;
  #pingTimer: Timer | undefined;
  #pingOutstanding = false;
  #refreshTimer: Timer | undefined;
  #onlineAttached = false;
  #registered: SubscriptionHooks | undefined;

  constructor(url: string, options: RealtimeClientOptions = {}) {
    const WS = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (typeof WS !== "function") {
      throw new TypeError(
        "RealtimeClient: this runtime has no global WebSocket; pass options.WebSocket, " +
          "or on Node use the RealtimeClient of duplex's realtime client node entry",
      );
    }
    this.url = url;
    this.#WebSocket = WS;
    this.#token = options.token;
    this.#getToken = options.getToken;
    this.#data = options.data;
    this.#name = options.name;
    this.#minDelay = positive("minReconnectDelayMs", options.minReconnectDelayMs, 200);
    this.#maxDelay = Math.max(
      this.#minDelay,
      positive("maxReconnectDelayMs", options.maxReconnectDelayMs, 10_000),
    );
    this.#random = options.random ?? Math.random;
    this.#connectTimeoutMs = positive("connectTimeoutMs", options.connectTimeoutMs, 10_000);
    this.#requestTimeoutMs = positive("requestTimeoutMs", options.requestTimeoutMs, 10_000);
    const outboxSize = options.outboxSize ?? 1000;
    if (!Number.isSafeInteger(outboxSize) || outboxSize < 0) {
      throw new RangeError(`RealtimeClient: outboxSize must be an integer >= 0, got ${outboxSize}`);
    }
    this.#outboxSize = outboxSize;
    const platform = globalThis as Partial<OnlineEventSource>;
    this.#online =
      options.onlineEvents !== undefined
        ? options.onlineEvents
        : typeof platform.addEventListener === "function" &&
            typeof platform.removeEventListener === "function"
          ? (globalThis as unknown as OnlineEventSource)
          : null;
    this.#backoff = this.#newBackoff();
    const client = this;
    this.#host = {
      get connected() {
        return client.#state === "connected";
      },
      call: (command, onReply) => this.#call(command, onReply, noop) !== undefined,
      newBackoff: () => this.#newBackoff(),
      publish: (channel, data, options) => this.publish(channel, data, options),
      request: (command) => this.#request(command, true),
      register: (hooks) => {
        this.#registered = hooks;
      },
    };
  }

  get state(): ConnectionState {
    return this.#state;
  }

  /** The server's id for this connection, while connected. */
  get clientId(): string | undefined {
    return this.#clientId;
  }

  /** The user the server authenticated, while connected. */
  get user(): string | undefined {
    return this.#user;
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
    if (this.#state === "connecting" || this.#state === "connected") return;
    if (this.#reconnectTimer !== undefined) return;
    this.#backoff.reset();
    this.#attachOnline();
    this.#startAttempt();
  }

  /**
   * Disconnect and stay disconnected (state "closed") until connect(). Pending publishes and
   * requests are rejected (code CLOSED); subscriptions stay desired and are re-sent on connect().
   */
  close(): void {
    if (this.#state === "closed") return;
    const previous = this.#state;
    this.#clearReconnectTimer();
    this.#detachOnline();
    this.#failAll(new RealtimeError(ClientErrorCode.CLOSED, "the client was closed", false));
    this.#teardown(CLOSE_NORMAL, "client closed");
    this.#setState("closed");
    if (previous === "connecting" || previous === "connected") {
      this.#events.emit("disconnected", {
        code: CLOSE_NORMAL,
        reason: "client closed",
        reconnect: false,
      });
    }
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
    if (this.#state === "closed") {
      return Promise.reject(new RealtimeError(ClientErrorCode.CLOSED, "the client is closed"));
    }
    if (data === undefined) {
      return Promise.reject(new TypeError("publish: data must be a JSON value, got undefined"));
    }
    if (this.#outbox.size >= this.#outboxSize) {
      return Promise.reject(
        new RealtimeError(
          ErrorCode.LIMIT_EXCEEDED,
          `publish outbox full (${this.#outboxSize} publishes not yet acknowledged)`,
          true,
        ),
      );
    }
    const command: PublishCommand = {
      type: "publish",
      channel,
      data: data as Json,
      key: options.key ?? randomKey(),
      ...(options.conflate === undefined ? {} : { conflate: options.conflate }),
    };
    return new Promise<PublishResult>((resolve, reject) => {
      const entry: OutboxEntry = {
        command,
        resolve,
        reject,
        sentId: undefined,
        retryTimer: undefined,
        attempts: 0,
      };
      this.#outbox.add(entry);
      if (this.#state === "connected") this.#sendPublish(entry);
    });
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

  // ---- connection ---------------------------------------------------------------------------

  #newBackoff(): Backoff {
    return new Backoff({ minMs: this.#minDelay, maxMs: this.#maxDelay, random: this.#random });
  }

  #setState(state: ConnectionState): void {
    const previous = this.#state;
    if (previous === state) return;
    this.#state = state;
    this.#events.emit("state", { state, previous });
  }

  #emitError(error: Error): void {
    this.#events.emit("error", error);
  }

  #clearReconnectTimer(): void {
    if (this.#reconnectTimer !== undefined) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
  }

  readonly #onOnline = (): void => {
    if (this.#state !== "disconnected" || this.#reconnectTimer === undefined) return;
    this.#backoff.reset();
    this.#startAttempt();
  };

  #attachOnline(): void {
    if (this.#online === null || this.#onlineAttached) return;
    this.#online.addEventListener("online", this.#onOnline);
    this.#onlineAttached = true;
  }

  #detachOnline(): void {
    if (this.#online === null || !this.#onlineAttached) return;
    this.#online.removeEventListener("online", this.#onOnline);
    this.#onlineAttached = false;
  }

  #startAttempt(): void {
    this.#clearReconnectTimer();
    const conn = ++this.#conn;
    this.#connectTimer = setTimeout(() => {
      if (this.#conn === conn) this.#drop(CLOSE_TIMEOUT, "connect timeout", true, true);
    }, this.#connectTimeoutMs);
    this.#setState("connecting");
    if (this.#conn === conn) void this.#open(conn);
  }

  async #open(conn: number): Promise<void> {
    let token = this.#token;
    let fresh = false;
    if (this.#getToken !== undefined && (token === undefined || this.#tokenStale)) {
      try {
        token = await this.#getToken();
        if (typeof token !== "string") throw new TypeError("getToken() must resolve to a string");
      } catch (error) {
        if (this.#conn !== conn) return;
        this.#emitError(toError(error));
        this.#drop(CLOSE_UNAUTHORIZED, `getToken() failed: ${message(error)}`, true, false);
        return;
      }
      if (this.#conn !== conn) return;
      this.#token = token;
      this.#tokenStale = false;
      fresh = true;
    }
    let ws: WebSocketLike;
    try {
      ws = new this.#WebSocket(this.url, SUBPROTOCOL);
    } catch (error) {
      this.#emitError(toError(error));
      this.#drop(CLOSE_ABNORMAL, `cannot open a WebSocket: ${message(error)}`, false, false);
      return;
    }
    this.#ws = ws;
    ws.addEventListener("open", () => {
      if (this.#ws === ws) this.#sendConnect(conn, token, fresh);
    });
    ws.addEventListener("message", (event) => {
      if (this.#ws === ws) this.#onMessage(event);
    });
    ws.addEventListener("close", (event) => {
      if (this.#ws === ws) this.#onSocketClose(event);
    });
  }

  #sendConnect(conn: number, token: string | undefined, fresh: boolean): void {
    const command: ConnectCommand = {
      type: "connect",
      ...(token === undefined ? {} : { token }),
      ...(this.#data === undefined ? {} : { data: this.#data }),
      ...(this.#name === undefined ? {} : { name: this.#name }),
    };
    this.#call(
      command,
      (reply) => {
        if (this.#conn === conn) this.#onConnectReply(conn, reply, fresh);
      },
      noop,
    );
  }

  #onConnectReply(conn: number, reply: Reply, freshToken: boolean): void {
    if (isReplyError(reply)) {
      const e = reply.error;
      const tokenRefused = e.code === ErrorCode.TOKEN_EXPIRED || e.code === ErrorCode.UNAUTHORIZED;
      if (tokenRefused && this.#getToken !== undefined && !freshToken) {
        // Once per attempt: a new token, and the connect again at once on a new socket.
        this.#tokenStale = true;
        this.#teardown(CLOSE_NORMAL, "retrying with a new token");
        this.#startAttempt();
        return;
      }
      if (e.code === ErrorCode.TOKEN_EXPIRED) this.#tokenStale = true;
      const reconnect =
        isTemporary(e) || (e.code === ErrorCode.TOKEN_EXPIRED && this.#getToken !== undefined);
      this.#emitError(new RealtimeError(e.code, `connect refused: ${e.message}`, isTemporary(e)));
      this.#drop(e.code, e.message, reconnect, true);
      return;
    }
    const r = reply.result as unknown as ConnectResult;
    if (this.#connectTimer !== undefined) clearTimeout(this.#connectTimer);
    this.#connectTimer = undefined;
    this.#backoff.reset();
    this.#clientId = typeof r.client === "string" ? r.client : undefined;
    this.#user = typeof r.user === "string" ? r.user : undefined;
    const previous = this.#state;
    this.#state = "connected";
    // Re-establish before telling anyone: subscriptions, then the outbox oldest first, then
    // the requests that were waiting.
    for (const { hooks } of this.#subs.values()) hooks.connected();
    for (const entry of this.#outbox) {
      if (entry.sentId === undefined && entry.retryTimer === undefined) this.#sendPublish(entry);
    }
    for (const entry of this.#requests) {
      if (entry.sentId === undefined) this.#sendRequest(entry);
    }
    this.#startPing(conn, typeof r.ping === "number" ? r.ping : 0);
    if (typeof r.expires === "number") this.#scheduleRefresh(conn, r.expires);
    this.#events.emit("state", { state: "connected", previous });
    if (this.#conn === conn) this.#events.emit("connected", r);
  }

  /** Send a command with a fresh id on the open socket; undefined when there is none. */
  #call(command: Command, onReply: (reply: Reply) => void, onLost: () => void): number | undefined {
    const ws = this.#ws;
    if (ws === null || ws.readyState !== OPEN) return undefined;
    const id = this.#nextId++;
    this.#pending.set(id, { onReply, onLost });
    try {
      ws.send(encodeCommand({ ...command, id }));
    } catch {
      // The socket is going away; its close event calls onLost.
    }
    return id;
  }

  #onMessage(event: Event): void {
    const data = (event as unknown as { data?: unknown }).data;
    if (typeof data !== "string") {
      this.#emitError(
        new RealtimeError(ClientErrorCode.PROTOCOL, "binary message from the server ignored"),
      );
      return;
    }
    let msg: ReturnType<typeof parseServerMessage>;
    try {
      msg = parseServerMessage(data);
    } catch (error) {
      this.#emitError(
        new RealtimeError(
          ClientErrorCode.PROTOCOL,
          `bad message from the server: ${message(error)}`,
        ),
      );
      return;
    }
    if ("id" in msg) {
      const pending = this.#pending.get(msg.id);
      if (pending === undefined) return; // timed out, or not ours to care about
      this.#pending.delete(msg.id);
      pending.onReply(msg);
      return;
    }
    switch (msg.type) {
      case "pub":
      case "join":
      case "leave":
      case "unsubscribed":
        this.#subs.get(msg.channel)?.hooks.push(msg);
        return;
      case "disconnect":
        this.#disconnectPush = msg;
        return;
      case "error": {
        const e = msg.error;
        const where = msg.channel === undefined ? "" : ` on ${msg.channel}`;
        const error = new RealtimeError(
          e.code,
          `${msg.command}${where}: ${e.message}`,
          isTemporary(e),
        );
        const sub = msg.channel === undefined ? undefined : this.#subs.get(msg.channel);
        if (sub !== undefined) sub.hooks.error(error);
        else this.#emitError(error);
        return;
      }
    }
  }

  #onSocketClose(event: Event): void {
    const ev = event as unknown as { code?: number; reason?: string };
    const push = this.#disconnectPush;
    const code = push?.code ?? ev.code ?? CLOSE_ABNORMAL;
    const reason = push?.reason ?? ev.reason ?? "";
    const reconnect = shouldReconnect(code) && push?.reconnect !== false;
    if (code === DisconnectCode.TOKEN_EXPIRED) this.#tokenStale = true;
    this.#drop(code, reason, reconnect, false);
  }

  /** Let the current attempt or connection go; then reconnect later, or close for good. */
  #drop(code: number, reason: string, reconnect: boolean, closeSocket: boolean): void {
    const previous = this.#state;
    const socketCode =
      code === CLOSE_NORMAL || (code >= 3000 && code <= 4999) ? code : CLOSE_NORMAL;
    this.#teardown(closeSocket ? socketCode : undefined, reason);
    if (reconnect) {
      this.#state = "disconnected";
      const delay = this.#backoff.next();
      this.#reconnectTimer = setTimeout(() => {
        this.#reconnectTimer = undefined;
        if (this.#state === "disconnected") this.#startAttempt();
      }, delay);
    } else {
      this.#state = "closed";
      this.#detachOnline();
      this.#failAll(
        new RealtimeError(ClientErrorCode.CLOSED, `connection closed: ${reason} (${code})`, false),
      );
    }
    if (previous !== this.#state) {
      this.#events.emit("state", { state: this.#state, previous });
    }
    this.#events.emit("disconnected", { code, reason, reconnect });
  }

  /** Forget the socket and everything tied to it (no state change, no events of the client). */
  #teardown(closeCode: number | undefined, reason: string): void {
    this.#conn++;
    for (const timer of [this.#connectTimer, this.#pingTimer, this.#refreshTimer]) {
      if (timer !== undefined) clearTimeout(timer);
    }
    this.#connectTimer = this.#pingTimer = this.#refreshTimer = undefined;
    this.#pingOutstanding = false;
    this.#disconnectPush = undefined;
    this.#clientId = undefined;
    this.#user = undefined;
    const ws = this.#ws;
    this.#ws = null;
    if (ws !== null && closeCode !== undefined) {
      try {
        ws.close(closeCode, reason.slice(0, 60));
      } catch {
        // already closing
      }
    }
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) p.onLost();
    for (const { hooks } of this.#subs.values()) hooks.disconnected();
  }

  /** Reject every queued publish and request. */
  #failAll(error: RealtimeError): void {
    const outbox = [...this.#outbox];
    this.#outbox.clear();
    for (const entry of outbox) {
      if (entry.retryTimer !== undefined) clearTimeout(entry.retryTimer);
      entry.reject(error);
    }
    const requests = [...this.#requests];
    this.#requests.clear();
    for (const entry of requests) {
      if (entry.timer !== undefined) clearTimeout(entry.timer);
      entry.reject(error);
    }
  }

  // ---- keepalive and token refresh ----------------------------------------------------------

  /**
   * Every `interval` ms: if the previous ping is still unanswered the connection is dead
   * (closed with 3008 and reconnected), else send the next one. So a ping reply has `interval`
   * ms to arrive.
   */
  #startPing(conn: number, interval: number): void {
    if (!(interval > 0)) return;
    const tick = (): void => {
      this.#pingTimer = undefined;
      if (this.#conn !== conn) return;
      if (this.#pingOutstanding) {
        this.#drop(CLOSE_TIMEOUT, "ping timeout", true, true);
        return;
      }
      this.#pingOutstanding = true;
      this.#call(
        { type: "ping" },
        () => {
          if (this.#conn === conn) this.#pingOutstanding = false;
        },
        noop,
      );
      this.#pingTimer = setTimeout(tick, interval);
    };
    this.#pingTimer = setTimeout(tick, interval);
  }

  /** Refresh in-band at ~90% of the token's remaining lifetime. */
  #scheduleRefresh(conn: number, expires: number): void {
    if (this.#refreshTimer !== undefined) clearTimeout(this.#refreshTimer);
    this.#refreshTimer = undefined;
    if (this.#getToken === undefined) return; // the server will disconnect with 4003
    const at = Date.now() + Math.max(0, expires - Date.now()) * 0.9;
    const arm = (): void => {
      const wait = at - Date.now();
      this.#refreshTimer = setTimeout(
        () => {
          this.#refreshTimer = undefined;
          if (this.#conn !== conn) return;
          if (Date.now() < at) arm();
          else void this.#refresh(conn);
        },
        Math.min(Math.max(0, wait), MAX_TIMER_MS),
      );
    };
    arm();
  }

  async #refresh(conn: number): Promise<void> {
    const getToken = this.#getToken;
    if (getToken === undefined) return;
    let token: string;
    try {
      token = await getToken();
      if (typeof token !== "string") throw new TypeError("getToken() must resolve to a string");
    } catch (error) {
      if (this.#conn === conn) {
        this.#emitError(
          new RealtimeError(
            ErrorCode.UNAUTHORIZED,
            `token refresh failed: ${message(error)}`,
            true,
          ),
        );
      }
      return;
    }
    this.#token = token;
    this.#tokenStale = false;
    if (this.#conn !== conn || this.#state !== "connected") return;
    this.#call(
      { type: "refresh", token },
      (reply) => {
        if (this.#conn !== conn) return;
        if (isReplyError(reply)) {
          const e = reply.error;
          this.#emitError(
            new RealtimeError(e.code, `token refresh refused: ${e.message}`, isTemporary(e)),
          );
          return;
        }
        const expires = reply.result.expires;
        if (typeof expires === "number") this.#scheduleRefresh(conn, expires);
      },
      noop,
    );
  }

  // ---- publishes and requests ---------------------------------------------------------------

  #sendPublish(entry: OutboxEntry): void {
    entry.sentId = this.#call(
      entry.command,
      (reply) => this.#onPublishReply(entry, reply),
      () => {
        entry.sentId = undefined; // re-sent after the reconnect, in outbox order
      },
    );
  }

  #onPublishReply(entry: OutboxEntry, reply: Reply): void {
    entry.sentId = undefined;
    if (!this.#outbox.has(entry)) return;
    if (isReplyError(reply)) {
      const e = reply.error;
      if (isTemporary(e)) {
        const delay = backoffDelay(entry.attempts++, this.#minDelay, this.#maxDelay, this.#random);
        entry.retryTimer = setTimeout(() => {
          entry.retryTimer = undefined;
          if (this.#outbox.has(entry) && this.#state === "connected") this.#sendPublish(entry);
        }, delay);
        return;
      }
      this.#outbox.delete(entry);
      entry.reject(new RealtimeError(e.code, `publish failed: ${e.message}`, false));
      return;
    }
    this.#outbox.delete(entry);
    entry.resolve(toPublishResult(reply.result));
  }

  #request(command: Command, resend: boolean): Promise<Record<string, unknown>> {
    if (this.#state === "closed") {
      return Promise.reject(new RealtimeError(ClientErrorCode.CLOSED, "the client is closed"));
    }
    return new Promise((resolve, reject) => {
      const entry: RequestEntry = {
        command,
        resend,
        resolve,
        reject,
        sentId: undefined,
        timer: undefined,
      };
      entry.timer = setTimeout(() => {
        if (!this.#requests.delete(entry)) return;
        if (entry.sentId !== undefined) this.#pending.delete(entry.sentId);
        reject(
          new RealtimeError(
            ClientErrorCode.TIMEOUT,
            `${command.type}: no reply within ${this.#requestTimeoutMs} ms`,
            true,
          ),
        );
      }, this.#requestTimeoutMs);
      this.#requests.add(entry);
      if (this.#state === "connected") this.#sendRequest(entry);
    });
  }

  #sendRequest(entry: RequestEntry): void {
    entry.sentId = this.#call(
      entry.command,
      (reply) => {
        entry.sentId = undefined;
        if (!this.#requests.delete(entry)) return;
        clearTimeout(entry.timer);
        if (isReplyError(reply)) {
          const e = reply.error;
          entry.reject(
            new RealtimeError(e.code, `${entry.command.type}: ${e.message}`, isTemporary(e)),
          );
        } else {
          entry.resolve(reply.result);
        }
      },
      () => {
        entry.sentId = undefined;
        if (entry.resend || !this.#requests.delete(entry)) return;
        clearTimeout(entry.timer);
        entry.reject(
          new RealtimeError(
            ClientErrorCode.CONNECTION_LOST,
            `${entry.command.type}: the connection was lost before the reply`,
            true,
          ),
        );
      },
    );
  }
}
