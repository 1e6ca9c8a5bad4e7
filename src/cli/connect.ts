/**
 * `duplex connect <url>`: an interactive WebSocket client in the spirit of wscat/websocat, on our
 * own client (src/client). Lines read from stdin are sent, received messages are printed; lines
 * starting with `/` are commands (/close, /ping with the pong's round-trip time, /help).
 * Scriptable: payload-only output when stdout is not a terminal, diagnostics on stderr, and exit
 * codes that say how it ended.
 */
import { isUtf8 } from "node:buffer";
import { STATUS_CODES } from "node:http";
import { createInterface, type Interface } from "node:readline";
import { WebSocket, type WebSocketOptions } from "../client/index.js";
import { HandshakeError } from "../protocol/index.js";
import { CliError, type Command, type Io, integer, parseFlags, UsageError } from "./command.js";

export const CONNECT_USAGE = `Usage: duplex connect <url> [options]

Interactive WebSocket client: each line read from stdin is sent as a text message, each message
received is printed on its own line. <url> is ws://, wss://, http:// or https://.

Options:
  -s, --subprotocol P   offer subprotocol P (repeatable; the server picks at most one)
  -H, --header "N: V"   add request header N with value V (repeatable)
  -o, --origin URL      send this Origin header (browsers always send one)
  -b, --binary          send lines as binary messages (their UTF-8 bytes)
  -j, --json            pretty-print received JSON text; lines that are not JSON are not sent
  -k, --insecure        wss://: accept any TLS certificate (self-signed, other host name...)
      --no-deflate      do not offer permessage-deflate (offered by default, as browsers do)
  -w, --wait MS         after stdin ends, keep the connection open MS ms for late replies,
                        then close it (default 0: close at once); 'forever' waits until the
                        server closes or Ctrl-C
      --timeout MS      give up connecting after MS ms (default 10000)
  -t, --transcript      print the timestamped transcript even when stdout is not a terminal
  -q, --quiet           print received payloads only, even when stdout is a terminal
  -h, --help            print this help

Output:
  stdout is a terminal (or --transcript): a transcript, received and sent lines with the time
      < 12:03:04.123 hello          > 12:03:04.120 hi
  otherwise (or --quiet): received payloads only, one per line, nothing else
  Binary messages are always shown as hex: [binary 5 B] 68 65 6c 6c 6f
  /ping: the transcript shows the ping sent and the pong received with the round-trip time
      > 12:03:04.120 [ping] hello   < 12:03:04.121 [pong] hello (round trip 0.6 ms)
  with payload-only output the pong line goes to stderr: [pong] hello (round trip 0.6 ms)
  Notices (connected to..., disconnected...) go to stderr when it is a terminal; warnings and
  errors always go to stderr.

Commands (a line of their own; start a line with // to send one beginning with /):
  /close [CODE [REASON]]  close with CODE (1000 or 3000-4999, default 1000) and REASON
  /ping [DATA]            send a ping with DATA (at most 125 UTF-8 bytes); the pong is printed
                          with the round-trip time
  /help                   list the commands

End of input: when stdin ends (Ctrl-D, or the end of a pipe) the connection is closed with 1000
once every line was sent; replies that arrive before the server's Close are still printed, so
'echo hi | duplex connect ws://host/' prints the echo. Use --wait for slower replies.
Ctrl-C closes with 1000.

Exit codes:
  0  closed normally: by us (end of input, /close, Ctrl-C) or by the server with 1000, 1001
     or no code (1005)
  1  could not connect (refused, unreachable, timed out, TLS or handshake refused, e.g. 403)
  2  bad usage (flags, URL, header syntax)
  3  the connection ended abnormally: dropped (1006) or closed by the server with another
     code (1002, 1011, 4000...)`;

export interface ConnectOptions {
  readonly url: string;
  readonly subprotocols: readonly string[];
  readonly headers: readonly (readonly [string, string])[];
  readonly origin?: string;
  readonly binary: boolean;
  readonly json: boolean;
  readonly insecure: boolean;
  /** Offer permessage-deflate (the client's default). */
  readonly deflate: boolean;
  /** Milliseconds to stay open after stdin ends; Infinity: until the server closes. */
  readonly waitMs: number;
  readonly timeoutMs: number;
  /** "auto": a transcript when stdout is a terminal, payloads only otherwise. */
  readonly output: "auto" | "transcript" | "payload";
}

