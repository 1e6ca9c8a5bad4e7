/**
 * The WHATWG WebSocket client against independent peers: the `ws` server, raw TCP servers that
 * misbehave on purpose, and (for a quick check) our own server, on real loopback sockets.
 * Assertions are on what the peer observed, not only on what the client reports.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import * as net from "node:net";
import { afterEach, describe, it } from "node:test";
import {
  WebSocketServer as PeerServer,
  type WebSocket as PeerSocket,
  type ServerOptions,
} from "ws";
import {
  CloseEvent,
  type ErrorEvent,
  WebSocket,
  type WebSocketOptions,
} from "../../src/client/index.js";
import { type WebSocketConnection, WebSocketServer } from "../../src/server/index.js";
import { makeCertificate } from "../support/tls.js";

// ---- cleanup: every server and socket a test opens is closed after it ----------------------

const cleanups: (() => void | Promise<void>)[] = [];
const clients: WebSocket[] = [];

afterEach(async () => {
  for (const ws of clients.splice(0)) {
    if (ws.readyState === WebSocket.CLOSED) continue;
    const closed = new Promise((resolve) => ws.addEventListener("close", resolve));
    ws.close();
    await Promise.race([closed, delay(1_000)]);
  }
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

function client(
  url: string,
  protocols?: string | string[] | WebSocketOptions,
  options: WebSocketOptions = {},
): WebSocket {
  const ws = new WebSocket(url, protocols, options);
  clients.push(ws);
  return ws;
}

async function peerServer(
  options: Omit<ServerOptions, "port" | "host"> = {},
): Promise<{ wss: PeerServer; url: string }> {
  const wss = new PeerServer({ port: 0, host: "127.0.0.1", ...options });
  cleanups.push(async () => {
    for (const c of wss.clients) c.terminate();
    await new Promise((resolve) => wss.close(resolve));
  });
  await new Promise<void>((resolve) => wss.once("listening", () => resolve()));
  const { port } = wss.address() as AddressInfo;
  return { wss, url: `ws://127.0.0.1:${port}` };
}

function echo(wss: PeerServer): void {
  wss.on("connection", (peer: PeerSocket) => {
    peer.on("message", (data: Buffer, isBinary: boolean) => peer.send(data, { binary: isBinary }));
  });
}

async function rawServer(
  onSocket: (socket: net.Socket) => void,
): Promise<{ url: string; port: number }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    onSocket(socket);
  });
  cleanups.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `ws://127.0.0.1:${port}`, port };
}

/** Everything a client fires, in order, with promises for the usual waits. */
function observe(ws: WebSocket) {
  const log: string[] = [];
  const messages: unknown[] = [];
  let waiter: { count: number; resolve: () => void } | null = null;
  let error: ErrorEvent | undefined;
  const opened = new Promise<void>((resolve, reject) => {
    ws.addEventListener("open", () => resolve());
    ws.addEventListener("close", () => reject(new Error("closed before open")));
  });
  opened.catch(() => {});
  const closed = new Promise<CloseEvent>((resolve) =>
    ws.addEventListener("close", (event) => resolve(event)),
  );
  ws.addEventListener("open", () => log.push("open"));
  ws.addEventListener("error", (event) => {
    error = event;
    log.push(`error(readyState=${ws.readyState})`);
  });
  ws.addEventListener("close", () => log.push("close"));
  ws.addEventListener("message", (event) => {
    messages.push(event.data);
    if (waiter !== null && messages.length >= waiter.count) {
      const w = waiter;
      waiter = null;
      w.resolve();
    }
  });
  return {
    log,
    messages,
    opened,
    closed,
    get error() {
      return error;
    },
    /** Resolves once `count` messages in total have arrived. */
    received(count: number): Promise<unknown[]> {
      if (messages.length >= count) return Promise.resolve(messages);
      return new Promise((resolve) => {
        waiter = { count, resolve: () => resolve(messages) };
      });
    },
  };
}

/** The `error` property of the ErrorEvent the client fired (fails if it fired none). */
function errorOf(o: { readonly error: ErrorEvent | undefined }): unknown {
  assert.ok(o.error !== undefined, "an error event was fired");
  return o.error.error;
}

