/**
 * `duplex publish <channel> [message]` and `duplex subscribe <channel>`: the realtime protocol
 * from the command line, through the Node client SDK (so reconnects, recovery and idempotent
 * publishes behave exactly as in applications).
 *
 * Choices (also in the --help texts):
 * - publish never subscribes by itself. A namespace where only subscribers may publish (`chat`)
 *   answers 103; the error line then suggests --subscribe. Subscribing silently would make the
 *   CLI join presence behind the user's back, and 103 also means "never allowed" (`stats`).
 * - publish sends one publication at a time and waits for its ack before the next (order kept,
 *   offsets consecutive); the first refused or unacknowledged publication stops it with exit 1.
 * - --timeout bounds the first connection (publish and subscribe: exit 1, no endless retries),
 *   the subscribe reply, each history page and each publish ack. Once subscribed, subscribe
 *   survives reconnects for as long as it runs.
 * - --history N and --since read the channel's history after the subscription is live, holding
 *   live publications back meanwhile: the backlog and the live stream meet without a gap or a
 *   duplicate.
 */
import { createInterface } from "node:readline";
import { type ErrorEvent, WebSocket as NodeWebSocket } from "../client/index.js";
import {
  type Json,
  type PublicationEvent,
  type PublishResult,
  RealtimeClient,
  RealtimeError,
  type StreamPosition,
  type Subscription,
  type WebSocketConstructor,
} from "../realtime/client/node.js";
import { ERROR_MESSAGES } from "../realtime/codes.js";
import { CliError, type Command, type Io, integer, parseFlags, UsageError } from "./command.js";

const DEFAULT_URL = "ws://127.0.0.1:8080/realtime";
const DEFAULT_NAME = "duplex-cli";
const DEFAULT_TIMEOUT_MS = 10_000;
/** Publications per history request (the server's default page; its maximum is larger). */
const HISTORY_PAGE = 100;

function connectionOptionsHelp(timeout: string): string {
  return `  --url URL         realtime endpoint (DUPLEX_URL, default ${DEFAULT_URL});
                    http(s):// is taken as ws(s)://, a URL without a path gets /realtime
  --name NICK       nickname sent as connect data {"name": NICK} (default ${DEFAULT_NAME})
  --token JWT       token sent with connect (DUPLEX_TOKEN)
  --timeout MS      milliseconds allowed for ${timeout} (default ${DEFAULT_TIMEOUT_MS})`;
}

export const PUBLISH_USAGE = `Usage: duplex publish <channel> [message] [options]

Publishes to a channel of a running Duplex server through the realtime protocol and prints the
server's acknowledgement, one line per publication ("published offset 7 (epoch abc)").

The message is JSON when it parses as JSON (42, true, {"text":"hi"}), else a string. Without
a message argument every line of stdin is one publication (empty lines are skipped), sent in
order, each acknowledged before the next is sent. Put "--" before a message that starts with
"-".

Exit status: 0 when every publication was acknowledged; 1 when the server cannot be reached
within --timeout, refuses a publication (one line with its error code, e.g. "permission denied
(103)"; nothing after it is sent) or does not acknowledge one within --timeout; 2 for bad usage;
130 when interrupted.

Publishing never subscribes on its own: where only subscribers may publish (the chat
namespace of duplex serve), the server answers "permission denied (103)"; pass --subscribe.

Options:
${connectionOptionsHelp("connecting, and for each acknowledgement")}
  --raw             send the message (or each line) as a string, even if it is JSON
  --key K           idempotency key: the server stores a publication with a key once
                    (needs the message argument: one publication)
  --subscribe       subscribe to the channel first (for namespaces where only
                    subscribers may publish)
  --json            print each acknowledgement as JSON: {"offset":7,"epoch":"abc"}
                    (plus "duplicate":true when the key was already published)
  -h, --help        print this help`;