const MAX_TIMER_MS = 2_147_483_647;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Parse `duplex connect` flags; throws a UsageError with a one-line message on bad input. */
export function parseConnectArgs(args: readonly string[]): ConnectOptions | "help" {
  const { values, positionals } = parseFlags(
    args,
    {
      subprotocol: { type: "string", short: "s", multiple: true },
      header: { type: "string", short: "H", multiple: true },
      origin: { type: "string", short: "o" },
      binary: { type: "boolean", short: "b", default: false },
      json: { type: "boolean", short: "j", default: false },
      insecure: { type: "boolean", short: "k", default: false },
      "no-deflate": { type: "boolean", default: false },
      wait: { type: "string", short: "w", default: "0" },
      timeout: { type: "string", default: "10000" },
      transcript: { type: "boolean", short: "t", default: false },
      quiet: { type: "boolean", short: "q", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    1,
  );
  if (values.help === true) return "help";
  const url = positionals[0];
  if (url === undefined) throw new UsageError("missing <url> (e.g. ws://127.0.0.1:9001/)");
  checkUrl(url);
  if (values.transcript === true && values.quiet === true) {
    throw new UsageError("--transcript and --quiet cannot be used together");
  }
  const wait = values.wait ?? "0";
  const waitMs = wait === "forever" ? Number.POSITIVE_INFINITY : waitFlag(wait);
  return {
    url,
    subprotocols: values.subprotocol ?? [],
    headers: (values.header ?? []).map(parseHeader),
    ...(values.origin === undefined ? {} : { origin: values.origin }),
    binary: values.binary === true,
    json: values.json === true,
    insecure: values.insecure === true,
    deflate: values["no-deflate"] !== true,
    waitMs,
    timeoutMs: integer("--timeout", values.timeout ?? "", 1, MAX_TIMER_MS),
    output: values.transcript === true ? "transcript" : values.quiet === true ? "payload" : "auto",
  };
}

function waitFlag(text: string): number {
  try {
    return integer("--wait", text, 0, MAX_TIMER_MS);
  } catch {
    throw new UsageError(`--wait must be a number of milliseconds or 'forever', got '${text}'`);
  }
}

function checkUrl(text: string): void {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`invalid URL '${text}' (expected e.g. ws://127.0.0.1:9001/)`);
  }
  if (!["ws:", "wss:", "http:", "https:"].includes(url.protocol)) {
    throw new UsageError(`the URL must start with ws://, wss://, http:// or https://: '${text}'`);
  }
  if (url.hash !== "" || text.includes("#")) {
    throw new UsageError(`the URL must not contain a fragment (#): '${text}'`);
  }
}

/** "Name: value" → [name, value]; the value's surrounding whitespace is dropped. */
export function parseHeader(text: string): [string, string] {
  const colon = text.indexOf(":");
  const name = colon < 0 ? "" : text.slice(0, colon).trim();
  if (!TOKEN.test(name)) {
    throw new UsageError(`--header must look like "Name: value", got '${text}'`);
  }
  return [name, text.slice(colon + 1).trim()];
}

export const connectCommand: Command = {
  name: "connect",
  summary: "interactive WebSocket client (like wscat)",
  usage: CONNECT_USAGE,
  async run(args: readonly string[], io: Io): Promise<number> {
    const options = parseConnectArgs(args);
    if (options === "help") {
      io.stdout.write(`${CONNECT_USAGE}\n`);
      return 0;
    }
    return connect(options, io);
  },
};

/** Open the connection and run the session; resolves with the exit code (see CONNECT_USAGE). */
export function connect(options: ConnectOptions, io: Io): Promise<number> {
  const clientOptions: WebSocketOptions = {
    headers: options.headers.map(([name, value]): [string, string] => [name, value]),
    handshakeTimeoutMs: options.timeoutMs,
    perMessageDeflate: options.deflate,
    ...(options.origin === undefined ? {} : { origin: options.origin }),
    ...(options.insecure ? { tls: { rejectUnauthorized: false } } : {}),
  };
  let ws: WebSocket;
  try {
    ws = new WebSocket(options.url, [...options.subprotocols], clientOptions);
  } catch (e) {
    // Invalid subprotocols, header values or Origin are refused synchronously.
    throw new UsageError(errorMessage(e));
  }
  return new Session(ws, options, io).done;
}

