/**
 * Namespaces: a channel `chat:room-1` belongs to namespace `chat`; a channel without `:` belongs
 * to the default namespace "". Each namespace has its options (history, presence, permissions,
 * slow-consumer policy), resolved and validated once here.
 */

import type { Identity, Operation } from "./auth.js";
import type { ClientInfo } from "./wire.js";

/** Who may do an operation, besides clients whose token grants it. */
export type Rule =
  | "all"
  | "subscribers"
  | "grant"
  | ((context: RuleContext) => boolean | Promise<boolean>);

export interface RuleContext {
  readonly channel: string;
  readonly operation: Operation;
  readonly client: ClientInfo;
  readonly identity: Identity;
  /** Whether the client is subscribed to the channel. */
  readonly subscribed: boolean;
}

/**
 * What a channel does with a subscriber whose connection has more than `maxQueueBytes` waiting:
 * - `disconnect`: close it with 4001 (slow); the client reconnects and recovers from history.
 * - `drop`: skip the publication for it; a client of a channel with history sees the offset gap
 *   and recovers it from history once it keeps up.
 * - `latest`: keep only the newest publication per conflation key until the connection drains
 *   (cursors, tickers). Only for channels without history.
 */
export type SlowConsumerMode = "disconnect" | "drop" | "latest";

export interface NamespaceOptions {
  /** Publications kept per channel for history and recovery; 0 turns history off. @default 100 */
  readonly historySize?: number;
  /** Publications older than this are dropped; 0 = no age limit. @default 600_000 (10 min) */
  readonly historyTtlMs?: number;
  /** Track who is subscribed (presence queries). @default false */
  readonly presence?: boolean;
  /** Push join/leave events to subscribers. @default same as presence */
  readonly joinLeave?: boolean;
  /** @default "all" */
  readonly subscribe?: Rule;
  /** @default "subscribers" */
  readonly publish?: Rule;
  /** @default "subscribers" */
  readonly history?: Rule;
  /** @default "subscribers" */
  readonly presenceQuery?: Rule;
  /** Attach the publisher's ClientInfo to publications. @default true */
  readonly includePublisher?: boolean;
  /** @default "disconnect" */
  readonly slowConsumer?: SlowConsumerMode;
  /** Bytes a subscriber's connection may have waiting before slowConsumer applies. @default 1 MiB */
  readonly maxQueueBytes?: number;
}

export interface Namespace {
  readonly name: string;
  readonly historySize: number;
  readonly historyTtlMs: number;
  readonly presence: boolean;
  readonly joinLeave: boolean;
  readonly rules: Readonly<Record<Operation, Rule>>;
  readonly includePublisher: boolean;
  readonly slowConsumer: SlowConsumerMode;
  readonly maxQueueBytes: number;
}

function uint(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new RangeError(`namespace option ${name} must be a non-negative integer, got ${v}`);
  }
  return v;
}

export function resolveNamespace(name: string, o: NamespaceOptions = {}): Namespace {
  const historySize = uint(`${name}.historySize`, o.historySize, 100);
  const slowConsumer = o.slowConsumer ?? "disconnect";
  if (!["disconnect", "drop", "latest"].includes(slowConsumer)) {
    throw new RangeError(`namespace ${JSON.stringify(name)}: unknown slowConsumer ${slowConsumer}`);
  }
  if (slowConsumer === "latest" && historySize > 0) {
    throw new RangeError(
      `namespace ${JSON.stringify(name)}: slowConsumer "latest" needs historySize 0 (conflated channels are not recoverable)`,
    );
  }
  const presence = o.presence ?? false;
  return Object.freeze({
    name,
    historySize,
    historyTtlMs: uint(`${name}.historyTtlMs`, o.historyTtlMs, 600_000),
    presence,
    joinLeave: o.joinLeave ?? presence,
    rules: Object.freeze({
      subscribe: o.subscribe ?? "all",
      publish: o.publish ?? "subscribers",
      history: o.history ?? "subscribers",
      presence: o.presenceQuery ?? "subscribers",
    }),
    includePublisher: o.includePublisher ?? true,
    slowConsumer,
    maxQueueBytes: uint(`${name}.maxQueueBytes`, o.maxQueueBytes, 1024 * 1024),
  });
}

/** The namespaces of a server; "" is the default namespace (channels without `:`). */
export class Namespaces {
  private readonly byName = new Map<string, Namespace>();

  constructor(options: Readonly<Record<string, NamespaceOptions>> = {}) {
    for (const [name, o] of Object.entries(options)) {
      if (name !== "" && !/^[A-Za-z0-9_\-.]+$/.test(name)) {
        throw new RangeError(`invalid namespace name ${JSON.stringify(name)}`);
      }
      this.byName.set(name, resolveNamespace(name, o));
    }
    if (!this.byName.has("")) this.byName.set("", resolveNamespace("", {}));
  }

  /** The namespace of a channel, or undefined when no such namespace is configured. */
  of(channel: string): Namespace | undefined {
    const i = channel.indexOf(":");
    return this.byName.get(i < 0 ? "" : channel.slice(0, i));
  }
}
