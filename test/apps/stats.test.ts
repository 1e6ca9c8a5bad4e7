/**
 * The stats page (/stats) in headless Chromium against `duplex serve` in process, publishing
 * its snapshot every 100 ms: the numbers show, the chart is filled from history and then live,
 * and a second page shows up in the first one's connection count. Every wait polls the page
 * (no fixed sleeps, no timing thresholds).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Page } from "playwright-core";
import { appFixture, screenshot, until } from "./helpers.js";

/** The raw number behind a figure of the page (its `data-value`), NaN while there is none. */
async function value(page: Page, testId: string): Promise<number> {
  const raw = await page.getByTestId(testId).getAttribute("data-value");
  return raw === null ? Number.NaN : Number(raw);
}

/** Number of points of an SVG path's data (M and L commands). */
function points(d: string | null): number {
  return (d ?? "").match(/[ML]/g)?.length ?? 0;
}

describe("stats app in Chromium", () => {
  const app = appFixture({ statsIntervalMs: 100 });

  it("shows the numbers and a chart filled from history, then live; a second page adds a connection", async () => {
    // The server has published a few snapshots before anyone looks: they are history.
    await until(
      () => app.server.serving.rt.stats.publications >= 3,
      10_000,
      "3 stats publications",
    );
    const before = Date.now();

    const one = await app.open("/stats");
    const page = one.page;
    await page.locator('[data-testid="status"][data-state="live"]').waitFor();

    // The numbers, in a <dl>: at least this page is connected.
    await until(async () => (await value(page, "connections")) >= 1, 10_000, "connections ≥ 1");
    for (const id of [
      "channels",
      "publications-per-second",
      "deliveries-per-second",
      "rss",
      "heap",
      "uptime",
    ]) {
      await until(async () => Number.isFinite(await value(page, id)), 10_000, `${id} shown`);
    }
    assert.match((await page.getByTestId("rss").textContent()) ?? "", /MiB$/);
    assert.equal(await page.locator('dl[data-testid="numbers"] > div > dd').count(), 7);
    assert.equal(await page.locator('dl[data-testid="numbers"] > div > dt').count(), 7);

    // The chart: inline SVG with a title and a label, lines with points.
    const chart = page.getByTestId("chart");
    assert.equal(await chart.evaluate((el) => el.namespaceURI), "http://www.w3.org/2000/svg");
    assert.match((await chart.locator("title").textContent()) ?? "", /last 2 minutes/);
    assert.match((await chart.getAttribute("aria-label")) ?? "", /publications per second/i);
    assert.equal(await chart.getAttribute("role"), "img");
    const publications = page.getByTestId("chart-publications");
    const connections = page.getByTestId("chart-connections");
    await until(
      async () => points(await publications.getAttribute("d")) >= 2,
      10_000,
      "a publications line with points",
    );
    await until(
      async () => points(await connections.getAttribute("d")) >= 2,
      10_000,
      "a connections line with points",
    );
    // Filled from history: the oldest sample predates the page.
    const first = Number(await chart.getAttribute("data-first"));
    assert.ok(first < before, `oldest sample ${first} should predate the page (${before})`);
    // …then live: more samples arrive.
    const samples = Number(await chart.getAttribute("data-samples"));
    await until(
      async () => Number(await chart.getAttribute("data-samples")) > samples,
      10_000,
      "live samples",
    );

    // A second page: the first one sees one more connection.
    const connected = await value(page, "connections");
    const two = await app.open("/stats");
    await two.page.locator('[data-testid="status"][data-state="live"]').waitFor();
    await until(
      async () => (await value(page, "connections")) > connected,
      10_000,
      `connections > ${connected}`,
    );
    await screenshot(page, "stats");

    assert.deepEqual(one.errors, []);
    assert.deepEqual(two.errors, []);
  });
});
