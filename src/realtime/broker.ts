/**
 * The Broker interface: what the realtime hub needs from the engine that orders, stores and
 * fans out publications between nodes. The in-memory broker (src/broker/memory.ts) is the
 * embedded default; a Redis broker implements the same contract so several nodes share channels,
 * history, presence and idempotency windows. Every implementation must pass the contract suite in
 * test/broker/contract.ts.
 *
 * Design rules an implementation must keep (the hub relies on them):
 * 1. Offsets: each channel that keeps history has a stream with an `epoch` (an opaque string
 *    chosen when the stream is created, changed whenever its history may have been lost) and an
 *    `offset` that grows by exactly 1 per publication, starting at 1. Channels published with
 *    `historySize: 0` have no stream: their publications carry offset 0 and epoch "".
 * 2. Atomicity: `publish` assigns the offset, appends to history and fans out in one step, so
 *    every node receives a channel's publications in offset order, and `history` returns the
 *    publications and the stream top of one consistent moment.
 * 3. Honesty: a promise resolves only when the operation took effect. When the backend is
 *    unreachable it rejects (with BrokerUnavailableError) — a publish is never acknowledged
 *    without being stored and fanned out.
 * 4. Payloads are opaque JSON text: the broker never parses `data`, so a publication is
 *    serialised once, by the node that accepts it.
 *
 * No Node-only imports: the interface is shared with code that type-checks for the browser.
 */

export interface BrokerPublication {
  /** Position in the channel stream; 0 for channels without history. */
  readonly offset: number;
  /** The payload as JSON text. */
  readonly data: string;
  /** The publisher (a ClientInfo) as JSON text, when known. */
  readonly from?: string;
  /** Conflation key for "latest" delivery. */
  readonly conflate?: string;
  /** Publish time, ms since the Unix epoch (broker clock). */
  readonly time: number;
}

export interface PublishRequest {
  readonly data: string;
  readonly from?: string;
  readonly conflate?: string;
  /** Keep at most this many publications; 0 = no history and no stream position. */
  readonly historySize: number;
  /** Drop publications older than this (ms); 0 = no age limit. */
  readonly historyTtlMs: number;
  /** A retry with the same key (per channel) within `idempotencyTtlMs` is not published again. */
  readonly idempotencyKey?: string;
  /** @default 120_000 in the hub */
  readonly idempotencyTtlMs: number;
}

export interface PublishOutcome {
  readonly offset: number;
  readonly epoch: string;
  /** True when the key was seen within the window: the first outcome is returned, nothing new published. */
  readonly duplicate: boolean;
}

export interface HistoryRequest {
  /** Return publications with offset strictly greater than this. Absent: from the oldest kept. */
  readonly since?: number;
  /** At most this many publications; 0 returns only the stream position. */
  readonly limit: number;
  /** Newest first (ignored when `since` is given). */
  readonly reverse?: boolean;
  /** The channel's history TTL, so age-expired entries are not returned. */
  readonly historyTtlMs: number;
}

export interface HistoryPage {
  readonly publications: readonly BrokerPublication[];
  /** Offset of the newest publication in the stream (0 when none was ever published). */
  readonly offset: number;
  readonly epoch: string;
}

export interface PresencePage {
  /** Members as ClientInfo JSON text, in a stable order (by client id). */
  readonly members: readonly string[];
  readonly count: number;
  /** Opaque; absent on the last page. */
  readonly cursor?: string;
}

/** What the broker delivers to the node that started it. */
export interface BrokerHandler {
  /** A publication on a channel this node subscribed to, in offset order per channel. */
  publication(channel: string, epoch: string, publication: BrokerPublication): void;
  /** A presence join or leave (member as ClientInfo JSON text) on a channel this node subscribed to. */
  join(channel: string, member: string): void;
  leave(channel: string, member: string): void;
  /**
   * Deliveries may have been missed (e.g. the backend connection was lost and restored). The hub
   * checks every channel's position against history and fills or reports the gap.
   */
  resync(): void;
  /**
   * A control message (opaque JSON text) from `publishControl` of any node, this one included.
   * Not tied to a channel: every started node receives it, subscribed or not.
   */
  control(message: string): void;
}

export interface Broker {
  /** Begin delivering to `handler`. Called once, before any other method. */
  start(handler: BrokerHandler): Promise<void>;
  /** This node wants the channel's publications and presence events. */
  subscribe(channel: string): Promise<void>;
  unsubscribe(channel: string): Promise<void>;
  publish(channel: string, request: PublishRequest): Promise<PublishOutcome>;
  history(channel: string, request: HistoryRequest): Promise<HistoryPage>;
  /**
   * Presence: an entry per (channel, client id) holding the member (ClientInfo JSON text), kept
   * until removed or until `ttlMs` passes without a refresh. The broker announces every change of
   * membership exactly once, to every node subscribed to the channel (`join`/`leave` of the
   * handler), whichever node caused it: a join when an entry is added that was absent (or had
   * expired), a leave when one is removed or expires. Expired entries are never listed nor
   * counted; the leave of one is announced no later than the next `expirePresence` (or any other
   * presence call) on its channel.
   *
   * Add or refresh an entry; resolves true when the member is new (and was announced).
   */
  addPresence(channel: string, clientId: string, member: string, ttlMs: number): Promise<boolean>;
  /** Remove an entry; resolves true when the member was present (and its leave was announced). */
  removePresence(channel: string, clientId: string): Promise<boolean>;
  /**
   * Remove the channel's expired entries, announcing a leave for each. Nodes may call this at
   * the same time: each expired member is announced once. Resolves how many this call removed.
   */
  expirePresence(channel: string): Promise<number>;
  presence(channel: string, cursor: string | undefined, limit: number): Promise<PresencePage>;
  /** Forget a channel's history; the next publication starts a new epoch. */
  removeHistory(channel: string): Promise<void>;
  /**
   * Send an opaque control message (JSON text, never parsed by the broker) to every started
   * node, this one included (`control` of the handler): cluster-wide commands such as
   * disconnecting a user everywhere. At most once per node, in the order one node sent them; a
   * node whose connection to the backend is down when it is sent misses it (it is not stored
   * nor replayed, and `resync()` says nothing about it). Resolves once the backend accepted it;
   * rejects with BrokerUnavailableError when the backend is unreachable (rule 3).
   */
  publishControl(message: string): Promise<void>;
  close(): Promise<void>;
}

/** The backend cannot be reached: the operation did not take effect. */
export class BrokerUnavailableError extends Error {
  constructor(message = "broker unavailable", options?: { cause?: unknown }) {
    super(message, options);
    this.name = "BrokerUnavailableError";
  }
}
