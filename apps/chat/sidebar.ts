/**
 * The room list: every known room (the `rooms:index` channel plus the rooms joined here), with
 * unread counts and leave buttons for the joined ones. Rows are updated in place, so a focused
 * button keeps its focus while counts change.
 */
import { h } from "../shared/dom.js";

export interface RoomRow {
  readonly name: string;
  readonly joined: boolean;
  readonly active: boolean;
  readonly unread: number;
}

export interface RoomListActions {
  open(room: string): void;
  leave(room: string): void;
}

interface RowElements {
  readonly li: HTMLLIElement;
  readonly open: HTMLButtonElement;
  readonly hint: HTMLElement;
  readonly unread: HTMLElement;
  readonly leave: HTMLButtonElement;
}

export class RoomList {
  readonly #el: HTMLElement;
  readonly #actions: RoomListActions;
  readonly #rows = new Map<string, RowElements>();

  constructor(el: HTMLElement, actions: RoomListActions) {
    this.#el = el;
    this.#actions = actions;
  }

  render(rows: readonly RoomRow[]): void {
    const wanted = new Set(rows.map((r) => r.name));
    for (const [name, row] of this.#rows) {
      if (!wanted.has(name)) {
        row.li.remove();
        this.#rows.delete(name);
      }
    }
    let previous: Element | null = null;
    for (const r of rows) {
      const row = this.#rows.get(r.name) ?? this.#create(r.name);
      update(row, r);
      const expected: Element | null =
        previous === null ? this.#el.firstElementChild : previous.nextElementSibling;
      if (expected !== row.li) {
        if (previous === null) this.#el.prepend(row.li);
        else previous.after(row.li);
      }
      previous = row.li;
    }
  }

  #create(name: string): RowElements {
    const unread = h("span", { class: "unread", "data-testid": "room-unread" });
    const hint = h("span", { class: "join-hint" }, "join");
    const open = h(
      "button",
      { type: "button", class: "room-open", "data-testid": "room-open" },
      h("span", { class: "hash", "aria-hidden": "true" }, "#"),
      h("span", { class: "room-name" }, name),
      hint,
      unread,
    );
    const leave = h(
      "button",
      {
        type: "button",
        class: "room-leave",
        "data-testid": "room-leave",
        "aria-label": `Leave #${name}`,
        title: `Leave #${name}`,
      },
      "Leave",
    );
    open.addEventListener("click", () => this.#actions.open(name));
    leave.addEventListener("click", () => this.#actions.leave(name));
    const li = h(
      "li",
      { class: "room", "data-testid": "room-item", "data-room": name },
      open,
      leave,
    );
    const row = { li, open, hint, unread, leave };
    this.#rows.set(name, row);
    return row;
  }
}

function update(row: RowElements, r: RoomRow): void {
  row.li.classList.toggle("joined", r.joined);
  row.li.classList.toggle("active", r.active);
  row.li.dataset.joined = String(r.joined);
  if (r.active) row.open.setAttribute("aria-current", "true");
  else row.open.removeAttribute("aria-current");
  row.open.title = r.joined ? `Open #${r.name}` : `Join #${r.name}`;
  row.hint.hidden = r.joined;
  row.leave.hidden = !r.joined;
  row.unread.hidden = r.unread === 0;
  const text = r.unread > 99 ? "99+" : String(r.unread);
  if (row.unread.firstChild?.textContent !== text) {
    row.unread.replaceChildren(
      h("span", { "aria-hidden": "true" }, text),
      h("span", { class: "sr-only" }, ` (${r.unread} unread)`),
    );
  }
  row.unread.dataset.count = String(r.unread);
}
