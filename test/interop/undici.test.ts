/**
 * Interop with undici's WHATWG WebSocket client (the one Node's global WebSocket is built on)
 * against our server, with and without permessage-deflate on our side. undici always offers
 * permessage-deflate and inflates what it receives, but never compresses what it sends (RFC
 * 7692 allows that), so the wire check is on the server → undici direction only.
 */
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { after, describe } from "node:test";
import { WebSocket } from "undici";
import {
  ASCII,
  CLOSE_REASON,
  compressibleText,
  EMOJI,
  expected,
  inbox,
  noise,
  once,
  type Received,
  sameData,
  startDuplex,
  whenClosed,
  whenOpen,
  within,
} from "./helpers.js";
import { type Cell, type Compression, interopCase, noteExtensions, printMatrix } from "./matrix.js";

const PEER = "undici";
const VERSION = (createRequire(import.meta.url)("undici/package.json") as { version: string })
  .version;
const MiB = 1024 * 1024;
const SERVER_REASON = "server-bye ✓ 😀";
const ORDERED = Array.from({ length: 200 }, (_, i) => `ordered-${i}`);

after(() => printMatrix(PEER));

for (const compression of ["on", "off"] as Compression[]) {
  const deflate = compression === "on";

  describe(`undici client → duplex server, deflate ${compression}`, () => {
    const cell: Cell = {
      peer: PEER,
      peerVersion: VERSION,
      direction: "undici client → duplex server",
      compression,
    };

    const session = once(async () => {
      const duplex = await startDuplex({
        perMessageDeflate: deflate,
        handleProtocols: (offered) => (offered.includes("chat.v1") ? "chat.v1" : undefined),
      });
      try {
        // Connection 1: echoes, ordered messages, then undici closes.
        const ws = new WebSocket(duplex.url, ["chat.v2", "chat.v1"]);
        ws.binaryType = "arraybuffer";
        const messages = inbox(ws);
        const closing = whenClosed(ws);
        await whenOpen(ws);
        const seen = await duplex.next();
        const handshake = { protocol: ws.protocol, extensions: ws.extensions };
        const sent: Received[] = [];
        const echoes: Record<string, boolean> = {};
        const random = noise(MiB);
        const view = new Uint8Array(random.buffer, random.byteOffset + 3, 1000);
        const cases: [string, string | Uint8Array, string | ArrayBuffer | Uint8Array | Blob][] = [
          ["ascii", ASCII, ASCII],
          ["emoji", EMOJI, EMOJI],
          ["empty text", "", ""],
          ["ArrayBuffer", random.subarray(0, 256), new Uint8Array(random.subarray(0, 256)).buffer],
          ["Uint8Array view", view, view],
          ["Blob", random.subarray(0, 4096), new Blob([random.subarray(0, 4096)])],
          ["empty binary", new Uint8Array(0), new ArrayBuffer(0)],
          ["1 MiB random", random, random],
          ["1 MiB text", compressibleText(MiB), compressibleText(MiB)],
        ];
        for (const [name, bytes, data] of cases) {
          sent.push(expected(bytes));
          ws.send(data);
          echoes[name] = sameData(await messages.next(`the echo of ${name}`), bytes);
        }
        for (const m of ORDERED) {
          sent.push(expected(m));
          ws.send(m);
        }
        const replies: unknown[] = [];
        for (const _ of ORDERED) replies.push(await messages.next("an ordered echo"));
        ws.close(4000, CLOSE_REASON);
        const peerClose = await closing;
        const ourClose = await within(5_000, "our close", seen.closed);

        // Connection 2: our server closes.
        const serverCloses = await startDuplex(
          { perMessageDeflate: deflate },
          { onConnection: (o) => o.conn.close(4001, SERVER_REASON) },
        );
        const ws2 = new WebSocket(serverCloses.url);
        const peerClose2 = await whenClosed(ws2);
        const ourClose2 = await within(5_000, "our close", (await serverCloses.next()).closed);
        await serverCloses.server.close(100);

        // Connection 3: our server refuses the handshake.
        const refusing = await startDuplex({ authenticate: () => ({ status: 401 }) });
        const ws3 = new WebSocket(refusing.url);
        const refused = await whenClosed(ws3);
        await refusing.server.close(100);

        return {
          handshake,
          seen,
          sent,
          echoes,
          ordered: replies.every((r, i) => r === ORDERED[i]),
          peerClose,
          ourClose,
          peerClose2,
          ourClose2,
          refused,
        };
      } finally {
        await duplex.server.close(100);
      }
    });

    interopCase(cell, "handshake: subprotocol + extensions", async () => {
      const { handshake, seen } = await session();
      noteExtensions(cell, seen.req.headers["sec-websocket-extensions"], seen.conn.extensions);
      assert.equal(handshake.protocol, "chat.v1");
      assert.equal(seen.conn.protocol, "chat.v1");
      // undici offers permessage-deflate whatever we do; our server accepts it only when on.
      assert.match(seen.req.headers["sec-websocket-extensions"] ?? "", /^permessage-deflate\b/);
      if (deflate) assert.match(seen.conn.extensions, /^permessage-deflate\b/);
      else assert.equal(seen.conn.extensions, "");
      assert.equal(handshake.extensions, seen.conn.extensions);
    });

    interopCase(cell, "echo text, emoji, ArrayBuffer, view, Blob, empty, 1 MiB ×2", async () => {
      const { echoes, ourClose } = await session();
      assert.deepEqual(echoes, {
        ascii: true,
        emoji: true,
        "empty text": true,
        ArrayBuffer: true,
        "Uint8Array view": true,
        Blob: true,
        "empty binary": true,
        "1 MiB random": true,
        "1 MiB text": true,
      });
      // What undici received: 1 MiB random + 1 MiB JSON lines, deflated or not.
      const written = ourClose.bytesWritten;
      if (deflate) assert.ok(written < 1.5 * MiB, `duplex → undici: ${written} bytes`);
      else assert.ok(written > 2 * MiB, `duplex → undici: ${written} bytes`);
    });

    interopCase(cell, `${ORDERED.length} ordered + every message received as sent`, async () => {
      const { ordered, seen, sent } = await session();
      assert.equal(ordered, true);
      assert.deepEqual(seen.received, sent);
    });

    interopCase(cell, "client close 4000 + UTF-8 reason", async () => {
      const { peerClose, ourClose } = await session();
      assert.deepEqual(peerClose, { code: 4000, reason: CLOSE_REASON, wasClean: true, before: [] });
      assert.deepEqual(
        [ourClose.code, ourClose.reason, ourClose.wasClean],
        [4000, CLOSE_REASON, true],
      );
    });

    interopCase(cell, "server close 4001 + UTF-8 reason", async () => {
      const { peerClose2, ourClose2 } = await session();
      assert.deepEqual(peerClose2, {
        code: 4001,
        reason: SERVER_REASON,
        wasClean: true,
        before: [],
      });
      // Our close event reports the Close frame undici sent back: it echoes the code only.
      assert.deepEqual([ourClose2.code, ourClose2.reason, ourClose2.wasClean], [4001, "", true]);
    });

    interopCase(cell, "refused handshake (401): error, then close 1006", async () => {
      const { refused } = await session();
      assert.deepEqual(refused, { code: 1006, reason: "", wasClean: false, before: ["error"] });
    });
  });
}
