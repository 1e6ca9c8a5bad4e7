/**
 * The live cursors app (/cursors) in headless Chromium against `duplex serve` in process: two
 * people in separate browser contexts with different window sizes see each other's pointer at
 * the same normalised position, with the right name; a pointer goes away when its owner leaves
 * and fades when it stops moving; touch works. Every wait polls the page (no fixed sleeps); the
 * only tolerances are geometric (pixels).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Locator, Page } from "playwright-core";
import { appFixture, type OpenedPage, type OpenPageOptions, screenshot, until } from "./helpers.js";

/** Pixels a pointer may be off in the other window (rounding of the normalised position). */
const TOLERANCE_PX = 2;

/** A nickname in localStorage before the page's scripts run (as the chat would have left it). */
function withNickname(name: string): () => void {
  // Serialised into the page by playwright: no closure over `name`, so build the source.
  return new Function(
    `localStorage.setItem("duplex.nickname", ${JSON.stringify(JSON.stringify(name))});`,
  ) as () => void;
}

/** A computed style property of the element (the test's lib has no DOM types). */
function computed(locator: Locator, property: "opacity" | "backgroundColor"): Promise<string> {
  return locator.evaluate(
    (el, prop) =>
      (
        globalThis as unknown as {
          getComputedStyle(e: unknown): Record<string, string>;
        }
      ).getComputedStyle(el)[prop] ?? "",
    property,
  );
}

async function live(page: Page, people: number): Promise<void> {
  await page.locator('[data-testid="status"][data-state="live"]').waitFor();
  await page.locator(`[data-testid="count"][data-count="${people}"]`).waitFor();
}

/** The cursor of the person called `name` in `page`. */
function cursorOf(page: Page, name: string): Locator {
  return page.locator('[data-testid="cursor"]').filter({
    has: page.locator('[data-testid="cursor-name"]', { hasText: new RegExp(`^${name}$`) }),
  });
}

/** Wait until `name`'s pointer is drawn at (x, y) in `page`, within TOLERANCE_PX. */
async function pointerAt(page: Page, name: string, x: number, y: number): Promise<void> {
  const cursor = cursorOf(page, name);
  let last = "none";
  await until(
    async () => {
      if ((await cursor.count()) !== 1) return false;
      const box = await cursor.boundingBox();
      if (box === null) return false;
      last = `(${box.x}, ${box.y})`;
      return Math.abs(box.x - x) <= TOLERANCE_PX && Math.abs(box.y - y) <= TOLERANCE_PX;
    },
    10_000,
    `${name}'s pointer at (${x}, ${y}) (last seen at ${last})`,
  );
}

