/**
 * The duplex.v1 realtime client, universal entry (browsers, Deno, Bun, Node 22+ with a global
 * WebSocket, or any runtime when options.WebSocket is given). No Node-only import here or in
 * anything imported from here; on Node 20 use `./node.js`, which defaults to duplex's own
 * WebSocket.
 */
export { DisconnectCode, ErrorCode, shouldReconnect, TEMPORARY_ERRORS } from "../codes.js";
export type {
  ClientInfo,
  ConnectResult,
  Json,
  PresenceResult,
  Publication,
  PublishResult,
  RpcResult,
  StreamPosition,
} from "../wire.js";
export { SUBPROTOCOL } from "../wire.js";
export { Backoff, type BackoffOptions, backoffDelay } from "./backoff.js";
export { RealtimeClient } from "./client.js";
export { Emitter, type Listener, type ListenerErrorReporter } from "./emitter.js";
export { ClientErrorCode, RealtimeError } from "./errors.js";
export { Subscription } from "./subscription.js";
export type {
  ClientEvents,
  ConnectionState,
  DisconnectedEvent,
  FetchLike,
  FetchResponseLike,
  HistoryOptions,
  HistoryResult,
  OnlineEventSource,
  PresenceOptions,
  PublicationEvent,
  PublishOptions,
  RealtimeClientOptions,
  StateEvent,
  SubscribedEvent,
  SubscriptionEvents,
  SubscriptionState,
  TransportEvent,
  TransportKind,
  UnsubscribedEvent,
  WebSocketConstructor,
  WebSocketLike,
} from "./types.js";
