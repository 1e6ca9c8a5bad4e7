/**
 * What the parts of the client that send commands (outbox.ts, requests.ts, tokens.ts,
 * subscription.ts) share: how they send one, and how they read its reply.
 */

import type { Command, Reply, WireError } from "../wire.js";

/** A reply (or loss) handler that has nothing to do. */
export const noop = (): void => {};

export function isReplyError(
  reply: Reply,
): reply is { readonly id: number; readonly error: WireError } {
  return "error" in reply;
}

/** What the outbox, the request table and the tokens need from the client's connection. */
export interface Link {
  /** The client is in state "connected". */
  readonly connected: boolean;
  /**
   * Send a command with a fresh id on the open socket; undefined when there is none. onLost is
   * called instead of onReply when the socket goes away first.
   */
  call(command: Command, onReply: (reply: Reply) => void, onLost: () => void): number | undefined;
}
