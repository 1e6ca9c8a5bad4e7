/**
 * Shared by the browser tests of the apps (test/apps/*.test.ts): build the apps into a temporary
 * folder, run `duplex serve` in process (restartable on the same port with the same broker
 * state), drive Debian's Chromium with playwright-core (never a browser download), and save
 * screenshots under reports/screenshots/.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { MemoryBackend, MemoryBroker } from "../../src/broker/index.js";
import { type Serving, startServe } from "../../src/cli/serve.js";

// @ts-expect-error — a plain .mjs build script without type declarations
const { buildApps } = (await import("../../scripts/build-apps.mjs")) as {
  buildApps(outdir: string): Promise<{ outdir: string; apps: string[] }>;
};

export const ROOT = resolve(import.meta.dirname, "..", "..");
export const CHROMIUM = process.env.DUPLEX_CHROMIUM ?? "/usr/bin/chromium";
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

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
  });
}

export interface OpenedPage {
  readonly context: BrowserContext;
  readonly page: Page;
  /** Uncaught exceptions and console errors of the page (CSP violations show up here). */
  readonly errors: string[];
}

/** A page in its own browser context (own localStorage and cookies: a separate person). */
export async function openPage(
  browser: Browser,
  url: string,
  options: { viewport?: { width: number; height: number }; init?: () => void } = {},
): Promise<OpenedPage> {
  const context = await browser.newContext({
    viewport: options.viewport ?? { width: 1280, height: 800 },
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