describe("cursors app in Chromium", () => {
  const app = appFixture();
  const open = (options: OpenPageOptions = {}): Promise<OpenedPage> =>
    app.open("/cursors", options);

  it("shows A's pointer to B at the same normalised position, and removes it when A leaves", async () => {
    // A has no nickname yet: the page asks for one (and keeps it for the chat).
    const a = await open({ viewport: { width: 800, height: 600 } });
    await a.page.getByTestId("join-form").waitFor();
    await a.page.getByTestId("nickname").fill("A");
    await a.page.getByTestId("join-button").click();
    await a.page.locator('[data-testid="status"][data-state="live"]').waitFor();
    const saved = await a.page.evaluate(() =>
      (
        globalThis as unknown as { localStorage: { getItem(key: string): string | null } }
      ).localStorage.getItem("duplex.nickname"),
    );
    assert.equal(saved, JSON.stringify("A"));
    assert.equal(await a.page.getByTestId("me").textContent(), "A");

    // B comes back with the nickname from localStorage: no form; a different window size.
    const b = await open({ viewport: { width: 1000, height: 500 }, init: withNickname("B") });
    assert.equal(await b.page.getByTestId("join-form").isHidden(), true);
    await live(a.page, 2);
    await live(b.page, 2);
    // Presence: B lists A before A has moved at all.
    await b.page
      .locator('[data-testid="person"]')
      .filter({ has: b.page.locator(".name", { hasText: /^A$/ }) })
      .waitFor();

    // A moves to (400, 150) of 800×600 = (0.5, 0.25) → (500, 125) in B's 1000×500.
    await a.page.mouse.move(100, 100);
    await a.page.mouse.move(400, 150, { steps: 8 });
    await pointerAt(b.page, "A", 500, 125);
    const cursor = cursorOf(b.page, "A");
    assert.equal(await cursor.getAttribute("data-idle"), "false");
    // A's colour from the server reached the label (an hsl() colour, not the fallback grey).
    const colour = await computed(cursor.getByTestId("cursor-name"), "backgroundColor");
    assert.notEqual(colour, "rgb(119, 119, 119)");
    // B does not draw its own pointer; A sees nobody's (B has not moved).
    assert.equal(await b.page.locator('[data-testid="cursor"]').count(), 1);
    assert.equal(await a.page.locator('[data-testid="cursor"]').count(), 0);

    // Another move in A follows in B.
    await a.page.mouse.move(200, 450, { steps: 4 }); // (0.25, 0.75) → (250, 375)
    await pointerAt(b.page, "A", 250, 375);
    await screenshot(b.page, "cursors-b-sees-a");
    await screenshot(a.page, "cursors-a");

    // A leaves (closes the page): its pointer disappears from B, and the count drops.
    await a.context.close();
    await cursorOf(b.page, "A").waitFor({ state: "detached" });
    await live(b.page, 1);
    await screenshot(b.page, "cursors-b-after-a-left");

    assert.deepEqual(a.errors, []);
    assert.deepEqual(b.errors, []);
    await b.context.close();
  });

  it("a touch tap shows the pointer, and a pointer fades after 10 s without movement", async () => {
    // B controls its clock, to see the fade without waiting 10 s.
    const b = await open({ viewport: { width: 1000, height: 500 }, init: withNickname("B") });
    await b.page.clock.install();
    await b.page.reload();
    const c = await open({
      viewport: { width: 600, height: 400 },
      touch: true,
      init: withNickname("C"),
    });
    await live(b.page, 2);
    await live(c.page, 2);

    // A tap at (150, 300) of 600×400 = (0.25, 0.75) → (250, 375) in B.
    await c.page.touchscreen.tap(150, 300);
    await pointerAt(b.page, "C", 250, 375);
    const cursor = cursorOf(b.page, "C");
    assert.equal(await cursor.getAttribute("data-idle"), "false");

    await b.page.clock.fastForward(11_000);
    await until(async () => (await cursor.getAttribute("data-idle")) === "true", 10_000, "fade");
    await until(async () => Number(await computed(cursor, "opacity")) < 1, 10_000, "opacity");

    // Moving again brings it back.
    await c.page.touchscreen.tap(300, 200); // (0.5, 0.5) → (500, 250)
    await pointerAt(b.page, "C", 500, 250);
    assert.equal(await cursor.getAttribute("data-idle"), "false");
    await screenshot(b.page, "cursors-b-sees-touch-c");

    await c.context.close();
    await cursorOf(b.page, "C").waitFor({ state: "detached" });
    assert.deepEqual(b.errors, []);
    assert.deepEqual(c.errors, []);
    await b.context.close();
  });

  it("refuses a bad nickname in the form before connecting", async () => {
    const p = await open({ viewport: { width: 800, height: 600 } });
    // The input takes 32 characters at most (maxlength); a name of spaces is refused by the page.
    await p.page.getByTestId("nickname").fill("   ");
    await p.page.getByTestId("join-button").click();
    await p.page.getByTestId("join-error").waitFor();
    assert.equal(await p.page.getByTestId("join-form").isVisible(), true);
    assert.equal(await p.page.getByTestId("nickname").getAttribute("maxlength"), "32");
    assert.equal(await p.page.getByTestId("status").getAttribute("data-state"), "connecting");
    await p.context.close();
  });
});
