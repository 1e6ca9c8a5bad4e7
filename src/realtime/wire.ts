/**
 * The duplex.v1 wire format (docs/protocol.md): one JSON object per WebSocket text message.
 *
 *   client → server  command  {"id":1,"type":"subscribe","channel":"chat:lobby"}
 *   server → client  reply    {"id":1,"result":{…}}  or  {"id":1,"error":{"code":103,…}}
 *   server → client  push     {"type":"pub","channel":"chat:lobby","offset":7,…}  (no "id")
 *
 * A command with an `id` gets exactly one reply with that id; a command without one gets none
 * (its failures come back as an `error` push). This module validates what comes off the wire and
 * encodes what goes on it. It is shared by the server and the browser client: no Node-only
 * imports, no I/O.
 */

import { ErrorCode } from "./codes.js";

export const SUBPROTOCOL = "duplex.v1";

/** A JSON value as carried in `data` fields. */
export type Json =
  | null
  | boolean
  | number
  | string
  | readonly Json[]
  | { readonly [k: string]: Json };

/** A point in a channel's stream: the offset of the last publication seen, in an epoch. */
export interface StreamPosition {
  readonly offset: number;
  readonly epoch: string;
}

/** Who published, or who is present: the connection, its user and application info. */
export interface ClientInfo {
  readonly client: string;
  readonly user: string;
  readonly info?: Json;
}

/** A publication as pushed to subscribers and returned by history and recovery. */
export interface Publication<T = Json> {
  readonly offset: number;
  readonly data: T;
  readonly from?: ClientInfo;
  readonly time?: number;
}

// ---------------------------------------------------------------------------------------------
// Commands (client → server)

export interface ConnectCommand {
  readonly type: "connect";
  readonly id?: number;
  readonly token?: string;
  readonly data?: Json;
  readonly name?: string;
}
export interface SubscribeCommand {
  readonly type: "subscribe";
  readonly id?: number;
  readonly channel: string;
  /** Recover from this position: the reply carries every publication after it, or recovered:false. */
  readonly since?: StreamPosition;
}
export interface UnsubscribeCommand {
  readonly type: "unsubscribe";
  readonly id?: number;
  readonly channel: string;
}
export interface PublishCommand {
  readonly type: "publish";
  readonly id?: number;
  readonly channel: string;
  readonly data: Json;
  /** Idempotency key: a retry with the same key within the window is not published twice. */
  readonly key?: string;
  /** Conflation key for "latest" channels: a slow subscriber gets only the newest per key. */
  readonly conflate?: string;
}
export interface HistoryCommand {
  readonly type: "history";
  readonly id?: number;
  readonly channel: string;
  readonly since?: StreamPosition;
  readonly limit?: number;
  readonly reverse?: boolean;
}
export interface PresenceCommand {
  readonly type: "presence";
  readonly id?: number;
  readonly channel: string;
  readonly cursor?: string;
  /** Members per page; 0 returns only the count. */
  readonly limit?: number;
}
export interface RpcCommand {
  readonly type: "rpc";
  readonly id?: number;
  readonly method: string;
  readonly data?: Json;
}
export interface RefreshCommand {
  readonly type: "refresh";
  readonly id?: number;
  readonly token: string;
}
export interface PingCommand {
  readonly type: "ping";
  readonly id?: number;
}

export type Command =
  | ConnectCommand
  | SubscribeCommand
  | UnsubscribeCommand
  | PublishCommand
  | HistoryCommand
  | PresenceCommand
  | RpcCommand
  | RefreshCommand
  | PingCommand;
export type CommandType = Command["type"];

// ---------------------------------------------------------------------------------------------
// Replies

