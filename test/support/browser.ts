/**
 * The client SDK in a real browser, for the browser tests: the esbuild bundle
 * (scripts/bundle-client.mjs) built into a temporary folder and served by the RealtimeServer
 * (/duplex-client.js), a page that loads it and runs one client, and headless Chromium (Debian's,
 * or DUPLEX_CHROMIUM) driven by playwright-core.
 */
import { mkdtempSync } from "node:fs";
import * as http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, chromium } from "playwright-core";
import type { RealtimeServer } from "../../src/realtime/index.js";

export const CHROMIUM = process.env.DUPLEX_CHROMIUM ?? "/usr/bin/chromium";

/** Build the SDK bundle into a fresh temporary folder and return the folder (remove it after). */
export async function bundleClientDir(): Promise<string> {
  // @ts-expect-error — a plain .mjs build script without type declarations
  const { bundleClient } = (await import("../../scripts/bundle-client.mjs")) as {
    bundleClient(dir: string): Promise<string>;
  };
  const dir = mkdtempSync(join(tmpdir(), "duplex-bundle-"));
  await bundleClient(dir);
  return dir;
}

/** Headless Chromium, with `extraArgs` after the usual ones. */
export function launchChromium(extraArgs: readonly string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", ...extraArgs],
  });
}

/**
 * A page that imports the bundle and defines, on `window`:
 * - `start(url, channel, options)`: a client of `url` (reconnecting after 20 to 200 ms unless
 *   `options` say otherwise) subscribed to `channel`, then connected; `listen` is page script run
 *   before that, with `client` and `sub` (the channel) in scope, to add the page's listeners.
 *   The client and the channel stay as `client` and `sub`;
 * - `publish(data)` on that channel;
 * - `log`, an empty array for the listeners, and `ready`, once the page has loaded.
 */
export function sdkPage(title: string, listen: string): string {
  return `<!doctype html><meta charset="utf-8"><title>${title}</title>
<script type="module">
  import { RealtimeClient } from "/duplex-client.js";
  window.log = [];
  window.start = (url, channel, options) => {
    const client = new RealtimeClient(url, { minReconnectDelayMs: 20, maxReconnectDelayMs: 200, ...options });
    const sub = client.channel(channel);
    ${listen.trim()}
    sub.subscribe();
    client.connect();
    window.client = client;
    window.sub = sub;
  };
  window.publish = (data) => window.sub.publish(data);
  window.ready = true;
</script>`;
}

/** An HTTP server (not listening yet): `rt`'s HTTP routes (the bundle among them), else `page`. */
export function pageServer(rt: RealtimeServer, page: string): http.Server {
  return http.createServer((req, res) => {
    if (rt.handleHttp(req, res)) return;
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
    res.end(page);
  });
}
