/**
 * Typed errors of the protocol core. Every error carries a stable string `code`
 * (listed in docs/errors.md) so callers never parse messages.
 *
 * - {@link ProtocolError}: the peer broke RFC 6455 / RFC 7692; carries the close code to send.
 * - {@link HandshakeError}: an opening handshake was refused; carries the HTTP status to answer.
 * - {@link StateError}: the local application asked for something illegal in the current state.
 * - {@link LimitsError}: a configuration value is invalid; names the field.
 */

export type ProtocolErrorCode =
  | "WS_ERR_INVALID_RSV"
  | "WS_ERR_INVALID_OPCODE"
  | "WS_ERR_CONTROL_NOT_FIN"
  | "WS_ERR_CONTROL_TOO_LONG"
  | "WS_ERR_INVALID_CLOSE_PAYLOAD"
  | "WS_ERR_INVALID_CLOSE_CODE"
  | "WS_ERR_UNEXPECTED_CONTINUATION"
  | "WS_ERR_EXPECTED_CONTINUATION"
  | "WS_ERR_EXPECTED_MASK"
  | "WS_ERR_UNEXPECTED_MASK"
  | "WS_ERR_INVALID_LENGTH"
  | "WS_ERR_MESSAGE_TOO_BIG"
  | "WS_ERR_TOO_MANY_FRAGMENTS"
  | "WS_ERR_INVALID_UTF8"
  | "WS_ERR_INFLATE_FAILED"
  | "WS_ERR_INTERNAL";

export type HandshakeErrorCode =
  | "WS_ERR_HANDSHAKE_METHOD"
  | "WS_ERR_HANDSHAKE_HTTP_VERSION"
  | "WS_ERR_HANDSHAKE_MALFORMED"
  | "WS_ERR_HANDSHAKE_UPGRADE"
  | "WS_ERR_HANDSHAKE_CONNECTION"
  | "WS_ERR_HANDSHAKE_VERSION"
  | "WS_ERR_HANDSHAKE_KEY"
  | "WS_ERR_HANDSHAKE_HOST"
  | "WS_ERR_HANDSHAKE_ORIGIN"
  | "WS_ERR_HANDSHAKE_HEADERS_TOO_LARGE"
  | "WS_ERR_HANDSHAKE_SUBPROTOCOL"
  | "WS_ERR_HANDSHAKE_EXTENSION"
  | "WS_ERR_HANDSHAKE_STATUS"
  | "WS_ERR_HANDSHAKE_ACCEPT";

export type StateErrorCode =
  | "WS_ERR_NOT_OPEN"
  | "WS_ERR_INVALID_ARGUMENT"
  | "WS_ERR_INVALID_CLOSE_CODE_LOCAL"
  | "WS_ERR_CLOSE_REASON_TOO_LONG"
  | "WS_ERR_CONTROL_PAYLOAD_TOO_LONG";

export type LimitsErrorCode = "WS_ERR_INVALID_LIMIT";

export type DuplexErrorCode =
  | ProtocolErrorCode
  | HandshakeErrorCode
  | StateErrorCode
  | LimitsErrorCode;

/** Base class of every error raised by Duplex's protocol layer. */
export class DuplexError extends Error {
  readonly code: DuplexErrorCode;
  constructor(code: DuplexErrorCode, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The peer violated the protocol. `closeCode` is what we send in our Close frame. */
export class ProtocolError extends DuplexError {
  override readonly code: ProtocolErrorCode;
  readonly closeCode: number;
  constructor(code: ProtocolErrorCode, closeCode: number, message: string) {
    super(code, message);
    this.code = code;
    this.closeCode = closeCode;
  }
}

/** An opening handshake that must be refused, with the HTTP status to answer. */
export class HandshakeError extends DuplexError {
  override readonly code: HandshakeErrorCode;
  readonly httpStatus: number;
  /** Extra response headers, e.g. `Sec-WebSocket-Version: 13` with a 426. */
  readonly headers: Readonly<Record<string, string>>;
  constructor(
    code: HandshakeErrorCode,
    httpStatus: number,
    message: string,
    headers: Readonly<Record<string, string>> = {},
  ) {
    super(code, message);
    this.code = code;
    this.httpStatus = httpStatus;
    this.headers = headers;
  }
}

/** The local application misused the API (e.g. send after close). Never caused by the peer. */
export class StateError extends DuplexError {
  override readonly code: StateErrorCode;
  constructor(code: StateErrorCode, message: string) {
    super(code, message);
    this.code = code;
  }
}

/** A configuration value is out of range; the message names the field. */
export class LimitsError extends DuplexError {
  override readonly code: LimitsErrorCode;
  readonly field: string;
  constructor(field: string, message: string) {
    super("WS_ERR_INVALID_LIMIT", `${field}: ${message}`);
    this.code = "WS_ERR_INVALID_LIMIT";
    this.field = field;
  }
}
