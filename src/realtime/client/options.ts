/**
 * RealtimeClientOptions checked, with their defaults filled in (see types.ts for what each one
 * means).
 */

import type { Json } from "../wire.js";
import type { BackoffOptions } from "./backoff.js";
import type { OnlineEventSource, RealtimeClientOptions, WebSocketConstructor } from "./types.js";

export interface ResolvedOptions {
  readonly WebSocket: WebSocketConstructor;
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
export function resolveOptions(options: RealtimeClientOptions): ResolvedOptions {
  const WebSocket = resolveWebSocket(options.WebSocket);
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
