/**
 * The client SDK in a real browser: the esbuild bundle served by the RealtimeServer
 * (/duplex-client.js), loaded by headless Chromium (Debian's, driven by playwright-core), with
 * the browser's own WebSocket. Two pages exchange publications with acks; then the server is
 * restarted under them, a Node backend publishes meanwhile, and both pages recover exactly the
 * missed publications.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type Browser, chromium, type Page } from "playwright-core";
import { MemoryBackend, MemoryBroker } from "../../src/broker/index.js";
import { RealtimeServer } from "../../src/realtime/index.js";
import { until } from "./helpers.js";

// @ts-expect-error — a plain .mjs build script without type declarations
const { bundleClient } = (await import("../../scripts/bundle-client.mjs")) as {
  bundleClient(dir: string): Promise<string>;
};

const CHROMIUM = process.env.DUPLEX_CHROMIUM ?? "/usr/bin/chromium";
const PAGE = `<!doctype html><meta charset="utf-8"><title>duplex sdk</title>
<script type="module">
  import { RealtimeClient } from "/duplex-client.js";
  window.log = [];
  window.states = [];
  window.start = (channel) => {
    const client = new RealtimeClient("ws://" + location.host + "/realtime", {
      minReconnectDelayMs: 20, maxReconnectDelayMs: 200,
    });
    client.on("state", (e) => window.states.push(e.state));
    const sub = client.channel(channel);
    sub.on("subscribed", (e) => window.log.push({ kind: "sub", recovered: e.recovered, offset: e.offset }));
    sub.on("publication", (p) => window.log.push({ kind: "pub", offset: p.offset, data: p.data }));
    sub.subscribe();
    client.connect();
    window.client = client;
    window.sub = sub;
  };
  window.publish = (data) => window.sub.publish(data);
  window.ready = true;
</script>`;

interface Node {
  rt: RealtimeServer;
  server: http.Server;
}

describe("realtime client SDK in Chromium", () => {
  let dir: string;
  let browser: Browser;
  /** Shared broker state (what Redis is for several nodes); each node has its own broker. */
  const backend = new MemoryBackend();
  let node: Node;
  let port = 0;

  async function startNode(): Promise<Node> {
    const rt = new RealtimeServer({
      broker: new MemoryBroker({ backend }),
      clientBundleDir: dir,
      namespaces: { chat: { publish: "all" } },
    });
    await rt.start();
    const server = http.createServer((req, res) => {
      if (rt.handleHttp(req, res)) return;
      res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
      res.end(PAGE);
    });
    rt.attach(server, "/realtime");
    await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
    port = (server.address() as AddressInfo).port;
    return { rt, server };
  }

  async function stopNode(n: Node): Promise<void> {
    await n.rt.close(500);
    n.server.closeAllConnections();
    await new Promise<void>((r) => n.server.close(() => r()));
    await n.rt.broker.close();
  }

  async function openPage(channel: string): Promise<Page> {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForFunction(() => (globalThis as unknown as { ready?: boolean }).ready === true);
    await page.evaluate(
      (c) => (globalThis as unknown as { start(c: string): void }).start(c),
      channel,
    );
    await page.waitForFunction(() =>
      (globalThis as unknown as { log: Array<{ kind: string }> }).log.some((e) => e.kind === "sub"),
    );
    return page;
  }

  type Entry = { kind: string; offset: number; data?: unknown; recovered?: boolean };
  const logOf = (page: Page): Promise<Entry[]> =>
    page.evaluate(() => (globalThis as unknown as { log: Entry[] }).log);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "duplex-bundle-"));
    await bundleClient(dir);
    node = await startNode();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
    });
  });

  after(async () => {
    await browser?.close();
    await stopNode(node);
    rmSync(dir, { recursive: true, force: true });
  });

  it("serves the bundle, and two pages exchange acknowledged publications", async () => {
    const res = await fetch(`http://127.0.0.1:${port}/duplex-client.js`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /javascript/);
    const a = await openPage("chat:browser");
    const b = await openPage("chat:browser");
    const ack = await b.evaluate(() =>
      (globalThis as unknown as { publish(d: unknown): Promise<{ offset: number }> }).publish({
        text: "hello from b",
      }),
    );
    assert.equal(ack.offset, 1);
    for (const page of [a, b]) {
      await page.waitForFunction(() =>
        (globalThis as unknown as { log: Array<{ kind: string }> }).log.some(
          (e) => e.kind === "pub",
        ),
      );
      const pubs = (await logOf(page)).filter((e) => e.kind === "pub");
      assert.deepEqual(pubs, [{ kind: "pub", offset: 1, data: { text: "hello from b" } }]);
    }
    await a.close();
    await b.close();
  });

  it("both pages recover what a backend published while the server was down", async () => {
    const a = await openPage("chat:restart");
    const b = await openPage("chat:restart");
    await node.rt.publish("chat:restart", "before");
    for (const p of [a, b]) {
      await p.waitForFunction(() => (globalThis as unknown as { log: unknown[] }).log.length >= 2);
    }
    await stopNode(node);
    // The broker (shared state) lives on; a backend publishes through it meanwhile.
    const api = new RealtimeServer({
      broker: new MemoryBroker({ backend }),
      namespaces: { chat: {} },
    });
    await api.start();
    for (const text of ["missed-1", "missed-2", "missed-3"]) {
      await api.publish("chat:restart", text);
    }
    await api.close();
    await api.broker.close();
    node = await startNode();
    for (const page of [a, b]) {
      await until(
        async () => (await logOf(page)).filter((e) => e.kind === "pub").length === 4,
        10_000,
        "recovered publications in the page",
      );
      const log = await logOf(page);
      const subs = log.filter((e) => e.kind === "sub");
      assert.equal(subs.length, 2, "subscribed, then resubscribed after the restart");
      assert.equal(subs[1]!.recovered, true);
      assert.deepEqual(
        log.filter((e) => e.kind === "pub").map((e) => [e.offset, e.data]),
        [
          [1, "before"],
          [2, "missed-1"],
          [3, "missed-2"],
          [4, "missed-3"],
        ],
      );
      const states = await page.evaluate(
        () => (globalThis as unknown as { states: string[] }).states,
      );
      assert.deepEqual(states.slice(0, 2), ["connecting", "connected"]);
      assert.ok(states.includes("disconnected"), "the page saw the outage");
      assert.equal(states.at(-1), "connected");
    }
    await a.close();
    await b.close();
  });
});
