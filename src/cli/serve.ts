/**
 * `duplex serve` (what `npm start` runs): one HTTP(S) server with the realtime endpoint, the
 * chat app, live cursors, the stats page, the plain echo endpoint, the HTTP publish API and a
 * health check, on the in-memory broker by default.
 */
import { readFile } from "node:fs/promises";
import * as http from "node:http";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import { extname, join, normalize, sep } from "node:path";
import type { Duplex } from "node:stream";
import { fileURLToPath } from "node:url";
import { MemoryBroker, RedisBroker } from "../broker/index.js";
import { replyJson } from "../realtime/http-transport.js";
import {
  AuthError,
  type Broker,
  ErrorCode,
  type Identity,
  type NamespaceOptions,
  RealtimeServer,
  type RealtimeServerOptions,
  type RuleContext,
} from "../realtime/index.js";
import { type WebSocketConnection, WebSocketServer } from "../server/index.js";
import { aborted, CliError, type Command, type Io, integer, parseFlags } from "./command.js";

export const SERVE_USAGE = `Usage: duplex serve [options]

Runs the Duplex server: the chat app on /, live cursors on /cursors, the stats page on /stats,
a WebSocket echo endpoint on /echo, the realtime endpoint on /realtime, the HTTP API under /api
and /healthz. Every option can also be set with the environment variable shown.

Options:
  --host HOST          address to bind (DUPLEX_HOST, default 127.0.0.1)
  --port N             port (DUPLEX_PORT, default 8080; 0 picks a free one)
  --tls-cert FILE      PEM certificate: serve https:// and wss:// (DUPLEX_TLS_CERT)
  --tls-key FILE       PEM private key for --tls-cert (DUPLEX_TLS_KEY)
  --origins LIST       comma-separated Origins allowed to open WebSockets, or '*' for any
                       (DUPLEX_ALLOWED_ORIGINS, default: the page's own host only)
  --jwt-secret SECRET  require HS256 JWTs signed with SECRET to connect (DUPLEX_JWT_SECRET;
                       default: anyone connects with a nickname)
  --api-key KEY        enable the HTTP API (POST /api/publish, /api/disconnect) for this key
                       (DUPLEX_API_KEY)
  --broker URL         'memory' (default: this process only) or redis://HOST:PORT[/DB] to
                       share channels, history and presence with other nodes (DUPLEX_BROKER)
  --node NAME          this node's name in /healthz, /stats.json and connect replies
                       (DUPLEX_NODE, default: host:port)
  --drain-ms N         on SIGTERM, spread the clients' reconnect orders over N ms so they
                       come back to the other nodes gradually (DUPLEX_DRAIN_MS, default 0)
  -h, --help           print this help`;

export interface ServeOptions {
  readonly host: string;
  readonly port: number;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  /** undefined: same host as the request; ["*"]: any. */
  readonly origins?: readonly string[];
  readonly jwtSecret?: string;
  readonly apiKey?: string;
  /** Folder of the built front-end (dist/apps). */
  readonly appsDir?: string;
  /** Folder of the client SDK bundle (dist/browser). */
  readonly clientBundleDir?: string;
  readonly broker?: Broker;
  /** "memory" or a redis:// URL (ignored when `broker` is given). @default "memory" */
  readonly brokerUrl?: string;
  /** Reported by /healthz, /stats.json and connect replies. @default "host:port" */
  readonly node?: string;
  /** Spread the disconnects of a graceful shutdown over this many ms. @default 0 */
  readonly drainMs?: number;
  /** Stats publication period. @default 1000 */
  readonly statsIntervalMs?: number;
  /** Presence timing (embedding and tests; the defaults suit production). */
  readonly realtime?: Pick<
    RealtimeServerOptions,
    "presenceTtlMs" | "presenceSweepMs" | "httpTransports"
  >;
}

