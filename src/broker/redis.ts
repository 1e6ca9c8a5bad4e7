/**
 * The Redis Broker: several nodes share channels, history, presence and idempotency windows
 * through one Redis server (7.0 or newer). Data model, scripts and outage behaviour are described
 * in docs/scaling.md; in short:
 *
 * - Every key of a channel starts with `<keyPrefix>{<channel>}` (a Redis Cluster hash tag), so the
 *   keys one script touches always share a slot. `{`, `}` and `%` in channel names are
 *   percent-escaped, which keeps the mapping from (prefix, channel, suffix) to key one-to-one.
 * - `publish` is one Lua script: idempotency check, offset (HINCRBY on the meta hash, a new random
 *   epoch when the meta hash does not exist), append to a Stream (XADD with the offset as the entry
 *   id, exact MAXLEN), age pruning, TTLs, PUBLISH of the encoded publication, and the idempotency
 *   record (SET NX PX). Redis runs scripts one at a time, so offsets, history and the order in which
 *   subscribers receive publications all agree.
 * - `history` is one script too (meta hash + XRANGE), so a page and its stream top are one moment.
 * - Presence: a sorted set scored by expiry time, a sorted set of client ids with score 0
 *   (ZRANGEBYLEX pages in client-id order) and a hash of member JSON. Every presence script
 *   first prunes the expired entries and PUBLISHes their leaves; adding a new member PUBLISHes
 *   its join and removing one its leave, in the same script, so each change is announced once.
 * - Fan-out: one Redis pub/sub channel per channel (named like the key base), one subscriber
 *   connection per broker. Publications, joins and leaves go through the same pub/sub channel.
 *   Control messages (`publishControl`) go through one more, `<keyPrefix>control`, which every
 *   broker subscribes to in `start()`; it cannot collide with a channel's (those continue the
 *   prefix with `{`).
 *
 * Honesty (rule 3 of src/realtime/broker.ts): the command connection runs with the offline queue
 * disabled and a command timeout, so while Redis is unreachable every operation rejects at once
 * with BrokerUnavailableError and nothing is queued to run later. A command whose connection breaks
 * after it was sent rejects too (it may or may not have run: the hub's idempotency keys make a
 * retry safe); a promise never resolves for an operation that did not take effect.
 *
 * Recovery: node-redis reconnects by itself (exponential backoff, capped) and re-subscribes the
 * pub/sub channels before it reports ready. When the subscriber connection was lost and both
 * connections are ready again, the broker reconciles its subscriptions and calls
 * `handler.resync()`: deliveries may have been missed, and the hub checks every position against
 * history. If Redis came back empty, the next publication starts a new epoch and clients learn
 * `recovered: false` instead of missing publications silently.
 *
 * The Redis client is node-redis (`redis` on npm), the client maintained by the Redis project.
 */
import { randomBytes } from "node:crypto";
import { createClient, defineScript, type RedisClientOptions } from "redis";
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

export interface RedisBrokerOptions {
  /**
   * `redis[s]://[[user][:password]@]host[:port][/db]`. @default "redis://127.0.0.1:6379" unless
   * `client.url` or `client.socket` says where Redis is
   */
  readonly url?: string;
  /**
   * More node-redis client options (TLS, credentials, client name, socket settings…), used for both
   * connections. The broker sets, and overrides: `disableOfflineQueue`, `RESP`, the command
   * timeout, `socket.reconnectStrategy` and `socket.connectTimeout` (and `url` when given above).
   */
  readonly client?: RedisClientOptions;
  /** Prepended to every key and pub/sub channel, so several apps can share one Redis. No braces. @default "duplex:" */
  readonly keyPrefix?: string;
  /**
   * A channel stream (epoch, top offset, history) with no publication for this long is forgotten;
   * the next publication starts a new epoch. Independent of a channel's `historyTtlMs`, which
   * bounds the age of the kept publications but not the stream position. @default 24 h
   */
  readonly streamTtlMs?: number;
  /** An operation that got no answer within this time rejects with BrokerUnavailableError. @default 5000 */
  readonly commandTimeoutMs?: number;
  /** Upper bound of the reconnect backoff (50 ms doubling, plus jitter). @default 1000 */
  readonly reconnectMaxDelayMs?: number;
  /** Makes a new stream epoch. @default 8 random bytes as hex */
  readonly newEpoch?: () => string;
  /** Receives errors thrown by the handler's callbacks. @default console.error */
  readonly onHandlerError?: (error: unknown) => void;
  /**
   * Receives connection errors (each failed reconnect attempt too). The default logs one line when
   * the connection to Redis is lost and one when it is back.
   */
  readonly onConnectionError?: (error: unknown) => void;
}

