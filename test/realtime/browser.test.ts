/**
 * The client SDK in a real browser: the esbuild bundle served by the RealtimeServer
 * (/duplex-client.js), loaded by headless Chromium (Debian's, driven by playwright-core), with
 * the browser's own WebSocket. Two pages exchange publications with acks; then the server is
 * restarted under them, a Node backend publishes meanwhile, and both pages recover exactly the
 * missed publications.
 */
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import type * as http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import type { Browser, Page } from "playwright-core";
import { MemoryBackend, MemoryBroker } from "../../src/broker/index.js";
import { RealtimeServer } from "../../src/realtime/index.js";
import { bundleClientDir, launchChromium, pageServer, sdkPage } from "../support/browser.js";
import { until } from "./helpers.js";

const PAGE = sdkPage(
  "duplex sdk",
  `
    window.states = [];
    client.on("state", (e) => window.states.push(e.state));
    sub.on("subscribed", (e) => window.log.push({ kind: "sub", recovered: e.recovered, offset: e.offset }));
    sub.on("publication", (p) => window.log.push({ kind: "pub", offset: p.offset, data: p.data }));
  `,
);

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
    const server = pageServer(rt, PAGE);
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
      ([u, c]) => (globalThis as unknown as { start(u: string, c: string): void }).start(u, c),
      [`ws://127.0.0.1:${port}/realtime`, channel] as const,
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
    dir = await bundleClientDir();
    node = await startNode();
    browser = await launchChromium();
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