export function parseServeArgs(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): ServeOptions {
  const { values } = parseFlags(args, {
    host: { type: "string" },
    port: { type: "string" },
    "tls-cert": { type: "string" },
    "tls-key": { type: "string" },
    origins: { type: "string" },
    "jwt-secret": { type: "string" },
    "api-key": { type: "string" },
    broker: { type: "string" },
    node: { type: "string" },
    "drain-ms": { type: "string" },
  });
  const pick = (flag: string | undefined, name: string): string | undefined =>
    flag ?? (env[name] === "" ? undefined : env[name]);
  const tlsCert = pick(values["tls-cert"], "DUPLEX_TLS_CERT");
  const tlsKey = pick(values["tls-key"], "DUPLEX_TLS_KEY");
  if ((tlsCert === undefined) !== (tlsKey === undefined)) {
    throw new CliError("--tls-cert and --tls-key go together", 2);
  }
  const origins = pick(values.origins, "DUPLEX_ALLOWED_ORIGINS");
  const jwtSecret = pick(values["jwt-secret"], "DUPLEX_JWT_SECRET");
  const apiKey = pick(values["api-key"], "DUPLEX_API_KEY");
  const brokerUrl = pick(values.broker, "DUPLEX_BROKER");
  if (brokerUrl !== undefined && brokerUrl !== "memory" && !/^rediss?:\/\/[^/]/.test(brokerUrl)) {
    throw new CliError(`--broker must be 'memory' or a redis:// URL, got '${brokerUrl}'`, 2);
  }
  const node = pick(values.node, "DUPLEX_NODE");
  const drainMs = pick(values["drain-ms"], "DUPLEX_DRAIN_MS");
  return {
    host: pick(values.host, "DUPLEX_HOST") ?? "127.0.0.1",
    port: integer("--port", pick(values.port, "DUPLEX_PORT") ?? "8080", 0, 65535),
    ...(tlsCert === undefined ? {} : { tlsCert }),
    ...(tlsKey === undefined ? {} : { tlsKey }),
    ...(origins === undefined
      ? {}
      : {
          origins: origins
            .split(",")
            .map((o) => o.trim())
            .filter((o) => o !== ""),
        }),
    ...(jwtSecret === undefined ? {} : { jwtSecret }),
    ...(apiKey === undefined ? {} : { apiKey }),
    ...(brokerUrl === undefined ? {} : { brokerUrl }),
    ...(node === undefined ? {} : { node }),
    ...(drainMs === undefined ? {} : { drainMs: integer("--drain-ms", drainMs, 0, 600_000) }),
  };
}

/** The broker named by --broker: the in-memory one, or Redis (connected before we listen). */
async function makeBroker(url: string | undefined): Promise<Broker> {
  if (url === undefined || url === "memory") return new MemoryBroker();
  return new RedisBroker({ url });
}

/** Nicknames: 1–32 characters, no control characters, trimmed. */
export function validNickname(name: unknown): string | undefined {
  if (typeof name !== "string") return undefined;
  const trimmed = name.trim();
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (trimmed.length < 1 || trimmed.length > 32 || /[\u0000-\u001f\u007f]/.test(trimmed)) {
    return undefined;
  }
  return trimmed;
}

/** A stable colour for a name (the cursors and the presence list use it). */
export function colourOf(name: string): string {
  let h = 2166136261;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619) >>> 0;
  // FNV-1a, then the golden angle: similar names still get well-separated hues.
  return `hsl(${Math.round((h * 137.508) % 360)} 70% 45%)`;
}

const TYPING_INTERVAL_MS = 1000;

/** The app's channels: chat rooms, the room index, typing, cursors, server stats. */
function namespaces(): Record<string, NamespaceOptions> {
  const lastTyping = new WeakMap<object, number>();
  const typingAllowed = (ctx: RuleContext): boolean => {
    if (!ctx.subscribed) return false;
    const now = Date.now();
    const last = lastTyping.get(ctx.identity) ?? 0;
    if (now - last < TYPING_INTERVAL_MS / 2) return false; // rate limit (clients send ≤ 1/s)
    lastTyping.set(ctx.identity, now);
    return true;
  };
  return {
    chat: { presence: true, historySize: 200, historyTtlMs: 24 * 3600_000 },
    rooms: { historySize: 1000, historyTtlMs: 0, publish: "all", history: "all" },
    typing: { historySize: 0, publish: typingAllowed, slowConsumer: "drop" },
    cursors: { historySize: 0, presence: true, slowConsumer: "latest", maxQueueBytes: 64 * 1024 },
    stats: { historySize: 120, historyTtlMs: 0, publish: "grant", history: "all" },
  };
}

const PAGES: Readonly<Record<string, string>> = {
  "/": "chat.html",
  "/cursors": "cursors.html",
  "/stats": "stats.html",
};

const TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
};

export interface Serving {
  readonly url: string;
  readonly port: number;
  readonly rt: RealtimeServer;
  /** Graceful shutdown: /healthz says 503, clients get 4000 and reconnect, then everything stops. */
  close(): Promise<void>;
}