export const SUBSCRIBE_USAGE = `Usage: duplex subscribe <channel> [options]

Subscribes to a channel of a running Duplex server and prints each publication as it arrives,
one line each: offset, time (ISO 8601), publisher, data as JSON, separated by two spaces.
Publications are never printed twice or out of order. Reconnects are automatic and recover
what was missed; when the server cannot recover it, a note goes to stderr.

Exit status: 0 after --count publications or on Ctrl-C (SIGINT/SIGTERM); 1 when the server
cannot be reached within --timeout (no endless retries before the first connection), refuses
the subscription (e.g. "unknown channel (102)"), or ends it; 2 for bad usage.

Options:
${connectionOptionsHelp("connecting and subscribing, and each history page")}
  --json            one JSON object per line instead:
                    {"channel","offset","epoch","data","from","time"} where from is the
                    publisher ({"client","user","info"}) or null, time is in ms or null
  --history N       print the last N publications first, then the live ones
  --since OFF:EPOCH print every publication after this stream position first (a previous
                    run's last offset and epoch; "0:" means from the start); a note goes
                    to stderr when history no longer holds all of them
  --count N         exit after N publications (history included)
  -h, --help        print this help

A channel that keeps no history (offset 0) prints no backlog for --history or --since: a note
on stderr says so.`;

// ---------------------------------------------------------------------------------------------
// Options

interface ConnectionOptions {
  readonly url: string;
  readonly name: string;
  readonly token?: string;
  readonly timeoutMs: number;
  readonly json: boolean;
}

export interface PublishOptions extends ConnectionOptions {
  readonly channel: string;
  /** Absent: one publication per stdin line. */
  readonly message?: string;
  readonly raw: boolean;
  readonly key?: string;
  readonly subscribe: boolean;
}

export interface SubscribeOptions extends ConnectionOptions {
  readonly channel: string;
  readonly history?: number;
  readonly since?: StreamPosition;
  readonly count?: number;
}

const CONNECTION_FLAGS = {
  url: { type: "string" },
  name: { type: "string" },
  token: { type: "string" },
  timeout: { type: "string" },
  json: { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
} as const;

/** The realtime URL: ws(s) as given, http(s) turned into ws(s), an empty path → /realtime. */
export function realtimeUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--url: not a URL: '${text}'`);
  }
  if (url.protocol === "http:") url.protocol = "ws:";
  else if (url.protocol === "https:") url.protocol = "wss:";
  if (url.protocol !== "ws:" && url.protocol !== "wss:") {
    throw new UsageError(`--url must be ws://, wss://, http:// or https://, got '${text}'`);
  }
  if (url.pathname === "/" || url.pathname === "") url.pathname = "/realtime";
  return url.href;
}

function connectionOptions(
  values: {
    url?: string | undefined;
    name?: string | undefined;
    token?: string | undefined;
    timeout?: string | undefined;
    json?: boolean | undefined;
  },
  env: Readonly<Record<string, string | undefined>>,
): ConnectionOptions {
  const fromEnv = (name: string): string | undefined => (env[name] === "" ? undefined : env[name]);
  const name = values.name ?? DEFAULT_NAME;
  if (name.trim() === "") throw new UsageError("--name must not be empty");
  const token = values.token ?? fromEnv("DUPLEX_TOKEN");
  return {
    url: realtimeUrl(values.url ?? fromEnv("DUPLEX_URL") ?? DEFAULT_URL),
    name,
    ...(token === undefined ? {} : { token }),
    timeoutMs: integer("--timeout", values.timeout ?? String(DEFAULT_TIMEOUT_MS), 1, 2 ** 31 - 1),
    json: values.json === true,
  };
}

function channelArgument(positionals: readonly string[], command: string): string {
  const channel = positionals[0];
  if (channel === undefined) throw new UsageError(`missing <channel> (duplex ${command} --help)`);
  if (channel === "") throw new UsageError("<channel> must not be empty");
  return channel;
}

export function parsePublishArgs(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): PublishOptions | "help" {
  const { values, positionals } = parseFlags(
    args,
    {
      ...CONNECTION_FLAGS,
      raw: { type: "boolean", default: false },
      key: { type: "string" },
      subscribe: { type: "boolean", default: false },
    },
    2,
  );
  if (values.help === true) return "help";
  const channel = channelArgument(positionals, "publish");
  const message = positionals[1];
  if (values.key !== undefined && message === undefined) {
    throw new UsageError("--key needs the message argument (it is the key of one publication)");
  }
  if (values.key === "") throw new UsageError("--key must not be empty");
  return {
    ...connectionOptions(values, env),
    channel,
    ...(message === undefined ? {} : { message }),
    raw: values.raw === true,
    ...(values.key === undefined ? {} : { key: values.key }),
    subscribe: values.subscribe === true,
  };
}

