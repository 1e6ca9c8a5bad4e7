/** Server features on real sockets: heartbeat, broadcast, event listeners, attach modes, TLS, shutdown. */
import assert from "node:assert/strict";
import * as http from "node:http";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import * as net from "node:net";
import { describe, it } from "node:test";
import WebSocket from "ws";
import { type WebSocketConnection, WebSocketServer } from "../../src/server/index.js";
import { makeCertificate } from "../support/tls.js";
import { opened, rawClient, startServer } from "./helpers.js";

function listen(server: http.Server | https.Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)),
  );
}

describe("heartbeat", () => {
  it("a silent peer that never answers pings is terminated", async () => {
    const { server, port } = await startServer({ pingIntervalMs: 40, pongTimeoutMs: 40 });
    const conn = new Promise<WebSocketConnection>((resolve) => server.once("connection", resolve));
    const { socket } = await rawClient(port); // reads nothing, answers nothing
    const c = await conn;
    const code = await new Promise<number>((resolve) => c.on("close", (cd: number) => resolve(cd)));
    assert.equal(code, 1006);
    socket.destroy();
    await server.close(100);
  });

  it("a live peer (ws answers pings) is kept", async () => {
    const { server, url } = await startServer({ pingIntervalMs: 20, pongTimeoutMs: 40 });
    let pongs = 0;
    server.on("connection", (c: WebSocketConnection) => c.on("pong", () => pongs++));
    const ws = new WebSocket(url);
    await opened(ws);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(ws.readyState, WebSocket.OPEN);
    assert.ok(pongs >= 3, `only ${pongs} pongs`);
    ws.close();
    await server.close(100);
  });
});

describe("broadcast", () => {
  it("one message reaches every client, in order, framed once", async () => {
    const { server, url } = await startServer({
      perMessageDeflate: { serverNoContextTakeover: true },
    });
    const clients = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const ws = new WebSocket(url, { perMessageDeflate: i % 2 === 0 });
        await opened(ws);
        return ws;
      }),
    );
    while (server.clients.size < 20) await new Promise((r) => setTimeout(r, 5));
    const received = clients.map(() => [] as string[]);
    const all = Promise.all(
      clients.map(
        (ws, i) =>
          new Promise<void>((resolve) =>
            ws.on("message", (d: Buffer) => {
              received[i]?.push(d.toString());
              if (received[i]?.length === 3) resolve();
            }),
          ),
      ),
    );
    const long = "tick ".repeat(200);
    assert.equal(server.broadcast("one"), 20);
    assert.equal(server.broadcast(long), 20);
    assert.equal(server.broadcast("three"), 20);
    await all;
    for (const r of received) assert.deepEqual(r, ["one", long, "three"]);
    const compressing = clients.filter((ws) => ws.extensions.includes("permessage-deflate")).length;
    assert.equal(compressing, 10);
    for (const ws of clients) ws.close();
    await server.close(200);
  });

  it("a filter picks the recipients", async () => {
    const { server, url } = await startServer();
    const a = new WebSocket(url);
    const b = new WebSocket(url);
    await Promise.all([opened(a), opened(b)]);
    while (server.clients.size < 2) await new Promise((r) => setTimeout(r, 5));
    const first = [...server.clients][0];
    const got = new Promise<string>((resolve) => {
      for (const ws of [a, b]) ws.on("message", (d: Buffer) => resolve(d.toString()));
    });
    assert.equal(
      server.broadcast("only one", (c) => c === first),
      1,
    );
    assert.equal(await got, "only one");
    a.close();
    b.close();
    await server.close(200);
  });
});

describe("event listeners", () => {
  it("addEventListener gives event objects; removeEventListener removes them", async () => {
    const { server, url } = await startServer();
    const events: string[] = [];
    server.on("connection", (c: WebSocketConnection) => {
      const onMessage = (e: Record<string, unknown>): void => {
        events.push(`message:${String(e.data)}:${String(e.isBinary)}`);
        c.removeEventListener("message", onMessage);
      };
      c.addEventListener("message", onMessage);
      c.addEventListener("close", (e) =>
        events.push(`close:${String(e.code)}:${String(e.wasClean)}`),
      );
    });
    const ws = new WebSocket(url);
    await opened(ws);
    ws.send("a");
    ws.send("b");
    await new Promise((r) => setTimeout(r, 50));
    ws.close(1000);
    while (events.length < 2) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(events, ["message:a:false", "close:1000:true"]);
    await server.close(100);
  });
});