export interface ConnectResult {
  readonly client: string;
  readonly user: string;
  /** Token expiry (ms since the epoch); refresh before it. Absent: no expiry. */
  readonly expires?: number;
  /** The client should send a `ping` at least this often (ms); 0 = no requirement. */
  readonly ping: number;
  /** The server node's name, when it has one (several nodes behind a load balancer). */
  readonly node?: string;
  /**
   * Largest publication `data` the server takes (bytes of its JSON text, UTF-8); a larger one
   * is refused (106) or, beyond the WebSocket message limit, ends the connection (1009). The
   * client refuses it before sending. Absent: not announced.
   */
  readonly maxPublishBytes?: number;
  readonly data?: Json;
}
export interface SubscribeResult {
  /** Current stream position (offset of the newest publication, and the epoch). */
  readonly offset: number;
  readonly epoch: string;
  /** Whether this channel keeps history, i.e. whether a later recovery can work. */
  readonly recoverable: boolean;
  /** Present when the subscribe asked for recovery: true = `publications` is exactly the gap. */
  readonly recovered?: boolean;
  readonly publications?: readonly Publication[];
}
export interface PublishResult {
  readonly offset: number;
  readonly epoch: string;
  /** True when this was a retry of an already published key: nothing new was published. */
  readonly duplicate?: boolean;
}
export interface HistoryResult {
  readonly publications: readonly Publication[];
  readonly offset: number;
  readonly epoch: string;
}
export interface PresenceResult {
  readonly count: number;
  readonly members: readonly ClientInfo[];
  /** Pass it back to get the next page; absent on the last page. */
  readonly cursor?: string;
}
export interface RpcResult {
  readonly data?: Json;
}
export interface RefreshResult {
  readonly expires?: number;
}

export interface WireError {
  readonly code: number;
  readonly message: string;
  readonly temporary?: boolean;
}

export type Reply =
  | { readonly id: number; readonly result: Record<string, unknown> }
  | { readonly id: number; readonly error: WireError };

// ---------------------------------------------------------------------------------------------
// Pushes (server → client, no id)

export interface PubPush {
  readonly type: "pub";
  readonly channel: string;
  readonly epoch: string;
  readonly offset: number;
  readonly data: Json;
  readonly from?: ClientInfo;
  readonly time?: number;
}
export interface JoinPush {
  readonly type: "join";
  readonly channel: string;
  readonly member: ClientInfo;
}
export interface LeavePush {
  readonly type: "leave";
  readonly channel: string;
  readonly member: ClientInfo;
}
export interface UnsubscribedPush {
  readonly type: "unsubscribed";
  readonly channel: string;
  readonly code: number;
  readonly reason: string;
  /** True: subscribe again (with recovery) — the server lost the stream position for you. */
  readonly resubscribe: boolean;
}
export interface DisconnectPush {
  readonly type: "disconnect";
  readonly code: number;
  readonly reason: string;
  readonly reconnect: boolean;
}
export interface ErrorPush {
  readonly type: "error";
  readonly command: string;
  readonly channel?: string;
  readonly error: WireError;
}
export type Push = PubPush | JoinPush | LeavePush | UnsubscribedPush | DisconnectPush | ErrorPush;

/** What a client can receive. */
export type ServerMessage = Reply | Push;

// ---------------------------------------------------------------------------------------------
// Validation

/** Limits applied while parsing commands. */
export interface WireLimits {
  /** @default 255 */
  readonly maxChannelBytes: number;
  /** @default 1024 */
  readonly maxKeyBytes: number;
  /** @default 8192 */
  readonly maxTokenBytes: number;
}

export const DEFAULT_WIRE_LIMITS: WireLimits = Object.freeze({
  maxChannelBytes: 255,
  maxKeyBytes: 1024,
  maxTokenBytes: 8192,
});

/** A command that could not be parsed; `id` is set when the bad command had a usable one. */
export class CommandError extends Error {
  readonly code: number;
  readonly id: number | undefined;
  constructor(message: string, id?: number, code: number = ErrorCode.BAD_REQUEST) {
    super(message);
    this.name = "CommandError";
    this.code = code;
    this.id = id;
  }
}