/** `OFFSET:EPOCH` (the epoch may be empty only with offset 0; "0" alone means the start). */
export function parsePosition(text: string): StreamPosition {
  if (text === "0") return { offset: 0, epoch: "" };
  const m = /^(\d+):(.*)$/.exec(text);
  const offset = Number(m?.[1]);
  const epoch = m?.[2] ?? "";
  if (m === null || !Number.isSafeInteger(offset) || (epoch === "" && offset !== 0)) {
    throw new UsageError(`--since must be OFFSET:EPOCH (e.g. 7:a1b2c3), got '${text}'`);
  }
  return { offset, epoch };
}

export function parseSubscribeArgs(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): SubscribeOptions | "help" {
  const { values, positionals } = parseFlags(
    args,
    {
      ...CONNECTION_FLAGS,
      history: { type: "string" },
      since: { type: "string" },
      count: { type: "string" },
    },
    1,
  );
  if (values.help === true) return "help";
  const channel = channelArgument(positionals, "subscribe");
  if (values.history !== undefined && values.since !== undefined) {
    throw new UsageError("--history and --since do not go together");
  }
  const history =
    values.history === undefined ? undefined : integer("--history", values.history, 0, 1_000_000);
  const since = values.since === undefined ? undefined : parsePosition(values.since);
  const count =
    values.count === undefined
      ? undefined
      : integer("--count", values.count, 1, Number.MAX_SAFE_INTEGER);
  return {
    ...connectionOptions(values, env),
    channel,
    ...(history === undefined ? {} : { history }),
    ...(since === undefined ? {} : { since }),
    ...(count === undefined ? {} : { count }),
  };
}

// ---------------------------------------------------------------------------------------------
// Messages

/** "permission denied (103): publish not allowed on chat:x": the code's name, code, detail. */
export function describeCode(code: number, detail: string): string {
  const text = detail.replace(/\s+/g, " ").trim();
  const name = ERROR_MESSAGES[code];
  if (name === undefined) return text === "" ? `error ${code}` : `${text} (${code})`;
  return text === "" || text === name ? `${name} (${code})` : `${name} (${code}): ${text}`;
}

/** One line for an error of the SDK: the server's code and message when there is one. */
function describeError(error: unknown): string {
  if (error instanceof RealtimeError && error.code >= 100) {
    const detail = error.message.replace(
      /^(publish failed|history|connect refused|subscribe to \S+ failed): /,
      "",
    );
    return describeCode(error.code, detail);
  }
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/\s+/g, " ").trim();
}

// ---------------------------------------------------------------------------------------------
// Connection

/**
 * A RealtimeClient that remembers why its connection attempts fail (the SDK keeps only the
 * close code; the WebSocket's error event says "connect ECONNREFUSED …").
 */
class Link {
  readonly client: RealtimeClient;
  readonly #options: ConnectionOptions;
  #problem: string | undefined;