function acceptKey(key: string): string {
  return createHash("sha1").update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64");
}

/** A broken build fails a test instead of hanging the run. */
const timeout = { timeout: 5_000 };

// ---- tests ----------------------------------------------------------------------------------

describe("WebSocket (client) with the ws server", timeout, () => {
  it("opens, echoes text and binary with each binaryType, and sends Blobs", async () => {
    const { wss, url } = await peerServer();
    const seen: string[] = [];
    wss.on("connection", (peer: PeerSocket) => {
      peer.on("message", (data: Buffer, isBinary: boolean) => {
        seen.push(`${isBinary ? "binary" : "text"}:${isBinary ? data.toString("hex") : data}`);
        peer.send(data, { binary: isBinary });
      });
    });
    const ws = client(url);
    assert.equal(ws.readyState, WebSocket.CONNECTING);
    assert.equal(ws.binaryType, "nodebuffer");
    const openedVia = new Promise<Event>((resolve) => {
      ws.onopen = resolve;
    });
    const o = observe(ws);
    await openedVia;
    assert.equal(ws.readyState, WebSocket.OPEN);
    assert.equal(ws.url, `${url}/`);

    ws.send("héllo ✓ 😀");
    assert.deepEqual(await o.received(1), ["héllo ✓ 😀"]);

    ws.send(Buffer.from([1, 2, 3]));
    await o.received(2);
    assert.ok(Buffer.isBuffer(o.messages[1]));
    assert.deepEqual([...(o.messages[1] as Buffer)], [1, 2, 3]);

    ws.binaryType = "arraybuffer";
    ws.send(new Uint16Array([0x0504, 0x0706]));
    ws.send(new Uint8Array([9, 8, 7]).buffer);
    await o.received(4);
    assert.ok(o.messages[2] instanceof ArrayBuffer);
    assert.deepEqual([...new Uint8Array(o.messages[2] as ArrayBuffer)], [4, 5, 6, 7]);
    assert.deepEqual([...new Uint8Array(o.messages[3] as ArrayBuffer)], [9, 8, 7]);

    ws.binaryType = "blob";
    ws.binaryType = "nonsense" as "blob"; // ignored, as WebIDL does for enums
    assert.equal(ws.binaryType, "blob");
    ws.send(new Blob([Buffer.from([0xaa]), new Uint8Array([0xbb, 0xcc])]));
    ws.send("after the blob");
    await o.received(6);
    assert.ok(o.messages[4] instanceof Blob);
    assert.deepEqual(
      [...new Uint8Array(await (o.messages[4] as Blob).arrayBuffer())],
      [0xaa, 0xbb, 0xcc],
    );
    assert.equal(o.messages[5], "after the blob");

    // What the server received, in order, with the right opcodes.
    assert.deepEqual(seen, [
      "text:héllo ✓ 😀",
      "binary:010203",
      "binary:04050607",
      "binary:090807",
      "binary:aabbcc",
      "text:after the blob",
    ]);
  });

  it("keeps 1,000 messages in order, Blobs included", async () => {
    const { wss, url } = await peerServer();
    const seen: string[] = [];
    wss.on("connection", (peer: PeerSocket) => {
      peer.on("message", (data: Buffer, isBinary: boolean) => {
        seen.push(data.toString());
        peer.send(data, { binary: isBinary });
      });
    });
    const ws = client(url);
    const o = observe(ws);
    await o.opened;
    const expected: string[] = [];
    for (let i = 0; i < 1_000; i++) {
      const text = `message ${i}`;
      expected.push(text);
      if (i % 10 === 3) ws.send(new Blob([text]));
      else if (i % 10 === 7) ws.send(Buffer.from(text));
      else ws.send(text);
    }
    const got = await o.received(1_000);
    assert.deepEqual(seen, expected);
    assert.deepEqual(
      got.map((m) => (typeof m === "string" ? m : (m as Buffer).toString())),
      expected,
    );
  });

  it("subprotocol: the server's choice is the protocol attribute", async () => {
    const { wss, url } = await peerServer({
      handleProtocols: (offered: Set<string>) => (offered.has("chat.v2") ? "chat.v2" : false),
    });
    const offeredSeen: string[] = [];
    wss.on("connection", (peer: PeerSocket, req) => {
      offeredSeen.push(String(req.headers["sec-websocket-protocol"]));
      offeredSeen.push(`chosen=${peer.protocol}`);
    });
    const ws = client(url, ["chat.v1", "chat.v2"]);
    assert.equal(ws.protocol, "");
    await observe(ws).opened;
    assert.equal(ws.protocol, "chat.v2");
    assert.deepEqual(offeredSeen, ["chat.v1, chat.v2", "chosen=chat.v2"]);

    const plain = client(url, "other");
    await observe(plain).opened;
    assert.equal(plain.protocol, "");
  });

  it("permessage-deflate with the ws server, compressed in both directions", async () => {
    const { wss, url } = await peerServer({ perMessageDeflate: { threshold: 0 } });
    let serverSocket: net.Socket | undefined;
    let serverExtensions = "";
    wss.on("connection", (peer: PeerSocket, req) => {
      serverSocket = req.socket;
      serverExtensions = peer.extensions;
      peer.on("message", (data: Buffer, isBinary: boolean) =>
        peer.send(data, { binary: isBinary }),
      );
    });
    const ws = client(url);
    const o = observe(ws);
    await o.opened;
    assert.match(ws.extensions, /^permessage-deflate/);
    assert.match(serverExtensions, /permessage-deflate/);
    const big = "compress me please ".repeat(10_000); // 190,000 bytes
    const readBefore = serverSocket!.bytesRead;
    const writtenBefore = serverSocket!.bytesWritten;
    ws.send(big);
    ws.send(Buffer.alloc(100_000, 0x61));
    const [text, binary] = await o.received(2);
    assert.equal(text, big);
    assert.deepEqual(binary, Buffer.alloc(100_000, 0x61));
    // The peer's socket saw a few kilobytes each way, not ~290 kB.
    assert.ok(serverSocket!.bytesRead - readBefore < 10_000, "client -> server compressed");
    assert.ok(serverSocket!.bytesWritten - writtenBefore < 10_000, "server -> client compressed");

    const off = client(url, [], { perMessageDeflate: false });
    await observe(off).opened;
    assert.equal(off.extensions, "");
  });

  it("client close(4000, reason): the server sees code and reason, the close is clean", async () => {
    const { wss, url } = await peerServer();
    const serverSaw = new Promise<[number, string]>((resolve) =>
      wss.on("connection", (peer: PeerSocket) =>
        peer.on("close", (code: number, reason: Buffer) => resolve([code, reason.toString()])),
      ),
    );
    const ws = client(url);
    const o = observe(ws);
    await o.opened;
    ws.close(4000, "bye ✓");
    assert.equal(ws.readyState, WebSocket.CLOSING);
    ws.send("dropped"); // no throw after closing started; only counted
    assert.equal(ws.bufferedAmount >= 7, true);
    const event = await o.closed;
    assert.deepEqual(await serverSaw, [4000, "bye ✓"]);
    assert.ok(event instanceof CloseEvent);
    assert.deepEqual([event.code, event.reason, event.wasClean], [4000, "bye ✓", true]);
    assert.equal(ws.readyState, WebSocket.CLOSED);
    assert.deepEqual(o.log, ["open", "close"]);
  });

  it("server-initiated close: the CloseEvent carries the server's code and reason", async () => {
    const { wss, url } = await peerServer();
    wss.on("connection", (peer: PeerSocket) => peer.close(4321, "server says bye"));
    const ws = client(url);
    const closedVia = new Promise<CloseEvent>((resolve) => {
      ws.onclose = resolve;
    });
    const o = observe(ws);
    const event = await closedVia;
    assert.deepEqual([event.code, event.reason, event.wasClean], [4321, "server says bye", true]);
    assert.deepEqual(o.log, ["open", "close"]);
  });

  it("a refused handshake (401) gives error, then close 1006", async () => {
    let requests = 0;
    const { wss, url } = await peerServer({
      verifyClient: (_info, callback) => {
        requests++;
        callback(false, 401, "Unauthorized");
      },
    });
    const ws = client(url, [], { headers: { Authorization: "Bearer nope" } });
    const errored = new Promise<ErrorEvent>((resolve) => {
      ws.onerror = resolve;
    });
    const o = observe(ws);
    const event = await o.closed;
    const error = (await errored).error as { code: string; httpStatus: number };
    assert.equal(error.code, "WS_ERR_HANDSHAKE_STATUS");
    assert.equal(error.httpStatus, 401);
    assert.deepEqual(o.log, ["error(readyState=3)", "close"]);
    assert.deepEqual([event.code, event.reason, event.wasClean], [1006, "", false]);
    assert.equal(requests, 1);
    assert.equal(wss.clients.size, 0);
  });

  it("connection refused (closed port) gives error, then close 1006", async () => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    const ws = client(`ws://127.0.0.1:${port}`);
    const o = observe(ws);
    const event = await o.closed;
    assert.deepEqual(o.log, ["error(readyState=3)", "close"]);
    assert.equal((errorOf(o) as NodeJS.ErrnoException).code, "ECONNREFUSED");
    assert.deepEqual([event.code, event.wasClean], [1006, false]);
  });

  it("a server that never answers the upgrade: handshake timeout, error, close 1006", async () => {
    let request = "";
    let peerClosed!: Promise<void>;
    const { url } = await rawServer((socket) => {
      socket.on("data", (chunk: Buffer) => {
        request += chunk.toString("latin1");
      });
      peerClosed = new Promise((resolve) => socket.on("close", () => resolve()));
    });
    const started = Date.now();
    const ws = client(url, [], { handshakeTimeoutMs: 200 });
    const o = observe(ws);
    const event = await o.closed;
    assert.ok(Date.now() - started >= 190);
    assert.deepEqual(o.log, ["error(readyState=3)", "close"]);
    assert.equal((errorOf(o) as Error).name, "TimeoutError");
    assert.deepEqual([event.code, event.wasClean], [1006, false]);
    await peerClosed; // the client dropped the TCP connection
    assert.match(request, /^GET \/ HTTP\/1\.1\r\n/);
    assert.match(request, /\r\nUpgrade: websocket\r\n/i);
    assert.match(request, /\r\nSec-WebSocket-Extensions: permessage-deflate/);
  });

  it("a protocol error by the server: error, close 1006, and the server got a 1002", async () => {
    let fromClient = Buffer.alloc(0);
    let peerClosed!: Promise<void>;
    const { url } = await rawServer((socket) => {
      let answered = false;
      socket.on("data", (chunk: Buffer) => {
        fromClient = Buffer.concat([fromClient, chunk]);
        const text = fromClient.toString("latin1");
        const end = text.indexOf("\r\n\r\n");
        if (answered || end < 0) return;
        answered = true;
        const key = /sec-websocket-key: *(\S+)/i.exec(text)?.[1] ?? "";
        fromClient = fromClient.subarray(end + 4);
        // The 101, a text frame and a frame with reserved opcode 0x3, in one write.
        socket.write(
          Buffer.concat([
            Buffer.from(
              "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" +
                `Connection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n`,
              "latin1",
            ),
            Buffer.from([0x81, 0x02, 0x68, 0x69]),
            Buffer.from([0x83, 0x00]),
          ]),
        );
      });
      peerClosed = new Promise((resolve) => socket.on("close", () => resolve()));
    });
    const ws = client(url, [], { closeTimeoutMs: 200 });
    const o = observe(ws);
    const event = await o.closed;
    await peerClosed;
    assert.deepEqual(o.messages, ["hi"]); // frames after the head in the same chunk are read
    assert.deepEqual(o.log, ["open", "error(readyState=3)", "close"]);
    assert.equal((errorOf(o) as { code: string }).code, "WS_ERR_INVALID_OPCODE");
    assert.deepEqual([event.code, event.reason, event.wasClean], [1006, "", false]);
    // The server received a masked Close frame with code 1002.
    assert.equal(fromClient[0], 0x88);
    const mask = fromClient.subarray(2, 6);
    const code = ((fromClient[6]! ^ mask[0]!) << 8) | (fromClient[7]! ^ mask[1]!);
    assert.equal(code, 1002);
  });

  it("a server dropping TCP after open: close 1006 without an error event", async () => {
    const { wss, url } = await peerServer();
    wss.on("connection", (peer: PeerSocket) => setTimeout(() => peer.terminate(), 10));
    const ws = client(url, { perMessageDeflate: false }); // options as the second argument
    const o = observe(ws);
    const event = await o.closed;
    assert.deepEqual(o.log, ["open", "close"]);
    assert.deepEqual([event.code, event.reason, event.wasClean], [1006, "", false]);
    assert.equal(ws.extensions, "");
  });

  it("invalid handshake responses fail the connection: error, then close 1006", async () => {
    const accept = (key: string) =>
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      `Sec-WebSocket-Accept: ${acceptKey(key)}\r\n`;
    const cases: { name: string; respond: (key: string) => string; code: string }[] = [
      {
        name: "wrong accept key",
        respond: () =>
          "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
          "Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n",
        code: "WS_ERR_HANDSHAKE_ACCEPT",
      },
      {
        name: "subprotocol not offered",
        respond: (key) => `${accept(key)}Sec-WebSocket-Protocol: other\r\n\r\n`,
        code: "WS_ERR_HANDSHAKE_SUBPROTOCOL",
      },
      {
        name: "extension not offered",
        respond: (key) => `${accept(key)}Sec-WebSocket-Extensions: x-unknown\r\n\r\n`,
        code: "WS_ERR_HANDSHAKE_EXTENSION",
      },
      {
        name: "invalid permessage-deflate parameter",
        respond: (key) =>
          `${accept(key)}Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=99\r\n\r\n`,
        code: "WS_ERR_HANDSHAKE_EXTENSION",
      },
      {
        name: "head larger than maxHandshakeBytes",
        respond: (key) => `${accept(key)}X-Padding: ${"p".repeat(2_000)}\r\n\r\n`,
        code: "WS_ERR_HANDSHAKE_HEADERS_TOO_LARGE",
      },
      {
        name: "malformed status line",
        respond: () => "HTTP/1.1 whatever\r\n\r\n",
        code: "WS_ERR_HANDSHAKE_MALFORMED",
      },
    ];
    for (const c of cases) {
      let peerClosed!: Promise<void>;
      const { url } = await rawServer((socket) => {
        let request = "";
        socket.on("data", (chunk: Buffer) => {
          request += chunk.toString("latin1");
          if (!request.includes("\r\n\r\n")) return;
          const key = /sec-websocket-key: *(\S+)/i.exec(request)?.[1] ?? "";
          socket.write(c.respond(key), "latin1");
        });
        peerClosed = new Promise((resolve) => socket.on("close", () => resolve()));
      });
      const ws = client(url, ["chat"], { limits: { maxHandshakeBytes: 1_024 } });
      const o = observe(ws);
      const event = await o.closed;
      await peerClosed; // the client dropped the connection, with no frame exchanged
      assert.deepEqual(o.log, ["error(readyState=3)", "close"], c.name);
      assert.equal((errorOf(o) as { code: string }).code, c.code, c.name);
      assert.deepEqual([event.code, event.wasClean], [1006, false], c.name);
    }
  });

  it("wss:// against an https server with a self-signed certificate", async () => {
    const { cert, key } = makeCertificate();
    const httpsServer = https.createServer({ cert, key });
    const wss = new PeerServer({ server: httpsServer });
    cleanups.push(async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise((resolve) => wss.close(resolve));
      httpsServer.closeAllConnections();
      await new Promise((resolve) => httpsServer.close(resolve));
    });
    echo(wss);
    let encrypted = false;
    wss.on("connection", (_peer: PeerSocket, req) => {
      encrypted = "encrypted" in req.socket && req.socket.encrypted === true;
    });
    await new Promise<void>((resolve) => httpsServer.listen(0, "127.0.0.1", resolve));
    const { port } = httpsServer.address() as AddressInfo;

    // https:// is mapped to wss:// as browsers do.
    const ws = client(`https://127.0.0.1:${port}/secure`, [], {
      tls: { ca: cert, servername: "localhost" },
    });
    assert.equal(ws.url, `wss://127.0.0.1:${port}/secure`);
    const o = observe(ws);
    await o.opened;
    ws.send("over tls");
    assert.deepEqual(await o.received(1), ["over tls"]);
    assert.equal(encrypted, true);

    // Without the CA the certificate is refused: error, then close 1006.
    const untrusted = client(`wss://127.0.0.1:${port}`, [], { tls: { servername: "localhost" } });
    const u = observe(untrusted);
    const event = await u.closed;
    assert.deepEqual(u.log, ["error(readyState=3)", "close"]);
    assert.equal(event.code, 1006);
    assert.match(String((errorOf(u) as NodeJS.ErrnoException).code), /SELF_SIGNED|CERT/);
  });
});