/** Channel names: 1–255 bytes of letters, digits and `_ - : . @ / = + , # ! $ ~`. */
const CHANNEL_RE = /^[A-Za-z0-9_\-:.@/=+,#!$~]+$/;

export function isValidChannel(name: unknown, max = DEFAULT_WIRE_LIMITS.maxChannelBytes): boolean {
  return typeof name === "string" && name.length > 0 && name.length <= max && CHANNEL_RE.test(name);
}

/** The namespace of a channel: the part before the first `:`, or "" when there is none. */
export function namespaceOf(channel: string): string {
  const i = channel.indexOf(":");
  return i < 0 ? "" : channel.slice(0, i);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isUint(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

type Fields = Record<string, unknown>;

class Reader {
  constructor(
    readonly raw: Fields,
    readonly id: number | undefined,
    readonly limits: WireLimits,
  ) {}
  fail(message: string, code?: number): never {
    throw new CommandError(message, this.id, code);
  }
  channel(): string {
    const c = this.raw.channel;
    if (typeof c !== "string") this.fail("channel must be a string");
    if (!isValidChannel(c, this.limits.maxChannelBytes)) {
      this.fail(
        `invalid channel name ${JSON.stringify(c.slice(0, 64))}`,
        ErrorCode.UNKNOWN_CHANNEL,
      );
    }
    return c;
  }
  optString(name: string, max: number): string | undefined {
    const v = this.raw[name];
    if (v === undefined) return undefined;
    if (typeof v !== "string") this.fail(`${name} must be a string`);
    if (v.length > max)
      this.fail(`${name} is longer than ${max} characters`, ErrorCode.LIMIT_EXCEEDED);
    return v;
  }
  optUint(name: string): number | undefined {
    const v = this.raw[name];
    if (v === undefined) return undefined;
    if (!isUint(v)) this.fail(`${name} must be a non-negative integer`);
    return v;
  }
  optBool(name: string): boolean | undefined {
    const v = this.raw[name];
    if (v === undefined) return undefined;
    if (typeof v !== "boolean") this.fail(`${name} must be a boolean`);
    return v;
  }
  optPosition(name: string): StreamPosition | undefined {
    const v = this.raw[name];
    if (v === undefined) return undefined;
    if (!isObject(v) || !isUint(v.offset) || typeof v.epoch !== "string" || v.epoch.length > 64) {
      this.fail(`${name} must be {"offset": integer, "epoch": string}`);
    }
    return { offset: v.offset, epoch: v.epoch };
  }
}

/** Drop undefined fields (absent optional fields stay absent, as exactOptionalPropertyTypes wants). */
function compact(o: Record<string, unknown>): Command {
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return o as unknown as Command;
}

/**
 * Parse one client message into a command. Throws CommandError (with the command's id when it
 * had a valid one) for anything that is not a well-formed duplex.v1 command.
 */
export function parseCommand(text: string, limits: WireLimits = DEFAULT_WIRE_LIMITS): Command {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new CommandError("message is not JSON");
  }
  return readCommand(raw, limits);
}

/**
 * A command from a JSON value already parsed (e.g. an element of an HTTP transport's request
 * body); the same checks and errors as parseCommand after the JSON step.
 */
export function readCommand(raw: unknown, limits: WireLimits = DEFAULT_WIRE_LIMITS): Command {
  if (!isObject(raw)) throw new CommandError("command must be a JSON object");
  const id = raw.id;
  if (id !== undefined && !isUint(id)) throw new CommandError("id must be a non-negative integer");
  const r: Reader = new Reader(raw, id, limits);
  const type = raw.type;
  const base = id === undefined ? {} : { id };
  switch (type) {
    case "connect":
      return compact({
        type,
        ...base,
        token: r.optString("token", limits.maxTokenBytes),
        data: raw.data as Json | undefined,
        name: r.optString("name", 256),
      });
    case "subscribe":
      return compact({ type, ...base, channel: r.channel(), since: r.optPosition("since") });
    case "unsubscribe":
      return { type, ...base, channel: r.channel() };
    case "publish": {
      const channel = r.channel();
      if (raw.data === undefined) r.fail("publish needs data");
      return compact({
        type,
        ...base,
        channel,
        data: raw.data as Json,
        key: r.optString("key", limits.maxKeyBytes),
        conflate: r.optString("conflate", limits.maxKeyBytes),
      });
    }
    case "history":
      return compact({
        type,
        ...base,
        channel: r.channel(),
        since: r.optPosition("since"),
        limit: r.optUint("limit"),
        reverse: r.optBool("reverse"),
      });
    case "presence":
      return compact({
        type,
        ...base,
        channel: r.channel(),
        cursor: r.optString("cursor", 1024),
        limit: r.optUint("limit"),
      });
    case "rpc": {
      const method = r.optString("method", 256);
      if (method === undefined || method.length === 0) r.fail("rpc needs a method");
      return compact({ type, ...base, method, data: raw.data as Json | undefined });
    }
    case "refresh": {
      const token = r.optString("token", limits.maxTokenBytes);
      if (token === undefined) r.fail("refresh needs a token");
      return { type, ...base, token };
    }
    case "ping":
      return { type, ...base };
    default:
      return r.fail(
        typeof type === "string"
          ? `unknown command type ${JSON.stringify(type.slice(0, 32))}`
          : "command needs a type",
      );
  }
}

/** Parse one server message on the client side. Throws on anything that is not one. */
export function parseServerMessage(text: string): ServerMessage {
  const raw: unknown = JSON.parse(text);
  if (!isObject(raw)) throw new TypeError("server message is not a JSON object");
  if (raw.id !== undefined) {
    if (!isUint(raw.id)) throw new TypeError("reply id is not an integer");
    if (isObject(raw.error)) {
      const e = raw.error;
      if (!isUint(e.code)) throw new TypeError("error code is not an integer");
      return raw as unknown as Reply;
    }
    if (!isObject(raw.result)) throw new TypeError("reply has neither result nor error");
    return raw as unknown as Reply;
  }
  switch (raw.type) {
    case "pub":
      if (typeof raw.channel !== "string" || !isUint(raw.offset) || typeof raw.epoch !== "string") {
        throw new TypeError("malformed pub push");
      }
      return raw as unknown as PubPush;
    case "join":
    case "leave":
      if (typeof raw.channel !== "string" || !isObject(raw.member)) {
        throw new TypeError(`malformed ${raw.type} push`);
      }
      return raw as unknown as JoinPush | LeavePush;
    case "unsubscribed":
      if (typeof raw.channel !== "string" || !isUint(raw.code)) {
        throw new TypeError("malformed unsubscribed push");
      }
      return raw as unknown as UnsubscribedPush;
    case "disconnect":
      if (!isUint(raw.code)) throw new TypeError("malformed disconnect push");
      return raw as unknown as DisconnectPush;
    case "error":
      if (!isObject(raw.error)) throw new TypeError("malformed error push");
      return raw as unknown as ErrorPush;
    default:
      throw new TypeError(`unknown push type ${String(raw.type)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding

export function encodeCommand(command: Command): string {
  return JSON.stringify(command);
}

export function encodeResult(id: number, result: object): string {
  return `{"id":${id},"result":${JSON.stringify(result)}}`;
}

export function encodeError(id: number, error: WireError): string {
  return `{"id":${id},"error":${JSON.stringify(error)}}`;
}

export function encodePush(push: Push): string {
  return JSON.stringify(push);
}

/**
 * Encode a `pub` push around data that is already JSON text (as the broker carries it), so a
 * publication is serialised once per node however many subscribers it has.
 */
export function encodePubPush(
  channel: string,
  epoch: string,
  offset: number,
  dataJson: string,
  fromJson: string | undefined,
  time: number | undefined,
): string {
  const from = fromJson === undefined ? "" : `,"from":${fromJson}`;
  const t = time === undefined ? "" : `,"time":${time}`;
  return `{"type":"pub","channel":${JSON.stringify(channel)},"epoch":${JSON.stringify(epoch)},"offset":${offset},"data":${dataJson}${from}${t}}`;
}
