/**
 * Requests waiting for their reply: history, presence and rpc. Each must be answered within
 * `timeoutMs` of the call, time spent queued while disconnected included, or it is rejected
 * (code TIMEOUT). A request is sent while the client is connected; when the connection is lost
 * before the reply, a history or presence request (resend) is sent again after the reconnect,
 * and an rpc is rejected (code CONNECTION_LOST): it may have run.
 */

import type { Command, Reply } from "../wire.js";
import { isReplyError, type Link } from "./calls.js";
import { ClientErrorCode, isTemporary, RealtimeError } from "./errors.js";

type Timer = ReturnType<typeof setTimeout>;

/** What the request table needs from its client. */
export interface RequestsHost extends Link {
  /** Stop waiting for the reply to command `id` (it timed out). */
  forget(id: number): void;
}

interface RequestEntry {
  readonly command: Command;
  /** Re-send after a reconnect (history, presence) or reject (rpc). */
  readonly resend: boolean;
  readonly resolve: (result: Record<string, unknown>) => void;
  readonly reject: (error: Error) => void;
  sentId: number | undefined;
  timer: Timer | undefined;
}

export class Requests {
  readonly #host: RequestsHost;
  readonly #timeoutMs: number;
  readonly #entries = new Set<RequestEntry>();

  constructor(host: RequestsHost, timeoutMs: number) {
    this.#host = host;
    this.#timeoutMs = timeoutMs;
  }

  /** Send `command` (now if connected, else after the connect); resolves with the reply's result. */
  add(command: Command, resend: boolean): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const entry: RequestEntry = {
        command,
        resend,
        resolve,
        reject,
        sentId: undefined,
        timer: undefined,
      };
      entry.timer = setTimeout(() => {
        if (!this.#entries.delete(entry)) return;
        if (entry.sentId !== undefined) this.#host.forget(entry.sentId);
        reject(
          new RealtimeError(
            ClientErrorCode.TIMEOUT,
            `${command.type}: no reply within ${this.#timeoutMs} ms`,
            true,
          ),
        );
      }, this.#timeoutMs);
      this.#entries.add(entry);
      if (this.#host.connected) this.#send(entry);
    });
  }

  /** After a (re)connect: send every request not in flight. */
  resend(): void {
    for (const entry of this.#entries) {
      if (entry.sentId === undefined) this.#send(entry);
    }
  }

  /** Reject and drop every request. */
  failAll(error: Error): void {
    const entries = [...this.#entries];
    this.#entries.clear();
    for (const entry of entries) {
      if (entry.timer !== undefined) clearTimeout(entry.timer);
      entry.reject(error);
    }
  }

  #send(entry: RequestEntry): void {
    entry.sentId = this.#host.call(
      entry.command,
      (reply) => this.#onReply(entry, reply),
      () => this.#onLost(entry),
    );
  }

  #onReply(entry: RequestEntry, reply: Reply): void {
    entry.sentId = undefined;
    if (!this.#entries.delete(entry)) return;
    clearTimeout(entry.timer);
    if (isReplyError(reply)) {
      const e = reply.error;
      entry.reject(
        new RealtimeError(e.code, `${entry.command.type}: ${e.message}`, isTemporary(e)),
      );
    } else {
      entry.resolve(reply.result);
    }
  }

  #onLost(entry: RequestEntry): void {
    entry.sentId = undefined;
    if (entry.resend || !this.#entries.delete(entry)) return;
    clearTimeout(entry.timer);
    entry.reject(
      new RealtimeError(
        ClientErrorCode.CONNECTION_LOST,
        `${entry.command.type}: the connection was lost before the reply`,
        true,
      ),
    );
  }
}