describe("attach modes", () => {
  it("noServer + handleUpgrade inside a plain node:http server", async () => {
    const wss = new WebSocketServer({ noServer: true });
    const httpServer = http.createServer((_req, res) => res.end("plain http"));
    httpServer.on("upgrade", (req, socket, head) => {
      if (req.url !== "/ws") {
        socket.destroy();
        return;
      }
      wss.handleUpgrade(req, socket, head, (c) =>
        c.on("message", (d: Buffer) => c.send(`echo:${d}`)),
      );
    });
    const port = await listen(httpServer);
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    await opened(ws);
    ws.send("x");
    const reply = await new Promise<string>((resolve) =>
      ws.on("message", (d: Buffer) => resolve(d.toString())),
    );
    assert.equal(reply, "echo:x");
    const body = await new Promise<string>((resolve) =>
      http.get(`http://127.0.0.1:${port}/`, (res) => {
        let t = "";
        res.on("data", (d) => {
          t += d;
        });
        res.on("end", () => resolve(t));
      }),
    );
    assert.equal(body, "plain http");
    ws.close();
    await wss.close(100);
    await new Promise((r) => httpServer.close(r));
  });

  it("attached to an existing server with a path: other paths are refused", async () => {
    const httpServer = http.createServer();
    const wss = new WebSocketServer({ server: httpServer, path: "/live" });
    const port = await listen(httpServer);
    const good = new WebSocket(`ws://127.0.0.1:${port}/live?x=1`);
    await opened(good);
    const status = await new Promise<number>((resolve) => {
      const bad = new WebSocket(`ws://127.0.0.1:${port}/other`);
      bad.on("unexpected-response", (_q, res) => resolve(res.statusCode ?? 0));
      bad.on("error", () => {});
    });
    assert.equal(status, 400);
    good.close();
    await wss.close(100);
    await new Promise((r) => httpServer.close(r));
  });
});

describe("timeouts", () => {
  it("a silent upgrade (authenticate never settles) is dropped after handshakeTimeoutMs", async () => {
    const { server, port } = await startServer({
      handshakeTimeoutMs: 100,
      authenticate: () => new Promise(() => {}),
    });
    const socket = net.connect(port, "127.0.0.1");
    socket.write(
      "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    socket.resume();
    await new Promise((resolve) => socket.on("close", resolve));
    assert.equal(server.clients.size, 0);
    await server.close(100);
  });
});

describe("TLS", () => {
  it("wss:// through an https server with a certificate made at test time", async () => {
    const { cert, key } = makeCertificate();
    const httpsServer = https.createServer({ cert, key });
    const wss = new WebSocketServer({ server: httpsServer });
    wss.on("connection", (c: WebSocketConnection) =>
      c.on("message", (d: Buffer) => c.send(d.toString())),
    );
    const port = await listen(httpsServer);
    const ws = new WebSocket(`wss://localhost:${port}`, { ca: cert });
    await opened(ws);
    ws.send("over tls");
    const reply = await new Promise<string>((resolve) =>
      ws.on("message", (d: Buffer) => resolve(d.toString())),
    );
    assert.equal(reply, "over tls");
    ws.close();
    await wss.close(200);
    await new Promise((r) => httpsServer.close(r));
  });
});

describe("graceful shutdown", () => {
  it("close() sends 1001 to everyone, refuses new upgrades and leaves no handle open", async () => {
    const { server, url } = await startServer();
    const clients = await Promise.all(
      [1, 2, 3].map(async () => {
        const ws = new WebSocket(url);
        await opened(ws);
        return ws;
      }),
    );
    const codes = clients.map(
      (ws) => new Promise<number>((resolve) => ws.on("close", (c) => resolve(c))),
    );
    await server.close(1_000);
    assert.deepEqual(await Promise.all(codes), [1001, 1001, 1001]);
    await new Promise((r) => setTimeout(r, 20));
    const handlesAfter = process
      .getActiveResourcesInfo()
      .filter((r) => r === "TCPServerWrap" || r === "TCPSocketWrap").length;
    assert.equal(handlesAfter, 0, "every socket and server of this file is closed");
  });
});
