/**
 * A small HTTP reverse proxy on loopback for transport tests, in front of one or several
 * backends (realtime nodes). Each HTTP request goes to the next backend in turn — per request,
 * not per TCP connection, as nginx's round-robin does — so nothing can rely on sticky sessions.
 * Its behaviour can be switched while it runs, to play the middleboxes that break WebSockets:
 *
 * - `upgrades: "pass"` tunnels WebSocket upgrades to a backend; `"refuse"` answers them 403;
 *   `"swallow"` relays the handshake (the client sees 101) and then passes no byte either way;
 * - `buffering: true` holds every response until the backend has finished it, then sends it
 *   whole (a proxy that buffers responses: SSE streams never arrive, long-polls do).
 */
import * as http from "node:http";
import * as net from "node:net";

export type UpgradeMode = "pass" | "refuse" | "swallow";

export interface HttpProxy {
  readonly port: number;
  upgrades: UpgradeMode;
  buffering: boolean;
  /** Requests (not upgrades) sent to each backend, by index. */
  readonly requests: number[];
  /** Upgrades tunnelled to each backend (pass and swallow). */
  readonly upgraded: number[];
  /** Paths of the requests received, in order (e.g. "/realtime/sse"). */
  readonly paths: string[];
  /** Cut every open connection (client side and backend side). */
  cutAll(): void;
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "transfer-encoding",
  "upgrade",
  "proxy-connection",
  "te",
  "trailer",
]);

export async function startHttpProxy(
  backends: readonly number[],
  options: { upgrades?: UpgradeMode; buffering?: boolean } = {},
): Promise<HttpProxy> {
  let next = 0;
  const pick = (): number => {
    const i = next++ % backends.length;
    return i;
  };
  const sockets = new Set<net.Socket>();
  const track = (socket: net.Socket): void => {
    if (sockets.has(socket)) return; // a kept-alive socket used again
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  };
  const agent = new http.Agent({ keepAlive: true });

  const proxy: HttpProxy = {
    port: 0,
    upgrades: options.upgrades ?? "pass",
    buffering: options.buffering ?? false,
    requests: backends.map(() => 0),
    upgraded: backends.map(() => 0),
    paths: [],
    cutAll() {
      for (const socket of [...sockets]) socket.resetAndDestroy();
    },
    async close() {
      proxy.cutAll();
      agent.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };

  const server = http.createServer((req, res) => {
    const i = pick();
    proxy.requests[i]!++;
    proxy.paths.push((req.url ?? "/").split("?")[0] ?? "/");
    const headers: http.OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (!HOP_BY_HOP.has(name) && value !== undefined) headers[name] = value;
    }
    const upstream = http.request(
      {
        host: "127.0.0.1",
        port: backends[i],
        method: req.method,
        path: req.url,
        headers,
        agent,
      },
      (up) => {
        const out: http.OutgoingHttpHeaders = {};
        for (const [name, value] of Object.entries(up.headers)) {
          if (!HOP_BY_HOP.has(name) && value !== undefined) out[name] = value;
        }
        if (proxy.buffering) {
          const chunks: Buffer[] = [];
          up.on("data", (c: Buffer) => chunks.push(c));
          up.on("end", () => {
            const body = Buffer.concat(chunks);
            out["content-length"] = body.length;
            res.writeHead(up.statusCode ?? 502, out);
            res.end(body);
          });
        } else {
          res.writeHead(up.statusCode ?? 502, out);
          res.flushHeaders();
          up.pipe(res);
        }
        up.on("error", () => res.destroy());
      },
    );
    upstream.on("socket", (s: net.Socket) => track(s));
    upstream.on("error", () => {
      if (!res.headersSent) {
        res.writeHead(502);
        res.end();
      } else {
        res.destroy();
      }
    });
    // The client went away: so does the request to the backend (an SSE stream, a held poll).
    res.on("close", () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  });
  server.on("connection", track);

  server.on("upgrade", (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    track(socket);
    socket.on("error", () => socket.destroy());
    if (proxy.upgrades === "refuse") {
      socket.end("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      return;
    }
    const i = pick();
    proxy.upgraded[i]!++;
    const swallow = proxy.upgrades === "swallow";
    const upstream = net.connect(backends[i]!, "127.0.0.1");
    track(upstream);
    upstream.on("error", () => socket.destroy());
    socket.on("close", () => upstream.destroy());
    upstream.on("close", () => socket.destroy());
    const lines = [`${req.method} ${req.url} HTTP/1.1`];
    for (let k = 0; k < req.rawHeaders.length; k += 2) {
      lines.push(`${req.rawHeaders[k]}: ${req.rawHeaders[k + 1]}`);
    }
    upstream.write(`${lines.join("\r\n")}\r\n\r\n`);
    if (head.length > 0 && !swallow) upstream.write(head);
    if (!swallow) {
      upstream.pipe(socket);
      socket.pipe(upstream);
      return;
    }
    // Relay the handshake response only; then nothing passes, in either direction.
    let seen = Buffer.alloc(0);
    let done = false;
    upstream.on("data", (chunk: Buffer) => {
      if (done) return;
      seen = Buffer.concat([seen, chunk]);
      const end = seen.indexOf("\r\n\r\n");
      if (end < 0) return;
      done = true;
      socket.write(seen.subarray(0, end + 4));
    });
  });

  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  (proxy as { port: number }).port = (server.address() as net.AddressInfo).port;
  return proxy;
}
