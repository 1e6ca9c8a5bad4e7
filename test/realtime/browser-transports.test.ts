/**
 * The client SDK's HTTP transports in a real browser: headless Chromium loads the esbuild
 * bundle through a proxy (test/support/http-proxy.ts) that refuses WebSocket upgrades, or
 * buffers responses, and the page's client falls back to SSE or long-polling with the
 * browser's own fetch() streaming; cross-origin through CORS; and back to WebSocket once the
 * proxy lets it through, without losing or doubling a publication.
 */
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import type * as http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import type { Browser, Page } from "playwright-core";
import { MemoryBroker } from "../../src/broker/index.js";
import { RealtimeServer } from "../../src/realtime/index.js";
import { bundleClientDir, launchChromium, pageServer, sdkPage } from "../support/browser.js";
import { type HttpProxy, startHttpProxy } from "../support/http-proxy.js";
import { until } from "./helpers.js";

const PAGE = sdkPage(
  "duplex transports",
  `
    window.transports = [];
    client.on("transport", (e) => window.transports.push(e.transport));
    sub.on("publication", (p) => window.log.push({ offset: p.offset, data: p.data }));
    sub.on("subscribed", () => { window.subscribed = true; });
  `,
);

type Win = {
  ready?: boolean;
  subscribed?: boolean;
  log: Array<{ offset: number; data: unknown }>;
  transports: string[];
  client: { transport: string; close(): void };
  start(url: string, channel: string, options: object): void;
  publish(data: unknown): Promise<{ offset: number }>;
};

describe("realtime client SDK in Chromium: HTTP transports", () => {
  let dir: string;
  let browser: Browser;
  let rt: RealtimeServer;
  let server: http.Server;
  let port = 0;
  let proxy: HttpProxy;
  const pages: Page[] = [];

  before(async () => {
    dir = await bundleClientDir();
    rt = new RealtimeServer({
      broker: new MemoryBroker(),
      clientBundleDir: dir,
      namespaces: { chat: { publish: "all" } },
      httpTransports: { keepaliveMs: 1000, pollTimeoutMs: 1000 },
    });
    await rt.start();
    server = pageServer(rt, PAGE);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as AddressInfo).port;
    // The pages' origins (the server's, another name for it, the proxy's) and no other.
    const origins = new Set([`http://127.0.0.1:${port}`, `http://localhost:${port}`]);
    rt.attach(server, "/realtime", { allowedOrigins: (origin) => origins.has(origin) });
    proxy = await startHttpProxy([port]);
    origins.add(`http://127.0.0.1:${proxy.port}`);
    browser = await launchChromium();
  });

  after(async () => {
    for (const p of pages) await p.close();
    await browser?.close();
    await proxy.close();
    await rt.close(500);
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    await rt.broker.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A page loaded from `origin`, its client connecting to `url`, subscribed to `channel`. */
  async function open(origin: string, url: string, channel: string, options = {}): Promise<Page> {
    const page = await browser.newPage();
    pages.push(page);
    await page.goto(`${origin}/`);
    await page.waitForFunction(() => (globalThis as unknown as Win).ready === true);
    await page.evaluate(
      ([u, c, o]) => (globalThis as unknown as Win).start(u as string, c as string, o as object),
      [url, channel, options] as const,
    );
    await page.waitForFunction(() => (globalThis as unknown as Win).subscribed === true, null, {
      timeout: 15_000,
    });
    return page;
  }

  const transportOf = (page: Page): Promise<string> =>
    page.evaluate(() => (globalThis as unknown as Win).client.transport);
  const logOf = (page: Page): Promise<Win["log"]> =>
    page.evaluate(() => (globalThis as unknown as Win).log);

  async function exchange(page: Page, channel: string): Promise<void> {
    const ack = await page.evaluate(() => (globalThis as unknown as Win).publish("from the page"));
    await rt.publish(channel, "from the server");
    await until(async () => (await logOf(page)).length >= 2, 10_000, "publications in the page");
    assert.deepEqual(
      (await logOf(page)).map((e) => e.data),
      ["from the page", "from the server"],
    );
    assert.equal((await logOf(page))[0]!.offset, ack.offset);
  }

  it("behind a proxy that refuses upgrades: SSE over the browser's fetch", async () => {
    proxy.upgrades = "refuse";
    proxy.buffering = false;
    const origin = `http://127.0.0.1:${proxy.port}`;
    const page = await open(origin, `ws://127.0.0.1:${proxy.port}/realtime`, "chat:b-sse", {
      probeIntervalMs: 0,
    });
    assert.equal(await transportOf(page), "sse");
    await exchange(page, "chat:b-sse");
  });

  it("behind a proxy that buffers responses: long-polling", async () => {
    proxy.upgrades = "refuse";
    proxy.buffering = true;
    const origin = `http://127.0.0.1:${proxy.port}`;
    const page = await open(origin, `ws://127.0.0.1:${proxy.port}/realtime`, "chat:b-poll", {
      connectTimeoutMs: 2000,
      probeIntervalMs: 0,
    });
    assert.equal(await transportOf(page), "polling");
    await exchange(page, "chat:b-poll");
  });

  it("cross-origin, through CORS: a page of another origin, an allowed one", async () => {
    // The page comes from localhost:<port>; the realtime server is reached at 127.0.0.1:<port>.
    const page = await open(
      `http://localhost:${port}`,
      `ws://127.0.0.1:${port}/realtime`,
      "chat:b-cors",
      { transports: ["sse"] },
    );
    assert.equal(await transportOf(page), "sse");
    await exchange(page, "chat:b-cors");
  });

  it("back to WebSocket once the proxy lets it through; nothing lost or doubled", async () => {
    proxy.upgrades = "refuse";
    proxy.buffering = false;
    const channel = "chat:b-probe";
    const page = await open(
      `http://127.0.0.1:${proxy.port}`,
      `ws://127.0.0.1:${proxy.port}/realtime`,
      channel,
      { probeIntervalMs: 200 },
    );
    assert.equal(await transportOf(page), "sse");
    let n = 0;
    for (; n < 10; n++) await rt.publish(channel, n);
    proxy.upgrades = "pass";
    while ((await transportOf(page)) !== "websocket") await rt.publish(channel, n++);
    for (let k = 0; k < 10; k++) await rt.publish(channel, n++);
    await until(async () => (await logOf(page)).length >= n, 10_000, "every publication");
    const log = await logOf(page);
    assert.deepEqual(
      log.map((e) => e.data),
      Array.from({ length: n }, (_, i) => i),
    );
    assert.deepEqual(await page.evaluate(() => (globalThis as unknown as Win).transports), [
      "sse",
      "websocket",
    ]);
  });
});