  constructor(options: ConnectionOptions) {
    this.#options = options;
    const remember = (text: string): void => {
      if (text !== "") this.#problem = text;
    };
    const closeTimeoutMs = Math.min(options.timeoutMs, 2_000);
    const WebSocket: WebSocketConstructor = class extends NodeWebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols, { closeTimeoutMs, handshakeTimeoutMs: options.timeoutMs });
        this.addEventListener("error", (event) => remember((event as ErrorEvent).message ?? ""));
      }
    };
    this.client = new RealtimeClient(options.url, {
      WebSocket,
      data: { name: options.name },
      ...(options.token === undefined ? {} : { token: options.token }),
      connectTimeoutMs: options.timeoutMs,
      requestTimeoutMs: options.timeoutMs,
      maxReconnectDelayMs: 5_000,
      onlineEvents: null,
    });
    this.client.on("error", (error) => remember(describeError(error)));
    this.client.on("disconnected", ({ code, reason, reconnect }) => {
      // 1006 (the socket failed) tells less than the WebSocket's error event just before.
      if (code !== 1006 || reason !== "") remember(disconnectText(code, reason, reconnect));
    });
  }

  /** Why the connection is not up, as far as known. */
  get problem(): string | undefined {
    return this.#problem;
  }

  /** "cannot connect to ws://…: connect ECONNREFUSED 127.0.0.1:1 (gave up after 300 ms)" */
  unreachable(): CliError {
    const why = this.#problem === undefined ? "" : `: ${this.#problem}`;
    return new CliError(
      `cannot connect to ${this.#options.url}${why} (gave up after ${this.#options.timeoutMs} ms)`,
    );
  }

  /**
   * Resolves true once connected, false when the signal aborts first; rejects with a CliError
   * after the timeout or when the server refuses the connection for good.
   */
  connected(signal: AbortSignal): Promise<boolean> {
    const client = this.client;
    client.connect();
    if (client.state === "connected") return Promise.resolve(true);
    return waitFor(
      signal,
      this.#options.timeoutMs,
      () => this.unreachable(),
      (done, fail) => [
        client.on("connected", done),
        client.on("disconnected", ({ code, reason, reconnect }) => {
          if (!reconnect) fail(refusedConnection(this.#options.url, code, reason));
        }),
      ],
    );
  }
}

/**
 * Wait for what `listen` watches: true when it calls `done`, false when `signal` aborts first;
 * rejected with what it passes to `fail`, or with `timedOut()` after `timeoutMs`. `listen`
 * returns the functions that remove its listeners; all are removed once it is settled.
 */
function waitFor(
  signal: AbortSignal,
  timeoutMs: number,
  timedOut: () => Error,
  listen: (done: () => void, fail: (error: Error) => void) => Array<() => void>,
): Promise<boolean> {
  return new Promise<boolean>((resolve, reject) => {
    let settled = false;
    let offs: Array<() => void> = [];
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      for (const off of offs) off();
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      fn();
    };
    const onAbort = (): void => settle(() => resolve(false));
    const timer = setTimeout(() => settle(() => reject(timedOut())), timeoutMs);
    signal.addEventListener("abort", onAbort, { once: true });
    offs = listen(
      () => settle(() => resolve(true)),
      (error) => settle(() => reject(error)),
    );
    if (settled) for (const off of offs) off(); // settled while listening
    if (signal.aborted) onAbort();
  });
}

function disconnectText(code: number, reason: string, reconnect: boolean): string {
  if (code >= 100 && code < 200) return describeCode(code, reason);
  if (code >= 4000 && code <= 4999) return describeCode(code, reason);
  if (code === 3008) return reason === "" ? "timeout" : reason;
  if (!reconnect && code === 1000) return reason === "" ? "closed" : reason;
  return reason === "" ? `connection closed (${code})` : `${reason} (${code})`;
}

function refusedConnection(url: string, code: number, reason: string): CliError {
  return new CliError(`${url} refused the connection: ${disconnectText(code, reason, false)}`);
}

/** Rejects after ms with the error made by `make` (and cancels with the returned function). */
function deadline(ms: number, make: () => Error): { promise: Promise<never>; cancel(): void } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const promise = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(make()), ms);
  });
  return { promise, cancel: () => clearTimeout(timer) };
}

function abortPromise(signal: AbortSignal): { promise: Promise<"aborted">; cancel(): void } {
  let listener: (() => void) | undefined;
  const promise = new Promise<"aborted">((resolve) => {
    listener = () => resolve("aborted");
    if (signal.aborted) resolve("aborted");
    else signal.addEventListener("abort", listener, { once: true });
  });
  return {
    promise,
    cancel: () => {
      if (listener !== undefined) signal.removeEventListener("abort", listener);
    },
  };
}

