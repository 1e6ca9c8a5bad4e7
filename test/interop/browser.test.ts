/**
 * Interop with a real browser: Debian's Chromium (never a downloaded build), headless, driven by
 * playwright-core. A page served from 127.0.0.1 runs test/interop/peers/browser-client.js, which
 * uses the browser's native WebSocket against our server and returns what the browser observed.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe } from "node:test";
import type { Browser, Page } from "playwright-core";
import { launchChromium } from "../support/browser.js";
import { CLOSE_REASON, once, type Received, type Started, startDuplex } from "./helpers.js";
import { type Cell, type Compression, interopCase, noteExtensions, printMatrix } from "./matrix.js";

const PEER = "chromium";
const MiB = 1024 * 1024;
const SERVER_REASON = "server-bye ✓ 😀";
const SIZES = [0, 1, 125, 126, 65_535, 65_536, MiB, 16 * MiB];
/** Besides the usual headless flags: no QUIC, no background traffic from the browser. */
const CHROMIUM_ARGS = [
  "--disable-quic",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

let browser: Browser;
let page: Page;
let pageServer: http.Server;
let pageOrigin: string;
let version = "?";
const socketErrors: string[] = [];

before(async () => {
  const script = readFileSync(new URL("./peers/browser-client.js", import.meta.url), "utf8");
  const html = `<!doctype html><meta charset="utf-8"><title>duplex interop</title><script>${script}</script>`;
  pageServer = http.createServer((_req, res) => {
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
    res.end(html);
  });
  await new Promise<void>((resolve) => pageServer.listen(0, "127.0.0.1", resolve));
  pageOrigin = `http://127.0.0.1:${(pageServer.address() as AddressInfo).port}`;
  browser = await launchChromium(CHROMIUM_ARGS);
  version = browser.version();
  page = await browser.newPage();
  // What the browser's network stack says about failed WebSocket handshakes (not visible to
  // page scripts, which only get an error event).
  page.on("websocket", (ws) => ws.on("socketerror", (message) => socketErrors.push(message)));
  await page.goto(`${pageOrigin}/`);
});

after(async () => {
  await browser?.close();
  await new Promise((resolve) => pageServer?.close(resolve));
  printMatrix(PEER);
});

interface CloseSeen {
  code: number;
  reason: string;
  wasClean: boolean;
  before: string[];
  isCloseEvent: boolean;
}

interface TextResult {
  protocol: string;
  extensions: string;
  echoes: Record<string, boolean>;
  sent: Received[];
  ordered: boolean;
  close: CloseSeen;
}

/** Call one of the page's interop functions (see peers/browser-client.js). */
function inPage<T>(name: string, ...args: unknown[]): Promise<T> {
  return page.evaluate(
    ({ name, args }) => {
      const api = (globalThis as unknown as Record<string, unknown>).interop as Record<
        string,
        (...a: unknown[]) => Promise<unknown>
      >;
      return api[name]!(...args);
    },
    { name, args },
  ) as Promise<T>;
}

/** Our server for the browser: echo, 32 MiB messages, /server-close closes at once. */
function startForBrowser(deflate: boolean): Promise<Started> {
  return startDuplex(
    {
      perMessageDeflate: deflate,
      limits: { maxMessageBytes: 32 * MiB },
      handleProtocols: (offered) => (offered.includes("chat.v1") ? "chat.v1" : undefined),
    },
    {
      onConnection: (o) => {
        if (o.req.url === "/server-close") o.conn.close(4001, SERVER_REASON);
      },
    },
  );
}

for (const compression of ["on", "off"] as Compression[]) {
  const deflate = compression === "on";

  describe(`chromium → duplex server, deflate ${compression}`, () => {
    // The version is known once the browser is up; the cell is read when a case runs.
    const cell = lazy(() => ({
      peer: PEER,
      peerVersion: version,
      direction: "chromium client → duplex server",
      compression,
    }));
    let duplex: Started;
    before(async () => {
      duplex = await startForBrowser(deflate);
    });
    after(() => duplex.server.close(100));

    const text = once(async () => {
      const [result, seen] = await Promise.all([
        inPage<TextResult>("textSession", duplex.url, CLOSE_REASON),
        duplex.next(),
      ]);
      return { result, seen, ours: await seen.closed };
    });

    interopCase(cell, "handshake: subprotocol + extensions", async () => {
      const { result, seen } = await text();
      noteExtensions(cell, seen.req.headers["sec-websocket-extensions"], result.extensions);
      assert.equal(result.protocol, "chat.v1");
      assert.equal(seen.conn.protocol, "chat.v1");
      assert.equal(seen.req.headers.origin, pageOrigin);
      assert.match(seen.req.headers["sec-websocket-extensions"] ?? "", /^permessage-deflate\b/);
      if (deflate) assert.match(result.extensions, /^permessage-deflate\b/);
      else assert.equal(result.extensions, "");
      assert.equal(result.extensions, seen.conn.extensions);
    });

    interopCase(cell, "text: ASCII, emoji, empty, 1 MiB", async () => {
      const { result } = await text();
      assert.deepEqual(result.echoes, {
        ascii: true,
        emoji: true,
        empty: true,
        "1 MiB text": true,
      });
    });

    interopCase(cell, "1000 ordered + every message received as sent", async () => {
      const { result, seen } = await text();
      assert.equal(result.ordered, true);
      assert.equal(result.sent.length, 1004);
      assert.deepEqual(seen.received, result.sent);
    });

    interopCase(cell, "client close 4000 + UTF-8 reason", async () => {
      const { result, ours } = await text();
      assert.deepEqual([ours.code, ours.reason, ours.wasClean], [4000, CLOSE_REASON, true]);
      assert.deepEqual(result.close, {
        code: 4000,
        reason: CLOSE_REASON,
        wasClean: true,
        before: [],
        isCloseEvent: true,
      });
    });

    interopCase(
      cell,
      "binary: ArrayBuffer + Blob, 0 B … 16 MiB",
      async () => {
        const [result, seen] = await Promise.all([
          inPage<{
            results: { kind: string; size: number; ok: boolean; ms: number }[];
            sent: Received[];
            close: CloseSeen;
          }>("binarySession", duplex.url, SIZES),
          duplex.next(),
        ]);
        const failed = result.results.filter((r) => !r.ok);
        assert.deepEqual(failed, [], "echoes the browser found different");
        assert.equal(result.results.length, SIZES.length * 2);
        assert.deepEqual(seen.received, result.sent);
        assert.equal(result.close.code, 1000);
        assert.equal(result.close.wasClean, true);
        const ours = await seen.closed;
        // Bytes the browser sent: random data does not shrink, so both ways carry ≥ 2 × Σ sizes.
        const total = 2 * SIZES.reduce((a, b) => a + b, 0);
        assert.ok(ours.bytesRead >= total && ours.bytesWritten >= total);
      },
      { timeout: 60_000 },
    );

    interopCase(cell, "server close 4001 + UTF-8 reason (CloseEvent)", async () => {
      const [close, seen] = await Promise.all([
        inPage<CloseSeen>("serverCloseSession", `${duplex.url}/server-close`),
        duplex.next(),
      ]);
      assert.deepEqual(close, {
        code: 4001,
        reason: SERVER_REASON,
        wasClean: true,
        before: [],
        isCloseEvent: true,
      });
      const ours = await seen.closed;
      assert.deepEqual([ours.code, ours.wasClean], [4001, true]);
    });

    interopCase(cell, "refused handshake (Origin → 403): error, then close 1006", async () => {
      const refusing = await startDuplex({
        perMessageDeflate: deflate,
        allowedOrigins: ["https://app.example"],
      });
      try {
        socketErrors.length = 0;
        const close = await inPage<CloseSeen>("refusedSession", refusing.url);
        assert.deepEqual(close, {
          code: 1006,
          reason: "",
          wasClean: false,
          before: ["error"],
          isCloseEvent: true,
        });
        assert.equal(refusing.server.clients.size, 0);
        assert.ok(
          socketErrors.some((m) => /\b403\b/.test(m)),
          `the browser's handshake error names the 403: ${JSON.stringify(socketErrors)}`,
        );
      } finally {
        await refusing.server.close(100);
      }
    });
  });
}

/** A Cell whose fields are read when used (the browser version is known only after launch). */
function lazy(cell: () => Cell): Cell {
  return {
    get peer() {
      return cell().peer;
    },
    get peerVersion() {
      return cell().peerVersion;
    },
    get direction() {
      return cell().direction;
    },
    get compression() {
      return cell().compression;
    },
  };
}
