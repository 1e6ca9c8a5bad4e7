/** The server against an independent peer: the `ws` client, on real loopback sockets. */
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import * as net from "node:net";
import { after, describe, it } from "node:test";
import WebSocket from "ws";
import {
  type ServerOptions,
  type WebSocketConnection,
  WebSocketServer,
} from "../../src/server/index.js";

const servers: WebSocketServer[] = [];
after(async () => {
  for (const s of servers) await s.close(100);
});

async function start(
  options: Omit<ServerOptions, "port"> = {},
): Promise<{ server: WebSocketServer; url: string }> {
  const server = await new Promise<WebSocketServer>((resolve) => {
    const s: WebSocketServer = new WebSocketServer({ port: 0, ...options }, () => resolve(s));
  });
  servers.push(server);
  const { port } = server.address() as AddressInfo;
  return { server, url: `ws://127.0.0.1:${port}` };
}

function echo(server: WebSocketServer): void {
  server.on("connection", (conn: WebSocketConnection) => {
    conn.on("message", (data: Buffer, binary: boolean) =>
      conn.send(binary ? data : data.toString(), { binary }),
    );
  });
}

function opened(ws: WebSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
}

function nextMessage(ws: WebSocket): Promise<{ data: Buffer; isBinary: boolean }> {
  return new Promise((resolve) =>
    ws.once("message", (data: Buffer, isBinary: boolean) => resolve({ data, isBinary })),
  );
}

function refusal(url: string, opts: WebSocket.ClientOptions = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, opts);
    ws.on("unexpected-response", (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.on("open", () => reject(new Error("handshake unexpectedly accepted")));
    ws.on("error", () => {});
  });
}

