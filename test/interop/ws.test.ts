/**
 * Interop with `ws` (the npm package), both directions, with and without permessage-deflate:
 * text, binary, 4 MiB messages, 500 ordered messages, subprotocol, close codes and UTF-8
 * reasons from either side. test/server and test/client already use ws for feature tests; this
 * file is the matrix, asserting what the ws peer observed.
 */
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { after, describe } from "node:test";
import WebSocket, { WebSocketServer as WsServer } from "ws";
import { WebSocket as DuplexWebSocket } from "../../src/client/index.js";
import {
  ASCII,
  CLOSE_REASON,
  type ClosedInfo,
  compressibleText,
  EMOJI,
  expected,
  inbox,
  noise,
  once,
  type Received,
  sameData,
  sha256,
  startDuplex,
  whenClosed,
  whenOpen,
  within,
} from "./helpers.js";
import { type Cell, type Compression, interopCase, noteExtensions, printMatrix } from "./matrix.js";

const PEER = "ws";
const VERSION = (createRequire(import.meta.url)("ws/package.json") as { version: string }).version;
const MiB = 1024 * 1024;
const SERVER_REASON = "server-bye ✓ 😀";

after(() => printMatrix(PEER));

/** What a session sends, in order; the echoes must match. */
function payloads(): [name: string, data: string | Buffer][] {
  return [
    ["ascii", ASCII],
    ["emoji", EMOJI],
    ["binary", Buffer.from([0, 1, 2, 127, 128, 253, 254, 255])],
    ["empty binary", Buffer.alloc(0)],
    ["empty text", ""],
    ["4 MiB random", noise(4 * MiB)],
    ["4 MiB text", compressibleText(4 * MiB)],
  ];
}
const ORDERED = Array.from({ length: 500 }, (_, i) => (i % 2 === 0 ? `ordered-${i}` : `é-${i}`));

interface Transcript {
  protocol: string;
  extensions: string;
  echoes: Record<string, boolean>;
  ordered: boolean;
  sent: Received[];
}

/**
 * The wire-size check: 4 MiB random cannot shrink, 4 MiB of JSON lines shrink to about 9 %; the
 * bar for "compressed" is half of the text.
 */
function assertWire(deflate: boolean, label: string, bytes: number): void {
  if (deflate) assert.ok(bytes < 6 * MiB, `${label}: ${bytes} bytes, expected compression`);
  else assert.ok(bytes > 8 * MiB, `${label}: ${bytes} bytes, expected no compression`);
}

const allEchoed = Object.fromEntries(payloads().map(([name]) => [name, true]));