export async function startServe(options: ServeOptions): Promise<Serving> {
  const here = fileURLToPath(new URL(".", import.meta.url));
  const appsDir = options.appsDir ?? join(here, "..", "apps");
  const broker = options.broker ?? (await makeBroker(options.brokerUrl));
  const ownsBroker = options.broker === undefined;
  const rt = new RealtimeServer({
    broker,
    namespaces: namespaces(),
    maxPublishBytes: 16 * 1024,
    ...options.realtime,
    ...(options.drainMs === undefined ? {} : { drainMs: options.drainMs }),
    ...(options.apiKey === undefined ? {} : { apiKey: options.apiKey }),
    ...(options.clientBundleDir === undefined ? {} : { clientBundleDir: options.clientBundleDir }),
    ...(options.jwtSecret === undefined
      ? { authenticate: nicknameIdentity }
      : { jwt: { secret: options.jwtSecret } }),
  });
  try {
    await rt.start();
  } catch (e) {
    if (ownsBroker) await broker.close().catch(() => undefined);
    const where = options.brokerUrl ?? "memory";
    throw new CliError(`cannot start the broker (${where}): ${(e as Error).message}`);
  }

  let draining = false;
  let nodeName = options.node ?? "";
  const started = Date.now();
  const sampler = new StatsSampler(rt, started);
  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    if (path === "/healthz") {
      replyJson(res, draining ? 503 : 200, {
        status: draining ? "draining" : "ok",
        node: nodeName,
      });
      return;
    }
    if (rt.handleHttp(req, res)) return;
    if (path === "/stats.json") {
      replyJson(res, 200, { node: nodeName, ...sampler.snapshot() });
      return;
    }
    if (path === "/echo" || path === "/realtime") {
      res.writeHead(426, { "Content-Type": "text/plain", "Sec-WebSocket-Version": "13" });
      res.end(`This is a WebSocket endpoint: connect with ws://${req.headers.host ?? ""}${path}\n`);
      return;
    }
    const page = PAGES[path];
    const file = page ?? (path.startsWith("/assets/") ? path.slice("/assets/".length) : undefined);
    if (file === undefined || (req.method !== "GET" && req.method !== "HEAD")) {
      res.writeHead(404, { "Content-Type": "text/plain" });
      res.end("Not found\n");
      return;
    }
    serveFile(appsDir, file, req, res);
  };
  const server =
    options.tlsCert === undefined || options.tlsKey === undefined
      ? http.createServer(handler)
      : https.createServer(
          {
            cert: await readFile(options.tlsCert).catch(fail("--tls-cert")),
            key: await readFile(options.tlsKey).catch(fail("--tls-key")),
          },
          handler,
        );

  const originOk = (origin: string, req: http.IncomingMessage): boolean => {
    const allowed = options.origins;
    if (allowed?.includes("*") === true) return true;
    if (allowed !== undefined) return allowed.includes(origin);
    try {
      return new URL(origin).host === req.headers.host; // the page's own host only
    } catch {
      return false;
    }
  };
  const realtime = rt.webSocketServer({ noServer: true }, { allowedOrigins: originOk });
  // SSE and long-polling next to /realtime, for networks that let no WebSocket through
  // (docs/transports.md): same Origin rule; served by rt.handleHttp above.
  rt.httpTransport?.route("/realtime", originOk);
  const echo = new WebSocketServer({ noServer: true, allowedOrigins: originOk });
  echo.on("connection", (ws: WebSocketConnection) => {
    ws.on("message", (data: Buffer, binary: boolean) => {
      if (ws.readyState === 1) ws.send(data, { binary });
    });
  });
  server.on("upgrade", (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (req.url ?? "/").split("?")[0];
    const target = path === "/realtime" ? realtime : path === "/echo" ? echo : undefined;
    if (target === undefined || draining) {
      socket.on("error", () => undefined);
      socket.end(
        `HTTP/1.1 ${draining ? "503 Service Unavailable" : "404 Not Found"}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`,
      );
      return;
    }
    target.handleUpgrade(req, socket, head, (ws) => target.emit("connection", ws, req));
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) =>
      reject(
        new CliError(`cannot listen on ${options.host}:${options.port}: ${e.code ?? e.message}`),
      ),
    );
    server.listen(options.port, options.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  if (nodeName === "") nodeName = `${options.host}:${port}`;
  rt.node = nodeName; // in connect replies: which node a connection landed on
  const scheme = server instanceof https.Server ? "https" : "http";
  const host = options.host.includes(":") ? `[${options.host}]` : options.host;

  const statsTimer = setInterval(() => {
    rt.publish("stats:server", sampler.snapshot()).catch(() => undefined);
  }, options.statsIntervalMs ?? 1000);
  statsTimer.unref();

  return {
    url: `${scheme}://${host}:${port}`,
    port,
    rt,
    async close() {
      draining = true;
      clearInterval(statsTimer);
      await rt.close(3_000);
      await echo.close(1_000);
      server.closeIdleConnections();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        setTimeout(() => {
          server.closeAllConnections();
        }, 2_000).unref();
      });
      if (ownsBroker) await broker.close();
    },
  };
}

