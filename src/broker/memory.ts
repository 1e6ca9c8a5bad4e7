/**
 * The in-memory Broker: the embedded default, and the reference the Redis broker is compared with.
 *
 * All shared state (streams, history, idempotency keys, presence, subscriptions) lives in a
 * `MemoryBackend`. Each `MemoryBroker` is one node attached to a backend; several brokers sharing
 * one backend simulate a cluster inside one process (tests, benchmarks). A broker constructed
 * without a backend gets a private one.
 *
 * Behaviour the hub author should know:
 * - Delivery is synchronous. `publish` and the presence calls that announce a join or leave call
 *   the handlers of every subscribed broker (the calling one included) before their promise
 *   resolves, and `publishControl` those of every started broker, so once a publish has resolved
 *   every subscriber has seen it. A handler that publishes again from inside a callback is fine:
 *   nested deliveries (control messages too) are queued and run after the current one, so every
 *   broker still sees a channel's publications, and one sender's control messages, in order.
 * - A handler that throws does not stop delivery to the others; the error goes to
 *   `onHandlerError` (default: `console.error`).
 * - Expiry (history age, stream idle time, idempotency windows, presence) is checked lazily on
 *   every read, so nothing expired is ever returned or counted; a periodic sweep (an unref'd
 *   interval, `sweepIntervalMs`, running while at least one broker is started and not closed)
 *   additionally frees memory. Whenever an expired presence entry is dropped — by that sweep, by
 *   `expirePresence` or lazily by another presence call — its `leave` is announced, once.
 * - A publish with `historySize: 0` leaves an existing stream of that channel untouched.
 * - Presence members are ordered by client id with JavaScript string comparison (UTF-16 code
 *   units); the page cursor is the last client id of the page.
 * - `MemoryBackend.setAvailable(false)` simulates an outage: every broker method rejects with
 *   BrokerUnavailableError and has no effect (`close()` still works); `setAvailable(true)` calls
 *   `resync()` on every started broker.
 *
 * No imports from node: — only standard globals (`crypto.getRandomValues`, `setInterval`).
 */
import {
  type Broker,
  type BrokerHandler,
  type BrokerPublication,
  BrokerUnavailableError,
  type HistoryPage,
  type HistoryRequest,
  type PresencePage,
  type PublishOutcome,
  type PublishRequest,
} from "../realtime/broker.js";

export interface MemoryBackendOptions {
  /** Clock in ms since the Unix epoch (publication times and every expiry). @default Date.now */
  readonly now?: () => number;
  /** Fills a byte array with random values (epochs). @default crypto.getRandomValues */
  readonly random?: (bytes: Uint8Array) => void;
  /** Makes a new stream epoch; overrides `random`. @default 8 random bytes as hex */
  readonly newEpoch?: () => string;
  /** A stream with no publication for this long is forgotten (next publish: new epoch). @default 24 h */
  readonly streamTtlMs?: number;
  /** Upper bound on stored idempotency keys, all channels together; oldest evicted first. @default 100_000 */
  readonly maxIdempotencyKeys?: number;
  /** Period of the background sweep of expired entries; 0 disables it (lazy expiry only). @default 1_000 */
  readonly sweepIntervalMs?: number;
  /** Receives errors thrown by broker handlers. @default console.error */
  readonly onHandlerError?: (error: unknown) => void;
}

/** Either attach to a shared backend, or describe the private backend to create. */
export type MemoryBrokerOptions =
  | { readonly backend: MemoryBackend }
  | ({ readonly backend?: undefined } & MemoryBackendOptions);

export interface MemoryBackendStats {
  /** Channels with a stream (epoch + offset), including streams whose history is empty. */
  readonly streams: number;
  /** Publications held in history, all channels together. */
  readonly publications: number;
  readonly idempotencyKeys: number;
  /** Presence entries, all channels together. */
  readonly presenceMembers: number;
  /** Channels at least one broker subscribed to. */
  readonly subscribedChannels: number;
  /** Brokers started and not closed. */
  readonly brokers: number;
  /** Whether the background sweep interval is running. */
  readonly sweeping: boolean;
}

const DEFAULT_STREAM_TTL_MS = 24 * 60 * 60 * 1000;
const DEFAULT_MAX_IDEMPOTENCY_KEYS = 100_000;
const DEFAULT_SWEEP_INTERVAL_MS = 1_000;

// ---- expiring map -------------------------------------------------------------------------------