for (const compression of ["on", "off"] as Compression[]) {
  const deflate = compression === "on";

  describe(`ws client → duplex server, deflate ${compression}`, () => {
    const cell: Cell = {
      peer: PEER,
      peerVersion: VERSION,
      direction: "ws client → duplex server",
      compression,
    };

    const session = once(async () => {
      const duplex = await startDuplex({
        perMessageDeflate: deflate,
        handleProtocols: (offered) => (offered.includes("chat.v1") ? "chat.v1" : undefined),
      });
      try {
        // Connection 1: echoes, 500 ordered, then the ws client closes.
        const ws = new WebSocket(duplex.url, ["chat.v2", "chat.v1"], {
          perMessageDeflate: deflate,
        });
        const messages = wsInbox(ws);
        const wsClosed = wsCloseEvent(ws);
        await within(10_000, "open", new Promise((r, j) => ws.once("open", r).once("error", j)));
        const seen = await duplex.next();
        const t: Transcript = {
          protocol: ws.protocol,
          extensions: ws.extensions,
          echoes: {},
          ordered: false,
          sent: [],
        };
        for (const [name, data] of payloads()) {
          t.sent.push(expected(data));
          ws.send(data, { binary: typeof data !== "string" });
          const got = await messages.next(`the echo of ${name}`);
          const text = got.isBinary ? got.data : got.data.toString("utf8");
          t.echoes[name] = got.isBinary === (typeof data !== "string") && sameData(text, data);
        }
        for (const m of ORDERED) {
          t.sent.push(expected(m));
          ws.send(m);
        }
        const replies: string[] = [];
        for (const _ of ORDERED) {
          const got = await messages.next("an ordered echo");
          replies.push(got.isBinary ? "<binary>" : got.data.toString("utf8"));
        }
        t.ordered = replies.every((r, i) => r === ORDERED[i]);
        ws.close(4000, CLOSE_REASON);
        const peerClose = await wsClosed;
        const ourClose = await within(5_000, "our close", seen.closed);

        // Connection 2: our server closes.
        const serverCloses = await startDuplex(
          { perMessageDeflate: deflate },
          { onConnection: (o) => o.conn.close(4001, SERVER_REASON) },
        );
        const ws2 = new WebSocket(serverCloses.url, { perMessageDeflate: deflate });
        const peerClose2 = await wsCloseEvent(ws2);
        const seen2 = await serverCloses.next();
        const ourClose2 = await within(5_000, "our close", seen2.closed);
        await serverCloses.server.close(100);
        return { t, seen, peerClose, ourClose, peerClose2, ourClose2 };
      } finally {
        await duplex.server.close(100);
      }
    });

    interopCase(cell, "handshake: subprotocol + extensions", async () => {
      const { t, seen } = await session();
      noteExtensions(cell, seen.req.headers["sec-websocket-extensions"], seen.conn.extensions);
      assert.equal(t.protocol, "chat.v1");
      assert.equal(seen.conn.protocol, "chat.v1");
      assert.equal(t.extensions, deflate ? "permessage-deflate" : "");
      if (deflate) assert.match(seen.conn.extensions, /^permessage-deflate\b/);
      else assert.equal(seen.conn.extensions, "");
    });

    interopCase(cell, "echo text, emoji, binary, empty, 4 MiB ×2", async () => {
      const { t, ourClose } = await session();
      assert.deepEqual(t.echoes, allEchoed);
      assertWire(deflate, "ws → duplex", ourClose.bytesRead);
      assertWire(deflate, "duplex → ws", ourClose.bytesWritten);
    });

    interopCase(cell, "500 ordered + every message received as sent", async () => {
      const { t, seen } = await session();
      assert.equal(t.ordered, true);
      assert.deepEqual(seen.received, t.sent);
    });

    interopCase(cell, "client close 4000 + UTF-8 reason", async () => {
      const { peerClose, ourClose } = await session();
      assert.deepEqual(peerClose, { code: 4000, reason: CLOSE_REASON });
      assert.deepEqual(
        [ourClose.code, ourClose.reason, ourClose.wasClean],
        [4000, CLOSE_REASON, true],
      );
    });

    interopCase(cell, "server close 4001 + UTF-8 reason", async () => {
      const { peerClose2, ourClose2 } = await session();
      assert.deepEqual(peerClose2, { code: 4001, reason: SERVER_REASON });
      assert.deepEqual(
        [ourClose2.code, ourClose2.reason, ourClose2.wasClean],
        [4001, SERVER_REASON, true],
      );
    });
  });

  describe(`duplex client → ws server, deflate ${compression}`, () => {
    const cell: Cell = {
      peer: PEER,
      peerVersion: VERSION,
      direction: "duplex client → ws server",
      compression,
    };

    const session = once(async () => {
      const peer = await startWsServer(deflate);
      try {
        // Connection 1: echoes, 500 ordered, then our client closes.
        const ws = new DuplexWebSocket(`${peer.url}/echo`, ["chat.v2", "chat.v1"], {
          perMessageDeflate: deflate,
        });
        const messages = inbox(ws);
        const closing = whenClosed(ws);
        await whenOpen(ws);
        const t: Transcript = {
          protocol: ws.protocol,
          extensions: ws.extensions,
          echoes: {},
          ordered: false,
          sent: [],
        };
        for (const [name, data] of payloads()) {
          t.sent.push(expected(data));
          ws.send(data);
          t.echoes[name] = sameData(await messages.next(`the echo of ${name}`), data);
        }
        for (const m of ORDERED) {
          t.sent.push(expected(m));
          ws.send(m);
        }
        const replies: unknown[] = [];
        for (const _ of ORDERED) replies.push(await messages.next("an ordered echo"));
        t.ordered = replies.every((r, i) => r === ORDERED[i]);
        ws.close(4000, CLOSE_REASON);
        const ourClose = await closing;
        const record = await within(5_000, "the ws server's record", peer.next());

        // Connection 2: the ws server closes.
        const ws2 = new DuplexWebSocket(`${peer.url}/server-close`, { perMessageDeflate: deflate });
        const ourClose2 = await whenClosed(ws2);
        const record2 = await within(5_000, "the ws server's record", peer.next());
        return { t, ourClose, record, ourClose2, record2 };
      } finally {
        await peer.close();
      }
    });

    interopCase(cell, "handshake: subprotocol + extensions", async () => {
      const { t, record } = await session();
      noteExtensions(cell, record.offer, t.extensions);
      assert.equal(t.protocol, "chat.v1");
      assert.equal(record.protocol, "chat.v1");
      if (deflate) {
        assert.match(record.offer ?? "", /^permessage-deflate\b/);
        assert.equal(record.extensions, "permessage-deflate");
        assert.match(t.extensions, /^permessage-deflate\b/);
      } else {
        assert.equal(record.offer, undefined);
        assert.equal(record.extensions, "");
        assert.equal(t.extensions, "");
      }
    });

    interopCase(cell, "echo text, emoji, binary, empty, 4 MiB ×2", async () => {
      const { t, record } = await session();
      assert.deepEqual(t.echoes, allEchoed);
      assertWire(deflate, "duplex → ws", record.bytesRead);
      assertWire(deflate, "ws → duplex", record.bytesWritten);
    });

    interopCase(cell, "500 ordered + every message received as sent", async () => {
      const { t, record } = await session();
      assert.equal(t.ordered, true);
      assert.deepEqual(record.received, t.sent);
    });

    interopCase(cell, "client close 4000 + UTF-8 reason", async () => {
      const { ourClose, record } = await session();
      assert.deepEqual([record.code, record.reason], [4000, CLOSE_REASON]);
      assert.deepEqual(ourClose, { code: 4000, reason: CLOSE_REASON, wasClean: true, before: [] });
    });

    interopCase(cell, "server close 4001 + UTF-8 reason", async () => {
      const { ourClose2, record2 } = await session();
      assert.deepEqual([record2.code, record2.reason], [4001, SERVER_REASON]);
      assert.deepEqual(ourClose2, {
        code: 4001,
        reason: SERVER_REASON,
        wasClean: true,
        before: [],
      });
    });
  });
}

