/**
 * The chat app end to end: `duplex serve` in process, the apps built with esbuild, Debian's
 * Chromium driven by playwright-core. People are separate browser contexts (own localStorage).
 * Steps share the server and the pages, in order: two people chat in lobby (messages, presence,
 * typing, ticks, rooms and unread counts), a latecomer gets the history, the server restarts
 * under them (messages published meanwhile are recovered, in order, once), nothing a user types
 * becomes markup, the phone layout works, and a server that lost its state makes the rooms
 * reload their history and say so.
 *
 * The whole suite runs twice: straight to the server, and through a real nginx configured to
 * strip the Upgrade header (deploy/nginx/duplex.conf with `Upgrade ""`), where no WebSocket
 * can open and the pages must work over the SSE fallback — both directions, with recovery
 * across the server restart.
 *
 * Screenshots of each step go to reports/screenshots/; DUPLEX_WRITE_SCREENSHOT=1 also writes
 * the README picture docs/images/chat.png.
 */
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Browser, Page } from "playwright-core";
import { MemoryBroker } from "../../src/broker/index.js";
import { RealtimeServer } from "../../src/realtime/index.js";
import { DUPLEX_CONF, type Nginx, startNginx } from "../support/nginx.js";
import {
  AppServer,
  buildAppsToTemp,
  launchBrowser,
  type OpenedPage,
  openPage,
  ROOT,
  removeDir,
  screenshot,
  until,
} from "./helpers.js";

const WAIT = 20_000;
const PHONE = { width: 390, height: 844 };

interface Person extends OpenedPage {
  readonly name: string;
  /** window.alert() calls (there must be none). */
  readonly dialogs: string[];
}

type Via = "direct" | "nginx";

/** deploy/nginx/duplex.conf with the Upgrade handshake stripped: a proxy that blocks WebSockets. */
function upgradeStrippingConf(): string {
  const conf = readFileSync(DUPLEX_CONF, "utf8");
  const upgrade = "proxy_set_header Upgrade $http_upgrade;";
  const connection = "proxy_set_header Connection $duplex_connection;";
  assert.ok(conf.includes(upgrade) && conf.includes(connection), "duplex.conf changed shape");
  return conf
    .replace(upgrade, 'proxy_set_header Upgrade "";')
    .replace(connection, 'proxy_set_header Connection "";');
}

for (const via of ["direct", "nginx"] as const) chatSuite(via);