const DEFAULT_URL = "redis://127.0.0.1:6379";
const DEFAULT_PREFIX = "duplex:";
const DEFAULT_STREAM_TTL_MS = 24 * 60 * 60 * 1000;
const DEFAULT_COMMAND_TIMEOUT_MS = 5000;
const DEFAULT_RECONNECT_MAX_DELAY_MS = 1000;
/** COUNT/LIMIT arguments are capped here (a page that large is not a page). */
const MAX_COUNT = 2 ** 31 - 1;
/** Presence keys outlive their last member this long, so its leave can still be announced. */
const PRESENCE_LINGER_MS = 10 * 60 * 1000;

// ---- Lua ----------------------------------------------------------------------------------------

/** Shared helpers, prepended to the scripts that need them. */
const LUA_COMMON = `
local function int(n) return string.format('%d', n) end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- Drop history entries published at or before cutoff, oldest first. Entry ids are '<offset>-0'
-- and the first field of every entry is its time 't'.
local function prune_age(stream, cutoff)
  while true do
    local batch = redis.call('XRANGE', stream, '-', '+', 'COUNT', 64)
    local n = #batch
    if n == 0 then return end
    for i = 1, n do
      local entry = batch[i]
      if tonumber(entry[2][2]) > cutoff then
        if i > 1 then redis.call('XTRIM', stream, 'MINID', entry[1]) end
        return
      end
    end
    local last = batch[n][1]
    local top = tonumber(string.sub(last, 1, string.find(last, '-', 1, true) - 1))
    redis.call('XTRIM', stream, 'MINID', int(top + 1) .. '-0')
    if n < 64 then return end
  end
end
-- Remove expired presence entries (expiry score <= now) from the three presence keys and
-- announce the leave of each on the pub/sub channel. Returns how many were removed.
local function prune_presence(by_expiry, by_id, data, now, pubsub)
  local gone = redis.call('ZRANGEBYSCORE', by_expiry, '-inf', int(now))
  if #gone == 0 then return 0 end
  redis.call('ZREMRANGEBYSCORE', by_expiry, '-inf', int(now))
  for i = 1, #gone, 500 do
    local chunk = {}
    for j = i, math.min(i + 499, #gone) do chunk[#chunk + 1] = gone[j] end
    local members = redis.call('HMGET', data, unpack(chunk))
    for j = 1, #members do
      if members[j] then redis.call('PUBLISH', pubsub, 'l|' .. members[j]) end
    end
    redis.call('ZREM', by_id, unpack(chunk))
    redis.call('HDEL', data, unpack(chunk))
  end
  return #gone
end
`;

/**
 * KEYS: meta hash, history stream, idempotency key.
 * ARGV: 1 pub/sub channel, 2 data, 3 from, 4 has from, 5 conflate, 6 has conflate,
 *       7 historySize, 8 historyTtlMs, 9 idempotency ttl ms ('0' = no key), 10 new epoch,
 *       11 stream ttl ms.
 * Returns {1, '<offset>|<epoch>'} for a duplicate, {0, offset, epoch} otherwise.
 */
const PUBLISH_LUA = `${LUA_COMMON}
local meta, stream, idem = KEYS[1], KEYS[2], KEYS[3]
local idem_ttl = tonumber(ARGV[9])
if idem_ttl > 0 then
  local first = redis.call('GET', idem)
  if first then return {1, first} end
end
local now = now_ms()
local size = tonumber(ARGV[7])
local offset = 0
local epoch = ''
if size > 0 then
  epoch = redis.call('HGET', meta, 'e')
  if not epoch then
    epoch = ARGV[10]
    redis.call('DEL', stream)
    redis.call('HSET', meta, 'e', epoch, 'o', '0')
  end
  offset = redis.call('HINCRBY', meta, 'o', 1)
  local age = tonumber(ARGV[8])
  if age > 0 then prune_age(stream, now - age) end
  local entry = {'XADD', stream, 'MAXLEN', '=', int(size), int(offset) .. '-0', 't', int(now), 'd', ARGV[2]}
  if ARGV[4] == '1' then entry[#entry + 1] = 'f'; entry[#entry + 1] = ARGV[3] end
  if ARGV[6] == '1' then entry[#entry + 1] = 'c'; entry[#entry + 1] = ARGV[5] end
  redis.call(unpack(entry))
  -- The position (meta) lives streamTtlMs after the last publication. The entries are all dead
  -- historyTtlMs after it, so the stream key need not live longer than that.
  local keep = tonumber(ARGV[11])
  redis.call('PEXPIRE', meta, int(keep))
  if age > 0 and age < keep then keep = math.ceil(age) end
  redis.call('PEXPIRE', stream, int(keep))
end
local from_len, from = '-1', ''
if ARGV[4] == '1' then from_len, from = int(#ARGV[3]), ARGV[3] end
local conflate_len, conflate = '-1', ''
if ARGV[6] == '1' then conflate_len, conflate = int(#ARGV[5]), ARGV[5] end
redis.call('PUBLISH', ARGV[1], table.concat({'p', epoch, int(offset), int(now), from_len,
  conflate_len, from .. conflate .. ARGV[2]}, '|'))
if idem_ttl > 0 then
  redis.call('SET', idem, int(offset) .. '|' .. epoch, 'NX', 'PX', int(idem_ttl))
end
return {0, offset, epoch}
`;