interface Timed<V> {
  readonly value: V;
  readonly expires: number;
  readonly ttl: number;
}

/**
 * A map whose entries expire. Entries are kept in insertion order (a `set` re-inserts), globally
 * and in one bucket per TTL value. Within a bucket insertion order is expiry order (same TTL,
 * non-decreasing clock), so a sweep stops at the first live entry of each bucket: O(expired +
 * distinct TTLs). Mixed TTLs are therefore handled exactly, and `get` checks expiry itself, so an
 * expired entry is never returned even before a sweep removed it.
 */
class ExpiringMap<V> {
  readonly #all = new Map<string, Timed<V>>();
  readonly #byTtl = new Map<number, Map<string, Timed<V>>>();

  get size(): number {
    return this.#all.size;
  }

  get(key: string, now: number, onExpire?: (key: string, value: V) => void): V | undefined {
    const entry = this.#all.get(key);
    if (entry === undefined) return undefined;
    if (entry.expires <= now) {
      this.delete(key);
      onExpire?.(key, entry.value);
      return undefined;
    }
    return entry.value;
  }

  set(key: string, value: V, ttl: number, now: number): void {
    this.delete(key);
    const entry: Timed<V> = { value, expires: now + ttl, ttl };
    this.#all.set(key, entry);
    let bucket = this.#byTtl.get(ttl);
    if (bucket === undefined) {
      bucket = new Map();
      this.#byTtl.set(ttl, bucket);
    }
    bucket.set(key, entry);
  }

  delete(key: string): V | undefined {
    const entry = this.#all.get(key);
    if (entry === undefined) return undefined;
    this.#all.delete(key);
    const bucket = this.#byTtl.get(entry.ttl);
    if (bucket !== undefined) {
      bucket.delete(key);
      if (bucket.size === 0) this.#byTtl.delete(entry.ttl);
    }
    return entry.value;
  }

  /** Remove every expired entry. */
  sweep(now: number, onExpire?: (key: string, value: V) => void): void {
    for (const [ttl, bucket] of this.#byTtl) {
      for (const [key, entry] of bucket) {
        if (entry.expires > now) break;
        bucket.delete(key);
        this.#all.delete(key);
        onExpire?.(key, entry.value);
      }
      if (bucket.size === 0) this.#byTtl.delete(ttl);
    }
  }

  /** Remove the entry inserted (or refreshed) longest ago. */
  evictOldest(): void {
    const first = this.#all.keys().next();
    if (first.done !== true) this.delete(first.value);
  }

  values(): IterableIterator<V> {
    const it = this.#all.values();
    return (function* () {
      for (const entry of it) yield entry.value;
    })();
  }
}

/** An unambiguous composite key (no separator that a channel name could contain). */
function pairKey(a: string, b: string): string {
  return `${a.length}:${a}${b}`;
}

// ---- streams ------------------------------------------------------------------------------------

/**
 * A channel stream: epoch, top offset and a ring buffer of the newest publications. The kept
 * publications always have consecutive offsets ending at `top`, so a `since` lookup is O(1).
 * The buffer grows by doubling up to the history size, so a large `historySize` costs nothing
 * until it is used.
 */
class Stream {
  top = 0;
  #buf: (BrokerPublication | undefined)[] = [];
  #head = 0;
  #size = 0;

  constructor(readonly epoch: string) {}

  get size(): number {
    return this.#size;
  }

