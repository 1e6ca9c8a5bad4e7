/**
 * duplex/realtime — channels, presence, history, recovery and acknowledgements on top of the
 * WebSocket server (docs/protocol.md, docs/guarantees.md). The browser/Node client SDK is
 * `duplex/realtime/client`.
 */
export {
  AuthError,
  createJwtVerifier,
  type Grant,
  type Identity,
  isGranted,
  type JwtOptions,
  matchChannel,
  type Operation,
} from "./auth.js";
export * from "./broker.js";
export * from "./codes.js";
export {
  clientIdOf,
  type HttpEndpoint,
  HttpTransport,
  type HttpTransportOptions,
  type OriginPolicy,
} from "./http-transport.js";
export type {
  AuthenticateContext,
  HubOptions,
  HubSession,
  PublishOptions,
  RpcContext,
  RpcHandler,
} from "./hub.js";
export type { NamespaceOptions, Rule, RuleContext, SlowConsumerMode } from "./namespaces.js";
export { RealtimeServer, type RealtimeServerOptions, type WebSocketOptions } from "./server.js";
export { ReplyError } from "./session.js";
export * from "./wire.js";
export const LAYER = "realtime";
