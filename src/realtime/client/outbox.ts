/**
 * The publish outbox: publishes not yet acknowledged, at most `size` of them, kept in the order
 * they were made. An entry is sent while the client is connected; after a reconnect the ones
 * not in flight are re-sent oldest first, with the same idempotency key (so the server can drop
 * duplicates); after a temporary error it is retried with backoff. It leaves the outbox when
 * acknowledged, on a permanent error, or when the client closes (failAll).
 *
 * A publish larger than the server takes (`maxPublishBytes` of the connect reply) is refused
 * here with 106, when made or — made before the first connect reply — when it would be sent:
 * sent, it would be refused by the server, or end the connection (1009) and be re-sent after
 * every reconnect.
 */

import { utf8ByteLength } from "../../protocol/utf8.js";
import { ErrorCode } from "../codes.js";
import type { Json, PublishCommand, PublishResult, Reply } from "../wire.js";
import { isReplyError, type Link } from "./calls.js";
import { isTemporary, RealtimeError } from "./errors.js";
import type { PublishOptions } from "./types.js";

type Timer = ReturnType<typeof setTimeout>;

/** What the outbox needs from its client. */
export interface OutboxHost extends Link {
  /** The delay (ms) before retry number `attempt` (0-based) of a publish. */
  retryDelay(attempt: number): number;
  /** The largest publication data the server takes, once a connect reply said so. */
  readonly maxPublishBytes: number | undefined;
}

interface OutboxEntry {
  readonly command: PublishCommand;
  readonly resolve: (result: PublishResult) => void;
  readonly reject: (error: Error) => void;
  /** Bytes of the JSON text of `data` (UTF-8). */
  readonly bytes: number;
  /** Id of the copy in flight on the current socket. */
  sentId: number | undefined;
  /** Waiting to be retried after a temporary error. */
  retryTimer: Timer | undefined;
  attempts: number;
}

/** 16 random bytes as 32 hex digits. */
export function randomKey(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  let hex = "";
  for (const b of bytes) hex += b.toString(16).padStart(2, "0");
  return hex;
}

function toPublishResult(r: Record<string, unknown>): PublishResult {
  const offset = typeof r.offset === "number" ? r.offset : 0;
  const epoch = typeof r.epoch === "string" ? r.epoch : "";
  return r.duplicate === true ? { offset, epoch, duplicate: true } : { offset, epoch };
}

export class Outbox {
  readonly #host: OutboxHost;
  readonly #size: number;
  /** In publish order (a Set iterates in insertion order). */
  readonly #entries = new Set<OutboxEntry>();

  constructor(host: OutboxHost, size: number) {
    this.#host = host;
    this.#size = size;
  }

  /** Queue a publish (sent now if connected); rejects at once when data is undefined or the outbox is full. */
  add(channel: string, data: unknown, options: PublishOptions): Promise<PublishResult> {
    if (data === undefined) {
      return Promise.reject(new TypeError("publish: data must be a JSON value, got undefined"));
    }
    if (this.#entries.size >= this.#size) {
      return Promise.reject(
        new RealtimeError(
          ErrorCode.LIMIT_EXCEEDED,
          `publish outbox full (${this.#size} publishes not yet acknowledged)`,
          true,
        ),
      );
    }
    let bytes: number;
    try {
      bytes = utf8ByteLength(JSON.stringify(data));
    } catch (e) {
      return Promise.reject(e); // not JSON (a cycle, a BigInt): the caller's error
    }
    const tooLarge = this.#tooLarge(bytes);
    if (tooLarge !== undefined) return Promise.reject(tooLarge);
    const command: PublishCommand = {
      type: "publish",
      channel,
      data: data as Json,
      key: options.key ?? randomKey(),
      ...(options.conflate === undefined ? {} : { conflate: options.conflate }),
    };
    return new Promise<PublishResult>((resolve, reject) => {
      const entry: OutboxEntry = {
        command,
        resolve,
        reject,
        bytes,
        sentId: undefined,
        retryTimer: undefined,
        attempts: 0,
      };
      this.#entries.add(entry);
      if (this.#host.connected) this.#send(entry);
    });
  }

  /** After a (re)connect: send, oldest first, every entry neither in flight nor waiting to retry. */
  resend(): void {
    for (const entry of this.#entries) {
      if (entry.sentId === undefined && entry.retryTimer === undefined) this.#send(entry);
    }
  }

  /** Reject and drop every entry. */
  failAll(error: Error): void {
    const entries = [...this.#entries];
    this.#entries.clear();
    for (const entry of entries) {
      if (entry.retryTimer !== undefined) clearTimeout(entry.retryTimer);
      entry.reject(error);
    }
  }

  /** The error for a publication of `bytes` the server would refuse; undefined if it fits. */
  #tooLarge(bytes: number): RealtimeError | undefined {
    const max = this.#host.maxPublishBytes;
    if (max === undefined || bytes <= max) return undefined;
    return new RealtimeError(
      ErrorCode.LIMIT_EXCEEDED,
      `publication data is ${bytes} bytes, the server takes at most ${max}`,
      false,
    );
  }

  #send(entry: OutboxEntry): void {
    const tooLarge = this.#tooLarge(entry.bytes);
    if (tooLarge !== undefined) {
      this.#entries.delete(entry);
      entry.reject(tooLarge);
      return;
    }
    entry.sentId = this.#host.call(
      entry.command,
      (reply) => this.#onReply(entry, reply),
      () => {
        entry.sentId = undefined; // re-sent after the reconnect, in outbox order
      },
    );
  }

  #onReply(entry: OutboxEntry, reply: Reply): void {
    entry.sentId = undefined;
    if (!this.#entries.has(entry)) return;
    if (isReplyError(reply)) {
      const e = reply.error;
      if (isTemporary(e)) {
        entry.retryTimer = setTimeout(
          () => {
            entry.retryTimer = undefined;
            if (this.#entries.has(entry) && this.#host.connected) this.#send(entry);
          },
          this.#host.retryDelay(entry.attempts++),
        );
        return;
      }
      this.#entries.delete(entry);
      entry.reject(new RealtimeError(e.code, `publish failed: ${e.message}`, false));
      return;
    }
    this.#entries.delete(entry);
    entry.resolve(toPublishResult(reply.result));
  }
}