describe("WebSocket (client) with our own server", timeout, () => {
  it("echoes through src/server with permessage-deflate", async () => {
    const server = await new Promise<WebSocketServer>((resolve) => {
      const s: WebSocketServer = new WebSocketServer({ port: 0, perMessageDeflate: true }, () =>
        resolve(s),
      );
    });
    cleanups.push(() => server.close(100));
    const serverGot: string[] = [];
    server.on("connection", (conn: WebSocketConnection) => {
      serverGot.push(`extensions=${conn.extensions}`);
      conn.on("message", (data: Buffer, binary: boolean) => {
        serverGot.push(data.toString());
        conn.send(binary ? data : data.toString(), { binary });
      });
    });
    const { port } = server.address() as AddressInfo;
    const ws = client(`ws://127.0.0.1:${port}`);
    const o = observe(ws);
    await o.opened;
    ws.send("ours ↔ ours");
    assert.deepEqual(await o.received(1), ["ours ↔ ours"]);
    assert.match(ws.extensions, /^permessage-deflate/);
    assert.deepEqual(serverGot, [`extensions=${ws.extensions}`, "ours ↔ ours"]);
    ws.close(1000);
    const event = await o.closed;
    assert.deepEqual([event.code, event.wasClean], [1000, true]);
  });
  it("permessage-deflate: messages sent right before close() are all echoed, then a clean 1000 on both sides", async () => {
    const server = await new Promise<WebSocketServer>((resolve) => {
      const s: WebSocketServer = new WebSocketServer({ port: 0, perMessageDeflate: true }, () =>
        resolve(s),
      );
    });
    cleanups.push(() => server.close(100));
    const serverClosed = new Promise<[number, boolean]>((resolve) =>
      server.on("connection", (conn: WebSocketConnection) => {
        conn.on("message", (data: Buffer, binary: boolean) => {
          if (conn.readyState === WebSocket.OPEN) conn.send(data, { binary });
        });
        conn.on("close", (code: number, _reason: string, clean: boolean) => resolve([code, clean]));
      }),
    );
    const { port } = server.address() as AddressInfo;
    const ws = client(`ws://127.0.0.1:${port}`);
    const o = observe(ws);
    await o.opened;
    assert.match(ws.extensions, /^permessage-deflate/);
    const sent = Array.from({ length: 20 }, (_, i) => `line ${i} ${"y".repeat(i * 50)}`);
    for (const text of sent) ws.send(text);
    ws.close(1000); // at once, as `duplex connect` does when its input ends
    const event = await o.closed;
    assert.deepEqual(o.messages, sent, "every echo arrives before the close event");
    assert.deepEqual(o.log, ["open", "close"]);
    assert.deepEqual([event.code, event.wasClean], [1000, true]);
    assert.deepEqual(await serverClosed, [1000, true]);
  });

  it("permessage-deflate with the ws server: every echo of messages sent right before close() arrives", async () => {
    const { wss, url } = await peerServer({ perMessageDeflate: true });
    echo(wss);
    const ws = client(url);
    const o = observe(ws);
    await o.opened;
    assert.match(ws.extensions, /^permessage-deflate/);
    const sent = Array.from({ length: 20 }, (_, i) => `line ${i} ${"z".repeat(i * 50)}`);
    for (const text of sent) ws.send(text);
    ws.close(1000);
    const event = await o.closed;
    assert.deepEqual(o.messages, sent);
    assert.deepEqual([event.code, event.wasClean], [1000, true]);
  });
});