function chatSuite(via: Via): void {
  describe(
    via === "direct"
      ? "chat app in Chromium"
      : "chat app in Chromium, through an nginx that strips Upgrade (SSE fallback)",
    () => {
      let dir: string | undefined;
      let nginx: Nginx | undefined;
      /** Where the browser goes: the server, or nginx in front of it. */
      let front = "";
      let server: AppServer;
      let browser: Browser;
      const people: Person[] = [];
      let ada: Person;
      let bob: Person;

      before(async () => {
        dir = await buildAppsToTemp();
        server = new AppServer(dir);
        await server.start();
        if (via === "nginx") {
          nginx = await startNginx({
            backends: [{ host: "127.0.0.1", port: server.port }],
            template: upgradeStrippingConf(),
            workerConnections: 256,
          });
        }
        front = nginx?.url ?? server.url;
        browser = await launchBrowser();
      });

      after(async () => {
        for (const p of people) await p.context.close().catch(() => undefined);
        await browser?.close();
        await server?.stop();
        await nginx?.close();
        removeDir(dir);
      });

      /** The step's screenshot, named after the suite. */
      function shot(page: Page, name: string): Promise<string> {
        return screenshot(page, via === "direct" ? name : `${name}-nginx-sse`);
      }

      /** Open the chat as a new person: pick the nickname, wait until live in lobby. */
      async function arrive(name: string, viewport?: { width: number; height: number }) {
        const opened = await openPage(
          browser,
          `${front}/`,
          viewport === undefined ? {} : { viewport },
        );
        const dialogs: string[] = [];
        opened.page.on("dialog", (d) => {
          dialogs.push(d.message());
          void d.dismiss();
        });
        const person: Person = { ...opened, name, dialogs };
        people.push(person);
        const { page } = opened;
        await page.getByTestId("nickname-input").fill(name);
        await page.getByTestId("nickname-submit").click();
        await badge(page, "live");
        await page
          .getByTestId("room-title")
          .filter({ hasText: "# lobby" })
          .waitFor({ timeout: WAIT });
        await memberShown(page, name);
        return person;
      }

      async function badge(page: Page, state: string): Promise<void> {
        await page
          .locator(`[data-testid=connection][data-state="${state}"]`)
          .waitFor({ timeout: WAIT });
      }

      /** The texts of the active room's messages, in the order shown. */
      function texts(page: Page): Promise<string[]> {
        return page
          .locator("[data-testid=message-log] [data-testid=message-text]")
          .allTextContents();
      }

      async function textsInclude(page: Page, ...wanted: string[]): Promise<void> {
        await until(
          async () => {
            const shown = await texts(page);
            return wanted.every((w) => shown.includes(w));
          },
          WAIT,
          `messages ${JSON.stringify(wanted)}`,
        );
      }

      async function memberShown(page: Page, user: string): Promise<void> {
        await until(
          async () => (await presenceUsers(page)).includes(user),
          WAIT,
          `${user} in the presence list`,
        );
      }

      function presenceUsers(page: Page): Promise<string[]> {
        return page
          .locator("[data-testid=presence-list] [data-testid=presence-member]")
          .evaluateAll((els) => els.map((el) => el.getAttribute("data-user") ?? ""));
      }

      async function send(page: Page, text: string): Promise<void> {
        const input = page.getByTestId("composer-input");
        await input.fill(text);
        await input.press("Enter");
      }

      /** The message whose text is exactly `text` (in the active room). */
      function message(page: Page, text: string) {
        return page
          .locator("[data-testid=message-log] [data-testid=message]")
          .filter({ has: page.getByTestId("message-text").getByText(text, { exact: true }) });
      }

      /** Record every state the connection badge shows from now on (window.__states). */
      async function recordStates(page: Page): Promise<void> {
        await page.evaluate(`(() => {
      const el = document.querySelector("[data-testid=connection]");
      window.__states = [el.dataset.state];
      new MutationObserver(() => window.__states.push(el.dataset.state))
        .observe(el, { attributes: true, attributeFilter: ["data-state"] });
    })()`);
      }

      function recordedStates(page: Page): Promise<string[]> {
        return page.evaluate("window.__states") as Promise<string[]>;
      }

      /** Errors that mean the app is broken (CSP violations, uncaught exceptions). */
      function appErrors(p: Person): string[] {
        return p.errors.filter(
          (e) =>
            !/WebSocket connection to .* failed/.test(e) &&
            // nginx answers 502 while the server behind it restarts.
            !(via === "nginx" && /status of 502 \(Bad Gateway\)/.test(e)),
        );
      }

      it("two people chat in lobby: messages, presence, typing, delivery ticks", async () => {
        ada = await arrive("ada");
        bob = await arrive("bob");
        await memberShown(ada.page, "bob");
        await memberShown(bob.page, "ada");
        assert.equal(await ada.page.getByTestId("presence-count").textContent(), "2");
        if (via === "nginx") {
          // No WebSocket got through: the pages talk to the server over the SSE transport.
          for (const p of [ada, bob]) {
            const used = (await p.page.evaluate(
              "performance.getEntriesByType('resource').map((e) => new URL(e.name).pathname)",
            )) as string[];
            assert.ok(used.includes("/realtime/sse"), `${p.name}: ${used.join(" ")}`);
          }
        }

        // ada types: bob sees it (never ada herself).
        await ada.page.getByTestId("composer-input").fill("Hi bob");
        await bob.page
          .getByTestId("typing")
          .filter({ hasText: "ada is typing…" })
          .waitFor({ timeout: WAIT });
        assert.equal(await ada.page.getByTestId("typing").textContent(), "");
        await shot(bob.page, "chat-1-typing");

        await ada.page.getByTestId("composer-input").press("Enter");
        await message(ada.page, "Hi bob")
          .and(ada.page.locator("[data-status=sent]"))
          .waitFor({ timeout: WAIT });
        assert.equal(
          await message(ada.page, "Hi bob").getByTestId("message-status").textContent(),
          "✓delivered",
        );
        await textsInclude(bob.page, "Hi bob");
        // Her message ends bob's "is typing" indicator.
        await bob.page.getByTestId("typing").filter({ hasText: /^$/ }).waitFor({ timeout: WAIT });

        await send(bob.page, "Hello ada! Welcome to Duplex.");
        await textsInclude(ada.page, "Hello ada! Welcome to Duplex.");
        await message(bob.page, "Hello ada! Welcome to Duplex.")
          .and(bob.page.locator("[data-status=sent]"))
          .waitFor({ timeout: WAIT });
        const author = await message(ada.page, "Hello ada! Welcome to Duplex.")
          .getByTestId("message-author")
          .textContent();
        assert.equal(author, "bob");

        await send(ada.page, "Reconnects lose nothing here, right?");
        await send(bob.page, "Right: missed messages are replayed in order.");
        await textsInclude(ada.page, "Right: missed messages are replayed in order.");
        await textsInclude(bob.page, "Reconnects lose nothing here, right?");
        for (const p of [ada, bob]) {
          assert.deepEqual(await texts(p.page), [
            "Hi bob",
            "Hello ada! Welcome to Duplex.",
            "Reconnects lose nothing here, right?",
            "Right: missed messages are replayed in order.",
          ]);
        }
        await shot(ada.page, "chat-1-ada");
        await shot(bob.page, "chat-1-bob");
      });

      it("creates rooms (validated, listed for everyone) and counts unread messages", async () => {
        const input = ada.page.getByTestId("new-room-input");
        await input.fill("no spaces!");
        await ada.page.getByTestId("new-room-submit").click();
        await ada.page
          .getByTestId("new-room-error")
          .filter({ hasText: "1 to 32 letters" })
          .waitFor({ timeout: WAIT });
        await input.fill("design");
        await ada.page.getByTestId("new-room-submit").click();
        await ada.page.getByTestId("room-title").filter({ hasText: "# design" }).waitFor();
        assert.equal(await ada.page.getByTestId("new-room-error").textContent(), "");

        // bob sees the new room (rooms:index), joins it, and goes back to lobby.
        const bobDesign = bob.page.locator("[data-testid=room-item][data-room=design]");
        await bobDesign.waitFor({ timeout: WAIT });
        await bobDesign.getByTestId("room-open").click();
        await bob.page.getByTestId("room-title").filter({ hasText: "# design" }).waitFor();
        await memberShown(ada.page, "bob");
        await bob.page
          .locator("[data-testid=room-item][data-room=lobby]")
          .getByTestId("room-open")
          .click();
        await bob.page.getByTestId("room-title").filter({ hasText: "# lobby" }).waitFor();

        await send(ada.page, "Mockups are up in #design");
        await send(ada.page, "Feedback welcome");
        const unread = bobDesign.getByTestId("room-unread");
        await bobDesign
          .locator("[data-testid=room-unread][data-count='2']")
          .waitFor({ timeout: WAIT });
        assert.equal(await unread.isVisible(), true);
        await until(
          async () => (await bob.page.title()) === "(2) Duplex chat",
          WAIT,
          "unread title",
        );
        await shot(bob.page, "chat-2-unread");

        await bobDesign.getByTestId("room-open").click();
        await textsInclude(bob.page, "Mockups are up in #design", "Feedback welcome");
        assert.equal(await unread.isVisible(), false);
        assert.equal(await bob.page.title(), "Duplex chat");

        // Both back in lobby; the rooms stay joined (remembered in localStorage).
        for (const p of [ada, bob]) {
          await p.page
            .locator("[data-testid=room-item][data-room=lobby]")
            .getByTestId("room-open")
            .click();
          await p.page.getByTestId("room-title").filter({ hasText: "# lobby" }).waitFor();
          const stored = await p.page.evaluate("localStorage.getItem('duplex.chat.rooms')");
          assert.deepEqual(JSON.parse(String(stored)), ["lobby", "design"]);
        }
        await memberShown(ada.page, "bob");
        if (via === "direct" && process.env.DUPLEX_WRITE_SCREENSHOT === "1") {
          mkdirSync(join(ROOT, "docs", "images"), { recursive: true });
          await ada.page.getByTestId("composer-input").blur();
          await ada.page.screenshot({ path: join(ROOT, "docs", "images", "chat.png") });
        }
      });

      it("a latecomer sees the earlier messages (history)", async () => {
        const carol = await arrive("carol");
        await textsInclude(carol.page, "Hi bob", "Right: missed messages are replayed in order.");
        assert.deepEqual(await texts(carol.page), await texts(ada.page));
        await memberShown(carol.page, "ada");
        await memberShown(carol.page, "bob");
        await memberShown(ada.page, "carol");
        await shot(carol.page, "chat-3-history");
        await carol.context.close();
        // Over WebSocket a closed page leaves presence at once. Over SSE a stream that ends may
        // be a client reopening it on another node: its entry expires after the HTTP presence
        // TTL (1.5 s here), then a sweep pushes the leave.
        await until(
          async () => !(await presenceUsers(ada.page)).includes("carol"),
          WAIT,
          "carol left",
        );
      });

      it("recovers the messages sent while the server restarted: in order, once each", async () => {
        const before = await texts(ada.page);
        for (const p of [ada, bob]) await recordStates(p.page);
        await server.stop();
        for (const p of [ada, bob]) {
          await until(
            async () => (await recordedStates(p.page)).includes("reconnecting"),
            WAIT,
            `${p.name} reconnecting`,
          );
        }
        await shot(ada.page, "chat-4-reconnecting");

        // A backend publishes while no server is up (same broker state the server restarts on).
        const backend = new RealtimeServer({
          broker: new MemoryBroker({ backend: server.backend }),
          namespaces: { chat: { presence: true, historySize: 200, historyTtlMs: 24 * 3600_000 } },
        });
        await backend.start();
        const from = { client: "node", user: "backend" };
        await backend.publish("chat:lobby", { text: "sent while you were away" }, { from });
        await backend.publish("chat:lobby", { text: "and a second one" }, { from });
        await backend.close(100);
        await backend.broker.close();

        await server.start();
        const missed = ["sent while you were away", "and a second one"];
        for (const p of [ada, bob]) {
          await badge(p.page, "live");
          await textsInclude(p.page, ...missed);
          const states = await recordedStates(p.page);
          const down = states.indexOf("reconnecting");
          assert.ok(down >= 0 && states.lastIndexOf("live") > down, states.join(" → "));
          assert.deepEqual(await texts(p.page), [...before, ...missed]);
          // Recovered, not reloaded: no notice.
          assert.equal(await p.page.getByTestId("notice").count(), 0);
        }
        await memberShown(ada.page, "bob");
        await shot(ada.page, "chat-4-recovered");

        // Still working after the restart, with ticks.
        await send(bob.page, "Back online");
        await textsInclude(ada.page, "Back online");
        await message(bob.page, "Back online")
          .and(bob.page.locator("[data-status=sent]"))
          .waitFor({ timeout: WAIT });
      });

      it("shows messages and nicknames as text, never as markup", async () => {
        const mallory = await arrive("<b>mallory</b>");
        const attack = "<img src=x onerror=alert(1)>";
        await send(mallory.page, attack);
        for (const p of [ada, mallory]) {
          await textsInclude(p.page, attack);
          const shown = message(p.page, attack);
          assert.equal(await shown.getByTestId("message-author").textContent(), "<b>mallory</b>");
          assert.equal(await p.page.locator("[data-testid=message-log] img").count(), 0);
          assert.equal(await p.page.locator("[data-testid=message-log] b").count(), 0);
          await memberShown(p.page, "<b>mallory</b>");
          assert.equal(await p.page.locator("[data-testid=presence-list] b").count(), 0);
        }
        assert.equal(await mallory.page.getByTestId("my-name").textContent(), "<b>mallory</b>");
        await shot(ada.page, "chat-5-injection");
        assert.deepEqual([...ada.dialogs, ...bob.dialogs, ...mallory.dialogs], []);
      });

      it("works on a phone-sized screen (390×844)", async () => {
        const eve = await arrive("eve", PHONE);
        const { page } = eve;
        const input = page.getByTestId("composer-input");
        const sendButton = page.getByTestId("composer-send");
        for (const el of [input, sendButton]) {
          assert.equal(await el.isVisible(), true);
          const box = await el.boundingBox();
          assert.ok(box !== null);
          assert.ok(box.x >= 0 && box.x + box.width <= PHONE.width, JSON.stringify(box));
          assert.ok(box.y >= 0 && box.y + box.height <= PHONE.height, JSON.stringify(box));
        }
        // The room list is collapsed behind a toggle.
        assert.equal(await page.getByTestId("sidebar").isVisible(), false);
        await shot(page, "chat-6-phone");
        await page.getByTestId("rooms-toggle").click();
        await page.getByTestId("sidebar").waitFor({ state: "visible" });
        assert.equal(await page.getByTestId("rooms-toggle").getAttribute("aria-expanded"), "true");
        await shot(page, "chat-6-phone-rooms");
        await page
          .locator("[data-testid=room-item][data-room=lobby]")
          .getByTestId("room-open")
          .click();
        await page.getByTestId("sidebar").waitFor({ state: "hidden" });

        await input.fill("Hello from my phone");
        await sendButton.click();
        await message(page, "Hello from my phone")
          .and(page.locator("[data-status=sent]"))
          .waitFor({ timeout: WAIT });
        await textsInclude(ada.page, "Hello from my phone");
        assert.equal(await input.inputValue(), "");
        await shot(page, "chat-6-phone-sent");
      });

      it("reloads the history and says so when the server cannot replay what was missed", async () => {
        await server.stop();
        server.resetState(); // a server that lost everything: new epochs, recovery impossible
        await server.start();
        for (const p of [ada, bob]) {
          await badge(p.page, "live");
          await p.page
            .getByTestId("notice")
            .filter({ hasText: "history reloaded" })
            .waitFor({ timeout: WAIT });
          assert.deepEqual(await texts(p.page), []);
        }
        await send(ada.page, "Fresh start");
        await textsInclude(bob.page, "Fresh start");
        await shot(bob.page, "chat-7-reloaded");
        for (const p of people) assert.deepEqual(appErrors(p), [], p.name);
      });
    },
  );
}