describe("WebSocketServer with the ws client", () => {
  it("echoes text and binary, in order, both directions", async () => {
    const { server, url } = await start();
    echo(server);
    const ws = new WebSocket(url);
    await opened(ws);
    const got: string[] = [];
    const done = new Promise<void>((resolve) =>
      ws.on("message", (data: Buffer, isBinary: boolean) => {
        got.push(`${isBinary ? "b" : "t"}:${isBinary ? data.length : data.toString()}`);
        if (got.length === 102) resolve();
      }),
    );
    for (let i = 0; i < 100; i++) ws.send(`msg ${i} κόσμε 😀`);
    ws.send(Buffer.alloc(70_000, 7));
    ws.send(Buffer.alloc(0));
    await done;
    assert.deepEqual(got.slice(0, 3), ["t:msg 0 κόσμε 😀", "t:msg 1 κόσμε 😀", "t:msg 2 κόσμε 😀"]);
    assert.deepEqual(got.slice(100), ["b:70000", "b:0"]);
    ws.close();
  });

  it("closing handshake: the client's code and reason reach the server, and back", async () => {
    const { server, url } = await start();
    const serverClosed = new Promise<[number, string, boolean]>((resolve) =>
      server.on("connection", (c: WebSocketConnection) =>
        c.on("close", (code: number, reason: string, clean: boolean) =>
          resolve([code, reason, clean]),
        ),
      ),
    );
    const ws = new WebSocket(url);
    await opened(ws);
    const clientClosed = new Promise<[number, string]>((resolve) =>
      ws.on("close", (code, reason) => resolve([code, reason.toString()])),
    );
    ws.close(4000, "done ✓");
    assert.deepEqual(await serverClosed, [4000, "done ✓", true]);
    assert.deepEqual(await clientClosed, [4000, "done ✓"]);
  });

  it("subprotocol: the server's choice is what the client sees", async () => {
    const { server, url } = await start({
      handleProtocols: (offered) => (offered.includes("b") ? "b" : undefined),
    });
    echo(server);
    const ws = new WebSocket(url, ["a", "b"]);
    await opened(ws);
    assert.equal(ws.protocol, "b");
    ws.close();
  });

  it("Origin policy: a disallowed Origin gets 403 before the 101; an allowed one connects", async () => {
    const { url } = await start({ allowedOrigins: ["https://good.example"] });
    assert.equal(await refusal(url, { origin: "https://evil.example" }), 403);
    const ws = new WebSocket(url, { origin: "https://good.example" });
    await opened(ws);
    ws.close();
  });

  it("authenticate can refuse with 401", async () => {
    const { url } = await start({
      authenticate: async (req) =>
        req.headers.authorization === "Bearer ok" ? undefined : { status: 401, reason: "no token" },
    });
    assert.equal(await refusal(url), 401);
    const ws = new WebSocket(url, { headers: { authorization: "Bearer ok" } });
    await opened(ws);
    ws.close();
  });

  it("maxConnections: beyond it, 503", async () => {
    const { url } = await start({ maxConnections: 1 });
    const first = new WebSocket(url);
    await opened(first);
    assert.equal(await refusal(url), 503);
    first.close();
  });

  it("permessage-deflate with ws, both directions", async () => {
    const { server, url } = await start({ perMessageDeflate: true });
    echo(server);
    const ws = new WebSocket(url, { perMessageDeflate: true });
    await opened(ws);
    assert.match(ws.extensions, /permessage-deflate/);
    const big = "compress me ".repeat(10_000);
    ws.send(big);
    const reply = await nextMessage(ws);
    assert.equal(reply.data.toString(), big);
    ws.close();
  });

  it("permessage-deflate: a client that sends and closes at once gets every echo, then the server's Close", async () => {
    const { server, url } = await start({ perMessageDeflate: true });
    echo(server);
    const serverClosed = new Promise<[number, boolean]>((resolve) =>
      server.on("connection", (c: WebSocketConnection) =>
        c.on("close", (code: number, _reason: string, clean: boolean) => resolve([code, clean])),
      ),
    );
    const ws = new WebSocket(url, { perMessageDeflate: true });
    await opened(ws);
    const events: string[] = [];
    ws.on("message", (data: Buffer) => events.push(data.toString()));
    const clientClosed = new Promise<void>((resolve) =>
      ws.on("close", (code: number) => {
        events.push(`close ${code}`);
        resolve();
      }),
    );
    const sent = Array.from({ length: 20 }, (_, i) => `line ${i} ${"x".repeat(i * 50)}`);
    for (const text of sent) ws.send(text);
    ws.close(1000);
    await clientClosed;
    assert.deepEqual(events, [...sent, "close 1000"]);
    assert.deepEqual(await serverClosed, [1000, true]);
  });

  it("bytes that arrive in the same packet as the upgrade request are not lost", async () => {
    const { server, url } = await start();
    echo(server);
    const port = Number(new URL(url).port);
    const sock = net.connect(port, "127.0.0.1");
    await new Promise((r) => sock.once("connect", r));
    const frame = Buffer.from([0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
    const request =
      "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    sock.write(Buffer.concat([Buffer.from(request), frame]));
    let received = Buffer.alloc(0);
    await new Promise<void>((resolve) =>
      sock.on("data", (d: Buffer) => {
        received = Buffer.concat([received, d]);
        if (received.includes(Buffer.from([0x81, 0x05]))) resolve();
      }),
    );
    const text = received.toString("latin1");
    assert.match(text, /^HTTP\/1\.1 101 /);
    assert.match(text, /Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=/);
    assert.ok(
      received
        .subarray(received.length - 7)
        .equals(Buffer.from([0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f])),
    );
    sock.destroy();
  });

  it("a protocol violation closes with 1002 and the server stays up for others", async () => {
    const { server, url } = await start();
    echo(server);
    const port = Number(new URL(url).port);
    const bad = net.connect(port, "127.0.0.1");
    const request =
      "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    // An unmasked client frame: RFC 6455 §5.1 requires failing with 1002.
    bad.write(Buffer.concat([Buffer.from(request), Buffer.from([0x81, 0x02, 0x68, 0x69])]));
    let got = Buffer.alloc(0);
    await new Promise<void>((resolve) => {
      bad.on("data", (d: Buffer) => {
        got = Buffer.concat([got, d]);
      });
      bad.on("close", () => resolve());
    });
    const close = got.subarray(got.indexOf(Buffer.from([0x88])));
    assert.equal(close.readUInt16BE(2), 1002);
    const ws = new WebSocket(url);
    await opened(ws);
    ws.send("still here");
    assert.equal((await nextMessage(ws)).data.toString(), "still here");
    ws.close();
  });

  it("invalid handshakes get the right status: 426 for version 8, 400 without a key", async () => {
    const { url } = await start();
    const port = Number(new URL(url).port);
    async function status(request: string): Promise<string> {
      const s = net.connect(port, "127.0.0.1");
      s.write(request);
      let text = "";
      for await (const d of s) text += (d as Buffer).toString("latin1");
      return text.split("\r\n")[0] ?? "";
    }
    const base = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n";
    assert.equal(
      await status(
        `${base}Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n`,
      ),
      "HTTP/1.1 426 Upgrade Required",
    );
    assert.match(await status(`${base}Sec-WebSocket-Version: 13\r\n\r\n`), /^HTTP\/1\.1 400 /);
  });

  it("graceful close(): every client gets 1001 and the server stops listening", async () => {
    const { server, url } = await start();
    const ws = new WebSocket(url);
    await opened(ws);
    const code = new Promise<number>((resolve) => ws.on("close", (c) => resolve(c)));
    await server.close(2_000);
    assert.equal(await code, 1001);
    assert.equal(server.clients.size, 0);
    assert.equal(server.address(), null);
  });
});
