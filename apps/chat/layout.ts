/**
 * Page layout behaviour: the message log follows new messages while the reader is at the
 * bottom (and stays put while they scroll back), and on narrow screens the room list and the
 * people list are drawers opened by toggle buttons (Escape or the backdrop closes them).
 */
import { byId } from "../shared/dom.js";

type Drawer = "rooms" | "people";

export class Layout {
  readonly #log: HTMLElement;
  #atBottom = true;
  readonly #app = byId("app");
  readonly #toggles: Record<Drawer, HTMLButtonElement> = {
    rooms: byId<HTMLButtonElement>("rooms-toggle"),
    people: byId<HTMLButtonElement>("people-toggle"),
  };

  constructor(log: HTMLElement) {
    this.#log = log;
    log.addEventListener("scroll", () => {
      this.#atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 48;
    });
    new MutationObserver(() => {
      if (this.#atBottom) log.scrollTop = log.scrollHeight;
    }).observe(log, { childList: true, subtree: true, characterData: true });

    for (const drawer of ["rooms", "people"] as const) {
      this.#toggles[drawer].addEventListener("click", () => {
        this.#open(this.#app.dataset.drawer === drawer ? undefined : drawer);
      });
    }
    byId("scrim").addEventListener("click", () => this.closeDrawers());
    for (const button of document.querySelectorAll<HTMLElement>("[data-close-drawer]")) {
      button.addEventListener("click", () => this.#closeAndReturn());
    }
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape") this.#closeAndReturn();
    });
  }

  /** Close the open drawer and give the focus back to its toggle. */
  #closeAndReturn(): void {
    const open = this.#app.dataset.drawer;
    if (open !== "rooms" && open !== "people") return;
    this.closeDrawers();
    this.#toggles[open].focus();
  }

  /** Show the newest message (after opening a room, or sending). */
  scrollToEnd(): void {
    this.#atBottom = true;
    this.#log.scrollTop = this.#log.scrollHeight;
  }

  closeDrawers(): void {
    this.#open(undefined);
  }

  #open(drawer: Drawer | undefined): void {
    if (drawer === undefined) delete this.#app.dataset.drawer;
    else this.#app.dataset.drawer = drawer;
    for (const [name, toggle] of Object.entries(this.#toggles)) {
      toggle.setAttribute("aria-expanded", String(name === drawer));
    }
    if (drawer !== undefined) {
      const panel = byId(drawer === "rooms" ? "sidebar" : "people");
      panel.querySelector<HTMLElement>("button, input")?.focus();
    }
  }
}
