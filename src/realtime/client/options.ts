/**
 * RealtimeClientOptions checked, with their defaults filled in (see types.ts for what each one
 * means).
 */

import type { Json } from "../wire.js";
import type { BackoffOptions } from "./backoff.js";
import type {
  FetchLike,
  OnlineEventSource,
  RealtimeClientOptions,
  TransportKind,
  WebSocketConstructor,
} from "./types.js";

const TRANSPORTS: readonly TransportKind[] = ["websocket", "sse", "polling"];

export interface ResolvedOptions {
  /** Undefined when `transports` has no "websocket". */
  readonly WebSocket: WebSocketConstructor | undefined;
  readonly transports: readonly TransportKind[];
  /** Base URL of the HTTP transports (no trailing slash, no query). */
  readonly httpUrl: string;
  /** Undefined when the platform has none (the HTTP transports then fail to open). */
  readonly fetch: FetchLike | undefined;
  readonly probeIntervalMs: number;
  readonly token: string | undefined;
  readonly getToken: (() => Promise<string>) | undefined;
  readonly data: Json | undefined;
  readonly name: string | undefined;
  /** For reconnects, subscribe retries and publish retries. */
  readonly backoff: Required<BackoffOptions>;
  readonly connectTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly outboxSize: number;
  readonly online: OnlineEventSource | null;
}

/** Check the options and fill in the defaults; throws TypeError or RangeError. */
export function resolveOptions(url: string, options: RealtimeClientOptions): ResolvedOptions {
  const transports = resolveTransports(options.transports);
  const WebSocket = transports.includes("websocket")
    ? resolveWebSocket(options.WebSocket)
    : options.WebSocket;
  const probeIntervalMs = options.probeIntervalMs ?? 30_000;
  if (!(probeIntervalMs >= 0) || !Number.isFinite(probeIntervalMs)) {
    throw new RangeError(
      `RealtimeClient: probeIntervalMs must be a number >= 0, got ${probeIntervalMs}`,
    );
  }
  const minDelay = positive("minReconnectDelayMs", options.minReconnectDelayMs, 200);
  const maxDelay = Math.max(
    minDelay,
    positive("maxReconnectDelayMs", options.maxReconnectDelayMs, 10_000),
  );
  const random = options.random ?? Math.random;
  const connectTimeoutMs = positive("connectTimeoutMs", options.connectTimeoutMs, 10_000);
  const requestTimeoutMs = positive("requestTimeoutMs", options.requestTimeoutMs, 10_000);
  const outboxSize = options.outboxSize ?? 1000;
  if (!Number.isSafeInteger(outboxSize) || outboxSize < 0) {
    throw new RangeError(`RealtimeClient: outboxSize must be an integer >= 0, got ${outboxSize}`);
  }
  return {
    WebSocket,
    transports,
    httpUrl: httpBase(options.httpUrl ?? url),
    fetch: options.fetch ?? platformFetch(),
    probeIntervalMs,
    token: options.token,
    getToken: options.getToken,
    data: options.data,
    name: options.name,
    backoff: { minMs: minDelay, maxMs: maxDelay, random },
    connectTimeoutMs,
    requestTimeoutMs,
    outboxSize,
    online: options.onlineEvents !== undefined ? options.onlineEvents : platformOnlineEvents(),
  };
}

function resolveTransports(given: readonly TransportKind[] | undefined): readonly TransportKind[] {
  if (given === undefined) return TRANSPORTS;
  if (
    !Array.isArray(given) ||
    given.length === 0 ||
    given.some((t) => !TRANSPORTS.includes(t)) ||
    new Set(given).size !== given.length
  ) {
    throw new RangeError(
      `RealtimeClient: transports must list some of ${TRANSPORTS.join(", ")} once each, got ${JSON.stringify(given)}`,
    );
  }
  return Object.freeze([...given]);
}

/** ws://host/path → http://host/path (wss → https), without query, fragment or final slash. */
function httpBase(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return url; // the requests fail, and the connection reports it
  }
  if (u.protocol === "ws:") u.protocol = "http:";
  else if (u.protocol === "wss:") u.protocol = "https:";
  u.search = "";
  u.hash = "";
  return u.href.replace(/\/+$/, "");
}

/** The platform's fetch, bound (some platforms want it called on globalThis). */
function platformFetch(): FetchLike | undefined {
  const f = (globalThis as { fetch?: unknown }).fetch;
  if (typeof f !== "function") return undefined;
  return f.bind(globalThis) as FetchLike;
}

/** The WebSocket given, else the global one; a TypeError when there is neither. */
function resolveWebSocket(given: WebSocketConstructor | undefined): WebSocketConstructor {
  const WS = given ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (typeof WS !== "function") {
    throw new TypeError(
      "RealtimeClient: this runtime has no global WebSocket; pass options.WebSocket, " +
        "or on Node use the RealtimeClient of duplex's realtime client node entry",
    );
  }
  return WS;
}

/** globalThis when it has addEventListener (browsers), else null. */
function platformOnlineEvents(): OnlineEventSource | null {
  const platform = globalThis as Partial<OnlineEventSource>;
  return typeof platform.addEventListener === "function" &&
    typeof platform.removeEventListener === "function"
    ? (globalThis as unknown as OnlineEventSource)
    : null;
}

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !(value > 0) || !Number.isFinite(value)) {
    throw new RangeError(`RealtimeClient: ${name} must be a positive number, got ${value}`);
  }
  return value;
}
