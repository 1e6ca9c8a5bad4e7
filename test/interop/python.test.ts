/**
 * Interop with Python `websockets` (Debian's python3-websockets, run with /usr/bin/python3), in
 * both directions, with and without permessage-deflate. The Python side is
 * test/interop/peers/py_client.py and py_server.py: each reports as JSON what it negotiated,
 * sent, received and saw of the closing handshake, and the assertions are on those reports as
 * much as on what our side saw.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, describe } from "node:test";
import { fileURLToPath } from "node:url";
import { WebSocket } from "../../src/client/index.js";
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
  spawnJson,
  startDuplex,
  whenClosed,
  whenOpen,
  within,
} from "./helpers.js";
import { type Cell, type Compression, interopCase, noteExtensions, printMatrix } from "./matrix.js";

const PYTHON = "/usr/bin/python3";
const PEERS = fileURLToPath(new URL("./peers/", import.meta.url));
const PEER = "python-websockets";
const MiB = 1024 * 1024;

const probe = spawnSync(PYTHON, ["-c", "import websockets; print(websockets.__version__)"], {
  encoding: "utf8",
});
if (probe.status !== 0) {
  throw new Error(
    `${PYTHON} cannot import websockets (apt-get install -y python3-websockets): ${probe.stderr}`,
  );
}
const VERSION = probe.stdout.trim();

after(() => printMatrix(PEER));

interface ClientReport {
  version: string;
  subprotocol: string | null;
  extensions: string[];
  request_extensions: string | null;
  response_extensions: string | null;
  checks: Record<string, boolean>;
  sent: Received[];
  close_sent: [number, string] | null;
  close_code: number | null;
  close_reason: string | null;
}

interface ServerRecord {
  event: "closed";
  path: string;
  subprotocol: string | null;
  extensions: string[];
  request_extensions: string | null;
  response_extensions: string | null;
  received: Received[];
  error: string | null;
  close_code: number | null;
  close_reason: string | null;
  close_sent: [number, string] | null;
  close_rcvd_then_sent: boolean | null;
}

const PY_CLOSE_REASON = "python-bye ✓ 😀";
const PY_SERVER_CLOSE_REASON = "server-bye ✓ 😀";

for (const compression of ["on", "off"] as Compression[]) {
  const deflate = compression === "on";

  describe(`python websockets client → duplex server, deflate ${compression}`, () => {
    const cell: Cell = {
      peer: PEER,
      peerVersion: VERSION,
      direction: "python client → duplex server",
      compression,
    };
    // One run of py_client.py; each case below asserts a part of it.
    const session = once(async () => {
      const duplex = await startDuplex(
        {
          perMessageDeflate: deflate,
          handleProtocols: (offered) => (offered.includes("chat.v1") ? "chat.v1" : undefined),
        },
        { onConnection: (o) => o.conn.send(`welcome:${o.conn.protocol}`) },
      );
      const py = spawnJson(PYTHON, [
        `${PEERS}py_client.py`,
        duplex.url,
        deflate ? "deflate" : "none",
      ]);
      try {
        const report = (await within(
          30_000,
          "the python client's report",
          py.nextLine(),
        )) as unknown as ClientReport;
        const seen = await within(5_000, "the connection", duplex.next());
        const closed = await within(5_000, "our close event", seen.closed);
        return { report, seen, closed };
      } finally {
        await py.stop();
        await duplex.server.close(100);
      }
    });

    interopCase(cell, "handshake: subprotocol + extensions", async () => {
      const { report, seen } = await session();
      noteExtensions(cell, report.request_extensions, seen.conn.extensions);
      assert.equal(report.subprotocol, "chat.v1");
      assert.equal(seen.conn.protocol, "chat.v1");
      assert.equal(report.checks.server_push, true, "python got welcome:chat.v1 first");
      if (deflate) {
        assert.deepEqual(report.extensions, ["permessage-deflate"]);
        assert.match(seen.conn.extensions, /^permessage-deflate\b/);
        assert.equal(report.response_extensions, seen.conn.extensions);
      } else {
        assert.deepEqual(report.extensions, []);
        assert.equal(report.request_extensions, null);
        assert.equal(seen.conn.extensions, "");
      }
    });

    interopCase(cell, "echo text (ASCII, emoji), binary (0 B, 256 B)", async () => {
      const { report } = await session();
      for (const name of ["text_ascii", "text_emoji", "binary_all_bytes", "binary_empty"]) {
        assert.equal(report.checks[name], true, `python's check ${name}`);
      }
    });

    interopCase(cell, "1 MiB random binary + 1 MiB compressible text", async () => {
      const { report, closed } = await session();
      assert.equal(report.checks.binary_1mib_random, true);
      assert.equal(report.checks.text_1mib_compressible, true);
      // Bytes on the wire both ways show whether the messages were really compressed: 1 MiB of
      // random bytes cannot shrink, 1 MiB of JSON lines shrinks to about 9 % (half is the bar).
      for (const [dir, bytes] of [
        ["python → duplex", closed.bytesRead],
        ["duplex → python", closed.bytesWritten],
      ] as const) {
        if (deflate) assert.ok(bytes < 1.5 * MiB, `${dir}: ${bytes} bytes, expected compression`);
        else assert.ok(bytes > 2 * MiB, `${dir}: ${bytes} bytes, expected no compression`);
      }
    });

    interopCase(cell, "100 ordered + every message received as sent", async () => {
      const { report, seen } = await session();
      assert.equal(report.checks.ordered_100, true);
      assert.equal(report.sent.length, 106);
      assert.deepEqual(seen.received, report.sent);
    });

    interopCase(cell, "client close 4000 + UTF-8 reason", async () => {
      const { report, closed } = await session();
      assert.deepEqual(report.close_sent, [4000, PY_CLOSE_REASON]);
      // Python reports the code and reason of the Close frame it received: our echo.
      assert.equal(report.close_code, 4000);
      assert.equal(report.close_reason, PY_CLOSE_REASON);
      assert.deepEqual(
        [closed.code, closed.reason, closed.wasClean],
        [4000, PY_CLOSE_REASON, true],
      );
    });
  });

  describe(`duplex client → python websockets server, deflate ${compression}`, () => {
    const cell: Cell = {
      peer: PEER,
      peerVersion: VERSION,
      direction: "duplex client → python server",
      compression,
    };
    const session = once(async () => {
      const py = spawnJson(PYTHON, [`${PEERS}py_server.py`, deflate ? "deflate" : "none"]);
      try {
        const listening = await within(10_000, "the python server to listen", py.nextLine());
        const base = `ws://127.0.0.1:${String(listening.port)}`;

        // Connection 1: echoes, then our close.
        const ws = new WebSocket(`${base}/echo`, ["chat.v2", "chat.v1"], {
          perMessageDeflate: deflate,
        });
        const messages = inbox(ws);
        const closing = whenClosed(ws);
        await whenOpen(ws);
        const handshake = { protocol: ws.protocol, extensions: ws.extensions };
        const sent: Received[] = [];
        const echoes: Record<string, boolean> = {};
        const roundTrip = async (name: string, data: string | Buffer): Promise<void> => {
          sent.push(expected(data));
          ws.send(data);
          echoes[name] = sameData(await messages.next(`the echo of ${name}`), data);
        };
        await roundTrip("ascii", ASCII);
        await roundTrip("emoji", EMOJI);
        await roundTrip("binary", Buffer.from([0, 1, 2, 253, 254, 255]));
        await roundTrip("empty binary", Buffer.alloc(0));
        await roundTrip("1 MiB random", noise(MiB));
        await roundTrip("1 MiB text", compressibleText(MiB));
        const ordered = Array.from({ length: 100 }, (_, i) => `ordered-${i}`);
        for (const m of ordered) {
          sent.push(expected(m));
          ws.send(m);
        }
        const replies: unknown[] = [];
        for (let i = 0; i < ordered.length; i++) replies.push(await messages.next());
        ws.close(4001, CLOSE_REASON);
        const ourClose = await closing;
        const echoRecord = (await within(5_000, "the python record", py.nextLine())) as unknown;

        // Connection 2: the server closes.
        const ws2 = new WebSocket(`${base}/server-close`, { perMessageDeflate: deflate });
        const messages2 = inbox(ws2);
        const closing2 = whenClosed(ws2);
        const first = await messages2.next("the server's message before its close");
        const serverClose = await closing2;
        const closeRecord = (await within(5_000, "the python record", py.nextLine())) as unknown;
        return {
          handshake,
          sent,
          echoes,
          ordered: replies.length === ordered.length && replies.every((r, i) => r === ordered[i]),
          ourClose,
          echoRecord: echoRecord as ServerRecord,
          first,
          serverClose,
          closeRecord: closeRecord as ServerRecord,
        };
      } finally {
        await py.stop();
      }
    });

    interopCase(cell, "handshake: subprotocol + extensions", async () => {
      const { handshake, echoRecord } = await session();
      noteExtensions(cell, echoRecord.request_extensions, echoRecord.response_extensions);
      assert.equal(handshake.protocol, "chat.v1");
      assert.equal(echoRecord.subprotocol, "chat.v1");
      if (deflate) {
        assert.match(echoRecord.request_extensions ?? "", /^permessage-deflate\b/);
        assert.deepEqual(echoRecord.extensions, ["permessage-deflate"]);
        assert.match(handshake.extensions, /^permessage-deflate\b/);
        assert.equal(handshake.extensions, echoRecord.response_extensions);
      } else {
        assert.equal(echoRecord.request_extensions, null);
        assert.deepEqual(echoRecord.extensions, []);
        assert.equal(handshake.extensions, "");
      }
    });

    interopCase(cell, "echo text (ASCII, emoji), binary, 1 MiB ×2", async () => {
      const { echoes } = await session();
      assert.deepEqual(echoes, {
        ascii: true,
        emoji: true,
        binary: true,
        "empty binary": true,
        "1 MiB random": true,
        "1 MiB text": true,
      });
    });

    interopCase(cell, "100 ordered + every message received as sent", async () => {
      const { ordered, sent, echoRecord } = await session();
      assert.equal(ordered, true);
      assert.equal(echoRecord.received.length, sent.length);
      assert.deepEqual(echoRecord.received, sent);
    });

    interopCase(cell, "client close 4001 + UTF-8 reason", async () => {
      const { ourClose, echoRecord } = await session();
      // Python received our Close frame first, then echoed it.
      assert.equal(echoRecord.close_code, 4001);
      assert.equal(echoRecord.close_reason, CLOSE_REASON);
      assert.deepEqual(echoRecord.close_sent, [4001, CLOSE_REASON]);
      assert.equal(echoRecord.close_rcvd_then_sent, true);
      assert.deepEqual(ourClose, { code: 4001, reason: CLOSE_REASON, wasClean: true, before: [] });
    });

    interopCase(cell, "server close 4002 + UTF-8 reason", async () => {
      const { first, serverClose, closeRecord } = await session();
      assert.equal(first, "closing");
      assert.deepEqual(serverClose, {
        code: 4002,
        reason: PY_SERVER_CLOSE_REASON,
        wasClean: true,
        before: [],
      });
      // Python sent its Close frame first; what it got back is our echo of it.
      assert.deepEqual(closeRecord.close_sent, [4002, PY_SERVER_CLOSE_REASON]);
      assert.equal(closeRecord.close_rcvd_then_sent, false);
      assert.equal(closeRecord.close_code, 4002);
      assert.equal(closeRecord.close_reason, PY_SERVER_CLOSE_REASON);
    });
  });
}
