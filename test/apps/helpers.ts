/**
 * Shared by the browser tests of the apps (test/apps/*.test.ts): build the apps into a temporary
 * folder, run `duplex serve` in process (restartable on the same port with the same broker
 * state), drive Debian's Chromium with playwright-core (never a browser download), and save
 * screenshots under reports/screenshots/.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before } from "node:test";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { MemoryBackend, MemoryBroker } from "../../src/broker/index.js";
import { type Serving, startServe } from "../../src/cli/serve.js";
import { launchChromium } from "../support/browser.js";

// @ts-expect-error — a plain .mjs build script without type declarations
const { buildApps } = (await import("../../scripts/build-apps.mjs")) as {
  buildApps(outdir: string): Promise<{ outdir: string; apps: string[] }>;
};

export const ROOT = resolve(import.meta.dirname, "..", "..");
export const SCREENSHOTS = join(ROOT, "reports", "screenshots");

/** Build every app (apps/<name>/) into a new temporary folder; remove it with rmSync when done. */
export async function buildAppsToTemp(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "duplex-apps-"));
  await buildApps(dir);
  return dir;
}

export function removeDir(dir: string | undefined): void {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
}

/**
 * `duplex serve` in process on 127.0.0.1. Its broker state lives in `backend`, so stop() then
 * start() is a server restart that keeps history (like a node restart in front of Redis); the
 * port stays the same after the first start.
 */
export class AppServer {
  readonly appsDir: string;
  #backend = new MemoryBackend();
  #serving: Serving | undefined;
  #broker: MemoryBroker | undefined;
  #port = 0;
  readonly #statsIntervalMs: number;

  constructor(appsDir: string, options: { statsIntervalMs?: number } = {}) {
    this.appsDir = appsDir;
    this.#statsIntervalMs = options.statsIntervalMs ?? 1000;
  }

  /** The broker state shared by every start (histories, presence, positions). */
  get backend(): MemoryBackend {
    return this.#backend;
  }

  /** While stopped: the next start() begins with empty broker state (new epochs: no recovery). */
  resetState(): void {
    if (this.#serving !== undefined) throw new Error("stop the server before resetting its state");
    this.#backend = new MemoryBackend();
  }

  get running(): boolean {
    return this.#serving !== undefined;
  }

  get serving(): Serving {
    if (this.#serving === undefined) throw new Error("the server is not running");
    return this.#serving;
  }

  get port(): number {
    return this.#port;
  }

  /** http://127.0.0.1:PORT (valid once started; stays the same across restarts). */
  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  /** ws://127.0.0.1:PORT/realtime */
  get realtimeUrl(): string {
    return `ws://127.0.0.1:${this.#port}/realtime`;
  }

  async start(): Promise<Serving> {
    if (this.#serving !== undefined) return this.#serving;
    this.#broker = new MemoryBroker({ backend: this.#backend });
    this.#serving = await startServe({
      host: "127.0.0.1",
      port: this.#port,
      appsDir: this.appsDir,
      broker: this.#broker,
      statsIntervalMs: this.#statsIntervalMs,
      // Pages that go away over an HTTP transport leave presence within a second or two.
      realtime: { presenceSweepMs: 250, httpTransports: { presenceTtlMs: 1500 } },
    });
    this.#port = this.#serving.port;
    return this.#serving;
  }

  /** Graceful stop: clients get 4000 and start reconnecting with backoff. */
  async stop(): Promise<void> {
    const serving = this.#serving;
    const broker = this.#broker;
    this.#serving = undefined;
    this.#broker = undefined;
    if (serving !== undefined) await serving.close();
    if (broker !== undefined) await broker.close();
  }
}

/** Headless Chromium (the Debian package, or DUPLEX_CHROMIUM). */
export const launchBrowser = launchChromium;

export interface OpenedPage {
  readonly context: BrowserContext;
  readonly page: Page;
  /** Uncaught exceptions and console errors of the page (CSP violations show up here). */
  readonly errors: string[];
}

export interface OpenPageOptions {
  readonly viewport?: { width: number; height: number };
  /** A script run in the page before its own (e.g. to seed localStorage). */
  readonly init?: () => void;
  /** A phone with a touch screen (hasTouch, isMobile) rather than a mouse. */
  readonly touch?: boolean;
}

/** A page in its own browser context (own localStorage and cookies: a separate person). */
export async function openPage(
  browser: Browser,
  url: string,
  options: OpenPageOptions = {},
): Promise<OpenedPage> {
  const context = await browser.newContext({
    viewport: options.viewport ?? { width: 1280, height: 800 },
    ...(options.touch === true ? { hasTouch: true, isMobile: true } : {}),
  });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`console: ${m.text()}`);
  });
  if (options.init !== undefined) await context.addInitScript(options.init);
  await page.goto(url);
  return { context, page, errors };
}

/** Save a screenshot as reports/screenshots/<name>.png (the folder is git-ignored). */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path, animations: "disabled" });
  return path;
}

/** Poll until `check` is true (no fixed sleeps); fails after `ms`. */
export async function until(
  check: () => boolean | Promise<boolean>,
  ms = 10_000,
  what = "condition",
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export interface AppFixture {
  /** The server (once the suite's before() hook has run). */
  readonly server: AppServer;
  /** Chromium (once the suite's before() hook has run). */
  readonly browser: Browser;
  /** openPage() on `path` of the server; the page's context is closed after the suite. */
  open(path: string, options?: OpenPageOptions): Promise<OpenedPage>;
}

/**
 * The setup of an app's browser tests, called inside describe(): before() builds the apps into a
 * temporary folder, starts the server on it and launches Chromium; after() closes every page
 * opened with open(), then Chromium and the server, and removes the folder.
 */
export function appFixture(options: { statsIntervalMs?: number } = {}): AppFixture {
  let dir: string | undefined;
  let server: AppServer | undefined;
  let browser: Browser | undefined;
  const opened: OpenedPage[] = [];

  before(async () => {
    dir = await buildAppsToTemp();
    server = new AppServer(dir, options);
    await server.start();
    browser = await launchBrowser();
  });

  after(async () => {
    for (const p of opened) await p.context.close().catch(() => undefined);
    await browser?.close();
    await server?.stop();
    removeDir(dir);
  });

  return {
    get server(): AppServer {
      if (server === undefined) throw new Error("the suite's before() hook has not run");
      return server;
    },
    get browser(): Browser {
      if (browser === undefined) throw new Error("the suite's before() hook has not run");
      return browser;
    },
    async open(path: string, pageOptions: OpenPageOptions = {}): Promise<OpenedPage> {
      const p = await openPage(this.browser, `${this.server.url}${path}`, pageOptions);
      opened.push(p);
      return p;
    },
  };
}
