/**
 * Codes of the duplex.v1 realtime protocol (docs/protocol.md). Two families:
 *
 * - Reply error codes (100–199), in `{"id":…,"error":{"code":…}}`: the command failed, the
 *   connection stays up. `temporary` errors may succeed when retried.
 * - Disconnect codes (4000–4999), the WebSocket close code (and the `disconnect` push before it):
 *   4000–4499 tell the client to reconnect (with backoff) and recover; 4500–4999 tell it not to.
 *
 * Shared by the server and the browser client: no Node-only imports.
 */

export const ErrorCode = {
  /** Unexpected server failure. Temporary. */
  INTERNAL: 100,
  /** No `connect` yet, or the token was refused. */
  UNAUTHORIZED: 101,
  /** Bad channel name, or no namespace of that name. */
  UNKNOWN_CHANNEL: 102,
  /** The client is not allowed this operation on this channel. */
  PERMISSION_DENIED: 103,
  /** No RPC handler of that name. */
  METHOD_NOT_FOUND: 104,
  /** A second `subscribe` to a channel the connection is subscribed to. */
  ALREADY_SUBSCRIBED: 105,
  /** A per-connection limit (channels, message size, history page) was exceeded. */
  LIMIT_EXCEEDED: 106,
  /** The command is malformed. */
  BAD_REQUEST: 107,
  /** History or presence is turned off for this namespace. */
  NOT_AVAILABLE: 108,
  /** The token given to `connect` or `refresh` has expired. */
  TOKEN_EXPIRED: 109,
  /** The command needs a subscription the connection does not have. */
  NOT_SUBSCRIBED: 110,
  /** The connection sends commands faster than allowed. Temporary. */
  TOO_MANY_REQUESTS: 111,
  /** The broker could not take the operation (e.g. Redis is down): nothing was done. Temporary. */
  UNAVAILABLE: 112,
  /** A second `connect` on the same connection. */
  ALREADY_CONNECTED: 113,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Error codes after which retrying the same command may succeed. */
export const TEMPORARY_ERRORS: ReadonlySet<number> = new Set([
  ErrorCode.INTERNAL,
  ErrorCode.TOO_MANY_REQUESTS,
  ErrorCode.UNAVAILABLE,
]);

export const DisconnectCode = {
  /** The server is shutting down or draining this node. Reconnect (with jitter). */
  SHUTDOWN: 4000,
  /** The connection could not keep up with its channels. Reconnect and recover. */
  SLOW: 4001,
  /** The server lost track of a stream position for this connection. Reconnect and recover. */
  INSUFFICIENT_STATE: 4002,
  /** The token expired without an in-band refresh. Reconnect with a new token. */
  TOKEN_EXPIRED: 4003,
  /** No `connect` command within the allowed time. Reconnect. */
  CONNECT_TIMEOUT: 4004,
  /** Unexpected server failure. Reconnect. */
  INTERNAL: 4005,
  /** The client sent something that is not a duplex.v1 command. Do not reconnect. */
  BAD_REQUEST: 4500,
  /** The token was refused at connect. Do not reconnect (until the application has a new one). */
  UNAUTHORIZED: 4501,
  /** The application disconnected this client for good. Do not reconnect. */
  FORCED: 4502,
  /** A message above the server's size limit. Do not reconnect. */
  MESSAGE_TOO_LARGE: 4503,
  /** The client did not offer the duplex.v1 subprotocol. Do not reconnect. */
  UNSUPPORTED_PROTOCOL: 4504,
} as const;
export type DisconnectCode = (typeof DisconnectCode)[keyof typeof DisconnectCode];

/** Whether `code` is a disconnect code (an integer in 4000–4999), the range servers may use. */
export function isDisconnectCode(code: unknown): code is number {
  return typeof code === "number" && Number.isInteger(code) && code >= 4000 && code <= 4999;
}

/**
 * Whether a client should reconnect after the connection closed with this WebSocket close code.
 * Only the 4500–4999 range says no; everything else (1000, 1001, 1006, 1011, 4000–4499, …) is
 * worth another attempt with backoff.
 */
export function shouldReconnect(closeCode: number): boolean {
  return !(closeCode >= 4500 && closeCode <= 4999);
}

/** Human-readable default messages, used when the server gives no better one. */
export const ERROR_MESSAGES: Readonly<Record<number, string>> = {
  [ErrorCode.INTERNAL]: "internal error",
  [ErrorCode.UNAUTHORIZED]: "unauthorized",
  [ErrorCode.UNKNOWN_CHANNEL]: "unknown channel",
  [ErrorCode.PERMISSION_DENIED]: "permission denied",
  [ErrorCode.METHOD_NOT_FOUND]: "method not found",
  [ErrorCode.ALREADY_SUBSCRIBED]: "already subscribed",
  [ErrorCode.LIMIT_EXCEEDED]: "limit exceeded",
  [ErrorCode.BAD_REQUEST]: "bad request",
  [ErrorCode.NOT_AVAILABLE]: "not available",
  [ErrorCode.TOKEN_EXPIRED]: "token expired",
  [ErrorCode.NOT_SUBSCRIBED]: "not subscribed",
  [ErrorCode.TOO_MANY_REQUESTS]: "too many requests",
  [ErrorCode.UNAVAILABLE]: "temporarily unavailable",
  [ErrorCode.ALREADY_CONNECTED]: "already connected",
  [DisconnectCode.SHUTDOWN]: "server shutdown",
  [DisconnectCode.SLOW]: "slow consumer",
  [DisconnectCode.INSUFFICIENT_STATE]: "insufficient state",
  [DisconnectCode.TOKEN_EXPIRED]: "token expired",
  [DisconnectCode.CONNECT_TIMEOUT]: "connect timeout",
  [DisconnectCode.INTERNAL]: "internal error",
  [DisconnectCode.BAD_REQUEST]: "bad request",
  [DisconnectCode.UNAUTHORIZED]: "unauthorized",
  [DisconnectCode.FORCED]: "disconnected",
  [DisconnectCode.MESSAGE_TOO_LARGE]: "message too large",
  [DisconnectCode.UNSUPPORTED_PROTOCOL]: "unsupported protocol",
};