// ---- the ws side ---------------------------------------------------------------------------

function wsInbox(ws: WebSocket): {
  next(what: string): Promise<{ data: Buffer; isBinary: boolean }>;
} {
  const ready: { data: Buffer; isBinary: boolean }[] = [];
  const waiting: ((m: { data: Buffer; isBinary: boolean }) => void)[] = [];
  ws.on("message", (data: Buffer, isBinary: boolean) => {
    const w = waiting.shift();
    if (w !== undefined) w({ data, isBinary });
    else ready.push({ data, isBinary });
  });
  return {
    next: (what) => {
      const first = ready.shift();
      if (first !== undefined) return Promise.resolve(first);
      return within(15_000, what, new Promise((resolve) => waiting.push(resolve)));
    },
  };
}

function wsCloseEvent(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return within(
    15_000,
    "the ws close event",
    new Promise((resolve) =>
      ws.once("close", (code: number, reason: Buffer) =>
        resolve({ code, reason: reason.toString("utf8") }),
      ),
    ),
  );
}

/** What the ws server saw of one connection. */
interface WsRecord extends Omit<ClosedInfo, "wasClean"> {
  path: string;
  protocol: string;
  offer: string | undefined;
  extensions: string;
  received: Received[];
}

/**
 * A ws echo server (subprotocol chat.v1). On /server-close it closes with 4001 at once. It
 * records each connection and hands the record over when the connection has closed.
 */
async function startWsServer(
  deflate: boolean,
): Promise<{ url: string; next(): Promise<WsRecord>; close(): Promise<void> }> {
  const server = new WsServer({
    port: 0,
    host: "127.0.0.1",
    perMessageDeflate: deflate,
    handleProtocols: (offered) => (offered.has("chat.v1") ? "chat.v1" : false),
  });
  await new Promise((resolve) => server.once("listening", resolve));
  const records: WsRecord[] = [];
  const waiting: ((r: WsRecord) => void)[] = [];
  server.on("connection", (ws, req) => {
    const received: Received[] = [];
    const path = req.url ?? "";
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      received.push({ binary: isBinary, size: data.length, sha256: sha256(data) });
      ws.send(data, { binary: isBinary });
    });
    ws.on("close", (code: number, reason: Buffer) => {
      const record: WsRecord = {
        path,
        protocol: ws.protocol,
        offer: req.headers["sec-websocket-extensions"],
        extensions: ws.extensions,
        received,
        code,
        reason: reason.toString("utf8"),
        bytesRead: req.socket.bytesRead,
        bytesWritten: req.socket.bytesWritten,
      };
      const w = waiting.shift();
      if (w !== undefined) w(record);
      else records.push(record);
    });
    if (path === "/server-close") ws.close(4001, SERVER_REASON);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `ws://127.0.0.1:${port}`,
    next: () => {
      const first = records.shift();
      if (first !== undefined) return Promise.resolve(first);
      return new Promise((resolve) => waiting.push(resolve));
    },
    close: () =>
      new Promise((resolve) => {
        for (const c of server.clients) c.terminate();
        server.close(() => resolve());
      }),
  };
}