/** Subscribe and wait for the reply (rejects on refusal or timeout; false when aborted). */
function subscribed(sub: Subscription, link: Link, timeoutMs: number, signal: AbortSignal) {
  const timedOut = (): Error =>
    link.client.state === "connected"
      ? new CliError(`no reply to subscribe within ${timeoutMs} ms`)
      : link.unreachable();
  return waitFor(signal, timeoutMs, timedOut, (done, fail) => {
    const offs = [
      sub.on("subscribed", done),
      sub.on("unsubscribed", ({ code, reason }) => {
        fail(new CliError(`cannot subscribe: ${describeCode(code, reason)}`));
      }),
    ];
    sub.subscribe();
    return offs;
  });
}

// ---------------------------------------------------------------------------------------------
// publish

/** The message as published: JSON when it parses (unless raw), else the string itself. */
export function messageData(text: string, raw: boolean): Json {
  if (raw) return text;
  try {
    return JSON.parse(text) as Json;
  } catch {
    return text;
  }
}

export function formatAck(ack: PublishResult, json: boolean): string {
  if (json) {
    return JSON.stringify({
      offset: ack.offset,
      epoch: ack.epoch,
      ...(ack.duplicate === true ? { duplicate: true } : {}),
    });
  }
  if (ack.offset === 0 && ack.epoch === "") {
    return "published (no offset: the channel keeps no history)";
  }
  const duplicate = ack.duplicate === true ? ", duplicate: already published with this key" : "";
  return `published offset ${ack.offset} (epoch ${ack.epoch}${duplicate})`;
}

async function* stdinLines(io: Io): AsyncGenerator<string> {
  const rl = createInterface({ input: io.stdin, crlfDelay: Number.POSITIVE_INFINITY });
  const stop = (): void => rl.close();
  io.signal.addEventListener("abort", stop, { once: true });
  if ((io.stdin as { isTTY?: boolean }).isTTY === true) {
    io.stderr.write("reading messages from stdin, one per line (Ctrl-D to end)\n");
  }
  try {
    for await (const line of rl) {
      if (io.signal.aborted) return;
      if (line.trim() !== "") yield line;
    }
  } finally {
    io.signal.removeEventListener("abort", stop);
    rl.close();
  }
}

async function publishOne(
  link: Link,
  options: PublishOptions,
  text: string,
  signal: AbortSignal,
): Promise<PublishResult | "aborted"> {
  const ack = link.client.publish(options.channel, messageData(text, options.raw), {
    ...(options.key === undefined ? {} : { key: options.key }),
  });
  const timeout = deadline(options.timeoutMs, () => {
    const why =
      link.client.state === "connected"
        ? ""
        : ` (not connected${link.problem === undefined ? "" : `: ${link.problem}`})`;
    return new CliError(`no acknowledgement within ${options.timeoutMs} ms${why}`);
  });
  const abort = abortPromise(signal);
  try {
    return await Promise.race([ack, timeout.promise, abort.promise]);
  } catch (error) {
    if (error instanceof CliError) throw error;
    let line = describeError(error);
    if (error instanceof RealtimeError && error.code === 103 && !options.subscribe) {
      line += " (where only subscribers may publish, add --subscribe)";
    }
    throw new CliError(line);
  } finally {
    timeout.cancel();
    abort.cancel();
  }
}

const INTERRUPTED = (): CliError => new CliError("interrupted", 130);

/**
 * Calls `fn` when writing to stdout fails (EPIPE: `duplex subscribe … | head -1` after head
 * exits) instead of letting the error event crash the process with a stack trace. The listener
 * stays: a failed write can report after the command finished.
 */
function onOutputError(io: Io, fn: () => void): void {
  const out = io.stdout as { on?: (event: "error", listener: () => void) => unknown };
  if (typeof out.on === "function") out.on("error", fn);
}