class Session {
  readonly done: Promise<number>;
  readonly #ws: WebSocket;
  readonly #options: ConnectOptions;
  readonly #io: Io;
  readonly #transcript: boolean;
  #resolve: (code: number) => void = () => {};
  #reject: (error: Error) => void = () => {};
  #opened = false;
  /** We started the closing handshake (end of input, /close, signal). */
  #closing = false;
  #interrupted = false;
  #failure: unknown = undefined;
  #input: Interface | null = null;
  /** Pings sent and not answered yet, oldest first. */
  #pings: { readonly data: Buffer; readonly sentAt: number }[] = [];
  #waitTimer: NodeJS.Timeout | null = null;
  #drainTimer: NodeJS.Timeout | null = null;
  readonly #onAbort = (): void => {
    this.#interrupted = true;
    this.#close(1000, "");
  };

  constructor(ws: WebSocket, options: ConnectOptions, io: Io) {
    this.#ws = ws;
    this.#options = options;
    this.#io = io;
    this.#transcript =
      options.output === "transcript" || (options.output === "auto" && io.stdout.isTTY === true);
    this.done = new Promise<number>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    ws.addEventListener("open", () => this.#onOpen());
    ws.addEventListener("message", (event) => this.#onMessage(event.data));
    ws.addEventListener("pong", (event) => this.#onPong(event.data));
    ws.addEventListener("error", (event) => {
      this.#failure = event.error ?? new Error(event.message);
    });
    ws.addEventListener("close", (event) =>
      this.#onClose(event.code, event.reason, event.wasClean),
    );
    if (io.signal.aborted) this.#onAbort();
    else io.signal.addEventListener("abort", this.#onAbort, { once: true });
  }

  // ---- connection events ------------------------------------------------------------------

  #onOpen(): void {
    this.#opened = true;
    const ws = this.#ws;
    if (this.#io.stderr.isTTY === true) {
      const details = [
        ...(ws.protocol === "" ? [] : [`subprotocol: ${ws.protocol}`]),
        ...(ws.extensions === "" ? [] : [`extensions: ${ws.extensions}`]),
      ];
      const suffix = details.length === 0 ? "" : ` (${details.join(", ")})`;
      this.#notice(`connected to ${ws.url}${suffix}`);
      if ((this.#io.stdin as { isTTY?: boolean }).isTTY === true) {
        this.#notice("type /help for commands; Ctrl-D or /close to close");
      }
    }
    const input = createInterface({ input: this.#io.stdin, terminal: false, crlfDelay: Infinity });
    this.#input = input;
    input.on("line", (line) => this.#onLine(line));
    input.on("close", () => {
      if (this.#input === input) this.#onInputEnd();
    });
    // readline forwards errors of its input stream (Node >= 16).
    input.on("error", this.#onInputError);
  }

  /** A broken stdin (EIO...) ends the input like Ctrl-D instead of crashing. */
  readonly #onInputError = (error: Error): void => {
    this.#warn(`cannot read stdin: ${errorMessage(error)}`);
    const input = this.#input;
    if (input === null) return;
    input.close(); // its `close` event ends the input
  };

  #onMessage(data: unknown): void {
    let body: string;
    if (typeof data === "string") body = this.#options.json ? prettyJson(data) : data;
    else if (Buffer.isBuffer(data)) body = describeBinary(data);
    else return; // binaryType stays "nodebuffer"
    this.#print("<", body);
  }

  /** A pong: matched with the oldest ping that carried the same data (RFC 6455 §5.5.3). */
  #onPong(data: Buffer): void {
    const now = performance.now();
    const at = this.#pings.findIndex((ping) => ping.data.equals(data));
    let suffix = " (unsolicited)";
    if (at >= 0) {
      suffix = ` (round trip ${formatMs(now - (this.#pings[at]?.sentAt ?? now))})`;
      // A peer may answer only the latest of several pings: the earlier ones are answered too.
      this.#pings.splice(0, at + 1);
    }
    const line = `${describeControl("pong", data)}${suffix}`;
    if (this.#transcript) this.#print("<", line);
    else this.#notice(oneLine(line));
  }

  #onClose(code: number, reason: string, wasClean: boolean): void {
    this.#io.signal.removeEventListener("abort", this.#onAbort);
    this.#stopInput();
    if (!this.#opened) {
      const why = this.#interrupted
        ? "interrupted before the connection opened"
        : `cannot connect to ${this.#ws.url}: ${this.#describeFailure()}`;
      this.#reject(new CliError(why, 1));
      return;
    }
    const normal = wasClean && (this.#closing || code === 1000 || code === 1001 || code === 1005);
    if (normal) {
      if (this.#io.stderr.isTTY === true) {
        this.#notice(`disconnected (code ${code}${reason === "" ? "" : ` ${oneLine(reason)}`})`);
      }
      this.#resolve(0);
      return;
    }
    if (!wasClean) {
      const detail = this.#failure === undefined ? "" : `: ${errorMessage(this.#failure)}`;
      this.#reject(new CliError(`connection lost (code 1006)${detail}`, 3));
      return;
    }
    const name = CLOSE_CODE_NAMES[code];
    this.#reject(
      new CliError(
        `the server closed the connection with code ${code}${name === undefined ? "" : ` (${name})`}` +
          (reason === "" ? "" : `: ${oneLine(reason)}`),
        3,
      ),
    );
  }

  #describeFailure(): string {
    const error = this.#failure;
    if (error instanceof HandshakeError) {
      if (error.code === "WS_ERR_HANDSHAKE_STATUS") {
        const phrase = STATUS_CODES[error.httpStatus];
        const status =
          phrase === undefined ? `${error.httpStatus}` : `${error.httpStatus} ${phrase}`;
        return `the server answered ${status} instead of 101 Switching Protocols`;
      }
      return `invalid handshake response: ${error.message}`;
    }
    if (error instanceof DOMException && error.name === "TimeoutError") {
      return `no handshake response within ${this.#options.timeoutMs} ms (--timeout)`;
    }
    const code = (error as { code?: unknown } | undefined)?.code;
    if (typeof code === "string") {
      const meaning = ERRNO_MEANINGS[code];
      if (meaning !== undefined) return `${meaning} (${code})`;
      if (TLS_CERTIFICATE_CODES.has(code)) {
        return `${errorMessage(error)} (${code}; --insecure accepts it)`;
      }
      return `${errorMessage(error)} (${code})`;
    }
    return error === undefined ? "the connection failed" : errorMessage(error);
  }

  // ---- input ------------------------------------------------------------------------------

  #onLine(raw: string): void {
    if (this.#closing || this.#ws.readyState !== WebSocket.OPEN) return;
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line === "") return;
    if (line.startsWith("/") && !line.startsWith("//")) {
      this.#command(line);
      return;
    }
    const text = line.startsWith("//") ? line.slice(1) : line;
    if (this.#options.json) {
      try {
        JSON.parse(text);
      } catch (e) {
        this.#warn(`not sent, not JSON (${errorMessage(e)}): ${oneLine(text)}`);
        return;
      }
    }
    if (this.#options.binary) {
      const bytes = Buffer.from(text, "utf8");
      this.#ws.send(bytes);
      this.#print(">", describeBinary(bytes), true);
    } else {
      this.#ws.send(text);
      this.#print(">", text, true);
    }
    this.#throttle();
  }

  /** Stop reading while a lot is still buffered for the socket (a large piped file). */
  #throttle(): void {
    const input = this.#input;
    if (input === null || this.#drainTimer !== null || this.#ws.bufferedAmount < HIGH_WATER) {
      return;
    }
    input.pause();
    const check = (): void => {
      if (this.#ws.bufferedAmount >= LOW_WATER && this.#ws.readyState === WebSocket.OPEN) {
        this.#drainTimer = setTimeout(check, 10);
        return;
      }
      this.#drainTimer = null;
      input.resume();
    };
    this.#drainTimer = setTimeout(check, 10);
  }

  #command(line: string): void {
    const match = /^\/(\S*)\s*(.*)$/.exec(line);
    const name = match?.[1] ?? "";
    const rest = match?.[2] ?? "";
    switch (name) {
      case "help":
        for (const text of COMMAND_HELP) this.#notice(text);
        return;
      case "ping": {
        const data = Buffer.from(rest, "utf8");
        if (data.length > MAX_PING_BYTES) {
          this.#warn(`/ping: the data must be at most ${MAX_PING_BYTES} UTF-8 bytes`);
          return;
        }
        this.#pings.push({ data, sentAt: performance.now() });
        this.#ws.ping(data);
        this.#print(">", describeControl("ping", data), true);
        return;
      }
      case "close": {
        const [, codeText = "", reason = ""] = /^(\S*)\s*(.*)$/.exec(rest) ?? [];
        const code = codeText === "" ? 1000 : Number(codeText);
        if (!/^\d*$/.test(codeText) || (code !== 1000 && (code < 3000 || code > 4999))) {
          this.#warn(`/close: the code must be 1000 or 3000-4999, got '${codeText}'`);
          return;
        }
        if (Buffer.byteLength(reason, "utf8") > 123) {
          this.#warn("/close: the reason must be at most 123 UTF-8 bytes");
          return;
        }
        this.#close(code, reason);
        return;
      }
      default:
        this.#warn(
          `unknown command '/${name}' (try /help; start a line with // to send one beginning with /)`,
        );
    }
  }

  #onInputEnd(): void {
    this.#input = null;
    if (this.#closing) return;
    const wait = this.#options.waitMs;
    if (wait === 0) this.#close(1000, "");
    else if (Number.isFinite(wait)) this.#waitTimer = setTimeout(() => this.#close(1000, ""), wait);
    // --wait forever: stay open until the server closes or the signal aborts.
  }

  #stopInput(): void {
    const input = this.#input;
    this.#input = null;
    input?.close();
    if (this.#waitTimer !== null) clearTimeout(this.#waitTimer);
    this.#waitTimer = null;
    if (this.#drainTimer !== null) clearTimeout(this.#drainTimer);
    this.#drainTimer = null;
  }

  /** Start the closing handshake; the `close` event settles the session. */
  #close(code: number, reason: string): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#stopInput();
    this.#ws.close(code, reason); // while CONNECTING this fails the connection (then exit 1)
  }

  // ---- output -----------------------------------------------------------------------------

  /** A message: transcript line(s) with direction and time, or the bare payload. */
  #print(direction: "<" | ">", body: string, sent = false): void {
    if (!this.#transcript) {
      if (!sent) this.#io.stdout.write(`${body}\n`);
      return;
    }
    const head = `${direction} ${clock()} `;
    const lines = escapeControls(body).split("\n");
    this.#io.stdout.write(`${head}${lines.join(`\n${" ".repeat(head.length)}`)}\n`);
  }

  #notice(text: string): void {
    this.#io.stderr.write(`${text}\n`);
  }

  #warn(text: string): void {
    this.#io.stderr.write(`duplex connect: ${text}\n`);
  }
}