describe("WebSocket (client) API rules", timeout, () => {
  it("constants are on the class and on instances", () => {
    assert.deepEqual(
      [WebSocket.CONNECTING, WebSocket.OPEN, WebSocket.CLOSING, WebSocket.CLOSED],
      [0, 1, 2, 3],
    );
    assert.equal(WebSocket.prototype.CLOSED, 3);
  });

  it("the constructor throws SyntaxError for bad URLs and subprotocols", () => {
    const syntax = (fn: () => unknown) =>
      assert.throws(fn, (e: unknown) => e instanceof DOMException && e.name === "SyntaxError");
    syntax(() => new WebSocket("ftp://127.0.0.1/"));
    syntax(() => new WebSocket("not a url"));
    syntax(() => new WebSocket("ws://127.0.0.1/#frag"));
    syntax(() => new WebSocket("ws://127.0.0.1/#"));
    syntax(() => new WebSocket("ws://127.0.0.1/", ["a", "a"]));
    syntax(() => new WebSocket("ws://127.0.0.1/", "bad token"));
    syntax(() => new WebSocket("ws://127.0.0.1/", ["ok", ""]));
  });

  it("send while CONNECTING throws; close() validates code and reason; close while CONNECTING fails", async () => {
    const { wss, url } = await peerServer();
    let connections = 0;
    wss.on("connection", () => connections++);
    const ws = client(url);
    const o = observe(ws);
    assert.throws(
      () => ws.send("too early"),
      (e: unknown) => e instanceof DOMException && e.name === "InvalidStateError",
    );
    for (const code of [999, 1001, 1005, 2999, 5000, Number.NaN]) {
      assert.throws(
        () => ws.close(code),
        (e: unknown) => e instanceof DOMException && e.name === "InvalidAccessError",
        `code ${code}`,
      );
    }
    assert.throws(
      () => ws.close(1000, "é".repeat(62)), // 124 bytes
      (e: unknown) => e instanceof DOMException && e.name === "SyntaxError",
    );
    assert.equal(ws.readyState, WebSocket.CONNECTING);
    ws.close(1000, "é".repeat(61)); // 122 bytes: fine; fails the pending connection
    assert.equal(ws.readyState, WebSocket.CLOSING);
    const event = await o.closed;
    assert.deepEqual(o.log, ["error(readyState=3)", "close"]);
    assert.deepEqual([event.code, event.wasClean], [1006, false]);
    await delay(20);
    assert.equal(connections, 0);
  });

  it("close() with a reason but no code sends 1000; repeated close() is a no-op", async () => {
    const { wss, url } = await peerServer();
    const serverSaw = new Promise<[number, string]>((resolve) =>
      wss.on("connection", (peer: PeerSocket) =>
        peer.on("close", (code: number, reason: Buffer) => resolve([code, reason.toString()])),
      ),
    );
    const ws = client(url);
    const o = observe(ws);
    await o.opened;
    ws.close(undefined, "just a reason");
    ws.close(4000, "ignored");
    assert.deepEqual(await serverSaw, [1000, "just a reason"]);
    const event = await o.closed;
    assert.deepEqual([event.code, event.reason, event.wasClean], [1000, "just a reason", true]);
  });
});

