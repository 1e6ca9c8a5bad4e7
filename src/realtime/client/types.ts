/**
 * Public types of the realtime client: its options, the WebSocket it needs, and the events and
 * results of RealtimeClient and Subscription. Types only (the errors are in errors.ts).
 */

import type { ClientInfo, ConnectResult, Json, Publication, StreamPosition } from "../wire.js";

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

/**
 * How the client reaches the server: a WebSocket; a Server-Sent Events stream (with POSTs for
 * commands); or HTTP long-polling (idem), for proxies that buffer streamed responses.
 */
export type TransportKind = "websocket" | "sse" | "polling";
export type HttpTransportKind = Exclude<TransportKind, "websocket">;

/** The part of a fetch() response the HTTP transports read. */
export interface FetchResponseLike {
  readonly ok: boolean;
  readonly status: number;
  readonly body: {
    getReader(): {
      read(): Promise<{ readonly done: boolean; readonly value?: Uint8Array | undefined }>;
      cancel(reason?: unknown): Promise<void>;
    };
  } | null;
  text(): Promise<string>;
}

/** The fetch() the HTTP transports use: the platform's (browsers, Node 18+), or any like it. */
export type FetchLike = (
  url: string,
  init: {
    readonly method: "POST";
    readonly headers: Record<string, string>;
    readonly body: string;
    readonly signal: AbortSignal;
  },
) => Promise<FetchResponseLike>;

/** Where the browser's `online` event comes from (window, or any EventTarget in tests). */
export interface OnlineEventSource {
  addEventListener(type: "online", listener: () => void): void;
  removeEventListener(type: "online", listener: () => void): void;
}

export interface RealtimeClientOptions {
  /**
   * WebSocket constructor. @default globalThis.WebSocket (a TypeError when there is none and
   * `transports` has "websocket")
   */
  readonly WebSocket?: WebSocketConstructor;
  /**
   * The transports to try, in order (docs/transports.md). A connection attempt that fails before
   * the server's connect reply — refused upgrade, error, timeout, an upgrade that passes nothing
   * — moves on to the next one at once; the last one failing too means a reconnect with backoff,
   * from the first. A transport that worked is used again for reconnects, and while the client
   * is on a later one it probes the first one every `probeIntervalMs` to move back to it.
   * @default ["websocket", "sse", "polling"]
   */
  readonly transports?: readonly TransportKind[];
  /**
   * The HTTP transports' base URL. @default the URL given to the constructor, ws: → http: and
   * wss: → https: (the server serves them next to the WebSocket path)
   */
  readonly httpUrl?: string;
  /** fetch() for the HTTP transports. @default globalThis.fetch */
  readonly fetch?: FetchLike;
  /**
   * While connected on a transport other than the first of `transports`, try the first one this
   * often, and move to it when it connects (the subscriptions recover across the switch).
   * 0: never. @default 30_000
   */
  readonly probeIntervalMs?: number;
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

/** The transport of the connection changed (or the first connection was made). */
export interface TransportEvent {
  readonly transport: TransportKind;
  /** The transport of the previous connection; undefined for the first one. */
  readonly previous: TransportKind | undefined;
}

export interface ClientEvents {
  state: StateEvent<ConnectionState>;
  /** Emitted before "connected" when the connection is on another transport than the last one. */
  transport: TransportEvent;
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