async function runPublish(args: readonly string[], io: Io): Promise<number> {
  const options = parsePublishArgs(args, io.env);
  if (options === "help") {
    io.stdout.write(`${PUBLISH_USAGE}\n`);
    return 0;
  }
  const link = new Link(options);
  onOutputError(io, () => undefined); // acks nobody reads; the publications still count
  try {
    if (!(await link.connected(io.signal))) throw INTERRUPTED();
    if (options.subscribe) {
      const sub = link.client.channel(options.channel);
      if (!(await subscribed(sub, link, options.timeoutMs, io.signal))) throw INTERRUPTED();
    }
    const messages: AsyncIterable<string> | readonly string[] =
      options.message === undefined ? stdinLines(io) : [options.message];
    for await (const text of messages) {
      const ack = await publishOne(link, options, text, io.signal);
      if (ack === "aborted") throw INTERRUPTED();
      io.stdout.write(`${formatAck(ack, options.json)}\n`);
    }
    if (io.signal.aborted) throw INTERRUPTED();
    return 0;
  } finally {
    link.client.close();
  }
}

// ---------------------------------------------------------------------------------------------
// subscribe

/** The publisher's name for the text output: user, else info.name, else client id, else "-". */
function publisherName(p: PublicationEvent): string {
  const from = p.from;
  if (from === undefined) return "-";
  const info = from.info as { name?: unknown } | null | undefined;
  const infoName = typeof info?.name === "string" ? info.name : "";
  const name = from.user !== "" ? from.user : infoName !== "" ? infoName : from.client;
  if (typeof name !== "string" || name === "") return "-";
  // biome-ignore lint/suspicious/noControlCharactersInRegex: keep one line and the columns
  return /[\s\u0000-\u001f\u007f]/.test(name) ? JSON.stringify(name) : name;
}

export function formatPublication(p: PublicationEvent, json: boolean): string {
  if (json) {
    return JSON.stringify({
      channel: p.channel,
      offset: p.offset,
      epoch: p.epoch,
      data: p.data,
      from: p.from ?? null,
      time: p.time ?? null,
    });
  }
  const offset = p.offset === 0 && p.epoch === "" ? "-" : String(p.offset);
  const time = p.time === undefined ? "-" : new Date(p.time).toISOString();
  return `${offset}  ${time}  ${publisherName(p)}  ${JSON.stringify(p.data)}`;
}

/**
 * The publications after `from` up to `to` (same epoch), page by page. `missing` counts those
 * history no longer holds; `reset` says the stream restarted while it was read.
 */
async function readBacklog(
  sub: Subscription,
  from: number,
  to: StreamPosition,
): Promise<{ publications: PublicationEvent[]; missing: number; reset: boolean }> {
  const out: PublicationEvent[] = [];
  let at = from;
  let missing = 0;
  while (at < to.offset) {
    const page = await sub.history({
      since: { offset: at, epoch: to.epoch },
      limit: Math.min(HISTORY_PAGE, to.offset - at),
    });
    if (page.epoch !== to.epoch) return { publications: out, missing, reset: true };
    const pubs = page.publications.filter((p) => p.offset > at && p.offset <= to.offset);
    const first = pubs[0];
    if (first === undefined) {
      missing += to.offset - at;
      break;
    }
    missing += first.offset - at - 1;
    for (const p of pubs) {
      out.push({
        channel: sub.channel,
        epoch: to.epoch,
        offset: p.offset,
        data: p.data,
        ...(p.from === undefined ? {} : { from: p.from }),
        ...(p.time === undefined ? {} : { time: p.time }),
      });
    }
    at = pubs.at(-1)?.offset ?? to.offset;
  }
  return { publications: out, missing, reset: false };
}