/**
 * KEYS: meta hash, history stream.
 * ARGV: 1 since ('' = none, else an integer >= 0), 2 limit, 3 reverse ('1'), 4 historyTtlMs.
 * Returns {top offset, epoch, entries as XRANGE returns them}.
 */
const HISTORY_LUA = `${LUA_COMMON}
local meta, stream = KEYS[1], KEYS[2]
local head = redis.call('HMGET', meta, 'e', 'o')
if not head[1] then return {0, '', {}} end
local age = tonumber(ARGV[4])
if age > 0 then prune_age(stream, now_ms() - age) end
local limit = tonumber(ARGV[2])
local entries = {}
if limit > 0 then
  if ARGV[1] ~= '' then
    entries = redis.call('XRANGE', stream, int(tonumber(ARGV[1]) + 1) .. '-0', '+', 'COUNT', ARGV[2])
  elseif ARGV[3] == '1' then
    entries = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', ARGV[2])
  else
    entries = redis.call('XRANGE', stream, '-', '+', 'COUNT', ARGV[2])
  end
end
return {tonumber(head[2]), head[1], entries}
`;

/**
 * KEYS: presence by expiry (zset), by id (zset, score 0), data (hash).
 * ARGV: 1 client id, 2 member, 3 ttl ms, 4 pub/sub channel.
 * Returns 1 when the member is new (its join announced), 0 for a refresh.
 */
const ADD_PRESENCE_LUA = `${LUA_COMMON}
local by_expiry, by_id, data = KEYS[1], KEYS[2], KEYS[3]
local now = now_ms()
prune_presence(by_expiry, by_id, data, now, ARGV[4])
local added = redis.call('ZADD', by_expiry, int(now + tonumber(ARGV[3])), ARGV[1])
redis.call('ZADD', by_id, '0', ARGV[1])
redis.call('HSET', data, ARGV[1], ARGV[2])
if added == 1 then redis.call('PUBLISH', ARGV[4], 'j|' .. ARGV[2]) end
-- The keys outlive their longest-lived member by PRESENCE_LINGER_MS: an entry that expires is
-- still there to be announced (its leave) by the next sweep.
local last = redis.call('ZRANGE', by_expiry, -1, -1, 'WITHSCORES')
local at = int(tonumber(last[2]) + ${PRESENCE_LINGER_MS})
redis.call('PEXPIREAT', by_expiry, at)
redis.call('PEXPIREAT', by_id, at)
redis.call('PEXPIREAT', data, at)
return added
`;

/**
 * KEYS: as ADD_PRESENCE_LUA. ARGV: 1 client id, 2 pub/sub channel.
 * Returns 1 when the member was there (its leave announced), 0 otherwise.
 */
const REMOVE_PRESENCE_LUA = `
local member = redis.call('HGET', KEYS[3], ARGV[1])
if not member then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('PUBLISH', ARGV[2], 'l|' .. member)
return 1
`;

/** KEYS: as ADD_PRESENCE_LUA. ARGV: 1 pub/sub channel. Returns how many expired entries went. */
const EXPIRE_PRESENCE_LUA = `${LUA_COMMON}
return prune_presence(KEYS[1], KEYS[2], KEYS[3], now_ms(), ARGV[1])
`;

/**
 * KEYS: as ADD_PRESENCE_LUA. ARGV: 1 has cursor ('1'), 2 cursor, 3 limit, 4 pub/sub channel.
 * Returns {count, members, next cursor or false}.
 */
const PRESENCE_LUA = `${LUA_COMMON}
local by_expiry, by_id, data = KEYS[1], KEYS[2], KEYS[3]
prune_presence(by_expiry, by_id, data, now_ms(), ARGV[4])
local count = redis.call('ZCARD', by_expiry)
local limit = tonumber(ARGV[3])
if limit <= 0 or count == 0 then return {count, {}, false} end
local min = '-'
if ARGV[1] == '1' then min = '(' .. ARGV[2] end
local ids = redis.call('ZRANGEBYLEX', by_id, min, '+', 'LIMIT', '0', int(limit + 1))
local more = #ids > limit
if more then table.remove(ids) end
if #ids == 0 then return {count, {}, false} end
local members = redis.call('HMGET', data, unpack(ids))
if more then return {count, members, ids[#ids]} end
return {count, members, false}
`;