/** Without JWT: anyone connects with a nickname (`connect` data {"name": …}). */
function nicknameIdentity({ data }: { data: unknown }): Identity {
  const name = validNickname((data as { name?: unknown } | null | undefined)?.name);
  if (name === undefined) {
    throw new AuthError(ErrorCode.UNAUTHORIZED, "a nickname of 1 to 32 characters is required");
  }
  return { user: name, info: { name, colour: colourOf(name) }, grants: [] };
}

/** Rates since the previous sample, one sampler per server (so two servers in one process do not mix). */
class StatsSampler {
  private last: { time: number; publications: number; delivered: number };

  constructor(
    private readonly rt: RealtimeServer,
    private readonly started: number,
  ) {
    this.last = { time: started, publications: 0, delivered: 0 };
  }

  snapshot(): Record<string, number> {
    const { rt, last } = this;
    const now = Date.now();
    const seconds = Math.max(0.001, (now - last.time) / 1000);
    const perSecond = (rt.stats.publications - last.publications) / seconds;
    const deliveredPerSecond = (rt.stats.delivered - last.delivered) / seconds;
    if (now - last.time >= 500) {
      this.last = { time: now, publications: rt.stats.publications, delivered: rt.stats.delivered };
    }
    const memory = process.memoryUsage();
    return {
      time: now,
      uptimeSeconds: Math.round((now - this.started) / 1000),
      connections: rt.sessions.size,
      channels: rt.channelCount,
      publications: rt.stats.publications,
      publicationsPerSecond: Math.round(perSecond * 10) / 10,
      deliveriesPerSecond: Math.round(deliveredPerSecond * 10) / 10,
      rssBytes: memory.rss,
      heapUsedBytes: memory.heapUsed,
    };
  }
}

const cache = new Map<string, Buffer>();

function serveFile(
  dir: string,
  file: string,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): void {
  const path = normalize(join(dir, file));
  if (!path.startsWith(normalize(dir) + sep) || file.includes("\0")) {
    res.writeHead(404);
    res.end();
    return;
  }
  const send = (body: Buffer): void => {
    res.writeHead(200, {
      "Content-Type": TYPES[extname(path)] ?? "application/octet-stream",
      "Content-Length": body.length,
      "Cache-Control": "no-cache",
      "X-Content-Type-Options": "nosniff",
      ...(extname(path) === ".html"
        ? {
            "Content-Security-Policy":
              "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'",
            "X-Frame-Options": "DENY",
          }
        : {}),
    });
    res.end(req.method === "HEAD" ? undefined : body);
  };
  const cached = cache.get(path);
  if (cached !== undefined) {
    send(cached);
    return;
  }
  readFile(path).then(
    (body) => {
      cache.set(path, body);
      send(body);
    },
    () => {
      res.writeHead(404, { "Content-Type": "text/plain" });
      res.end(
        PAGES[(req.url ?? "").split("?")[0] ?? ""] === undefined
          ? "Not found\n"
          : "The app is not built: run npm run build\n",
      );
    },
  );
}

function fail(flag: string): (e: NodeJS.ErrnoException) => never {
  return (e) => {
    throw new CliError(`${flag}: cannot read the file (${e.code ?? e.message})`);
  };
}

export const serveCommand: Command = {
  name: "serve",
  summary: "run the Duplex server with the chat app, cursors, stats and echo",
  usage: SERVE_USAGE,
  async run(args: readonly string[], io: Io): Promise<number> {
    const options = parseServeArgs(args, io.env);
    const serving = await startServe(options);
    const ws = serving.url.replace(/^http/, "ws");
    io.stdout.write(
      [
        `Duplex is running on ${serving.url}`,
        `  chat      ${serving.url}/`,
        `  cursors   ${serving.url}/cursors`,
        `  stats     ${serving.url}/stats`,
        `  echo      ${ws}/echo`,
        `  realtime  ${ws}/realtime`,
        `  health    ${serving.url}/healthz`,
        options.apiKey === undefined
          ? "  HTTP API  off (--api-key to enable)"
          : `  HTTP API  POST ${serving.url}/api/publish, /api/disconnect`,
        "Press Ctrl+C to stop.",
        "",
      ].join("\n"),
    );
    await aborted(io.signal);
    io.stdout.write("Shutting down: clients are told to reconnect…\n");
    await serving.close();
    io.stdout.write("Stopped.\n");
    return 0;
  },
};
