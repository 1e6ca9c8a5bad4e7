/**
 * The two WHATWG event classes a WebSocket needs that Node 20 lacks as globals: CloseEvent
 * (global from Node 23 on) and ErrorEvent. When the runtime has them, the globals are used, so
 * `instanceof` works with code written against the platform's own classes.
 */

/** The DOM's EventInit (not a global type in @types/node). */
export interface EventInit {
  bubbles?: boolean;
  cancelable?: boolean;
  composed?: boolean;
}

export interface CloseEventInit extends EventInit {
  code?: number;
  reason?: string;
  wasClean?: boolean;
}

/** https://websockets.spec.whatwg.org/#the-closeevent-interface */
class DuplexCloseEvent extends Event {
  readonly code: number;
  readonly reason: string;
  readonly wasClean: boolean;

  constructor(type: string, init: CloseEventInit = {}) {
    super(type, init);
    this.code = init.code ?? 0;
    this.reason = init.reason ?? "";
    this.wasClean = init.wasClean ?? false;
  }
}

export interface ErrorEventInit extends EventInit {
  message?: string;
  error?: unknown;
}

/**
 * The `error` event of a WebSocket. Browsers fire a plain Event; on Node the cause is worth
 * having, so `error` carries it (a HandshakeError with `httpStatus`, a system error such as
 * ECONNREFUSED, a ProtocolError, a TimeoutError DOMException) and `message` its message.
 */
class DuplexErrorEvent extends Event {
  readonly message: string;
  readonly error: unknown;

  constructor(type: string, init: ErrorEventInit = {}) {
    super(type, init);
    this.message = init.message ?? "";
    this.error = init.error;
  }
}

const platform = globalThis as {
  CloseEvent?: typeof DuplexCloseEvent;
  ErrorEvent?: typeof DuplexErrorEvent;
};

export const CloseEvent: typeof DuplexCloseEvent = platform.CloseEvent ?? DuplexCloseEvent;
export type CloseEvent = DuplexCloseEvent;

export const ErrorEvent: typeof DuplexErrorEvent = platform.ErrorEvent ?? DuplexErrorEvent;
export type ErrorEvent = DuplexErrorEvent;