const HIGH_WATER = 1024 * 1024;
/** A control frame's payload limit (RFC 6455 §5.5). */
const MAX_PING_BYTES = 125;
const LOW_WATER = 256 * 1024;

const COMMAND_HELP = [
  "/close [CODE [REASON]]  close with CODE (1000 or 3000-4999, default 1000) and REASON",
  "/ping [DATA]            send a ping; the pong is printed with the round-trip time",
  "/help                   this list",
  "//text                  send '/text' (lines starting with / are commands)",
  "Ctrl-D ends the input and closes with 1000",
];

const CLOSE_CODE_NAMES: Readonly<Record<number, string>> = {
  1000: "normal closure",
  1001: "going away",
  1002: "protocol error",
  1003: "unsupported data",
  1005: "no status code",
  1006: "abnormal closure",
  1007: "invalid payload",
  1008: "policy violation",
  1009: "message too big",
  1010: "mandatory extension",
  1011: "internal error",
  1012: "service restart",
  1013: "try again later",
  1014: "bad gateway",
};

const ERRNO_MEANINGS: Readonly<Record<string, string>> = {
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset",
  ENOTFOUND: "host not found",
  EAI_AGAIN: "host name lookup failed",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  ETIMEDOUT: "connection timed out",
  EADDRNOTAVAIL: "address not available",
};