/** A script called as `client.<name>(keys, args)`; the reply is parsed by the caller. */
function script(lua: string, keyCount: number) {
  return defineScript({
    SCRIPT: lua,
    NUMBER_OF_KEYS: keyCount,
    parseCommand(parser, keys: readonly string[], args: readonly string[]) {
      for (const key of keys) parser.pushKey(key);
      parser.push(...args);
    },
    transformReply: (reply: unknown): unknown => reply,
  });
}

const SCRIPTS = {
  duplexPublish: script(PUBLISH_LUA, 3),
  duplexHistory: script(HISTORY_LUA, 2),
  duplexAddPresence: script(ADD_PRESENCE_LUA, 3),
  duplexRemovePresence: script(REMOVE_PRESENCE_LUA, 3),
  duplexExpirePresence: script(EXPIRE_PRESENCE_LUA, 3),
  duplexPresence: script(PRESENCE_LUA, 3),
};

function makeClient(options: RedisClientOptions, scripts: typeof SCRIPTS) {
  return createClient({ ...options, scripts });
}
type Client = ReturnType<typeof makeClient>;

// ---- keys ---------------------------------------------------------------------------------------

/** Percent-escape the characters that would break the hash tag (and `%` itself). */
function escapeTag(text: string): string {
  return text.replace(/[%{}]/g, (c) => (c === "%" ? "%25" : c === "{" ? "%7B" : "%7D"));
}

/** The keys of one channel. Suffixes contain no `}`, so the last `}` ends the hash tag. */
class ChannelKeys {
  readonly base: string;
  constructor(prefix: string, channel: string) {
    this.base = `${prefix}{${escapeTag(channel)}}`;
  }
  /** Pub/sub channel (pub/sub names are not keys; the same text keeps things recognisable). */
  get pubsub(): string {
    return this.base;
  }
  get meta(): string {
    return `${this.base}:m`;
  }
  get history(): string {
    return `${this.base}:h`;
  }
  idempotency(key: string): string {
    return `${this.base}:i:${escapeTag(key)}`;
  }
  get presence(): [byExpiry: string, byId: string, data: string] {
    return [`${this.base}:p`, `${this.base}:n`, `${this.base}:d`];
  }
}

// ---- wire format of the pub/sub messages --------------------------------------------------------
//
//   p|<epoch>|<offset>|<time>|<from bytes or -1>|<conflate bytes or -1>|<from><conflate><data>
//   j|<member>
//   l|<member>
//   c|<control message>          (only on the control pub/sub channel)

const PIPE = 0x7c;

type Message =
  | { readonly kind: "publication"; readonly epoch: string; readonly pub: BrokerPublication }
  | { readonly kind: "join" | "leave"; readonly member: string }
  | { readonly kind: "control"; readonly message: string };

/** Parse a pub/sub message; undefined when it is not one of ours. */
export function decodeMessage(buf: Buffer): Message | undefined {
  if (buf.length < 2 || buf[1] !== PIPE) return undefined;
  const kind = buf[0];
  if (kind === 0x6a /* j */) return { kind: "join", member: buf.toString("utf8", 2) };
  if (kind === 0x6c /* l */) return { kind: "leave", member: buf.toString("utf8", 2) };
  if (kind === 0x63 /* c */) return { kind: "control", message: buf.toString("utf8", 2) };
  if (kind !== 0x70 /* p */) return undefined;
  const fields: string[] = [];
  let at = 2;
  for (let i = 0; i < 5; i++) {
    const end = buf.indexOf(PIPE, at);
    if (end < 0) return undefined;
    fields.push(buf.toString("latin1", at, end));
    at = end + 1;
  }
  const [epoch, offsetText, timeText, fromText, conflateText] = fields as [
    string,
    string,
    string,
    string,
    string,
  ];
  const fromLen = Number(fromText);
  const conflateLen = Number(conflateText);
  const pub: { -readonly [K in keyof BrokerPublication]: BrokerPublication[K] } = {
    offset: Number(offsetText),
    data: "",
    time: Number(timeText),
  };
  if (fromLen >= 0) {
    pub.from = buf.toString("utf8", at, at + fromLen);
    at += fromLen;
  }
  if (conflateLen >= 0) {
    pub.conflate = buf.toString("utf8", at, at + conflateLen);
    at += conflateLen;
  }
  if (at > buf.length || !Number.isFinite(pub.offset) || !Number.isFinite(pub.time)) {
    return undefined;
  }
  pub.data = buf.toString("utf8", at);
  return { kind: "publication", epoch, pub };
}

