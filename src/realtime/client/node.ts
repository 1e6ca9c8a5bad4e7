/**
 * The realtime client for Node: the same API as the universal entry (./index.js), but
 * RealtimeClient defaults to duplex's own WHATWG-compatible WebSocket (src/client), so
 * `new RealtimeClient(url)` works on Node 20, which has no global WebSocket.
 */
import { WebSocket as NodeWebSocket } from "../../client/index.js";
import { RealtimeClient as BaseRealtimeClient } from "./client.js";
import type { RealtimeClientOptions, WebSocketConstructor } from "./types.js";

export * from "./index.js";

/** duplex's Node WebSocket, as the realtime client uses it. */
export const DefaultWebSocket: WebSocketConstructor = NodeWebSocket;

/** RealtimeClient whose WebSocket defaults to duplex's Node WebSocket. */
export class RealtimeClient extends BaseRealtimeClient {
  constructor(url: string, options: RealtimeClientOptions = {}) {
    super(url, { ...options, WebSocket: options.WebSocket ?? DefaultWebSocket });
  }
}