describe("WebSocket (client) ping and pong (Node only, like ws)", timeout, () => {
  /** The next `type` event's data. */
  function next(ws: WebSocket, type: "ping" | "pong"): Promise<Buffer> {
    return new Promise((resolve) =>
      ws.addEventListener(type, (event) => resolve(event.data), { once: true }),
    );
  }

  it("ping(data): the ws server gets the Ping and the Pong comes back as a pong event", async () => {
    const { wss, url } = await peerServer();
    const pings: string[] = [];
    wss.on("connection", (peer: PeerSocket) =>
      peer.on("ping", (data: Buffer) => pings.push(data.toString("hex"))),
    );
    const ws = client(url);
    await observe(ws).opened;
    let pong = next(ws, "pong");
    ws.ping("hello ✓");
    const first = await pong;
    assert.ok(Buffer.isBuffer(first));
    assert.equal(first.toString(), "hello ✓");
    pong = next(ws, "pong");
    ws.ping(new Uint8Array([1, 2, 3]));
    assert.deepEqual([...(await pong)], [1, 2, 3]);
    pong = next(ws, "pong");
    ws.ping();
    assert.equal((await pong).length, 0);
    assert.deepEqual(pings, [Buffer.from("hello ✓").toString("hex"), "010203", ""]);
  });

  it("a Ping from the server fires a ping event and is answered; pong(data) sends an unsolicited Pong", async () => {
    const { wss, url } = await peerServer();
    const peerPongs: string[] = [];
    let pongsWanted = { count: 0, resolve: () => {} };
    /** Resolves once the peer has seen `count` Pongs in all. */
    const peerSawPongs = (count: number) =>
      new Promise<void>((resolve) => {
        pongsWanted = { count, resolve };
        if (peerPongs.length >= count) resolve();
      });
    const connected = new Promise<PeerSocket>((resolve) =>
      wss.on("connection", (p: PeerSocket) => {
        p.on("pong", (data: Buffer) => {
          peerPongs.push(data.toString());
          if (peerPongs.length >= pongsWanted.count) pongsWanted.resolve();
        });
        resolve(p);
      }),
    );
    const ws = client(url);
    await observe(ws).opened;
    const peer = await connected;
    const ping = next(ws, "ping");
    peer.ping("from the server");
    assert.equal((await ping).toString(), "from the server");
    await peerSawPongs(1);
    ws.pong("heartbeat");
    await peerSawPongs(2);
    assert.deepEqual(peerPongs, ["from the server", "heartbeat"]);
  });

  it("the same API on our server's connections: ping/pong methods and events both ways", async () => {
    const server = await new Promise<WebSocketServer>((resolve) => {
      const s: WebSocketServer = new WebSocketServer({ port: 0 }, () => resolve(s));
    });
    cleanups.push(() => server.close(100));
    const conn = new Promise<WebSocketConnection>((resolve) => server.on("connection", resolve));
    const { port } = server.address() as AddressInfo;
    const ws = client(`ws://127.0.0.1:${port}`);
    await observe(ws).opened;
    const c = await conn;
    const serverPing = new Promise<Buffer>((resolve) => c.once("ping", resolve));
    const clientPong = next(ws, "pong");
    ws.ping("c→s");
    assert.equal((await serverPing).toString(), "c→s");
    assert.equal((await clientPong).toString(), "c→s");
    const clientPing = next(ws, "ping");
    const serverPong = new Promise<Buffer>((resolve) => c.once("pong", resolve));
    c.ping("s→c");
    assert.equal((await clientPing).toString(), "s→c");
    assert.equal((await serverPong).toString(), "s→c");
  });

  it("rules: at most 125 bytes (RangeError), InvalidStateError while CONNECTING, dropped once closing", async () => {
    const { wss, url } = await peerServer();
    const pings: string[] = [];
    wss.on("connection", (peer: PeerSocket) =>
      peer.on("ping", (data: Buffer) => pings.push(data.toString())),
    );
    const ws = client(url);
    const o = observe(ws);
    assert.throws(
      () => ws.ping(),
      (e: unknown) => e instanceof DOMException && e.name === "InvalidStateError",
    );
    const tooLong = (e: unknown) =>
      e instanceof RangeError &&
      /at most 125 bytes, got 126/.test(e.message) &&
      (e as { code?: string }).code === "WS_ERR_CONTROL_PAYLOAD_TOO_LONG";
    assert.throws(() => ws.ping("x".repeat(126)), tooLong, "checked before the state");
    await o.opened;
    assert.throws(() => ws.ping("é".repeat(63)), tooLong, "UTF-8 bytes are counted");
    assert.throws(() => ws.pong(new Uint8Array(126)), tooLong);
    const pong = next(ws, "pong");
    ws.ping("y".repeat(125));
    assert.equal((await pong).length, 125);
    ws.close(1000);
    assert.doesNotThrow(() => ws.ping("after close"));
    await o.closed;
    assert.doesNotThrow(() => ws.ping("after closed"));
    assert.deepEqual(pings, ["y".repeat(125)]);
  });
});