// ---- replies ------------------------------------------------------------------------------------

function asArray(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) throw new TypeError(`unexpected Redis reply for ${what}`);
  return value;
}

function asText(value: unknown): string {
  if (typeof value === "string") return value;
  if (Buffer.isBuffer(value)) return value.toString("utf8");
  if (typeof value === "number") return String(value);
  throw new TypeError("unexpected Redis reply: not a string");
}

/** A stream entry `[id, [field, value, …]]` as a publication. */
function entryToPublication(entry: unknown): BrokerPublication {
  const [id, fieldList] = asArray(entry, "history entry");
  const idText = asText(id);
  const fields = asArray(fieldList, "history entry fields");
  const pub: { -readonly [K in keyof BrokerPublication]: BrokerPublication[K] } = {
    offset: Number(idText.slice(0, idText.indexOf("-"))),
    data: "",
    time: 0,
  };
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = asText(fields[i]);
    const value = asText(fields[i + 1]);
    if (name === "d") pub.data = value;
    else if (name === "t") pub.time = Number(value);
    else if (name === "f") pub.from = value;
    else if (name === "c") pub.conflate = value;
  }
  return pub;
}

// ---- helpers ------------------------------------------------------------------------------------

function checkCount(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 0) {
    throw new RangeError(`${name} must be a non-negative integer, got ${value}`);
  }
  return value;
}

function checkPositive(name: string, value: number, allowZero: boolean): number {
  if (!(value > 0 || (allowZero && value === 0)) || !Number.isFinite(value)) {
    throw new RangeError(`${name} must be a ${allowZero ? "non-negative" : "positive"} number`);
  }
  return value;
}

function defaultNewEpoch(): string {
  return randomBytes(8).toString("hex");
}

function defaultOnHandlerError(error: unknown): void {
  console.error("RedisBroker: a broker handler threw", error);
}

function unavailable(error: unknown): BrokerUnavailableError {
  if (error instanceof BrokerUnavailableError) return error;
  const detail = error instanceof Error ? error.message : String(error);
  return new BrokerUnavailableError(`redis unavailable: ${detail}`, { cause: error });
}

