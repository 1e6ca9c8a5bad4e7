/**
 * Errors of the realtime client: RealtimeError (what promises reject with and "error" events
 * carry), the codes of the client's own errors, and helpers to turn what was thrown or replied
 * into them.
 */

import { TEMPORARY_ERRORS } from "../codes.js";
import type { WireError } from "../wire.js";

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

/** Whether the server says (or its code implies) that trying again later may succeed. */
export function isTemporary(error: WireError): boolean {
  return error.temporary === true || TEMPORARY_ERRORS.has(error.code);
}

/** The message of anything thrown. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Anything thrown, as an Error. */
export function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