const TLS_CERTIFICATE_CODES = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

/** `[binary 5 B] 68 65 6c 6c 6f` */
export function describeBinary(bytes: Buffer): string {
  const hex = bytes.toString("hex").replace(/(..)(?!$)/g, "$1 ");
  return bytes.length === 0 ? "[binary 0 B]" : `[binary ${bytes.length} B] ${hex}`;
}

/** `[ping] hello`: the payload as text when it is UTF-8, else as hex. */
function describeControl(kind: "ping" | "pong", data: Buffer): string {
  if (data.length === 0) return `[${kind}]`;
  const body = isUtf8(data) ? data.toString("utf8") : describeBinary(data);
  return `[${kind}] ${body}`;
}

/** 0.6 ms, 12.3 ms, 250 ms */
function formatMs(ms: number): string {
  return ms < 100 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}

/** JSON text re-indented with two spaces; anything else unchanged. */
function prettyJson(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

/** Control characters other than tab and newline as \xNN (no terminal escapes from the peer). */
export function escapeControls(text: string): string {
  return text.replace(/\p{Cc}/gu, (c) =>
    c === "\n" || c === "\t" ? c : `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
}

function oneLine(text: string): string {
  return escapeControls(text).replace(/[\n\t]/g, " ");
}

/** Local time as HH:MM:SS.mmm. */
function clock(): string {
  const now = new Date();
  const two = (n: number): string => String(n).padStart(2, "0");
  const ms = String(now.getMilliseconds()).padStart(3, "0");
  return `${two(now.getHours())}:${two(now.getMinutes())}:${two(now.getSeconds())}.${ms}`;
}

function errorMessage(error: unknown): string {
  const text = error instanceof Error || error instanceof DOMException ? error.message : "";
  return oneLine(text === "" ? String(error) : text);
}