/** Reject with BrokerUnavailableError if `promise` has not settled within `ms`. */
function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BrokerUnavailableError(`redis: ${what} timed out`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function noop(): void {}

// ---- the broker ---------------------------------------------------------------------------------

/** One node attached to a Redis server. See the module comment and docs/scaling.md. */
export class RedisBroker implements Broker {
  readonly keyPrefix: string;
  readonly #url: string | undefined;
  readonly #clientOptions: RedisClientOptions;
  readonly #streamTtlMs: number;
  readonly #commandTimeoutMs: number;
  readonly #reconnectMaxDelayMs: number;
  readonly #newEpoch: () => string;
  readonly #onHandlerError: (error: unknown) => void;
  readonly #onConnectionError: ((error: unknown) => void) | undefined;

  #handler: BrokerHandler | undefined;
  #cmd: Client | undefined;
  #sub: Client | undefined;
  /** True once both connections were ready: from then on, lost connections are retried. */
  #connected = false;
  #closed = false;
  #closing: Promise<void> | undefined;
  /** Subscriber socket epoch the handler is in sync with; a newer ready one means resync. */
  #syncedEpoch = 0;
  #healthy = true;
  /** Channels this node wants, by pub/sub name. Deliveries are filtered by this map. */
  readonly #channels = new Map<string, string>();
  /** The pub/sub channel of control messages, subscribed from start() to close(). */
  readonly #controlName: string;
  readonly #listener = (message: Buffer, pubsub: Buffer): void => this.#onMessage(message, pubsub);

  constructor(options: RedisBrokerOptions = {}) {
    const prefix = options.keyPrefix ?? DEFAULT_PREFIX;
    if (/[{}]/.test(prefix)) throw new TypeError("RedisBroker: keyPrefix must not contain { or }");
    this.keyPrefix = prefix;
    // Channel names map to `<prefix>{…}`: this name is never one of them.
    this.#controlName = `${prefix}control`;
    this.#clientOptions = options.client ?? {};
    const base = this.#clientOptions;
    // Without any address, the local default; `client.url` or `client.socket` may give one.
    this.#url =
      options.url ??
      (base.url === undefined && base.socket === undefined ? DEFAULT_URL : undefined);
    this.#streamTtlMs = Math.ceil(
      checkPositive("streamTtlMs", options.streamTtlMs ?? DEFAULT_STREAM_TTL_MS, false),
    );
    this.#commandTimeoutMs = Math.ceil(
      checkPositive(
        "commandTimeoutMs",
        options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
        false,
      ),
    );
    this.#reconnectMaxDelayMs = checkPositive(
      "reconnectMaxDelayMs",
      options.reconnectMaxDelayMs ?? DEFAULT_RECONNECT_MAX_DELAY_MS,
      false,
    );
    this.#newEpoch = options.newEpoch ?? defaultNewEpoch;
    this.#onHandlerError = options.onHandlerError ?? defaultOnHandlerError;
    this.#onConnectionError = options.onConnectionError;
  }

  // -- connections --

  #createClient(): Client {
    const base = this.#clientOptions;
    const socket = {
      ...(base.socket ?? {}),
      connectTimeout: this.#commandTimeoutMs,
      reconnectStrategy: (retries: number): number | false => {
        // Before start() succeeded a failure is reported to its caller; after close() it ends.
        if (!this.#connected || this.#closed) return false;
        const delay = Math.min(this.#reconnectMaxDelayMs, 50 * 2 ** Math.min(retries, 16));
        return Math.floor(delay + Math.random() * Math.min(100, delay));
      },
    } as NonNullable<RedisClientOptions["socket"]>;
    const client = makeClient(
      {
        ...base,
        ...(this.#url === undefined ? {} : { url: this.#url }),
        socket,
        RESP: 3,
        // Never queue a command while disconnected: it would run later, after its caller was told
        // it failed (or never be answered at all).
        disableOfflineQueue: true,
        commandOptions: {
          ...(base.commandOptions ?? {}),
          timeout: this.#commandTimeoutMs,
          rejectInFlight: true,
        },
      },
      SCRIPTS,
    );
    client.on("error", (error: unknown) => this.#connectionError(error));
    client.on("ready", () => this.#onReady());
    return client;
  }

  #connectionError(error: unknown): void {
    if (this.#closed) return;
    if (this.#onConnectionError !== undefined) {
      this.#onConnectionError(error);
      return;
    }
    if (this.#connected && this.#healthy) {
      this.#healthy = false;
      const detail = error instanceof Error ? error.message : String(error);
      console.warn(`RedisBroker: lost the connection to Redis (${detail}); reconnecting`);
    }
  }

  /** Either connection became ready. Once both are and the subscriber reconnected: resync. */
  #onReady(): void {
    const cmd = this.#cmd;
    const sub = this.#sub;
    if (!this.#connected || this.#closed || cmd === undefined || sub === undefined) return;
    if (!cmd.isReady || !sub.isReady) return;
    if (!this.#healthy && this.#onConnectionError === undefined) {
      console.warn("RedisBroker: the connection to Redis is back");
    }
    this.#healthy = true;
    if (sub.socketEpoch === this.#syncedEpoch) return;
    this.#syncedEpoch = sub.socketEpoch;
    void this.#reconcile(sub).finally(() => {
      if (this.#closed) return;
      try {
        this.#handler?.resync();
      } catch (error) {
        this.#onHandlerError(error);
      }
    });
  }

  /**
   * node-redis re-subscribed what it had listeners for. Make that match what this node wants:
   * drop channels unsubscribed while Redis was away, add any that are missing.
   */
  async #reconcile(sub: Client): Promise<void> {
    const have = sub.getPubSubListeners("CHANNELS");
    const want = new Set(this.#channels.keys()).add(this.#controlName);
    const work: Promise<unknown>[] = [];
    for (const name of have.keys()) {
      if (!want.has(name)) work.push(sub.unsubscribe(name, this.#listener, true));
    }
    for (const name of want) {
      if (!have.has(name)) work.push(sub.subscribe(name, this.#listener, true));
    }
    await Promise.allSettled(work);
  }

  async start(handler: BrokerHandler): Promise<void> {
    if (this.#closed) throw new BrokerUnavailableError("RedisBroker is closed");
    if (this.#handler !== undefined) throw new Error("RedisBroker: start() was already called");
    this.#handler = handler;
    const cmd = this.#createClient();
    const sub = this.#createClient();
    try {
      await Promise.all([cmd.connect(), sub.connect()]);
      // Control messages reach every started node: subscribed before start() resolves.
      await withTimeout(
        sub.subscribe(this.#controlName, this.#listener, true),
        this.#commandTimeoutMs,
        "SUBSCRIBE",
      );
    } catch (error) {
      cmd.destroy();
      sub.destroy();
      this.#handler = undefined;
      throw unavailable(error);
    }
    if (this.#closed) {
      cmd.destroy();
      sub.destroy();
      throw new BrokerUnavailableError("RedisBroker is closed");
    }
    this.#cmd = cmd;
    this.#sub = sub;
    this.#syncedEpoch = sub.socketEpoch;
    this.#connected = true;
  }

  /** The command connection, or a rejection explaining why there is none. */
  #ready(): Client {
    if (this.#closed) throw new BrokerUnavailableError("RedisBroker is closed");
    const cmd = this.#cmd;
    if (cmd === undefined) throw new Error("RedisBroker: call start() first");
    if (!cmd.isReady) throw new BrokerUnavailableError("redis unavailable (reconnecting)");
    return cmd;
  }

  async #run<T>(op: (cmd: Client) => Promise<T>): Promise<T> {
    const cmd = this.#ready();
    try {
      return await op(cmd);
    } catch (error) {
      throw unavailable(error);
    }
  }

  // -- subscriptions and deliveries --

  #onMessage(message: Buffer, pubsub: Buffer): void {
    const handler = this.#handler;
    if (handler === undefined || this.#closed) return;
    const name = pubsub.toString("utf8");
    if (name === this.#controlName) {
      const decoded = decodeMessage(message);
      if (decoded?.kind !== "control") return;
      try {
        handler.control(decoded.message);
      } catch (error) {
        this.#onHandlerError(error);
      }
      return;
    }
    const channel = this.#channels.get(name);
    if (channel === undefined) return;
    const decoded = decodeMessage(message);
    if (decoded === undefined || decoded.kind === "control") return;
    try {
      if (decoded.kind === "publication") handler.publication(channel, decoded.epoch, decoded.pub);
      else if (decoded.kind === "join") handler.join(channel, decoded.member);
      else handler.leave(channel, decoded.member);
    } catch (error) {
      this.#onHandlerError(error);
    }
  }

  async subscribe(channel: string): Promise<void> {
    this.#ready();
    const sub = this.#sub!;
    if (!sub.isReady) throw new BrokerUnavailableError("redis unavailable (reconnecting)");
    const name = new ChannelKeys(this.keyPrefix, channel).pubsub;
    if (this.#channels.get(name) === channel && sub.getPubSubListeners("CHANNELS").has(name)) {
      return;
    }
    this.#channels.set(name, channel);
    const subscribing = sub.subscribe(name, this.#listener, true);
    try {
      await withTimeout(subscribing, this.#commandTimeoutMs, "SUBSCRIBE");
    } catch (error) {
      this.#channels.delete(name);
      // If the SUBSCRIBE still completes after the timeout, undo it.
      subscribing.then(() => {
        if (!this.#channels.has(name) && sub.isOpen) {
          sub.unsubscribe(name, this.#listener, true).catch(noop);
        }
      }, noop);
      throw unavailable(error);
    }
  }

  /**
   * Deliveries stop at once. While Redis is unreachable there is no server-side subscription to
   * end: the channel is dropped locally and not subscribed again on reconnect.
   */
  async unsubscribe(channel: string): Promise<void> {
    if (this.#closed) throw new BrokerUnavailableError("RedisBroker is closed");
    const sub = this.#sub;
    if (sub === undefined) throw new Error("RedisBroker: call start() first");
    const name = new ChannelKeys(this.keyPrefix, channel).pubsub;
    this.#channels.delete(name);
    if (!sub.isReady || !sub.getPubSubListeners("CHANNELS").has(name)) return;
    try {
      await withTimeout(
        sub.unsubscribe(name, this.#listener, true),
        this.#commandTimeoutMs,
        "UNSUBSCRIBE",
      );
    } catch {
      // The listener is gone or goes with the connection; #reconcile drops it after a reconnect.
    }
  }

  // -- publications and history --

  async publish(channel: string, request: PublishRequest): Promise<PublishOutcome> {
    const historySize = checkCount("historySize", request.historySize);
    const historyTtlMs = checkPositive("historyTtlMs", request.historyTtlMs, true);
    const key = request.idempotencyKey;
    const keyed = key !== undefined && request.idempotencyTtlMs > 0;
    const keys = new ChannelKeys(this.keyPrefix, channel);
    const args = [
      keys.pubsub,
      request.data,
      request.from ?? "",
      request.from === undefined ? "0" : "1",
      request.conflate ?? "",
      request.conflate === undefined ? "0" : "1",
      String(historySize),
      String(historyTtlMs),
      keyed ? String(Math.ceil(request.idempotencyTtlMs)) : "0",
      historySize > 0 ? this.#newEpoch() : "",
      String(this.#streamTtlMs),
    ];
    const reply = await this.#run((cmd) =>
      cmd.duplexPublish([keys.meta, keys.history, keys.idempotency(keyed ? key : "")], args),
    );
    const [dup, a, b] = asArray(reply, "publish");
    if (Number(dup) === 1) {
      const first = asText(a);
      const bar = first.indexOf("|");
      return { offset: Number(first.slice(0, bar)), epoch: first.slice(bar + 1), duplicate: true };
    }
    return { offset: Number(a), epoch: asText(b), duplicate: false };
  }

  async history(channel: string, request: HistoryRequest): Promise<HistoryPage> {
    const keys = new ChannelKeys(this.keyPrefix, channel);
    const limit = Math.max(0, Math.min(MAX_COUNT, Math.floor(request.limit)));
    const since = request.since === undefined ? "" : String(Math.max(0, Math.floor(request.since)));
    const args = [
      since,
      String(Number.isNaN(limit) ? 0 : limit),
      request.reverse === true ? "1" : "0",
      String(
        request.historyTtlMs > 0 && Number.isFinite(request.historyTtlMs)
          ? request.historyTtlMs
          : 0,
      ),
    ];
    const reply = await this.#run((cmd) => cmd.duplexHistory([keys.meta, keys.history], args));
    const [top, epoch, entries] = asArray(reply, "history");
    return {
      publications: asArray(entries, "history entries").map(entryToPublication),
      offset: Number(top),
      epoch: asText(epoch),
    };
  }

  async removeHistory(channel: string): Promise<void> {
    const keys = new ChannelKeys(this.keyPrefix, channel);
    await this.#run((cmd) => cmd.del([keys.meta, keys.history]));
  }

  // -- control messages --

  /** One PUBLISH on the control pub/sub channel: every node subscribed to it gets it, once. */
  async publishControl(message: string): Promise<void> {
    await this.#run((cmd) => cmd.publish(this.#controlName, `c|${message}`));
  }

  // -- presence --

  async addPresence(
    channel: string,
    clientId: string,
    member: string,
    ttlMs: number,
  ): Promise<boolean> {
    checkPositive("ttlMs", ttlMs, false);
    const keys = new ChannelKeys(this.keyPrefix, channel);
    const args = [clientId, member, String(Math.ceil(ttlMs)), keys.pubsub];
    const reply = await this.#run((cmd) => cmd.duplexAddPresence(keys.presence, args));
    return Number(reply) === 1;
  }

  async removePresence(channel: string, clientId: string): Promise<boolean> {
    const keys = new ChannelKeys(this.keyPrefix, channel);
    const args = [clientId, keys.pubsub];
    const reply = await this.#run((cmd) => cmd.duplexRemovePresence(keys.presence, args));
    return Number(reply) === 1;
  }

  async expirePresence(channel: string): Promise<number> {
    const keys = new ChannelKeys(this.keyPrefix, channel);
    const reply = await this.#run((cmd) => cmd.duplexExpirePresence(keys.presence, [keys.pubsub]));
    return Number(reply);
  }

  async presence(
    channel: string,
    cursor: string | undefined,
    limit: number,
  ): Promise<PresencePage> {
    const keys = new ChannelKeys(this.keyPrefix, channel);
    const pageSize = Math.max(0, Math.min(MAX_COUNT, Math.floor(limit)));
    const args = [
      cursor === undefined ? "0" : "1",
      cursor ?? "",
      String(Number.isNaN(pageSize) ? 0 : pageSize),
      keys.pubsub,
    ];
    const reply = await this.#run((cmd) => cmd.duplexPresence(keys.presence, args));
    const [count, members, next] = asArray(reply, "presence");
    const page: { members: string[]; count: number; cursor?: string } = {
      members: asArray(members, "presence members")
        .filter((m) => m !== null && m !== undefined)
        .map(asText),
      count: Number(count),
    };
    if (next !== null && next !== undefined && next !== false) page.cursor = asText(next);
    return page;
  }

  // -- shutdown --

  /** Idempotent. Pending commands get up to `commandTimeoutMs` to finish; then both connections close. */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#closed = true;
    this.#channels.clear();
    const clients = [this.#cmd, this.#sub].filter((c): c is Client => c !== undefined);
    this.#closing = Promise.all(clients.map((c) => this.#closeClient(c))).then(noop);
    return this.#closing;
  }

  async #closeClient(client: Client): Promise<void> {
    if (!client.isOpen) {
      client.destroy();
      return;
    }
    try {
      await withTimeout(client.close(), this.#commandTimeoutMs, "close");
    } catch {
      // fall through to destroy
    }
    client.destroy();
  }
}