function runSubscribe(options: SubscribeOptions, io: Io): Promise<number> {
  const link = new Link(options);
  const client = link.client;
  const sub = client.channel(options.channel);
  const note = (text: string): void => {
    io.stderr.write(`duplex subscribe: ${text}\n`);
  };

  return new Promise<number>((resolve, reject) => {
    let done = false;
    let printed = 0;
    let last: StreamPosition | undefined;
    /** Live publications held back while the backlog is read; null once it is printed. */
    let held: PublicationEvent[] | null = [];
    const offs: Array<() => void> = [];

    const finish = (outcome: number | Error): void => {
      if (done) return;
      done = true;
      clearTimeout(startTimer);
      io.signal.removeEventListener("abort", onAbort);
      for (const off of offs) off();
      client.close();
      if (typeof outcome === "number") resolve(outcome);
      else reject(outcome);
    };
    const onAbort = (): void => finish(0);

    const print = (p: PublicationEvent): void => {
      if (done) return;
      const stream = !(p.offset === 0 && p.epoch === "");
      if (stream && last !== undefined && last.epoch === p.epoch && p.offset <= last.offset) {
        return; // already printed (from the backlog)
      }
      if (stream) last = { offset: p.offset, epoch: p.epoch };
      io.stdout.write(`${formatPublication(p, options.json)}\n`);
      printed++;
      if (options.count !== undefined && printed >= options.count) finish(0);
    };

    const release = (backlog: readonly PublicationEvent[]): void => {
      const live = held ?? [];
      held = null;
      for (const p of backlog) print(p);
      for (const p of live) print(p);
    };

    const backlog = async (at: StreamPosition, recoverable: boolean): Promise<void> => {
      const wanted = options.history !== undefined || options.since !== undefined;
      if (!wanted || options.history === 0) return release([]);
      if (!recoverable) {
        note(`${options.channel} keeps no history: printing live publications only`);
        return release([]);
      }
      let from: number;
      if (options.since === undefined) {
        from = Math.max(0, at.offset - (options.history ?? 0));
      } else {
        const since = options.since;
        const sameStream = since.epoch === at.epoch || (since.epoch === "" && since.offset === 0);
        if (!sameStream) {
          note(
            `cannot recover since ${since.offset}:${since.epoch}: the channel's stream restarted (epoch now ${at.epoch || "none"}); printing live publications only`,
          );
          return release([]);
        }
        from = since.offset;
      }
      const page = await readBacklog(sub, from, at);
      if (page.reset) note("the channel's stream restarted while its history was read");
      if (options.since !== undefined && page.missing > 0) {
        note(`${page.missing} publication(s) after offset ${from} are no longer in history`);
      }
      release(page.publications);
    };

    const startTimer = setTimeout(() => {
      finish(
        client.state === "connected"
          ? new CliError(`no reply to subscribe within ${options.timeoutMs} ms`)
          : link.unreachable(),
      );
    }, options.timeoutMs);
    let started = false;

    offs.push(
      client.on("disconnected", ({ code, reason, reconnect }) => {
        if (done || reconnect) return;
        finish(
          started
            ? new CliError(
                `the server closed the connection: ${disconnectText(code, reason, false)}`,
              )
            : refusedConnection(options.url, code, reason),
        );
      }),
      sub.on("subscribed", (event) => {
        if (done) return;
        if (!started) {
          started = true;
          clearTimeout(startTimer);
          backlog({ offset: event.offset, epoch: event.epoch }, event.recoverable).catch((e) =>
            finish(new CliError(`cannot read the history: ${describeError(e)}`)),
          );
          return;
        }
        if (event.recovered === false) {
          note(
            `reconnected, but the publications missed meanwhile could not be recovered (now at offset ${event.offset})`,
          );
        }
      }),
      sub.on("publication", (p) => {
        if (held !== null) held.push(p);
        else print(p);
      }),
      sub.on("unsubscribed", ({ code, reason }) => {
        if (done || code === 0) return;
        const what = describeCode(code, reason);
        finish(
          new CliError(
            started ? `unsubscribed by the server: ${what}` : `cannot subscribe: ${what}`,
          ),
        );
      }),
    );
    io.signal.addEventListener("abort", onAbort, { once: true });
    onOutputError(io, () => finish(0));
    if (io.signal.aborted) return finish(0);
    sub.subscribe();
    client.connect();
  });
}

export const publishCommand: Command = {
  name: "publish",
  summary: "publish to a channel of a running server",
  usage: PUBLISH_USAGE,
  run: runPublish,
};

export const subscribeCommand: Command = {
  name: "subscribe",
  summary: "print a channel's publications",
  usage: SUBSCRIBE_USAGE,
  async run(args: readonly string[], io: Io): Promise<number> {
    const options = parseSubscribeArgs(args, io.env);
    if (options === "help") {
      io.stdout.write(`${SUBSCRIBE_USAGE}\n`);
      return 0;
    }
    return runSubscribe(options, io);
  },
};