  #at(i: number): BrokerPublication {
    return this.#buf[(this.#head + i) % this.#buf.length]!;
  }

  #dropOldest(): void {
    this.#buf[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.#buf.length;
    this.#size--;
  }

  #resize(length: number): void {
    const next = new Array<BrokerPublication | undefined>(length);
    for (let i = 0; i < this.#size; i++) next[i] = this.#at(i);
    this.#buf = next;
    this.#head = 0;
  }

  /** Drop publications older than `ttlMs` (0: no age limit). */
  pruneAge(now: number, ttlMs: number): void {
    if (ttlMs <= 0) return;
    const cutoff = now - ttlMs;
    while (this.#size > 0 && this.#at(0).time <= cutoff) this.#dropOldest();
    if (this.#size === 0 && this.#buf.length > 0) {
      this.#buf = [];
      this.#head = 0;
    }
  }

  /** Append the publication with offset `top + 1`, keeping at most `capacity` (≥ 1). */
  append(publication: BrokerPublication, capacity: number): void {
    this.top = publication.offset;
    if (this.#buf.length > capacity) {
      while (this.#size > capacity) this.#dropOldest();
      this.#resize(capacity);
    }
    if (this.#size === capacity) this.#dropOldest();
    if (this.#size === this.#buf.length) {
      this.#resize(Math.min(capacity, Math.max(8, this.#buf.length * 2)));
    }
    this.#buf[(this.#head + this.#size) % this.#buf.length] = publication;
    this.#size++;
  }

  read(since: number | undefined, limit: number, reverse: boolean): BrokerPublication[] {
    const out: BrokerPublication[] = [];
    if (limit <= 0 || this.#size === 0) return out;
    if (since !== undefined) {
      const oldest = this.top - this.#size + 1;
      const start = since < oldest ? 0 : Math.floor(since) - oldest + 1;
      const end = Math.min(this.#size, start + limit);
      for (let i = start; i < end; i++) out.push(this.#at(i));
    } else if (reverse) {
      const end = Math.max(0, this.#size - limit);
      for (let i = this.#size - 1; i >= end; i--) out.push(this.#at(i));
    } else {
      const end = Math.min(this.#size, limit);
      for (let i = 0; i < end; i++) out.push(this.#at(i));
    }
    return out;
  }
}

// ---- presence -----------------------------------------------------------------------------------

/** One channel's presence: members by client id, and the client ids sorted for paging. */
interface ChannelPresence {
  readonly members: Map<string, string>;
  readonly ids: string[];
}

/** First index whose id is > `id` (`strict`) or ≥ `id`. */
function searchIds(ids: readonly string[], id: string, strict: boolean): number {
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const v = ids[mid]!;
    if (v < id || (strict && v === id)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

interface PresenceRef {
  readonly channel: string;
  readonly clientId: string;
}

// ---- the shared core ----------------------------------------------------------------------------

/** A started broker, as the backend sees it. */
interface Node {
  readonly handler: BrokerHandler;
}

type Pending =
  | {
      readonly kind: "publication";
      readonly channel: string;
      readonly epoch: string;
      readonly pub: BrokerPublication;
    }
  | { readonly kind: "join" | "leave"; readonly channel: string; readonly member: string }
  /** A control message: delivered to every started broker, not to a channel's subscribers. */
  | { readonly kind: "control"; readonly message: string };

function defaultRandom(bytes: Uint8Array): void {
  globalThis.crypto.getRandomValues(bytes);
}

function defaultOnHandlerError(error: unknown): void {
  globalThis.console.error("MemoryBroker: a broker handler threw", error);
}

function checkPositive(name: string, value: number, allowZero: boolean): number {
  if (!(value > 0 || (allowZero && value === 0))) {
    throw new RangeError(`${name} must be a ${allowZero ? "non-negative" : "positive"} number`);
  }
  return value;
}

function checkCount(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 0) {
    throw new RangeError(`${name} must be a non-negative integer, got ${value}`);
  }
  return value;
}

class Core {
  readonly now: () => number;
  readonly #newEpoch: () => string;
  readonly #streamTtlMs: number;
  readonly #maxIdempotencyKeys: number;
  readonly #sweepIntervalMs: number;
  readonly #onHandlerError: (error: unknown) => void;

  available = true;
  readonly #streams = new ExpiringMap<Stream>();
  readonly #idempotency = new ExpiringMap<PublishOutcome>();
  readonly #presenceExpiry = new ExpiringMap<PresenceRef>();
  readonly #presence = new Map<string, ChannelPresence>();
  readonly #subscribers = new Map<string, Set<Node>>();
  readonly #nodes = new Set<Node>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #dispatching = false;
  #pending: Pending[] = [];

  constructor(options: MemoryBackendOptions) {
    this.now = options.now ?? Date.now;
    const random = options.random ?? defaultRandom;
    this.#newEpoch =
      options.newEpoch ??
      (() => {
        const bytes = new Uint8Array(8);
        random(bytes);
        let hex = "";
        for (const b of bytes) hex += b.toString(16).padStart(2, "0");
        return hex;
      });
    this.#streamTtlMs = checkPositive(
      "streamTtlMs",
      options.streamTtlMs ?? DEFAULT_STREAM_TTL_MS,
      false,
    );
    this.#maxIdempotencyKeys = checkCount(
      "maxIdempotencyKeys",
      options.maxIdempotencyKeys ?? DEFAULT_MAX_IDEMPOTENCY_KEYS,
    );
    this.#sweepIntervalMs = checkPositive(
      "sweepIntervalMs",
      options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS,
      true,
    );
    this.#onHandlerError = options.onHandlerError ?? defaultOnHandlerError;
  }

  // -- nodes and timers --

  attach(node: Node): void {
    this.#nodes.add(node);
    if (this.#timer === undefined && this.#sweepIntervalMs > 0 && this.#nodes.size > 0) {
      const timer = setInterval(() => this.sweep(), this.#sweepIntervalMs);
      (timer as { unref?: () => unknown }).unref?.();
      this.#timer = timer;
    }
  }

  detach(node: Node, channels: Iterable<string>): void {
    for (const channel of channels) this.unsubscribe(node, channel);
    this.#nodes.delete(node);
    if (this.#nodes.size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  setAvailable(available: boolean): void {
    const restored = available && !this.available;
    this.available = available;
    if (!restored) return;
    for (const node of [...this.#nodes]) {
      try {
        node.handler.resync();
      } catch (error) {
        this.#onHandlerError(error);
      }
    }
  }

  sweep(): void {
    const now = this.now();
    this.#streams.sweep(now);
    this.#idempotency.sweep(now);
    this.#sweepPresence(now);
  }

  stats(): MemoryBackendStats {
    let publications = 0;
    for (const stream of this.#streams.values()) publications += stream.size;
    return {
      streams: this.#streams.size,
      publications,
      idempotencyKeys: this.#idempotency.size,
      presenceMembers: this.#presenceExpiry.size,
      subscribedChannels: this.#subscribers.size,
      brokers: this.#nodes.size,
      sweeping: this.#timer !== undefined,
    };
  }

  // -- subscriptions and fan-out --

  subscribe(node: Node, channel: string): void {
    let set = this.#subscribers.get(channel);
    if (set === undefined) {
      set = new Set();
      this.#subscribers.set(channel, set);
    }
    set.add(node);
  }

  unsubscribe(node: Node, channel: string): void {
    const set = this.#subscribers.get(channel);
    if (set === undefined) return;
    set.delete(node);
    if (set.size === 0) this.#subscribers.delete(channel);
  }

  /**
   * Deliver to the channel's subscribers (a control message: to every started broker) now, or —
   * when called from inside a handler — after the delivery in progress, so nested publishes
   * cannot overtake the one being delivered.
   */
  #dispatch(event: Pending): void {
    if (event.kind !== "control" && !this.#subscribers.has(event.channel)) return;
    if (this.#dispatching) {
      this.#pending.push(event);
      return;
    }
    this.#dispatching = true;
    try {
      this.#deliver(event);
      for (let i = 0; i < this.#pending.length; i++) this.#deliver(this.#pending[i]!);
    } finally {
      this.#pending = [];
      this.#dispatching = false;
    }
  }

  #deliver(event: Pending): void {
    // A control message goes to the brokers started when it is delivered (a copy: a handler may
    // start or close brokers meanwhile).
    const set = event.kind === "control" ? [...this.#nodes] : this.#subscribers.get(event.channel);
    if (set === undefined) return;
    for (const node of set) {
      try {
        if (event.kind === "control") {
          node.handler.control(event.message);
        } else if (event.kind === "publication") {
          node.handler.publication(event.channel, event.epoch, event.pub);
        } else if (event.kind === "join") {
          node.handler.join(event.channel, event.member);
        } else {
          node.handler.leave(event.channel, event.member);
        }
      } catch (error) {
        this.#onHandlerError(error);
      }
    }
  }

  // -- publications and history --

  publish(channel: string, request: PublishRequest): PublishOutcome {
    const historySize = checkCount("historySize", request.historySize);
    const historyTtlMs = checkPositive("historyTtlMs", request.historyTtlMs, true);
    const now = this.now();
    const key = request.idempotencyKey;
    const keyed = key !== undefined && request.idempotencyTtlMs > 0 && this.#maxIdempotencyKeys > 0;
    const fullKey = keyed ? pairKey(channel, key) : "";
    if (keyed) {
      const first = this.#idempotency.get(fullKey, now);
      if (first !== undefined) return { offset: first.offset, epoch: first.epoch, duplicate: true };
    }

    let offset = 0;
    let epoch = "";
    let stream: Stream | undefined;
    if (historySize > 0) {
      stream = this.#streams.get(channel, now) ?? new Stream(this.#newEpoch());
      stream.pruneAge(now, historyTtlMs);
      offset = stream.top + 1;
      epoch = stream.epoch;
    }
    const pub: { -readonly [K in keyof BrokerPublication]: BrokerPublication[K] } = {
      offset,
      data: request.data,
      time: now,
    };
    if (request.from !== undefined) pub.from = request.from;
    if (request.conflate !== undefined) pub.conflate = request.conflate;
    if (stream !== undefined) {
      stream.append(pub, historySize);
      this.#streams.set(channel, stream, this.#streamTtlMs, now);
    }

    const outcome: PublishOutcome = { offset, epoch, duplicate: false };
    if (keyed) {
      this.#idempotency.sweep(now);
      while (this.#idempotency.size >= this.#maxIdempotencyKeys) this.#idempotency.evictOldest();
      this.#idempotency.set(fullKey, outcome, request.idempotencyTtlMs, now);
    }
    this.#dispatch({ kind: "publication", channel, epoch, pub });
    return outcome;
  }

  history(channel: string, request: HistoryRequest): HistoryPage {
    const now = this.now();
    const stream = this.#streams.get(channel, now);
    if (stream === undefined) return { publications: [], offset: 0, epoch: "" };
    stream.pruneAge(now, request.historyTtlMs);
    return {
      publications: stream.read(request.since, request.limit, request.reverse === true),
      offset: stream.top,
      epoch: stream.epoch,
    };
  }

  removeHistory(channel: string): void {
    this.#streams.delete(channel);
  }

  // -- control messages --

  publishControl(message: string): void {
    this.#dispatch({ kind: "control", message });
  }

  // -- presence --

  addPresence(channel: string, clientId: string, member: string, ttlMs: number): boolean {
    checkPositive("ttlMs", ttlMs, false);
    const now = this.now();
    // An entry that expired is gone (with its leave) before it is added again.
    this.#sweepPresence(now);
    let presence = this.#presence.get(channel);
    if (presence === undefined) {
      presence = { members: new Map(), ids: [] };
      this.#presence.set(channel, presence);
    }
    const added = !presence.members.has(clientId);
    if (added) presence.ids.splice(searchIds(presence.ids, clientId, false), 0, clientId);
    presence.members.set(clientId, member);
    this.#presenceExpiry.set(pairKey(channel, clientId), { channel, clientId }, ttlMs, now);
    if (added) this.#dispatch({ kind: "join", channel, member });
    return added;
  }

  removePresence(channel: string, clientId: string): boolean {
    this.#sweepPresence(this.now());
    this.#presenceExpiry.delete(pairKey(channel, clientId));
    return this.#dropMember(channel, clientId);
  }

  /** Remove a member and announce its leave; false when it was not there. */
  #dropMember(channel: string, clientId: string): boolean {
    const presence = this.#presence.get(channel);
    const member = presence?.members.get(clientId);
    if (presence === undefined || member === undefined) return false;
    presence.members.delete(clientId);
    const i = searchIds(presence.ids, clientId, false);
    if (presence.ids[i] === clientId) presence.ids.splice(i, 1);
    if (presence.members.size === 0) this.#presence.delete(channel);
    this.#dispatch({ kind: "leave", channel, member });
    return true;
  }

  /** Drop every expired entry (of all channels, with their leaves); how many were of `channel`. */
  #sweepPresence(now: number, channel?: string): number {
    let n = 0;
    this.#presenceExpiry.sweep(now, (_key, ref) => {
      if (this.#dropMember(ref.channel, ref.clientId) && ref.channel === channel) n++;
    });
    return n;
  }

  expirePresence(channel: string): number {
    return this.#sweepPresence(this.now(), channel);
  }

  presence(channel: string, cursor: string | undefined, limit: number): PresencePage {
    // Lazy expiry before counting: the sweep is O(expired entries), so the count is exact.
    this.#sweepPresence(this.now());
    const presence = this.#presence.get(channel);
    if (presence === undefined) return { members: [], count: 0 };
    const count = presence.members.size;
    const pageSize = Math.floor(limit);
    if (!(pageSize > 0)) return { members: [], count };
    const start = cursor === undefined ? 0 : searchIds(presence.ids, cursor, true);
    const end = Math.min(presence.ids.length, start + pageSize);
    const members: string[] = [];
    for (let i = start; i < end; i++) members.push(presence.members.get(presence.ids[i]!)!);
    if (end < presence.ids.length && end > start) {
      return { members, count, cursor: presence.ids[end - 1]! };
    }
    return { members, count };
  }
}

const cores = new WeakMap<MemoryBackend, Core>();

function coreOf(backend: MemoryBackend): Core {
  const core = cores.get(backend);
  if (core === undefined) throw new TypeError("not a MemoryBackend");
  return core;
}

/**
 * The state shared by every MemoryBroker attached to it: one simulated cluster. Operate on it
 * through brokers; this class adds only the controls tests need.
 */
export class MemoryBackend {
  constructor(options: MemoryBackendOptions = {}) {
    cores.set(this, new Core(options));
  }

  /** False while a simulated outage is in effect. */
  get available(): boolean {
    return coreOf(this).available;
  }

  /**
   * Simulate an outage (`false`): every broker method rejects with BrokerUnavailableError and has
   * no effect. Restoring (`true` after `false`) calls `resync()` on every started broker.
   */
  setAvailable(available: boolean): void {
    coreOf(this).setAvailable(available);
  }

  /** Remove every expired entry now (the background sweep does this periodically). */
  sweep(): void {
    coreOf(this).sweep();
  }

  /** Sizes of the stored state, for tests and monitoring. */
  stats(): MemoryBackendStats {
    return coreOf(this).stats();
  }
}

/** A node attached to a MemoryBackend. See the module comment for delivery semantics. */
export class MemoryBroker implements Broker {
  readonly backend: MemoryBackend;
  readonly #core: Core;
  #node: Node | undefined;
  #closed = false;
  readonly #channels = new Set<string>();

  constructor(options: MemoryBrokerOptions = {}) {
    if (options.backend !== undefined) {
      if (Object.keys(options).some((k) => k !== "backend")) {
        throw new TypeError("MemoryBroker: backend options belong to the shared MemoryBackend");
      }
      this.backend = options.backend;
    } else {
      this.backend = new MemoryBackend(options);
    }
    this.#core = coreOf(this.backend);
  }

  #ready(): Core {
    if (this.#closed) throw new BrokerUnavailableError("MemoryBroker is closed");
    if (this.#node === undefined) throw new Error("MemoryBroker: call start() first");
    if (!this.#core.available) throw new BrokerUnavailableError("memory backend unavailable");
    return this.#core;
  }

  async start(handler: BrokerHandler): Promise<void> {
    if (this.#closed) throw new BrokerUnavailableError("MemoryBroker is closed");
    if (this.#node !== undefined) throw new Error("MemoryBroker: start() was already called");
    if (!this.#core.available) throw new BrokerUnavailableError("memory backend unavailable");
    this.#node = { handler };
    this.#core.attach(this.#node);
  }

  async subscribe(channel: string): Promise<void> {
    this.#ready().subscribe(this.#node!, channel);
    this.#channels.add(channel);
  }

  async unsubscribe(channel: string): Promise<void> {
    this.#ready().unsubscribe(this.#node!, channel);
    this.#channels.delete(channel);
  }

  /** Stores, then delivers to every subscribed broker synchronously, then resolves. */
  async publish(channel: string, request: PublishRequest): Promise<PublishOutcome> {
    return this.#ready().publish(channel, request);
  }

  async history(channel: string, request: HistoryRequest): Promise<HistoryPage> {
    return this.#ready().history(channel, request);
  }

  async addPresence(
    channel: string,
    clientId: string,
    member: string,
    ttlMs: number,
  ): Promise<boolean> {
    return this.#ready().addPresence(channel, clientId, member, ttlMs);
  }

  async removePresence(channel: string, clientId: string): Promise<boolean> {
    return this.#ready().removePresence(channel, clientId);
  }

  async expirePresence(channel: string): Promise<number> {
    return this.#ready().expirePresence(channel);
  }

  async presence(
    channel: string,
    cursor: string | undefined,
    limit: number,
  ): Promise<PresencePage> {
    return this.#ready().presence(channel, cursor, limit);
  }

  async removeHistory(channel: string): Promise<void> {
    this.#ready().removeHistory(channel);
  }

  /** Delivers to every started broker of the backend (this one included) synchronously, then resolves. */
  async publishControl(message: string): Promise<void> {
    this.#ready().publishControl(message);
  }

  /** Idempotent; works during a simulated outage. Later calls reject with BrokerUnavailableError. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#node !== undefined) this.#core.detach(this.#node, this.#channels);
    this.#channels.clear();
  }
}
